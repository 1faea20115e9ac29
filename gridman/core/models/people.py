"""人: households (户), residents (实有人口) and their tags (特殊人群 / 重点人群 / 服务卡)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridman.core.models.base import Base, SyncMixin, utcnow


class Household(SyncMixin, Base):  # 户
    __tablename__ = "households"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_no: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)  # 户号
    grid_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), nullable=False, index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"), index=True)
    house_id: Mapped[int | None] = mapped_column(ForeignKey("houses.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(200))  # 现住址
    kind: Mapped[str] = mapped_column(String(20), nullable=False, default="family")  # family / collective
    phone: Mapped[str | None] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(String(500))

    residents: Mapped[list[Resident]] = relationship(back_populates="household")


class Resident(SyncMixin, Base):  # 实有人口
    """A person living (or registered) in a grid. ``citizen_id`` (公民身份号码) is unique when present."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    sex: Mapped[str | None] = mapped_column(String(1))  # enums.Sex
    ethnicity: Mapped[str | None] = mapped_column(String(20))  # 民族, e.g. 汉族
    citizen_id: Mapped[str | None] = mapped_column(String(18), unique=True)
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(30))
    landline: Mapped[str | None] = mapped_column(String(30))  # 固定电话 (a census sheet's second phone column)
    registered_address: Mapped[str | None] = mapped_column(String(200))  # 户籍地
    current_address: Mapped[str | None] = mapped_column(String(200))  # 现住址
    relation_to_head: Mapped[str | None] = mapped_column(String(20))  # enums.Relation
    population_type: Mapped[str] = mapped_column(String(20), nullable=False, default="registered")
    residence_permit_no: Mapped[str | None] = mapped_column(String(40))  # 居住证号
    residence_permit_expiry: Mapped[date | None] = mapped_column(Date)
    education: Mapped[str | None] = mapped_column(String(20))
    marital_status: Mapped[str | None] = mapped_column(String(20))
    political_status: Mapped[str | None] = mapped_column(String(20))
    employer: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="active")  # enums.ResidentStatus
    note: Mapped[str | None] = mapped_column(String(500))

    household: Mapped[Household | None] = relationship(back_populates="residents")
    tags: Mapped[list[ResidentTag]] = relationship(back_populates="resident", cascade="all, delete-orphan")

    __table_args__ = (
        Index("ix_residents_grid_name", "grid_id", "name"),
        Index("ix_residents_birth", "birth_date"),
    )


class Tag(Base):  # 人员标签
    """Care and watch groups and Hefei's service cards. ``sensitive`` tags are shown only to roles
    that may see them (see services.permissions)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(40), nullable=False)  # Chinese name
    name_en: Mapped[str] = mapped_column(String(60), nullable=False)
    category: Mapped[str] = mapped_column(String(20), nullable=False)  # enums.TagCategory
    sensitive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    synonyms: Mapped[str | None] = mapped_column(String(200))  # '|'-separated, for imports


class ResidentTag(SyncMixin, Base):
    __tablename__ = "resident_tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), nullable=False)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), nullable=False, index=True)
    since: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(200))

    resident: Mapped[Resident] = relationship(back_populates="tags")
    tag: Mapped[Tag] = relationship()

    __table_args__ = (UniqueConstraint("resident_id", "tag_id", name="uq_resident_tags_resident_tag"),)


class ResidencePermitLog(Base):
    """Reserved for the history of 居住证 issues/renewals (the current one lives on Resident)."""

    __tablename__ = "residence_permit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), index=True)
    permit_no: Mapped[str] = mapped_column(String(40), nullable=False)
    issued_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)

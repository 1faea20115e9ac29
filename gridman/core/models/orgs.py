"""组织: organisations of every kind in a grid or community, with contact people and members."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridman.core.models.base import Base, SyncMixin


class Organisation(SyncMixin, Base):  # 组织
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), nullable=False, index=True)  # grid or community
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)  # enums.OrgKind
    registration: Mapped[str | None] = mapped_column(String(12))  # enums.SocialOrgRegistration (社会组织)
    field: Mapped[str | None] = mapped_column(String(20))  # enums.SocialOrgField
    credit_code: Mapped[str | None] = mapped_column(String(18))  # 统一社会信用代码
    address: Mapped[str | None] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(60))
    contact_phone: Mapped[str | None] = mapped_column(String(30))
    contact_resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    founded_on: Mapped[date | None] = mapped_column(Date)
    member_count: Mapped[int | None] = mapped_column(Integer)  # declared size (members may be unregistered)
    note: Mapped[str | None] = mapped_column(String(500))

    members: Mapped[list[OrganisationMember]] = relationship(back_populates="organisation", cascade="all, delete-orphan")


class OrganisationMember(SyncMixin, Base):
    __tablename__ = "organisation_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), nullable=False, index=True)
    role: Mapped[str | None] = mapped_column(String(40))  # 负责人 / 成员 / 志愿者
    joined_on: Mapped[date | None] = mapped_column(Date)
    service_hours: Mapped[int | None] = mapped_column(Integer)  # volunteer hours

    organisation: Mapped[Organisation] = relationship(back_populates="members")

    __table_args__ = (UniqueConstraint("organisation_id", "resident_id", name="uq_org_members_org_resident"),)

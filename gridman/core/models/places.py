"""地: buildings (楼栋), houses (房屋), premises (场所) and community facilities (配套设施)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gridman.core.models.base import Base, SyncMixin


class Building(SyncMixin, Base):  # 楼栋
    """A building with a map point (lon/lat, WGS-84); ``grid_id`` is the grid containing the point."""

    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    code: Mapped[str | None] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)  # e.g. 3栋
    address: Mapped[str | None] = mapped_column(String(200))
    floors: Mapped[int | None] = mapped_column(Integer)
    units: Mapped[int | None] = mapped_column(Integer)  # 单元数
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    built_year: Mapped[int | None] = mapped_column(Integer)
    leader_resident_id: Mapped[int | None] = mapped_column(Integer)  # 楼栋长 (residents.id; no FK: avoids a table cycle)
    note: Mapped[str | None] = mapped_column(String(500))


class House(SyncMixin, Base):  # 房屋
    __tablename__ = "houses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), nullable=False, index=True)
    unit: Mapped[str | None] = mapped_column(String(10))
    floor: Mapped[int | None] = mapped_column(Integer)
    room_no: Mapped[str] = mapped_column(String(20), nullable=False)
    use: Mapped[str] = mapped_column(String(20), nullable=False, default="owner")  # enums.HouseUse
    area_m2: Mapped[float | None] = mapped_column(Float)
    owner_name: Mapped[str | None] = mapped_column(String(60))
    owner_phone: Mapped[str | None] = mapped_column(String(30))


class Premise(SyncMixin, Base):  # 场所
    __tablename__ = "premises"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # enums.PremiseKind
    address: Mapped[str | None] = mapped_column(String(200))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    contact_name: Mapped[str | None] = mapped_column(String(60))
    contact_phone: Mapped[str | None] = mapped_column(String(30))
    license_no: Mapped[str | None] = mapped_column(String(40))  # 统一社会信用代码 / 营业执照号
    last_inspected: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(500))


class Facility(SyncMixin, Base):  # 社区配套设施
    """Community rooms and service points (Hefei: community rooms ≥ 300 m²)."""

    __tablename__ = "facilities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # enums.FacilityKind
    floor_area_m2: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(200))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    opening_hours: Mapped[str | None] = mapped_column(String(60))

    __table_args__ = (Index("ix_facilities_kind", "kind"),)

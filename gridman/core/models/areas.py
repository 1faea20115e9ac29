"""The area tree: city → district → street → community → grid (区划树)."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridman.core.models.base import Base, SyncMixin


class Area(SyncMixin, Base):  # 区划 / 网格
    """One node of the area tree.

    ``code`` is the GB/T 2260 (6-digit) or statistical (9/12-digit) code; a grid's code extends its
    community's. ``path`` is the materialised path of ids (``/1/4/17/``) so a whole subtree is one
    ``path LIKE '/1/4/%'`` query. ``boundary`` is WKB (shapely.to_wkb) in WGS-84/CGCS2000 lon/lat,
    portable across SQLite and PostgreSQL; the centre is kept for labels and quick maps.
    A community may sit directly under a district (Guiyang has no street level).
    """

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    level: Mapped[str] = mapped_column(String(12), nullable=False)  # enums.AreaLevel
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    path: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    depth: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    boundary: Mapped[bytes | None] = mapped_column(LargeBinary)
    center_lon: Mapped[float | None] = mapped_column(Float)
    center_lat: Mapped[float | None] = mapped_column(Float)
    household_limit: Mapped[int | None] = mapped_column(Integer)  # 网格户数上限 (None = policy default)
    note: Mapped[str | None] = mapped_column(String(500))

    parent: Mapped[Area | None] = relationship(remote_side="Area.id", back_populates="children")
    children: Mapped[list[Area]] = relationship(back_populates="parent")

    __table_args__ = (
        Index("ix_areas_path", "path"),
        Index("ix_areas_level", "level"),
    )

    def __repr__(self) -> str:
        return f"<Area {self.level} {self.code} {self.name}>"

"""What a package covers (its area, grids and the areas organisations may hang on), found from an
area code or a set of grid codes. The subtree matching itself is :mod:`gridman.core.services.scope`'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core.enums import AreaLevel
from gridman.core.models import Area
from gridman.core.services import scope
from gridman.core.services.errors import NotFound, ValidationError


@dataclass
class Coverage:
    """What a package covers: its area, the grids whose rows it carries, the areas organisations
    may hang on, and (for a package of chosen grids) their codes."""

    area: Area
    grid_ids: list[int]
    area_ids: list[int]  # organisations may hang on any of these
    grid_codes: list[str] | None  # a set of grids, else None
    covered_grid_codes: set[str] = field(default_factory=set)  # every grid code in the package
    covered_area_codes: set[str] = field(default_factory=set)  # every area code in the package


def _common_ancestor(session: Session, grids: list[Area]) -> Area:
    """The lowest area whose subtree holds every grid (the grid itself when there is one)."""
    if len(grids) == 1:
        return grids[0]
    paths = [g.path for g in grids]
    common = paths[0]
    while not all(scope.is_under(p, common) for p in paths):
        common = common[: common.rstrip("/").rfind("/") + 1]
    area = session.get(Area, scope.path_ids(common)[-1])
    assert area is not None
    return area


def coverage(session: Session, *, area_code: str | None = None, grid_codes: list[str] | None = None) -> Coverage:
    """The coverage of a street, community or grid (``area_code``) or of a set of grids."""
    if grid_codes:
        grids = list(session.scalars(select(Area).where(Area.code.in_(grid_codes))))
        missing = set(grid_codes) - {g.code for g in grids}
        if missing or any(g.level != AreaLevel.GRID for g in grids):
            raise NotFound(f"找不到网格：{'、'.join(sorted(missing)) or '（编码不是网格）'}",
                           en=f"No such grids: {sorted(missing)}")
        ids = [g.id for g in grids]
        codes = {g.code for g in grids}
        return Coverage(_common_ancestor(session, grids), ids, ids, sorted(codes), codes, set(codes))
    if not area_code:
        raise ValidationError("请指定区划编码或网格", field="area", en="Give an area code or grids")
    area = session.scalar(select(Area).where(Area.code == area_code))
    if area is None:
        raise NotFound(f"找不到编码为 {area_code} 的区划", en=f"No area {area_code}")
    if area.level not in (AreaLevel.STREET, AreaLevel.COMMUNITY, AreaLevel.GRID):
        raise ValidationError("只能导出街道、社区或网格", field="area", en="Check out a street, community or grids")
    rows = session.execute(select(Area.id, Area.code, Area.level).where(scope.under(Area.path, area.path))).all()
    grid_rows = [r for r in rows if r.level == AreaLevel.GRID]
    return Coverage(area, [r.id for r in grid_rows], [r.id for r in rows], None,
                    {r.code for r in grid_rows}, {r.code for r in rows})


def coverage_of_package(session: Session, meta: dict[str, Any]) -> Coverage:
    """The coverage a package's metadata names (its grids, else its area)."""
    grids = meta.get("grid_codes") or None
    return coverage(session, area_code=None if grids else meta["area_code"], grid_codes=grids)

"""Service coverage (15分钟社区生活圈): the share of each community's buildings and households
within a radius of a facility, measured in the Gauss–Krüger plane, vectorised (one STRtree)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridman.core import geo
from gridman.core.enums import AreaLevel
from gridman.core.models import Area, Building, Facility, Household
from gridman.core.services import scope
from gridman.core.services.errors import ValidationError
from gridman.core.services.geometry.shared import SAMPLE_CAP
from gridman.core.services.permissions import Actor, Perm, require, require_area


@dataclass
class CommunityCoverage:
    code: str
    name: str
    buildings: int
    buildings_covered: int
    households: int
    households_covered: int
    building_share: float
    household_share: float


@dataclass
class UncoveredBuilding:
    id: int
    code: str | None
    name: str
    community_code: str | None
    grid_code: str | None
    households: int
    nearest_m: float | None


@dataclass
class CoverageReport:
    radius_m: float
    facilities: int
    crs: str
    buildings: int
    buildings_covered: int
    households: int
    households_covered: int
    communities: list[CommunityCoverage]
    uncovered_count: int
    uncovered: list[UncoveredBuilding]


def _within(proj: geo.Projection, facilities: list[tuple[str, float, float]], blon: np.ndarray, blat: np.ndarray,
            radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(covered, distance to the nearest facility of the uncovered) per building."""
    covered = np.zeros(len(blon), dtype=bool)
    nearest = np.full(len(blon), np.nan)
    if len(blon) and facilities:
        fx, fy = proj.xy([f[1] for f in facilities], [f[2] for f in facilities])
        bx, by = proj.xy(blon, blat)
        bpts = shapely.points(bx, by)
        tree = shapely.STRtree(shapely.points(fx, fy))
        bi, _ = tree.query(bpts, predicate="dwithin", distance=radius_m)
        covered[np.unique(bi)] = True
        unc = np.flatnonzero(~covered)
        if len(unc):
            (ui, _fi), dist = tree.query_nearest(bpts[unc], return_distance=True, all_matches=False)
            nearest[unc[ui]] = dist
    return covered, nearest


def _communities(by_id: dict[int, Any], comm_of: np.ndarray, covered: np.ndarray,
                 bhh: np.ndarray) -> list[CommunityCoverage]:
    per: dict[int | None, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for c in np.unique(comm_of):
        m = comm_of == c
        per[int(c)] = [int(m.sum()), int((m & covered).sum()), int(bhh[m].sum()), int(bhh[m & covered].sum())]
    comms = []
    for c, (nb, nbc, nh, nhc) in sorted(per.items(), key=lambda kv: by_id[kv[0]].code if kv[0] in by_id else ""):
        r = by_id.get(c)  # type: ignore[arg-type]
        comms.append(CommunityCoverage(r.code if r else "", r.name if r else "（未归属社区）", nb, nbc, nh, nhc,
                                       round(nbc / nb, 4) if nb else 0.0, round(nhc / nh, 4) if nh else 0.0))
    return comms


def coverage(session: Session, actor: Actor, *, facilities: list[tuple[str, float, float]] | None = None,
             facility_kind: str | None = None, radius_m: float = 1000.0, area_id: int | None = None,
             uncovered_limit: int = SAMPLE_CAP) -> CoverageReport:
    """Share of buildings and households of each community within ``radius_m`` metres (measured
    in the Gauss–Krüger plane) of a facility: points given, or Facility rows of ``facility_kind``.
    Buildings are those of area ``area_id``'s subtree (all if None) the actor may see."""
    area = require_area(session, actor, Perm.READ, area_id) if area_id is not None else None
    if area is None:
        require(actor, Perm.READ)
    if radius_m <= 0 or not math.isfinite(radius_m):
        raise ValidationError(f"半径应为正数（{radius_m}）", field="radius", en=f"The radius must be positive ({radius_m})")
    if facilities is None:
        if not facility_kind:
            raise ValidationError("请给出设施点文件或设施类型", field="facilities",
                                  en="Give a facility file or a facility kind")
        facilities = [(n, lo or 0.0, la or 0.0) for n, lo, la in session.execute(  # (never NULL: see WHERE)
            select(Facility.name, Facility.lon, Facility.lat).where(
                Facility.kind == facility_kind, Facility.lon.is_not(None), Facility.lat.is_not(None)))]
    area_rows = session.execute(select(Area.id, Area.code, Area.name, Area.level, Area.path)).all()
    by_id = {r.id: r for r in area_rows}
    grid_comm: dict[int, int | None] = {
        r.id: next((a for a in scope.path_ids(r.path) if by_id[a].level == AreaLevel.COMMUNITY.value), None)
        for r in area_rows if r.level == AreaLevel.GRID.value}
    b = session.execute(
        select(Building.id, Building.code, Building.name, Building.lon, Building.lat, Building.grid_id)
        .where(Building.lon.is_not(None), Building.lat.is_not(None), scope.rows(actor, Building.grid_id, area))
        .order_by(Building.id)).all()
    hh = dict(session.execute(select(Household.building_id, func.count()).where(
        Household.building_id.is_not(None)).group_by(Household.building_id)).all())
    blon = np.array([r.lon for r in b], dtype=float)
    blat = np.array([r.lat for r in b], dtype=float)
    bhh = np.array([hh.get(r.id, 0) for r in b], dtype=np.int64)
    if len(b):
        proj = geo.Projection.around(float(np.mean(blon)), float(np.mean(blat)))
    elif facilities:
        proj = geo.Projection.around(facilities[0][1], facilities[0][2])
    else:
        proj = geo.Projection.around(117.0, 31.8)
    covered, nearest = _within(proj, facilities, blon, blat, radius_m)
    comm_of = np.array([grid_comm.get(r.grid_id) or -1 for r in b], dtype=np.int64)
    unc_rows = []
    for i in np.flatnonzero(~covered)[:uncovered_limit]:
        r = b[int(i)]
        c = grid_comm.get(r.grid_id)
        unc_rows.append(UncoveredBuilding(int(r.id), r.code, r.name, by_id[c].code if c in by_id else None,
                                          by_id[r.grid_id].code if r.grid_id in by_id else None, int(bhh[i]),
                                          None if np.isnan(nearest[i]) else round(float(nearest[i]), 1)))
    return CoverageReport(radius_m=radius_m, facilities=len(facilities), crs=f"EPSG:{proj.epsg}", buildings=len(b),
                          buildings_covered=int(covered.sum()), households=int(bhh.sum()),
                          households_covered=int(bhh[covered].sum()),
                          communities=_communities(by_id, comm_of, covered, bhh),
                          uncovered_count=int((~covered).sum()), uncovered=unc_rows)

"""Grid check (网格检查): the boundaries, staffing and size of an area's subtree, one issue per
problem (invalid rings, overlaps, gaps, parts outside the parent, slivers, no boundary, no
warden, too many households). Vectorised: one projection of all boundaries, one STRtree for
sibling pairs, array predicates and areas.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridman.core import geo
from gridman.core.enums import AreaLevel
from gridman.core.models import Area, Household, Setting, WardenAssignment
from gridman.core.services import scope
from gridman.core.services.errors import NotFound
from gridman.core.services.geometry.shared import chunks
from gridman.core.services.permissions import Actor, Perm, require_area

DEFAULT_HOUSEHOLD_LIMIT = 500  # 网格户数上限 when neither the grid nor the settings say otherwise
HOUSEHOLD_LIMIT_SETTING = "grids.household_limit"


@dataclass
class CheckIssue:
    kind: str  # invalid / overlap / gap / outside_parent / sliver / no_boundary / no_warden / over_limit
    code: str
    name: str
    level: str
    detail: str
    detail_en: str
    other_code: str | None = None
    area_m2: float | None = None
    value: float | None = None


@dataclass
class Repair:
    code: str
    reason: str
    area_m2_before: float
    area_m2_after: float
    parts_after: int


@dataclass
class CheckReport:
    root_code: str
    crs: str
    areas_checked: int
    grids_checked: int
    issues: list[CheckIssue]
    counts: dict[str, int]
    repaired: list[Repair]
    seconds: float = 0.0


def household_limit_default(session: Session) -> int:
    s = session.get(Setting, HOUSEHOLD_LIMIT_SETTING)
    if s is not None and isinstance(s.value, int | float) and s.value > 0:
        return int(s.value)
    return DEFAULT_HOUSEHOLD_LIMIT


def root_area_ids(session: Session) -> list[int]:
    """The top-level areas (what ``grids check`` without an area checks), by code."""
    return list(session.scalars(select(Area.id).where(Area.parent_id.is_(None)).order_by(Area.code)))


def first_root_area_id(session: Session) -> int:
    """The area checked when none is chosen: the first top-level area (the city)."""
    ids = root_area_ids(session)
    if not ids:
        raise NotFound("还没有任何区划。", en="There are no areas yet.")
    return ids[0]


def _today() -> date:
    return date.today()


class _Subtree:
    """The areas of one subtree as arrays (boundaries as stored, in lon/lat) and the issues found."""

    def __init__(self, session: Session, root_path: str, *, sliver_m2: float, tolerance_m2: float) -> None:
        self.rows = session.execute(
            select(Area.id, Area.code, Area.name, Area.level, Area.parent_id, Area.boundary, Area.household_limit)
            .where(scope.under(Area.path, root_path)).order_by(Area.depth, Area.code)
        ).all()
        rows = self.rows
        self.n = len(rows)
        self.ids = np.array([r.id for r in rows], dtype=np.int64)
        pos = {r.id: i for i, r in enumerate(rows)}
        self.parent_pos = np.array([pos.get(r.parent_id, -1) if r.parent_id else -1 for r in rows], dtype=np.int64)
        self.raw = shapely.from_wkb(np.array([r.boundary for r in rows], dtype=object))
        self.has = ~shapely.is_missing(self.raw)
        self.geoms = self.raw.copy()  # invalid boundaries replaced by their repaired form
        self.proj = (geo.Projection.for_geometries(self.raw[self.has]) if self.has.any()
                     else geo.Projection.around(117.0, 31.8))
        self.sliver_m2, self.tolerance_m2 = sliver_m2, tolerance_m2
        self.issues: list[CheckIssue] = []

    def add(self, i: int, kind: str, zh: str, en: str, *, other: int | None = None, m2: float | None = None,
            value: float | None = None) -> None:
        r = self.rows[i]
        self.issues.append(CheckIssue(kind, r.code, r.name, r.level, zh, en,
                                      self.rows[other].code if other is not None else None,
                                      None if m2 is None else round(m2, 2), value))

    def m2(self, g: Any) -> np.ndarray:
        return self.proj.area_m2(g)


def _validity(session: Session, t: _Subtree, repair: bool) -> list[Repair]:
    """``invalid`` (in lon/lat, as stored); with ``repair`` the polygonal part of make_valid is saved."""
    repaired: list[Repair] = []
    for k in np.flatnonzero(~t.has):
        t.add(int(k), "no_boundary", "没有边界", "no boundary")
    valid = np.ones(t.n, dtype=bool)
    valid[t.has] = shapely.is_valid(t.raw[t.has])
    for k in np.flatnonzero(t.has & ~valid):
        i = int(k)
        reason = shapely.is_valid_reason(t.raw[i])
        fixed = geo.polygonal(shapely.make_valid(t.raw[i]))
        before = float(t.proj.area_m2(t.raw[i]))
        after = float(t.proj.area_m2(fixed))
        t.add(i, "invalid", f"边界无效：{reason}", f"invalid boundary: {reason}", m2=before)
        t.geoms[i] = fixed
        if repair:
            a = session.get(Area, int(t.ids[i]))
            assert a is not None
            a.boundary = shapely.to_wkb(fixed)
            a.center_lon, a.center_lat = geo.label_point(fixed) if not fixed.is_empty else (None, None)
            repaired.append(Repair(t.rows[i].code, reason, round(before, 2), round(after, 2),
                                   int(shapely.get_num_geometries(fixed))))
    if repair and repaired:
        session.flush()
    return repaired


def _slivers(t: _Subtree) -> None:
    """Slivers among each boundary's own parts."""
    if not t.has.any():
        return
    parts, part_idx = shapely.get_parts(t.geoms[t.has], return_index=True)
    part_area = t.m2(parts)
    owner = np.flatnonzero(t.has)[part_idx]
    for j in np.flatnonzero(part_area < t.sliver_m2):
        t.add(int(owner[j]), "sliver", f"边界含面积仅 {part_area[j]:.1f} m² 的碎片",
              f"boundary has a sliver of {part_area[j]:.1f} m²", m2=float(part_area[j]))


def _overlaps(t: _Subtree) -> None:
    """Sibling overlaps: one STRtree, candidate pairs, interiors-intersect test, overlap areas."""
    cand = np.flatnonzero(t.has & (t.parent_pos >= 0))
    if len(cand) <= 1:
        return
    tree = shapely.STRtree(t.geoms[cand])
    a_i, b_i = tree.query(t.geoms[cand], predicate="intersects")
    a_g, b_g = cand[a_i], cand[b_i]
    keep = (a_g < b_g) & (t.parent_pos[a_g] == t.parent_pos[b_g])
    a_g, b_g = a_g[keep], b_g[keep]
    if not len(a_g):
        return
    inner = shapely.relate_pattern(t.geoms[a_g], t.geoms[b_g], "T********")
    a_g, b_g = a_g[inner], b_g[inner]
    ov: Any = t.m2(shapely.intersection(t.geoms[a_g], t.geoms[b_g])) if len(a_g) else []
    for x, y, v in zip(a_g, b_g, ov, strict=True):
        if v > t.tolerance_m2:
            other = t.rows[int(y)]
            t.add(int(x), "overlap", f"与 {other.code}（{other.name}）重叠 {v:.1f} m²",
                  f"overlaps {other.code} ({other.name}) by {v:.1f} m²", other=int(y), m2=float(v))


def _outside_parent(t: _Subtree) -> None:
    """Children sticking out of their parent."""
    kids = np.flatnonzero(t.has & (t.parent_pos >= 0))
    kids = kids[t.has[t.parent_pos[kids]]] if len(kids) else kids
    if not len(kids):
        return
    par_geoms = t.geoms[t.parent_pos[kids]]
    shapely.prepare(par_geoms)
    out = kids[~shapely.covers(par_geoms, t.geoms[kids])]
    if not len(out):
        return
    stick = t.m2(shapely.difference(t.geoms[out], t.geoms[t.parent_pos[out]]))
    for i, v in zip(out, stick, strict=True):
        if v > t.tolerance_m2:
            p = int(t.parent_pos[i])
            t.add(int(i), "outside_parent", f"超出上级 {t.rows[p].name}（{t.rows[p].code}）{v:.1f} m²",
                  f"sticks out of its parent {t.rows[p].code} by {v:.1f} m²", other=p, m2=float(v))


def _gaps(t: _Subtree) -> None:
    """Gaps: the parent minus the union of its children (small pieces are slivers)."""
    by_parent: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(t.has & (t.parent_pos >= 0)):
        by_parent[int(t.parent_pos[i])].append(int(i))
    for p, ch in by_parent.items():
        if not t.has[p]:
            continue
        rest = shapely.difference(t.geoms[p], shapely.union_all(t.geoms[ch]))
        if rest.is_empty:
            continue
        areas = t.m2(shapely.get_parts(rest))
        big = areas[areas >= t.sliver_m2]
        small = areas[(areas > t.tolerance_m2) & (areas < t.sliver_m2)]
        if len(big):
            t.add(p, "gap", f"下级区划未覆盖 {big.sum():.1f} m²（{len(big)} 处）",
                  f"{big.sum():.1f} m² not covered by its children ({len(big)} pieces)", m2=float(big.sum()),
                  value=len(big))
        if len(small):
            t.add(p, "sliver", f"下级区划之间有 {len(small)} 处碎缝，共 {small.sum():.1f} m²",
                  f"{len(small)} sliver gaps between its children, {small.sum():.1f} m² in all",
                  m2=float(small.sum()), value=len(small))


def _staffing(session: Session, t: _Subtree, today: date, default_limit: int) -> int:
    """``no_warden`` and ``over_limit`` of the subtree's grids; returns how many grids were checked."""
    grid_pos = [i for i, r in enumerate(t.rows) if r.level == AreaLevel.GRID.value]
    grid_ids = [int(t.ids[i]) for i in grid_pos]
    staffed: set[int] = set()
    counts: dict[int, int] = {}
    for ch in chunks(grid_ids):
        staffed.update(session.scalars(
            select(WardenAssignment.grid_id).where(
                WardenAssignment.grid_id.in_(ch), scope.current_assignment(today)).distinct()))
        counts.update(session.execute(select(Household.grid_id, func.count()).where(
            Household.grid_id.in_(ch)).group_by(Household.grid_id)).all())
    for i in grid_pos:
        gid = int(t.ids[i])
        if gid not in staffed:
            t.add(i, "no_warden", "没有在岗网格员", "no current warden")
        limit = t.rows[i].household_limit or default_limit
        hh = counts.get(gid, 0)
        if hh > limit:
            t.add(i, "over_limit", f"户数 {hh} 超过上限 {limit}", f"{hh} households exceed the limit of {limit}",
                  value=hh)
    return len(grid_pos)


def check_subtree(session: Session, actor: Actor, *, area_id: int, repair: bool = False, sliver_m2: float = 100.0,
                  tolerance_m2: float = 0.5, household_limit: int | None = None,
                  today: date | None = None) -> CheckReport:
    """Check the boundaries and staffing of area ``area_id``'s subtree; per area, report:

    - ``invalid``: self-intersecting or otherwise invalid rings (``shapely.is_valid_reason``);
      with ``repair`` they are replaced by ``shapely.make_valid`` (polygonal part) and the change
      in area is reported — never silently.
    - ``overlap``: siblings whose interiors overlap, with the shared area in m²;
    - ``gap``: parts of a parent not covered by the union of its children (pieces smaller than
      ``sliver_m2`` are reported as ``sliver``);
    - ``outside_parent``: the part of a child sticking out of its parent;
    - ``sliver``: polygon parts (of a boundary or a gap) smaller than ``sliver_m2``;
    - ``no_boundary``; ``no_warden`` (grids without a current 网格员); ``over_limit`` (grids whose
      households exceed ``Area.household_limit``, else ``household_limit``, else the setting
      ``grids.household_limit``, else 500).

    Differences below ``tolerance_m2`` are floating-point noise and ignored. Topology (overlaps,
    gaps, containment) is decided on the stored lon/lat coordinates — the edges the data actually
    describes; only the resulting pieces are measured in metres. (Doing the topology after
    projection would invent slivers where a long edge meets a T-junction: a projected chord is
    not the projected edge.)
    """
    t0 = time.perf_counter()
    area = require_area(session, actor, Perm.MANAGE_AREAS if repair else Perm.READ, area_id)
    today = today or _today()
    default_limit = household_limit or household_limit_default(session)
    t = _Subtree(session, area.path, sliver_m2=sliver_m2, tolerance_m2=tolerance_m2)
    repaired = _validity(session, t, repair)
    _slivers(t)
    _overlaps(t)
    _outside_parent(t)
    _gaps(t)
    grids = _staffing(session, t, today, default_limit)
    cnt = Counter(x.kind for x in t.issues)
    return CheckReport(area.code, f"EPSG:{t.proj.epsg}", t.n, grids, t.issues, dict(sorted(cnt.items())),
                       repaired, round(time.perf_counter() - t0, 3))

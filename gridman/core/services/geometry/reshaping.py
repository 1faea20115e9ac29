"""Boundary changes (边界调整): edit grid boundaries, split a grid in two, merge two grids.

Each is two calls: without ``apply`` it returns a preview of what would move (buildings,
premises, households, residents, open incidents) and a ``token``; with ``apply=True`` it does it
in the caller's unit of work and records it in the audit log. Passing the preview's token as
``expected_token`` refuses to apply if the data changed meanwhile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from gridman.core import geo
from gridman.core.enums import AreaLevel
from gridman.core.models import Area, Base, utcnow
from gridman.core.services import areas as area_svc
from gridman.core.services import audit
from gridman.core.services.errors import ConflictError, ValidationError
from gridman.core.services.geometry.assignment import AssignReport, assignment_report, bbox_of
from gridman.core.services.geometry.moves import (
    AUDIT_TABLE,
    TABLES,
    MovePlan,
    load_grids,
    plan_moves,
    plan_token,
    write_moves,
)
from gridman.core.services.geometry.shared import chunks, wkb_geometry
from gridman.core.services.permissions import Actor, Perm, require, require_area


@dataclass
class ShapeChange:
    code: str
    name: str
    action: str  # reshape / create / delete
    area_m2_before: float | None
    area_m2_after: float | None


@dataclass
class BoundaryChangeReport:
    kind: str  # edit / split / merge
    shapes: list[ShapeChange]
    assignment: AssignReport
    moved: dict[str, int]  # buildings, premises, households, residents, open incidents
    repointed: dict[str, int]  # merge: other rows that referred to the absorbed grid
    applied: bool
    token: str


def _m2(g: Any) -> float | None:
    if g is None or g.is_empty:
        return None
    return round(geo.measure(g).area_m2, 2)


def _check_token(expected: str | None, token: str) -> None:
    if expected is not None and expected != token:
        raise ConflictError("预览之后数据或边界已有变化，请重新预览后再确认。",
                            en="The data or boundaries changed since the preview; preview again and confirm.")


def _moved(plan: MovePlan) -> dict[str, int]:
    return {"buildings": len(plan.moves["buildings"]), "premises": len(plan.moves["premises"]),
            "households": len(plan.moves["households"]), "residents": len(plan.moves["residents"]),
            "open_incidents": len(plan.moves["incidents"])}


def _reshape_plan(session: Session, changes: dict[int, Any], new_grids: dict[int, Any],
                  retired: dict[int, int] | None = None) -> tuple[MovePlan, dict[int, str]]:
    """The move plan with ``changes`` (grid id → new boundary), ``new_grids`` added and
    ``retired`` grids gone, limited to the grids affected."""
    grid_ids, grid_geoms, codes = load_grids(session)
    ids = [int(g) for g in grid_ids]
    geoms = list(grid_geoms)
    for gid, g in changes.items():
        if gid in ids:
            geoms[ids.index(gid)] = g
        else:
            ids.append(gid)
            geoms.append(g)
    drop = set(retired or {})
    keep = [k for k, gid in enumerate(ids) if gid not in drop]
    ids = [ids[k] for k in keep]
    geoms = [geoms[k] for k in keep]
    for gid, g in new_grids.items():
        ids.append(gid)
        geoms.append(g)
    affected = set(changes) | set(new_grids) | set(retired or {})
    old = {int(g): geom for g, geom in zip(grid_ids, grid_geoms, strict=True) if int(g) in affected}
    bbox = bbox_of([*changes.values(), *new_grids.values(), *old.values()])
    plan = plan_moves(session, grid_ids=np.array(ids, dtype=np.int64), grid_geoms=np.array(geoms, dtype=object),
                      bbox=bbox, scope=affected, retired=retired)
    return plan, codes


def _grid(session: Session, actor: Actor, grid_id: int) -> Area:
    area = require_area(session, actor, Perm.MANAGE_AREAS, grid_id)
    if area.level != AreaLevel.GRID.value:
        raise ValidationError(f"{area.name}（{area.code}）不是网格", field="grid", en=f"{area.name} ({area.code}) is not a grid")
    return area


def _valid_polygon(g: Any, what: str) -> Any:
    g = shapely.force_2d(g)
    if g.geom_type not in ("Polygon", "MultiPolygon") or g.is_empty:
        raise ValidationError(f"{what}：新边界应为面（Polygon/MultiPolygon），实际为 {g.geom_type}", field="boundary",
                              en=f"{what}: the new boundary must be a Polygon/MultiPolygon, not {g.geom_type}")
    if not g.is_valid:
        raise ValidationError(f"{what}：新边界无效（{shapely.is_valid_reason(g)}）", field="boundary",
                              en=f"{what}: the new boundary is invalid ({shapely.is_valid_reason(g)})")
    return g


def edit_boundaries(session: Session, actor: Actor, *, changes: dict[str, Any], apply: bool = False,
                    expected_token: str | None = None) -> BoundaryChangeReport:
    """Change the boundaries of one or more grids (``{code: lon/lat geometry}``, e.g. both sides
    of a moved border) and re-assign what lies in the changed area. Preview unless ``apply``."""
    by_id: dict[int, Any] = {}
    shapes: list[ShapeChange] = []
    targets: list[tuple[Area, Any]] = []
    for code, g in changes.items():
        a = area_svc.by_code(session, code)
        require(actor, Perm.MANAGE_AREAS, a)
        g = _valid_polygon(g, f"{a.name}（{a.code}）")
        targets.append((a, g))
        shapes.append(ShapeChange(a.code, a.name, "reshape", _m2(wkb_geometry(a.boundary)), _m2(g)))
        if a.level == AreaLevel.GRID.value:
            by_id[a.id] = g
    if by_id:
        plan, codes = _reshape_plan(session, by_id, {})
    else:
        plan, codes = MovePlan(moves={t: [] for t in TABLES}), {}
    token = plan_token(plan, [shapely.to_wkb(g) for _, g in targets])
    report = assignment_report(plan, scope=",".join(changes), grids=len(codes), dry_run=not apply, token=token,
                               codes=codes)
    if apply:
        _check_token(expected_token, token)
        for a, g in targets:
            a.boundary = shapely.to_wkb(g)
            a.center_lon, a.center_lat = geo.label_point(g)
        session.flush()
        write_moves(session, actor, plan, note="边界调整后重新归属 / re-assigned after a boundary edit")
        audit.record(session, actor, "edit_boundary", table="areas", changes={"grids": list(changes), **_moved(plan)},
                     note="网格边界调整")
    return BoundaryChangeReport("edit", shapes, report, _moved(plan), {}, apply, token)


def _next_grid_code(session: Session, community: Area) -> tuple[str, int]:
    codes = session.scalars(select(Area.code).where(Area.parent_id == community.id)).all()
    n = 0
    for c in codes:
        tail = c[len(community.code):]
        if tail.isdigit():
            n = max(n, int(tail))
    return f"{community.code}{n + 1:03d}", n + 1


def _cut(grid: Area, line: Any) -> tuple[Any, Any, Any]:
    """(the grid's boundary, the larger piece, the smaller piece) of a cut along ``line``."""
    from shapely.ops import split as _split

    g = wkb_geometry(grid.boundary)
    if g is None:
        raise ValidationError(f"{grid.name}（{grid.code}）没有边界，无法拆分", field="boundary",
                              en=f"{grid.name} ({grid.code}) has no boundary to split")
    line = shapely.force_2d(line)
    if line.geom_type not in ("LineString", "MultiLineString"):
        raise ValidationError(f"分割线应为 LineString，实际为 {line.geom_type}", field="line",
                              en=f"The cut must be a LineString, not {line.geom_type}")
    pieces = [p for p in shapely.get_parts(_split(g, line)) if p.geom_type == "Polygon"]
    if len(pieces) != 2:
        raise ValidationError(f"分割线把 {grid.name} 分成了 {len(pieces)} 块，应恰好两块（线须完整穿过网格）",
                              field="line", en=f"The line cuts {grid.name} into {len(pieces)} parts, not exactly two")
    pieces.sort(key=lambda p: -geo.measure(p).area_m2)
    return g, pieces[0], pieces[1]


def split_grid(session: Session, actor: Actor, *, grid_id: int, line: Any, new_code: str | None = None,
               new_name: str | None = None, apply: bool = False,
               expected_token: str | None = None) -> BoundaryChangeReport:
    """Cut grid ``grid_id`` in two along a line (lon/lat LineString crossing it). The grid keeps
    the larger part; a new sibling grid (next free code of the community unless ``new_code``)
    gets the other, with what lies in it. Households without a building stay with the original."""
    grid = _grid(session, actor, grid_id)
    g, keep, give = _cut(grid, line)
    community = session.get(Area, grid.parent_id) if grid.parent_id else None
    assert community is not None
    code, num = (new_code, 0) if new_code else _next_grid_code(session, community)
    name = new_name or (f"第{num}网格" if num else f"{grid.name}（拆分）")
    placeholder = -999  # the new grid's id until it exists (ids of real rows are positive)
    plan, codes = _reshape_plan(session, {grid.id: keep}, {placeholder: give})
    codes = {**codes, placeholder: code}
    token = plan_token(plan, [shapely.to_wkb(keep), shapely.to_wkb(give), code])
    shapes = [ShapeChange(grid.code, grid.name, "reshape", _m2(g), _m2(keep)),
              ShapeChange(code, name, "create", None, _m2(give))]
    report = assignment_report(plan, scope=grid.code, grids=len(codes), dry_run=not apply, token=token, codes=codes)
    if apply:
        _check_token(expected_token, token)
        grid.boundary = shapely.to_wkb(keep)
        grid.center_lon, grid.center_lat = geo.label_point(keep)
        new = area_svc.create_area(session, actor, code=code, name=name, level=AreaLevel.GRID, parent=community,
                                   boundary=shapely.to_wkb(give), center=geo.label_point(give))
        write_moves(session, actor, plan, note=f"网格拆分 {grid.code} → {code}", remap={placeholder: new.id})
        audit.record(session, actor, "split_grid", table="areas", row_id=grid.id,
                     changes={"grid": grid.code, "new_grid": code, **_moved(plan)}, note=f"拆分网格 {grid.code}")
    return BoundaryChangeReport("split", shapes, report, _moved(plan), {}, apply, token)


def _area_fk_columns() -> list[tuple[Table, Any]]:
    """Every column of every table that refers to areas.id (except the tree's own parent_id)."""
    out = []
    for t in Base.metadata.sorted_tables:
        for fk in t.foreign_keys:
            if fk.column.table.name == "areas" and not (t.name == "areas"):
                out.append((t, fk.parent))
    return out


def _repoint(session: Session, actor: Actor, fk_cols: list[tuple[Table, Any]], absorb: Area, keep: Area) -> None:
    """Every row still referring to the absorbed grid (e.g. closed incidents, visit logs, warden
    assignments) refers to the kept one; one audit row per changed row with an id."""
    now = utcnow()
    note = f"网格合并 {absorb.code} → {keep.code}"
    for t, col in fk_cols:
        idc = t.c.get("id")
        sel_cols = [idc] if idc is not None else list(t.primary_key.columns)
        uc = t.c.get("uuid")
        rows = session.execute(select(*sel_cols, *([uc] if uc is not None else [])).where(col == absorb.id)).all()
        if not rows:
            continue
        vals: dict[str, Any] = {col.name: keep.id}
        if "version" in t.c:
            vals["version"] = t.c.version + 1
        if "updated_at" in t.c:
            vals["updated_at"] = now
        session.execute(update(t).where(col == absorb.id).values(**vals))
        if idc is not None:
            arows = audit.bulk_rows(actor, "update", t.name,
                                    [(r[0], r[1] if uc is not None else None, {col.name: (absorb.id, keep.id)})
                                     for r in rows], note=note)
            for ch in chunks(arows, 10_000):
                session.execute(AUDIT_TABLE.insert(), ch)


def _union(keep: Area, absorb: Area) -> tuple[Any, Any, Any]:
    """(keep's boundary, absorb's boundary, their union) of two neighbouring grids."""
    ga, gb = wkb_geometry(keep.boundary), wkb_geometry(absorb.boundary)
    if ga is None or gb is None:
        raise ValidationError("两个网格都需要有边界才能合并", field="boundary", en="Both grids need a boundary to merge")
    ga, gb = (x if x.is_valid else geo.polygonal(shapely.make_valid(x)) for x in (ga, gb))
    if not ga.intersects(gb):
        raise ValidationError(f"{keep.name} 与 {absorb.name} 不相邻，不能合并", field="grid",
                              en=f"{keep.code} and {absorb.code} do not share a border")
    union = geo.polygonal(shapely.union_all([ga, gb]))
    union = shapely.normalize(union) if union.geom_type == "MultiPolygon" else union
    return ga, gb, union


def merge_grids(session: Session, actor: Actor, *, keep_id: int, absorb_id: int, apply: bool = False,
                expected_token: str | None = None) -> BoundaryChangeReport:
    """Merge grid ``absorb_id`` into sibling grid ``keep_id``: the kept grid takes the union of
    the two boundaries; everything that referred to the absorbed one (households, residents,
    places, open and closed incidents, visit logs, warden assignments…) refers to the kept one;
    the absorbed grid is deleted. The two must share a border."""
    keep, absorb = _grid(session, actor, keep_id), _grid(session, actor, absorb_id)
    if keep.id == absorb.id:
        raise ValidationError("不能把网格与自身合并", en="A grid cannot be merged with itself")
    if keep.parent_id != absorb.parent_id:
        raise ValidationError(f"{keep.name} 与 {absorb.name} 不属于同一社区，不能合并", field="grid",
                              en=f"{keep.code} and {absorb.code} are in different communities")
    ga, gb, union = _union(keep, absorb)
    plan, codes = _reshape_plan(session, {keep.id: union}, {}, retired={absorb.id: keep.id})
    fk_cols = _area_fk_columns()
    repoint: dict[str, int] = {}
    for t, col in fk_cols:
        n = session.scalar(select(func.count()).select_from(t).where(col == absorb.id)) or 0
        if t.name in TABLES and col.name == "grid_id":
            n -= sum(1 for m in plan.moves[t.name] if m[2] == absorb.id)
        if n:
            repoint[f"{t.name}.{col.name}"] = int(n)
    token = plan_token(plan, [shapely.to_wkb(union), json.dumps(repoint, sort_keys=True)])
    shapes = [ShapeChange(keep.code, keep.name, "reshape", _m2(ga), _m2(union)),
              ShapeChange(absorb.code, absorb.name, "delete", _m2(gb), None)]
    report = assignment_report(plan, scope=f"{keep.code}+{absorb.code}", grids=len(codes), dry_run=not apply,
                               token=token, codes=codes)
    if apply:
        _check_token(expected_token, token)
        keep.boundary = shapely.to_wkb(union)
        keep.center_lon, keep.center_lat = geo.label_point(union)
        session.flush()
        write_moves(session, actor, plan, note=f"网格合并 {absorb.code} → {keep.code}")
        _repoint(session, actor, fk_cols, absorb, keep)
        session.expire_all()
        code = absorb.code
        session.delete(session.get(Area, absorb.id))
        session.flush()
        audit.record(session, actor, "merge_grids", table="areas", row_id=keep.id,
                     changes={"keep": keep.code, "absorbed": code, **_moved(plan), "repointed": repoint},
                     note=f"合并网格 {code} → {keep.code}")
    return BoundaryChangeReport("merge", shapes, report, _moved(plan), repoint, apply, token)

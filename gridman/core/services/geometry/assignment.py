"""Point → grid assignment (网格归属): give every building, premise and open incident with a
point the grid containing it, let households and residents follow, and report what moved.

Vectorised (:func:`gridman.core.geo.locate_points`: one STRtree, array predicates, no per-point
Python loop); a city's million points take seconds. The plan and the write report progress and
can be cancelled (:mod:`gridman.core.tasks`); a cancelled assignment writes nothing.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy.orm import Session

from gridman.core import tasks
from gridman.core.enums import AreaLevel
from gridman.core.services import audit, scope
from gridman.core.services.geometry.moves import MovePlan, load_grids, plan_moves, plan_token, write_moves
from gridman.core.services.geometry.shared import SAMPLE_CAP, wkb_geometry
from gridman.core.services.permissions import Actor, Perm, require, require_area


@dataclass
class PointNote:
    table: str
    id: int
    name: str | None
    lon: float
    lat: float
    grid_code: str | None  # the grid it is (still) assigned to
    touching: list[str] = field(default_factory=list)  # grids whose border it lies on


@dataclass
class MoveRow:
    table: str
    id: int
    from_code: str | None
    to_code: str


@dataclass
class AssignReport:
    scope: str
    grids: int
    points: dict[str, int]
    changed: dict[str, int]
    outside_count: int
    border_count: int
    outside: list[PointNote]
    on_border: list[PointNote]
    moves: list[MoveRow]
    flows: list[dict[str, Any]]  # per (from grid → to grid): counts by table
    dry_run: bool
    token: str
    seconds: float = 0.0


def assignment_report(plan: MovePlan, *, scope: str, grids: int, dry_run: bool, token: str,
                      codes: dict[int, str], seconds: float = 0.0) -> AssignReport:
    """The plan as a report: counts, the flows between grids, samples of the moved, outside and
    border points (grid ids shown as codes)."""
    def code(g: int | None) -> str | None:
        return None if g is None else codes.get(g, str(g))

    names_out = [PointNote(t, i, nm, lon, lat, code(g)) for t, i, nm, lon, lat, g in plan.outside[:SAMPLE_CAP]]
    names_b = [PointNote(t, i, nm, lon, lat, code(g), [code(x) or "" for x in gs])
               for t, i, nm, lon, lat, g, gs in plan.border[:SAMPLE_CAP]]
    moves: list[MoveRow] = []
    flows: dict[tuple[str | None, str], Counter[str]] = defaultdict(Counter)
    for t, rows in plan.moves.items():
        for i, _u, o, n in rows:
            if len(moves) < SAMPLE_CAP:
                moves.append(MoveRow(t, i, code(o), code(n) or ""))
            flows[(code(o), code(n) or "")][t] += 1
    flow_list = [{"from": f, "to": to, **dict(c)} for (f, to), c in sorted(flows.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))]
    return AssignReport(scope=scope, grids=grids, points=dict(plan.points),
                        changed={t: len(v) for t, v in plan.moves.items()}, outside_count=len(plan.outside),
                        border_count=len(plan.border), outside=names_out, on_border=names_b, moves=moves,
                        flows=flow_list, dry_run=dry_run, token=token, seconds=round(seconds, 3))


def bbox_of(geoms: Iterable[Any], pad_deg: float = 1e-6) -> tuple[float, float, float, float]:
    b = shapely.total_bounds(np.array(list(geoms), dtype=object))
    return (b[0] - pad_deg, b[1] - pad_deg, b[2] + pad_deg, b[3] + pad_deg)


def assign(session: Session, actor: Actor, *, area_id: int | None = None, dry_run: bool = False,
           task: tasks.TaskState | None = None) -> AssignReport:
    """Give every building, premise and open incident with a point the grid containing it, and
    let households and residents follow. ``area_id`` limits it to that area's subtree (rows whose
    old or new grid lies in it). With ``dry_run`` nothing is written. ``task`` gets progress
    (planning, then writing) and may cancel: the caller's transaction then rolls back."""
    t0 = time.perf_counter()
    task = tasks.ensure(task)
    area = require_area(session, actor, Perm.MANAGE_AREAS, area_id) if area_id is not None else None
    if area is None:
        require(actor, Perm.MANAGE_AREAS)
    grid_ids, grid_geoms, codes = load_grids(session)
    in_area: set[int] | None = None
    bbox = None
    if area is not None:
        in_area = set(session.scalars(scope.subtree_ids(area.path, level=AreaLevel.GRID)))
        parts = [g for gid, g in zip(grid_ids, grid_geoms, strict=True) if int(gid) in in_area]
        own = wkb_geometry(area.boundary)
        parts += [own] if own is not None else []
        bbox = bbox_of(parts) if parts else None
    plan = plan_moves(session, grid_ids=grid_ids, grid_geoms=grid_geoms, bbox=bbox, scope=in_area,
                      task=task.sub(0.0, 0.5 if not dry_run else 1.0))
    token = plan_token(plan)
    if not dry_run and any(plan.moves.values()):
        write_moves(session, actor, plan, note="按网格边界重新归属 / re-assigned by grid boundaries",
                    task=task.sub(0.5, 1.0))
        audit.record(session, actor, "assign_grids", table="areas", row_id=area.id if area else None,
                     changes={t: len(v) for t, v in plan.moves.items()},
                     note=f"网格归属：{area.code if area else '全部'}")
    task.progress(1.0, "完成 / done")
    return assignment_report(plan, scope=area.code if area else "*", grids=len(grid_ids), dry_run=dry_run,
                             token=token, codes=codes, seconds=time.perf_counter() - t0)

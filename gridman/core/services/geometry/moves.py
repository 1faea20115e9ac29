"""Which rows change grid when boundaries change (the move plan), and writing it.

Points (buildings, premises, open incidents) get the grid containing them; households follow
their building, residents their household. Only ids, coordinates and grid ids are read for the
bulk (Core, no ORM objects, plain DBAPI tuples, the cyclic GC paused); uuids and names are
fetched afterwards for the few rows that move or are reported. Writes are set-based
(executemany) and audited with :func:`audit.bulk_rows`.
"""

from __future__ import annotations

import gc
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import shapely
from sqlalchemy import Table, bindparam, func, or_, select, true, update
from sqlalchemy.orm import Session

from gridman.core import geo, tasks
from gridman.core.enums import AreaLevel
from gridman.core.models import Area, AuditEntry, Building, Household, Incident, Premise, Resident, utcnow
from gridman.core.services import audit, scope
from gridman.core.services.geometry.shared import OPEN, SAMPLE_CAP, chunks
from gridman.core.services.permissions import Actor

Move = tuple[int, str, int | None, int]  # (row id, uuid, old grid, new grid)
BBox = tuple[float, float, float, float]

POINT_TABLES: tuple[tuple[str, Any], ...] = (("buildings", Building), ("premises", Premise), ("incidents", Incident))
TABLES: dict[str, Any] = {"buildings": Building, "premises": Premise, "incidents": Incident,
                          "households": Household, "residents": Resident}
WRITE_BATCH = 10_000
AUDIT_TABLE = cast(Table, AuditEntry.__table__)


@dataclass
class MovePlan:
    """What a re-assignment would change. ``moves[table]`` rows are (id, uuid, old, new)."""

    moves: dict[str, list[Move]] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    outside: list[tuple[str, int, str | None, float, float, int | None]] = field(default_factory=list)
    border: list[tuple[str, int, str | None, float, float, int | None, list[int]]] = field(default_factory=list)
    kept_households: int = 0  # households with no building: they stay where they are


def load_grids(session: Session) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(ids, boundaries, id → code) of every grid with a boundary; invalid ones repaired in memory."""
    rows = session.execute(select(Area.id, Area.code, Area.boundary).where(
        Area.level == AreaLevel.GRID.value, Area.boundary.is_not(None)).order_by(Area.id)).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    geoms = shapely.from_wkb(np.array([r.boundary for r in rows], dtype=object)) if rows else np.zeros(0, dtype=object)
    codes = dict(session.execute(select(Area.id, Area.code).where(Area.level == AreaLevel.GRID.value)).all())
    if len(geoms):
        bad = ~shapely.is_valid(geoms)
        if bad.any():  # an invalid grid would make the predicates undefined: use its repaired form
            geoms[bad] = [geo.polygonal(shapely.make_valid(g)) for g in geoms[bad]]
    return ids, geoms, codes


def _point_cond(t: Any, bbox: BBox | None, scope_list: list[int] | None) -> Any:
    """Rows with a point in ``bbox`` or currently in a scope grid (both None: every row)."""
    if bbox is None and scope_list is None:
        return true()
    conds: list[Any] = []
    if bbox is not None:
        conds.append(t.c.lon.between(bbox[0], bbox[2]) & t.c.lat.between(bbox[1], bbox[3]))
    if scope_list is not None:
        conds.append(t.c.grid_id.in_(scope_list))
    return or_(*conds)


def _fast_rows(conn: Any, stmt: Any) -> list[tuple[Any, ...]]:
    """All rows as plain DBAPI tuples: for a million (id, lon, lat, grid) rows, building
    SQLAlchemy Row objects costs more than the query. Only for integer/float columns, which
    need no result processing on SQLite or PostgreSQL."""
    res = conn.execute(stmt)
    try:
        return res.cursor.fetchall()
    finally:
        res.close()


def _by_id(session: Session, t: Table, ids: Iterable[int], *cols: Any) -> dict[int, tuple[Any, ...]]:
    """Extra columns for a few rows (uuids for audit, names for the report), chunked IN."""
    out: dict[int, tuple[Any, ...]] = {}
    for ch in chunks(sorted(set(int(i) for i in ids))):
        for r in session.connection().execute(select(t.c.id, *cols).where(t.c.id.in_(ch))):
            out[r[0]] = tuple(r[1:])
    return out


@contextmanager
def _bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while a million row tuples are alive: its full passes
    over them would otherwise cost more than the work (nothing here creates reference cycles)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Planner:
    """One planning run: the grids (possibly not yet saved), the scope, the retired grids."""

    def __init__(self, session: Session, grid_ids: np.ndarray, grid_geoms: np.ndarray, bbox: BBox | None,
                 scope_ids: set[int] | None, retired: dict[int, int] | None) -> None:
        self.session, self.conn = session, session.connection()
        self.grid_ids, self.grid_geoms, self.bbox = grid_ids, grid_geoms, bbox
        self.scope = scope_ids
        self.retired = retired or {}
        self.scope_list = sorted(set(scope_ids) | set(self.retired)) if scope_ids is not None else None
        self.scope_arr = np.array(self.scope_list if self.scope_list is not None else [], dtype=np.int64)
        self.ret_from = np.array(sorted(self.retired), dtype=np.int64)
        self.ret_to = np.array([self.retired[k] for k in sorted(self.retired)], dtype=np.int64)
        self.plan = MovePlan()

    def in_scope(self, g: np.ndarray) -> np.ndarray:
        return np.ones(len(g), dtype=bool) if self.scope is None else np.isin(g, self.scope_arr)

    def remap_retired(self, g: np.ndarray) -> np.ndarray:
        if not len(self.ret_from):
            return g
        pos = np.clip(np.searchsorted(self.ret_from, g), 0, len(self.ret_from) - 1)
        return np.where(self.ret_from[pos] == g, self.ret_to[pos], g)

    def finish(self, table: str, ids: np.ndarray, old: np.ndarray, new: np.ndarray) -> list[Move]:
        """The moves of ``table`` with their uuids (for the audit rows)."""
        t = TABLES[table].__table__
        uu = _by_id(self.session, t, ids.tolist(), t.c.uuid)
        return [(int(i), uu[int(i)][0], int(o) if o >= 0 else None, int(n))
                for i, o, n in zip(ids.tolist(), old.tolist(), new.tolist(), strict=True)]

    def locate(self, table: str, model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Points of one table in their grids: (changed ids, old, new) and, for every point kept
        on a grid, (ids, new grid) — sorted by id. Notes outside and border points in the plan."""
        t: Table = model.__table__
        q = select(t.c.id, t.c.lon, t.c.lat, t.c.grid_id).where(
            t.c.lon.is_not(None), t.c.lat.is_not(None), _point_cond(t, self.bbox, self.scope_list))
        if model is Incident:
            q = q.where(t.c.status.in_(OPEN))
        rows = _fast_rows(self.conn, q.order_by(t.c.id))
        self.plan.points[table] = len(rows)
        if not rows:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty, empty, empty
        arr = np.array(rows, dtype=float)  # NULL grid → nan
        del rows
        pid = arr[:, 0].astype(np.int64)
        lon, lat = arr[:, 1].copy(), arr[:, 2].copy()
        cur = np.where(np.isnan(arr[:, 3]), -1, arr[:, 3]).astype(np.int64)
        del arr
        loc = geo.locate_points(self.grid_geoms, lon, lat)
        found = loc.index >= 0
        new = np.where(found, self.grid_ids[np.maximum(loc.index, 0)] if len(self.grid_ids) else -1, -1)
        touching: dict[int, list[int]] = defaultdict(list)
        for p, g in zip(loc.border_points.tolist(), loc.border_polys.tolist(), strict=True):
            touching[p].append(int(self.grid_ids[g]))
        for p, gs in touching.items():  # a border point keeps its grid if it touches it
            if cur[p] in gs:
                new[p] = cur[p]
        cur_eff = self.remap_retired(cur)
        new = np.where(found, new, cur_eff)
        scoped_old = self.in_scope(cur)
        self._note(t, table, pid, lon, lat, cur, new, np.flatnonzero(~found & scoped_old), touching, scoped_old)
        changed = (new != cur) & (found | (cur_eff != cur)) & (scoped_old | self.in_scope(new))
        keep = found | (cur >= 0)
        return pid[changed], cur[changed], new[changed], pid[keep], new[keep]

    def _note(self, t: Table, table: str, pid: np.ndarray, lon: np.ndarray, lat: np.ndarray, cur: np.ndarray,
              new: np.ndarray, out_idx: np.ndarray, touching: dict[int, list[int]], scoped_old: np.ndarray) -> None:
        """Record the points outside every grid and those on a border (with their names)."""
        bord_idx = np.array(sorted(touching), dtype=np.int64)
        if len(bord_idx):
            bord_idx = bord_idx[scoped_old[bord_idx] | self.in_scope(new[bord_idx])]
        names = _by_id(self.session, t, pid[np.concatenate([out_idx[:SAMPLE_CAP], bord_idx[:SAMPLE_CAP]])],
                       t.c.name if "name" in t.c else t.c.title)
        for p in out_idx.tolist():
            self.plan.outside.append((table, int(pid[p]), names.get(int(pid[p]), (None,))[0], float(lon[p]),
                                      float(lat[p]), int(cur[p]) if cur[p] >= 0 else None))
        for p in bord_idx.tolist():
            self.plan.border.append((table, int(pid[p]), names.get(int(pid[p]), (None,))[0], float(lon[p]),
                                     float(lat[p]), int(new[p]), sorted(set(touching[p]))))

    def follow_buildings(self, table: str, model: Any, located: tuple[np.ndarray, np.ndarray, np.ndarray],
                         moved_b: dict[int, int]) -> list[Move]:
        """Premises and open incidents without a point follow their building; rows of a retired
        grid without a point go to the grid that absorbs it."""
        t = model.__table__
        ids, old, new = (list(x.tolist()) for x in located)
        seen = set(ids)
        extra_q = [select(t.c.id, t.c.grid_id, t.c.building_id).where(
            t.c.building_id.in_(ch), or_(t.c.lon.is_(None), t.c.lat.is_(None))) for ch in chunks(sorted(moved_b))]
        if self.retired:
            extra_q.append(select(t.c.id, t.c.grid_id, t.c.building_id).where(t.c.grid_id.in_(sorted(self.retired))))
        for q in extra_q:
            if model is Incident:
                q = q.where(t.c.status.in_(OPEN))
            for rid, g, b in self.conn.execute(q):
                target = moved_b.get(b) if b in moved_b else self.retired.get(g)
                if target is not None and rid not in seen and g != target:
                    seen.add(rid)
                    ids.append(rid)
                    old.append(-1 if g is None else g)
                    new.append(target)
        return self.finish(table, np.array(ids, np.int64), np.array(old, np.int64), np.array(new, np.int64))

    def households(self, b_ids: np.ndarray, b_new: np.ndarray) -> list[Move]:
        """Households follow their building (this also mends households that disagree with it)."""
        h = Household.__table__
        q = select(h.c.id, h.c.grid_id, h.c.building_id).where(h.c.building_id.is_not(None))
        if self.bbox is not None or self.scope_list is not None:
            b = Building.__table__
            q = q.where(h.c.building_id.in_(select(b.c.id).where(_point_cond(b, self.bbox, self.scope_list))))
        hrows = _fast_rows(self.conn, q)
        hh_ids = hh_old = hh_new = np.zeros(0, dtype=np.int64)
        if hrows and len(b_ids):
            harr = np.array(hrows, dtype=np.int64)
            hid, hg, hb = harr[:, 0], harr[:, 1], harr[:, 2]
            pos = np.clip(np.searchsorted(b_ids, hb), 0, len(b_ids) - 1)
            known = b_ids[pos] == hb
            target = np.where(known, b_new[pos], hg)
            ch = known & (target != hg) & (self.in_scope(hg) | self.in_scope(target))
            hh_ids, hh_old, hh_new = hid[ch], hg[ch], target[ch]
        if self.retired:  # households of a retired grid without a located building
            extra = self.conn.execute(select(h.c.id, h.c.grid_id).where(h.c.grid_id.in_(sorted(self.retired)))).all()
            seen = set(hh_ids.tolist())
            add = [(i, g) for i, g in extra if i not in seen]
            if add:
                hh_ids = np.concatenate([hh_ids, np.array([i for i, _ in add], np.int64)])
                hh_old = np.concatenate([hh_old, np.array([g for _, g in add], np.int64)])
                hh_new = np.concatenate([hh_new, np.array([self.retired[g] for _, g in add], np.int64)])
        if self.scope_list is not None:
            self.plan.kept_households = int(self.session.scalar(select(func.count()).select_from(h).where(
                h.c.building_id.is_(None), h.c.grid_id.in_(self.scope_list))) or 0)
        return self.finish("households", hh_ids, hh_old, hh_new)

    def residents(self, hh_moves: list[Move]) -> list[Move]:
        """Residents follow their household; residents already out of step with their household
        (in scope) are mended; residents without a household on a retired grid go with it."""
        r, h = Resident.__table__, Household.__table__
        hh_target = {m[0]: m[3] for m in hh_moves}
        r_ids: list[int] = []
        r_old: list[int] = []
        r_new: list[int] = []
        seen: set[int] = set()

        def add(rid: int, old: int, new: int) -> None:
            seen.add(rid)
            r_ids.append(rid)
            r_old.append(old)
            r_new.append(new)

        for hh_ids in chunks(sorted(hh_target)):
            for rid, g, hh in self.conn.execute(select(r.c.id, r.c.grid_id, r.c.household_id)
                                                .where(r.c.household_id.in_(hh_ids))):
                if g != hh_target[hh]:
                    add(rid, g, hh_target[hh])
        q = (select(r.c.id, r.c.grid_id, r.c.household_id, h.c.grid_id)
             .join(h, h.c.id == r.c.household_id).where(r.c.grid_id != h.c.grid_id))
        batches: list[Sequence[int] | None] = (list(chunks(self.scope_list)) if self.scope_list is not None
                                               else [None])
        for ch in batches:
            for rid, g, hh, hg in self.conn.execute(q if ch is None else q.where(h.c.grid_id.in_(ch))):
                if rid not in seen:
                    add(rid, g, hh_target.get(hh, hg))
        if self.retired:
            for rid, g in self.conn.execute(select(r.c.id, r.c.grid_id).where(
                    r.c.grid_id.in_(sorted(self.retired)), r.c.household_id.is_(None))):
                if rid not in seen:
                    add(rid, g, self.retired[g])
        return self.finish("residents", np.array(r_ids, np.int64), np.array(r_old, np.int64),
                           np.array(r_new, np.int64))


def plan_moves(session: Session, *, grid_ids: np.ndarray, grid_geoms: np.ndarray, bbox: BBox | None,
               scope: set[int] | None, retired: dict[int, int] | None = None,
               task: tasks.TaskState | None = None) -> MovePlan:
    """Work out which rows change grid, given grid boundaries (possibly not yet saved).

    Points (buildings, premises, open incidents) get the grid containing them; a point on a
    border keeps its current grid if that is one of the grids it touches (else the lowest id); a
    point outside every grid keeps its current grid and is reported. Premises and open incidents
    without a point follow their building; households follow their building; residents follow
    their household. ``scope`` limits changes to rows whose old or new grid is in it (None: all);
    ``retired`` maps grids that disappear (merge) to the grid that takes over their rows.
    ``task`` gets progress between tables and may cancel. Runs with the garbage collector paused.
    """
    task = tasks.ensure(task)
    with _bulk():
        p = _Planner(session, grid_ids, grid_geoms, bbox, scope, retired)
        located: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        b_ids = b_new = np.zeros(0, dtype=np.int64)
        for n, (table, model) in enumerate(POINT_TABLES):
            task.step(n, len(POINT_TABLES) + 2, f"定位点位 / locating {table}")
            ids, old, new, kept_ids, kept_new = p.locate(table, model)
            located[table] = (ids, old, new)
            if table == "buildings":
                b_ids, b_new = kept_ids, kept_new  # sorted by id (ORDER BY id)
        plan = p.plan
        plan.moves["buildings"] = p.finish("buildings", *located["buildings"])
        moved_b = {m[0]: m[3] for m in plan.moves["buildings"]}
        for table, model in (("premises", Premise), ("incidents", Incident)):
            plan.moves[table] = p.follow_buildings(table, model, located[table], moved_b)
        task.step(len(POINT_TABLES), len(POINT_TABLES) + 2, "户与人员 / households and residents")
        plan.moves["households"] = p.households(b_ids, b_new)
        plan.moves["residents"] = p.residents(plan.moves["households"])
        for t_name in TABLES:
            plan.moves.setdefault(t_name, [])
            plan.moves[t_name].sort()
        task.progress(1.0, "已算出变更 / moves planned")
        return plan


def plan_token(plan: MovePlan, extra: Iterable[Any] = ()) -> str:
    """A short digest of the plan (and ``extra``): applying with a preview's token refuses when
    the data changed meanwhile."""
    h = hashlib.sha256()
    for t in sorted(plan.moves):
        for m in plan.moves[t]:
            h.update(f"{t}:{m[0]}:{m[2]}:{m[3]};".encode())
    for x in extra:
        h.update(x if isinstance(x, bytes) else str(x).encode())
    return h.hexdigest()[:16]


def _ancestors_by_level(session: Session, grid_ids: Iterable[int]) -> dict[int, tuple[int | None, int | None]]:
    """grid id → (community id, street id), from the materialised paths."""
    gids = sorted(set(grid_ids))
    if not gids:
        return {}
    paths = dict(session.execute(select(Area.id, Area.path).where(Area.id.in_(gids))).all())
    anc_ids = {a for p in paths.values() for a in scope.path_ids(p)}
    levels = dict(session.execute(select(Area.id, Area.level).where(Area.id.in_(sorted(anc_ids)))).all())
    out: dict[int, tuple[int | None, int | None]] = {}
    for g, p in paths.items():
        chain = scope.path_ids(p)
        comm = next((a for a in chain if levels.get(a) == AreaLevel.COMMUNITY.value), None)
        street = next((a for a in chain if levels.get(a) == AreaLevel.STREET.value), None)
        out[g] = (comm, street)
    return out


def write_moves(session: Session, actor: Actor, plan: MovePlan, *, note: str, remap: dict[int, int] | None = None,
                task: tasks.TaskState | None = None) -> dict[str, int]:
    """Apply a plan set-based: one executemany UPDATE per table (grid_id, version + 1,
    updated_at), incidents also get their community/street; one audit row per changed row via
    :func:`audit.bulk_rows`. ``remap`` replaces placeholder grid ids (a grid created by a split).
    ``task`` gets progress between batches and may cancel: the caller's transaction then rolls
    back, so nothing is written."""
    task = tasks.ensure(task)
    remap = remap or {}
    now = utcnow()
    done: dict[str, int] = {}
    total = sum(len(v) for v in plan.moves.values())
    written = 0
    task.step(0, total, "写入归属 / writing grids")
    inc_moves = [(i, u, o, remap.get(n, n)) for i, u, o, n in plan.moves.get("incidents", [])]
    anc = _ancestors_by_level(session, [m[3] for m in inc_moves])
    for table, model in TABLES.items():
        moves = [(i, u, o, remap.get(n, n)) for i, u, o, n in plan.moves.get(table, [])]
        done[table] = len(moves)
        if not moves:
            continue
        t: Table = model.__table__
        values: dict[str, Any] = {"grid_id": bindparam("b_new"), "version": t.c.version + 1, "updated_at": now}
        if table == "incidents":
            values["community_id"] = bindparam("b_comm")
            values["street_id"] = bindparam("b_street")
        stmt = update(t).where(t.c.id == bindparam("b_id")).values(**values)
        params = []
        for i, _u, _o, n in moves:
            p: dict[str, Any] = {"b_id": i, "b_new": n}
            if table == "incidents":
                p["b_comm"], p["b_street"] = anc.get(n, (None, None))
            params.append(p)
        audit_rows = audit.bulk_rows(actor, "update", table, [(i, u, {"grid_id": (o, n)}) for i, u, o, n in moves],
                                     note=note)
        for ch, ach in zip(chunks(params, WRITE_BATCH), chunks(audit_rows, WRITE_BATCH), strict=True):
            session.execute(stmt, ch)
            session.execute(AUDIT_TABLE.insert(), ach)
            written += len(ch)
            task.step(written, total, f"写入归属 / writing {table}")
    task.check()
    return done

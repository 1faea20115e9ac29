"""Writing a check-in's plan: set-based inserts, updates (guarded by version) and confirmed
deletions, each audited with the batch id; new incident steps numbered after the existing ones and
each incident's level and status set by its latest step (:func:`apply_timeline`)."""

from __future__ import annotations

import uuid as uuidlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from gridman.core.enums import AreaLevel
from gridman.core.models import AuditEntry, Base, utcnow
from gridman.core.services import audit, scope
from gridman.core.services.exchange.canonical import AREAS, TABLES
from gridman.core.services.exchange.conflicts import MergePlan
from gridman.core.services.exchange.context import MergeContext
from gridman.core.services.exchange.package import WbRow
from gridman.core.services.exchange.results import ExchangeRefused
from gridman.core.services.exchange.workbook import REGISTERS, Register, to_db
from gridman.core.services.exchange.xlsx import iter_chunks
from gridman.core.services.permissions import Actor
from gridman.core.tasks import TaskState

AuditRow = tuple[int, str, dict[str, Any]]
# children before parents: the order confirmed deletions are tried in
DELETE_ORDER = ("visit_logs", "organisations", "premises", "residents", "households", "buildings")


def db_values(ctx: MergeContext, reg: Register, vals: dict[str, Any], fields: Iterable[str], notes: list[str],
              row: int) -> dict[str, Any]:
    """Canonical values → column values (areas, references and users mapped to ids)."""
    out: dict[str, Any] = {}
    fcols = reg.field_cols
    for f in fields:
        col = fcols[f]
        v = vals.get(f)
        if col.kind == "area":
            out[f] = ctx.area_ids.get(v) if v is not None else None
        elif col.kind == "ref":
            assert col.ref is not None
            out[f] = ctx.ids[col.ref].get(v) if v is not None else None
        elif col.kind == "user":
            uid = ctx.user_ids.get(v) if v is not None else None
            if v is not None and uid is None:
                notes.append(f"{reg.sheet} 第 {row} 行：账号 {v} 在中心库不存在，已留空")
            out[f] = uid
        else:
            out[f] = to_db(col, v)
    return out


def _incident_extras(ctx: MergeContext, grid_id: int | None) -> dict[str, Any]:
    """The community and street an incident's grid lies in (copied onto the incident for queues)."""
    if grid_id is None:
        return {}
    hit = ctx.extras.get(grid_id)
    if hit is None:
        path = ctx.s.scalar(select(AREAS.c.path).where(AREAS.c.id == grid_id)) or ""
        ids = scope.path_ids(path)
        lv = dict(ctx.s.execute(select(AREAS.c.id, AREAS.c.level).where(AREAS.c.id.in_(ids))).all())
        hit = ctx.extras[grid_id] = {
            "community_id": next((i for i in ids if lv.get(i) == AreaLevel.COMMUNITY), None),
            "street_id": next((i for i in ids if lv.get(i) == AreaLevel.STREET), None)}
    return dict(hit)


def apply_timeline(session: Session, actor: Actor, incident_ids: Iterable[int], *, batch_id: int | None = None,
                   note: str | None = None) -> list[AuditRow]:
    """Set each incident's level and status to its latest step (by time, then seq).

    The one place the exchange touches the mediation state: steps appended offline and centrally
    stay in the timeline; the case is where its latest step put it. Returns audit tuples.
    """
    ids = sorted(set(incident_ids))
    if not ids:
        return []
    st, it = TABLES["incident_steps"], TABLES["incidents"]
    latest: dict[int, Any] = {}
    cur: dict[int, Any] = {}
    for chunk in iter_chunks(ids):
        for r in session.execute(select(st.c.incident_id, st.c.at, st.c.seq, st.c.to_level, st.c.to_status,
                                        st.c.from_level).where(st.c.incident_id.in_(chunk))
                                 .order_by(st.c.incident_id, st.c.at, st.c.seq)):
            latest[r.incident_id] = r
        for r in session.execute(select(it.c.id, it.c.uuid, it.c.level, it.c.status, it.c.version,
                                        it.c.level_entered_at).where(it.c.id.in_(chunk))):
            cur[r.id] = r
    params, audits = [], []
    now = utcnow()
    for iid, s in latest.items():
        c = cur.get(iid)
        if c is None:
            continue
        lv, stt = s.to_level or c.level, s.to_status or c.status
        if (lv, stt) == (c.level, c.status):
            continue
        entered = s.at if lv != c.level else c.level_entered_at
        params.append({"_id": iid, "_v": c.version, "v_level": lv, "v_status": stt, "v_entered": entered, "_now": now})
        ch: dict[str, list[Any]] = {"version": [c.version, c.version + 1]}
        if lv != c.level:
            ch["level"] = [c.level, lv]
            ch["level_entered_at"] = [audit.jsonable(c.level_entered_at), audit.jsonable(entered)]
        if stt != c.status:
            ch["status"] = [c.status, stt]
        audits.append((iid, c.uuid, ch))
    if params:
        session.execute(update(it).where(it.c.id == bindparam("_id"), it.c.version == bindparam("_v")).values(
            level=bindparam("v_level"), status=bindparam("v_status"), level_entered_at=bindparam("v_entered"),
            version=it.c.version + 1, updated_at=bindparam("_now")), params)
        rows = [{"at": now, "user_id": actor.user_id, "username": actor.username, "action": "update",
                 "table_name": "incidents", "row_id": i, "row_uuid": u, "changes": ch, "batch_id": batch_id,
                 "note": note} for i, u, ch in audits]
        session.execute(insert(AuditEntry), rows)
    return audits


def new_row(ctx: MergeContext, reg: Register, w: WbRow, notes: list[str], now: datetime, *,
            version: int) -> dict[str, Any]:
    """The column values of a workbook row about to be inserted, with the defaults a new row needs."""
    v = db_values(ctx, reg, w.vals, reg.fields, notes, w.row)
    v["uuid"] = w.uuid
    if reg.versioned:
        v["version"] = version
        v["created_at"] = now
        v["updated_at"] = now
    if reg.key == "incidents":
        v.update(_incident_extras(ctx, v.get("grid_id")))
        v["level"] = v.get("level") or "grid"
        v["status"] = v.get("status") or "reported"
        v["level_entered_at"] = v.get("reported_at") or now
    if reg.key == "households":
        v["kind"] = v.get("kind") or "family"
    if reg.key == "residents":
        v["status"] = v.get("status") or "active"
    v.pop("incident_title", None)
    return v


def write_new(ctx: MergeContext, reg: Register, params: list[dict[str, Any]]) -> None:
    """Insert the rows and remember their new ids by uuid."""
    t = TABLES[reg.key]
    for chunk in iter_chunks(params, 2000):
        ctx.s.execute(insert(t), chunk)
    for chunk in iter_chunks([p["uuid"] for p in params]):
        for r in ctx.s.execute(select(t.c.id, t.c.uuid).where(t.c.uuid.in_(chunk))):
            ctx.ids[reg.key][r.uuid] = r.id


def number_steps(ctx: MergeContext, params: list[dict[str, Any]]) -> None:
    """New steps go after every step the incident already has, in time order among themselves."""
    st = TABLES["incident_steps"]
    inc_ids = sorted({p["incident_id"] for p in params if p.get("incident_id")})
    top: dict[int, int] = {}
    for chunk in iter_chunks(inc_ids):
        for r in ctx.s.execute(select(st.c.incident_id, func.max(st.c.seq)).where(st.c.incident_id.in_(chunk))
                               .group_by(st.c.incident_id)):
            top[r[0]] = r[1] or 0
    params.sort(key=lambda p: (p["incident_id"] or 0, p["at"] or datetime.min))
    for p in params:
        n = top.get(p["incident_id"], 0) + 1
        top[p["incident_id"]] = n
        p["seq"] = n
        p["at"] = p.get("at") or utcnow()


def audit_rows(s: Session, actor: Actor, action: str, table: str, rows: list[AuditRow], batch_id: int | None,
               note: str | None) -> None:
    for chunk in iter_chunks(rows, 5000):
        s.execute(insert(AuditEntry), audit.bulk_rows(actor, action, table, chunk, batch_id=batch_id, note=note))


class _PlanWriter:
    def __init__(self, ctx: MergeContext, plan: MergePlan, actor: Actor, batch_id: int | None, note: str) -> None:
        self.ctx, self.plan, self.actor, self.batch_id, self.note = ctx, plan, actor, batch_id, note
        self.now = utcnow()
        self.notes: list[str] = []

    def insert_rows(self, reg: Register, rows: list[WbRow]) -> None:
        if not rows:
            return
        ctx = self.ctx
        params = [new_row(ctx, reg, w, self.notes, self.now, version=1) for w in rows]
        if reg.key == "incident_steps":
            number_steps(ctx, params)
        write_new(ctx, reg, params)
        au = []
        for p in params:
            ch = {k: (None, val) for k, val in p.items() if val is not None and k not in ("created_at", "updated_at")}
            au.append((ctx.ids[reg.key][p["uuid"]], p["uuid"], ch))
        audit_rows(ctx.s, self.actor, "insert", reg.key, au, self.batch_id, self.note)

    def update_rows(self, reg: Register, items: list[tuple[WbRow, list[str]]]) -> None:
        if not items:
            return
        ctx = self.ctx
        t = TABLES[reg.key]
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        au = []
        db = ctx.db[reg.key]
        for w, fs in items:
            d = db[w.uuid]
            vals = db_values(ctx, reg, w.vals, fs, self.notes, w.row)
            if reg.key == "incidents" and "grid_id" in vals:
                vals.update(_incident_extras(ctx, vals["grid_id"]))
            groups[tuple(sorted(vals))].append({"_id": d.id, "_v": d.version, "_now": self.now,
                                                **{f"v_{k}": v for k, v in vals.items()}})
            ch: dict[str, Any] = {k: (audit.jsonable(d.raw.get(k)), audit.jsonable(v)) for k, v in vals.items()}
            ch["version"] = (d.version, d.version + 1)
            au.append((d.id, w.uuid, ch))
        for key, params in groups.items():
            stmt = update(t).where(t.c.id == bindparam("_id"), t.c.version == bindparam("_v")).values(
                {**{k: bindparam(f"v_{k}") for k in key}, "version": t.c.version + 1, "updated_at": bindparam("_now")})
            for chunk in iter_chunks(params, 2000):
                rowcount = getattr(ctx.s.execute(stmt, chunk), "rowcount", None)
                if rowcount is not None and 0 <= rowcount < len(chunk):
                    raise ExchangeRefused("race", "导入过程中有人修改了同一记录，已全部撤回，请重试",
                                          en="Someone changed the same rows during the check-in; nothing was written, retry")
        audit_rows(ctx.s, self.actor, "update", reg.key, au, self.batch_id, self.note)

    def delete_rows(self) -> None:
        """Confirmed deletions, except rows other rows still refer to (kept, and reported so)."""
        plan, ctx = self.plan, self.ctx
        doomed = {k: {i for _, i in v} for k, v in plan.deletes.items()}
        for key in DELETE_ORDER:
            items = plan.deletes.get(key) or []
            if not items:
                continue
            t = TABLES[key]
            busy = _referenced(ctx.s, t, [i for _, i in items], doomed)
            ok = [(u, i) for u, i in items if i not in busy]
            kept = {u for u, i in items if i in busy}
            doomed[key] -= busy
            for e in plan.deletions:
                if e["uuid"] in kept:
                    e["action"] = "kept_referenced"
            if not ok:
                continue
            au = [(i, u, {k: (audit.jsonable(v), None) for k, v in ctx.db[key][u].raw.items()}) for u, i in ok]
            audit_rows(ctx.s, self.actor, "delete", key, au, self.batch_id, self.note)
            for chunk in iter_chunks([i for _, i in ok]):
                ctx.s.execute(delete(t).where(t.c.id.in_(chunk)))
            plan.counts[key]["deleted"] += len(ok)


def _referenced(s: Session, table: Table, ids: list[int], exclude: dict[str, set[int]]) -> set[int]:
    """Ids of ``table`` still referred to by other rows (foreign keys without ON DELETE CASCADE)."""
    out: set[int] = set()
    for other in Base.metadata.sorted_tables:
        for fk in other.foreign_keys:
            if fk.column.table is not table or (fk.ondelete or "").upper() == "CASCADE":
                continue
            col = fk.parent
            for chunk in iter_chunks(ids):
                q = select(col).where(col.in_(chunk))
                if other.name in exclude and exclude[other.name]:
                    q = q.where(other.c.id.not_in(sorted(exclude[other.name])))
                out.update(r[0] for r in s.execute(q.distinct()))
    return out


def _fetch_ref_ids(ctx: MergeContext, plan: MergePlan) -> None:
    """Ids of the rows the written rows refer to (rows unchanged offline were never loaded)."""
    want: dict[str, set[str]] = defaultdict(set)
    for reg in REGISTERS:
        refs = [(c.field, c.ref) for c in reg.cols if c.kind == "ref" and c.ref]
        for w in plan.inserts[reg.key] + [w for w, _ in plan.updates[reg.key]]:
            for f, target in refs:
                u = w.vals.get(f)
                if u and u not in ctx.ids[target]:
                    want[target].add(u)
    for target, uuids in want.items():
        ctx.lookup_refs(target, uuids, set())


def _report_steps_for_new_incidents(plan: MergePlan) -> None:
    """A new incident typed in the workbook without any step gets its 'report' step."""
    with_steps = {w.vals.get("incident_id") for w in plan.inserts["incident_steps"]}
    for w in plan.inserts["incidents"]:
        if w.uuid not in with_steps:
            plan.inserts["incident_steps"].append(WbRow(w.row, str(uuidlib.uuid4()), True, False, {
                "incident_id": w.uuid, "at": w.vals.get("reported_at"), "actor_id": w.vals.get("reporter_id"),
                "action": "report", "to_level": "grid", "to_status": "reported", "note": "离线登记"}, {}))


def write_plan(ctx: MergeContext, plan: MergePlan, actor: Actor, batch_id: int, note: str, task: TaskState) -> None:
    """Write the plan in the session's transaction (progress per register; a cancel raises and the
    caller's transaction rolls everything back)."""
    w = _PlanWriter(ctx, plan, actor, batch_id, note)
    _fetch_ref_ids(ctx, plan)
    for i, reg in enumerate(REGISTERS):
        task.step(i, len(REGISTERS) + 1, f"写入 {reg.sheet}")
        w.insert_rows(reg, plan.inserts[reg.key])
        w.update_rows(reg, plan.updates[reg.key])
        if reg.key == "incidents":
            _report_steps_for_new_incidents(plan)
    task.step(len(REGISTERS), len(REGISTERS) + 1, "删除已确认的行")
    w.delete_rows()
    incident_ids = ctx.ids["incidents"]
    touched = {incident_ids.get(x.vals.get("incident_id") or "") for x in plan.inserts["incident_steps"]}
    apply_timeline(ctx.s, actor, [i for i in touched if i], batch_id=batch_id, note=note)
    plan.notices.extend(dict.fromkeys(w.notes))

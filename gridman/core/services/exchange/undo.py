"""Undo of a check-in: revert an exchange batch while none of its rows changed since (updates
back, inserted rows removed, confirmed deletions restored), else refuse with nothing done."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from gridman.core.models import Area, AuditEntry, Base, ExchangePackage, ImportBatch, IncidentStep, utcnow
from gridman.core.services.errors import NotFound
from gridman.core.services.exchange.results import ExchangeRefused, UndoResult
from gridman.core.services.exchange.writing import audit_rows
from gridman.core.services.exchange.xlsx import iter_chunks
from gridman.core.services.permissions import Actor, Perm, require

UNDO_ORDER = ["incident_steps", "visit_logs", "incidents", "organisations", "premises", "residents",
              "households", "buildings"]


def _from_json(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k not in table.c:
            continue
        typ = table.c[k].type
        if v is not None and isinstance(typ, DateTime) and isinstance(v, str):
            v = datetime.fromisoformat(v)
        elif v is not None and isinstance(typ, Date) and isinstance(v, str):
            v = date.fromisoformat(v)
        out[k] = v
    return out


def _touched_since(session: Session, by: dict[tuple[str, str], list[Any]]) -> list[str]:
    """Why the batch cannot be undone: its rows deleted or changed since, steps appended since."""
    blocked: list[str] = []
    # rows inserted or updated by the batch must still be at the version it left them at
    for (tname, action), es in by.items():
        if action not in ("insert", "update") or tname not in Base.metadata.tables:
            continue
        t = Base.metadata.tables[tname]
        last: dict[int, int] = {}
        for e in es:
            v = (e.changes or {}).get("version")
            if v:
                last[e.row_id] = v[1]
        ids = sorted({e.row_id for e in es})
        found: dict[int, int] = {}
        for chunk in iter_chunks(ids):
            cols = [t.c.id] + ([t.c.version] if "version" in t.c else [])
            for r in session.execute(select(*cols).where(t.c.id.in_(chunk))):
                found[r[0]] = r[1] if len(r) > 1 else 0
        for i in ids:
            if i not in found:
                blocked.append(f"{tname}#{i} 已被删除")
            elif i in last and found[i] != last[i]:
                blocked.append(f"{tname}#{i} 之后又被修改")
    st = Base.metadata.tables[IncidentStep.__tablename__]
    mine = sorted(e.row_id for e in by.get(("incident_steps", "insert"), []))
    if mine:
        incs = {r[0] for r in session.execute(select(st.c.incident_id).where(st.c.id.in_(mine)))}
        later = session.scalar(select(func.count()).select_from(st).where(
            st.c.incident_id.in_(sorted(incs)), st.c.id > max(mine), st.c.id.not_in(mine)))
        if later:
            blocked.append(f"{later} 条处置记录在导入之后追加")
    return blocked


def _revert(session: Session, actor: Actor, entries: list[Any], by: dict[tuple[str, str], list[Any]],
            note: str) -> dict[str, int]:
    reverted: dict[str, int] = defaultdict(int)
    now = utcnow()
    # updates back (newest first), then inserted rows removed (children first), then deletions restored
    for e in reversed(entries):
        if e.action != "update" or e.table_name not in Base.metadata.tables:
            continue
        t = Base.metadata.tables[e.table_name]
        old = _from_json(t, {k: v[0] for k, v in (e.changes or {}).items() if k != "version"})
        session.execute(update(t).where(t.c.id == e.row_id).values(**old, version=t.c.version + 1, updated_at=now))
        audit_rows(session, actor, "update", e.table_name,
                   [(e.row_id, e.row_uuid, {k: (v[1], v[0]) for k, v in (e.changes or {}).items()})], None, note)
        reverted[e.table_name] += 1
    for tname in UNDO_ORDER:
        es = by.get((tname, "insert"), [])
        if not es:
            continue
        t = Base.metadata.tables[tname]
        for chunk in iter_chunks([e.row_id for e in es]):
            session.execute(delete(t).where(t.c.id.in_(chunk)))
        audit_rows(session, actor, "delete", tname, [(e.row_id, e.row_uuid, {}) for e in es], None, note)
        reverted[tname] += len(es)
    for tname in reversed(UNDO_ORDER):
        es = by.get((tname, "delete"), [])
        if not es:
            continue
        t = Base.metadata.tables[tname]
        session.execute(insert(t), [_from_json(t, {k: v[0] for k, v in (e.changes or {}).items()}) for e in es])
        audit_rows(session, actor, "insert", tname, [(e.row_id, e.row_uuid, {}) for e in es], None, note)
        reverted[tname] += len(es)
    return dict(reverted)


def undo_checkin(session: Session, actor: Actor, batch_id: int) -> UndoResult:
    """Revert an exchange check-in while none of its rows changed since; else refuse, nothing done."""
    b = session.get(ImportBatch, batch_id)
    if b is None or b.kind != "exchange":
        raise NotFound(f"没有交换导入批次 {batch_id}", en=f"No exchange batch {batch_id}")
    if b.status != "done":
        raise ExchangeRefused("already_undone", f"批次 {batch_id} 已撤销", en=f"Batch {batch_id} was already undone")
    area = session.get(Area, b.area_id) if b.area_id else None
    require(actor, Perm.IMPORT, area)
    entries = list(session.execute(select(AuditEntry.id, AuditEntry.table_name, AuditEntry.row_id,
                                          AuditEntry.row_uuid, AuditEntry.action, AuditEntry.changes)
                                   .where(AuditEntry.batch_id == batch_id).order_by(AuditEntry.id)).all())
    by: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for e in entries:
        by[(e.table_name, e.action)].append(e)
    blocked = _touched_since(session, by)
    if blocked:
        raise ExchangeRefused("touched", f"批次 {batch_id} 导入的记录之后已被改动，不能撤销：{'；'.join(blocked[:5])}",
                              en=f"Rows of batch {batch_id} changed since; cannot undo: {'; '.join(blocked[:5])}")
    reverted = _revert(session, actor, entries, by, f"撤销交换导入批次 {batch_id}")
    session.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(status="undone", undone_at=utcnow()))
    session.execute(update(ExchangePackage).where(ExchangePackage.checkin_batch_id == batch_id)
                    .values(checked_in_at=None, checkin_batch_id=None))
    return UndoResult(batch_id, b.package_id, reverted)

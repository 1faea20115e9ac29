"""The census imports recorded (``ImportBatch``) and their undo: an import is reverted from its own
audit rows if nothing touched its rows since (versions and later audit rows checked).

Threading: the caller's thread and session; one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridman.core.models import Area, AuditEntry, Household, ImportBatch, Resident, ResidentTag, User, utcnow
from gridman.core.services import audit, scope
from gridman.core.services.census.bulk import chunks
from gridman.core.services.errors import ConflictError, NotFound, PermissionDenied, ValidationError
from gridman.core.services.permissions import Actor, Perm, require


@dataclass
class BatchInfo:
    id: int
    kind: str
    username: str | None
    started_at: Any
    finished_at: Any
    file_name: str | None
    file_sha256: str | None
    area_code: str | None
    status: str
    counts: dict[str, Any] | None
    undone_at: Any


def list_imports(session: Session, actor: Actor, *, limit: int = 50) -> list[BatchInfo]:
    """The latest imports into areas in the actor's scope (one into every area: the unrestricted only)."""
    require(actor, Perm.IMPORT)
    q = (select(ImportBatch, User.username, Area.code).outerjoin(User, User.id == ImportBatch.user_id)
         .outerjoin(Area, Area.id == ImportBatch.area_id).where(scope.rows(actor, ImportBatch.area_id))
         .order_by(ImportBatch.id.desc()).limit(limit))
    return [BatchInfo(b.id, b.kind, u, b.started_at, b.finished_at, b.file_name, b.file_sha256, code, b.status,
                      {k: v for k, v in b.counts.items() if k != "audit_fields"} if isinstance(b.counts, dict)
                      else b.counts, b.undone_at) for b, u, code in session.execute(q)]


@dataclass
class UndoResult:
    batch_id: int
    residents_deleted: int
    residents_restored: int
    households_deleted: int
    tags_removed: int


def undo_import(session: Session, actor: Actor, *, batch_id: int) -> UndoResult:
    """Revert a census import if nothing touched its rows since (versions and later audit rows
    checked); otherwise raise :class:`ConflictError` naming what changed. One transaction.

    A scoped actor undoes a batch whole or not at all: if any row it wrote — or any grid an
    updated resident would be moved back to — lies outside the actor's scope (an administrator's
    import that moved a resident in from another street), the undo is refused without naming
    anyone (:class:`PermissionDenied`); an administrator undoes it."""
    batch = session.get(ImportBatch, batch_id)
    if batch is None or batch.kind != "census":
        raise NotFound(f"导入记录 {batch_id} 不存在", en=f"No census import {batch_id}")
    area = session.get(Area, batch.area_id) if batch.area_id else None
    require(actor, Perm.IMPORT, area)
    if area is None and not scope.unrestricted(actor):
        raise PermissionDenied(f"导入记录 {batch_id} 涉及全部区域，超出您的管辖范围，不能撤销。",
                               en=f"Import {batch_id} covers every area, beyond your scope; it cannot be undone.")
    if batch.status != "done":
        raise ValidationError(f"导入记录 {batch_id} 已撤销", en=f"Import {batch_id} was already undone")
    conn = session.connection()
    at = AuditEntry.__table__
    entries = conn.execute(select(at.c.id, at.c.action, at.c.table_name, at.c.row_id, at.c.changes)
                           .where(at.c.batch_id == batch_id).order_by(at.c.id)).all()
    if not entries:
        raise ValidationError(f"导入记录 {batch_id} 没有写入任何数据", en=f"Import {batch_id} wrote nothing")
    last_id = entries[-1].id
    ours = {(e.table_name, e.row_id) for e in entries}
    later = conn.execute(select(at.c.table_name, at.c.row_id, at.c.username).where(
        at.c.id > last_id, at.c.table_name.in_(["residents", "households", "resident_tags"]),
        (at.c.batch_id.is_(None)) | (at.c.batch_id != batch_id))).all()
    touched = [(t, r, u) for t, r, u in later if (t, r) in ours]
    rt, ht, tt = (cast(Table, m.__table__) for m in (Resident, Household, ResidentTag))
    ins_res = [e for e in entries if e.table_name == "residents" and e.action == "insert"]
    upd_res = [e for e in entries if e.table_name == "residents" and e.action == "update"]
    ins_hh = [e for e in entries if e.table_name == "households" and e.action == "insert"]
    ins_tag = [e for e in entries if e.table_name == "resident_tags" and e.action == "insert"]

    fields = {t: audit.batch_fields(session, batch_id, t) for t in ("residents", "households")}

    def _changes(e: Any) -> dict[str, Any]:
        c = e.changes
        c = json.loads(c) if isinstance(c, str) else c
        return audit.expand(c, fields.get(e.table_name)) or {}

    _require_scope(session, actor, batch_id, ins_res + upd_res, ins_hh,
                   {(_changes(e).get("grid_id") or [None])[0] for e in upd_res})

    versions: dict[int, int] = {}
    ids = [e.row_id for e in ins_res + upd_res]
    for ch in chunks(ids):
        for rid, ver in conn.execute(select(rt.c.id, rt.c.version).where(rt.c.id.in_(ch))):
            versions[rid] = ver
    stale = [e.row_id for e in ins_res if versions.get(e.row_id) != 1]
    stale += [e.row_id for e in upd_res if versions.get(e.row_id) != _changes(e).get("version", [None, None])[1]]
    if touched or stale:
        n = len({(t, r) for t, r, _ in touched} | {("residents", r) for r in stale})
        who = "、".join(sorted({u for _, _, u in touched if u}))
        raise ConflictError(
            f"导入记录 {batch_id} 写入的 {n} 条数据之后已被修改{f'（{who}）' if who else ''}，不能撤销。",
            en=f"{n} rows written by import {batch_id} were changed since; it cannot be undone.")
    now = utcnow()
    note = f"撤销导入批次 {batch_id} / undo import {batch_id}"
    audit_rows: list[dict[str, Any]] = []
    try:
        tag_ids = [e.row_id for e in ins_tag]
        for ch in chunks(tag_ids):
            conn.execute(delete(tt).where(tt.c.id.in_(ch)))
        audit_rows += audit.bulk_rows(actor, "delete", "resident_tags",
                                      [(e.row_id, None, {k: (v[1], None) for k, v in _changes(e).items()})
                                       for e in ins_tag], note=note)
        for e in upd_res:
            chg = _changes(e)
            vals = {k: _from_json(k, v[0]) for k, v in chg.items() if k != "version"}
            cur = versions[e.row_id]
            conn.execute(update(rt).where(rt.c.id == e.row_id, rt.c.version == cur)
                         .values(**vals, version=cur + 1, updated_at=now))
            audit_rows += audit.bulk_rows(actor, "update", "residents", [
                (e.row_id, None, {k: (v[1], v[0]) for k, v in chg.items() if k != "version"})], note=note)
        res_ids = [e.row_id for e in ins_res]
        for ch in chunks(res_ids):
            conn.execute(delete(tt).where(tt.c.resident_id.in_(ch)))
            conn.execute(delete(rt).where(rt.c.id.in_(ch)))
        audit_rows += audit.bulk_rows(actor, "delete", "residents",
                                      [(e.row_id, None, {k: (v[1], None) for k, v in _changes(e).items()})
                                       for e in ins_res], note=note)
        hh_ids = [e.row_id for e in ins_hh]
        for ch in chunks(hh_ids):
            conn.execute(delete(ht).where(ht.c.id.in_(ch)))
        audit_rows += audit.bulk_rows(actor, "delete", "households",
                                      [(e.row_id, None, {k: (v[1], None) for k, v in _changes(e).items()})
                                       for e in ins_hh], note=note)
    except IntegrityError as exc:
        raise ConflictError(f"导入记录 {batch_id} 的数据已被其他记录引用（如事件、走访），不能撤销。",
                            en=f"Rows of import {batch_id} are referenced elsewhere (incidents, visits…)") from exc
    for ch in chunks(audit_rows):
        conn.execute(insert(AuditEntry), list(ch))
    conn.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(status="undone", undone_at=now))
    n_tags = len(ins_tag) + sum(len((_changes(e).get("tags") or [None, []])[1]) for e in ins_res)
    return UndoResult(batch_id, len(ins_res), len(upd_res), len(ins_hh), n_tags)


def _require_scope(session: Session, actor: Actor, batch_id: int, res: list[Any], hh: list[Any],
                   grids_back: set[Any]) -> None:
    """Refuse (whole, naming no one) the undo of a batch whose residents ``res`` and households
    ``hh`` (audit entries; where they are now) or the grids residents would be moved back to lie
    partly outside a scoped actor's scope (:func:`scope.rows`)."""
    if scope.unrestricted(actor):
        return
    n = 0
    for model, ids in ((Resident, [e.row_id for e in res]), (Household, [e.row_id for e in hh])):
        t = cast(Table, model.__table__)
        for ch in chunks(ids):
            n += session.execute(select(func.count()).select_from(t).where(
                t.c.id.in_(ch), ~scope.rows(actor, t.c.grid_id))).scalar_one()
    for ch in chunks(sorted(g for g in grids_back if isinstance(g, int))):
        n += len(ch) - session.execute(select(func.count()).select_from(Area).where(
            Area.id.in_(ch), scope.rows(actor, Area.id))).scalar_one()
    if n:
        raise PermissionDenied(f"导入记录 {batch_id} 涉及您管辖范围以外的 {n} 条数据，不能由您撤销，请联系上级。",
                               en=f"Import {batch_id} touched {n} rows outside your scope; ask an administrator to undo it.")


def _from_json(key: str, v: Any) -> Any:
    if v is not None and key in ("birth_date", "residence_permit_expiry"):
        return date.fromisoformat(v)
    return v

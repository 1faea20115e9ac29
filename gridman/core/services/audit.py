"""The audit log, written for every ORM change by a session hook.

Every session that changes data must carry the acting user in ``session.info["actor"]``
(``Database.work(actor)`` does this). After each flush the hook writes one ``audit_log`` row per
inserted, updated or deleted object, with ``{field: [old, new]}``. A flush without an actor is a
programming error and raises. Bulk paths that bypass the ORM (imports, the sample writer) write
their own audit rows through :func:`bulk_rows`.

Compact insert entries: a bulk import may write a new row's insert entry with ``changes`` holding
only the row's values, as a JSON list in a fixed field order (``[v1, v2, …]`` instead of
``{"f1": [null, v1], …}``: a third of the size, and cheaper to build). The field order is kept once,
in the import batch (``import_batches.counts["audit_fields"][table]``). :func:`expand` turns such an
entry back into the usual form; :func:`batch_fields` finds the order.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, insert, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from gridman.core.models import AuditEntry, Base, ImportBatch, utcnow
from gridman.core.services.permissions import Actor

SKIP_TABLES = {"audit_log"}
SKIP_COLUMNS = {"version", "updated_at", "created_at"}
REDACTED_COLUMNS = {"password_hash"}  # the log says that it changed, never the hash itself


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return {"bytes": len(value), "b64": base64.b64encode(value[:64]).decode()} if len(value) > 64 else {
            "b64": base64.b64encode(value).decode()
        }
    if isinstance(value, dict | list):
        return value
    return str(value)


def _column_attrs(obj: Base) -> list[str]:
    return [c.key for c in inspect(obj).mapper.column_attrs]


def _entry(actor: Actor, action: str, obj: Base, changes: dict[str, list[Any]] | None) -> dict[str, Any]:
    return {
        "at": utcnow(),
        "user_id": actor.user_id,
        "username": actor.username,
        "action": action,
        "table_name": obj.__tablename__,
        "row_id": getattr(obj, "id", None),
        "row_uuid": getattr(obj, "uuid", None),
        "changes": changes,
        "batch_id": None,
        "note": None,
    }


def _after_flush(session: Session, _ctx: Any) -> None:
    if session.info.get("audit") is False:
        return
    rows: list[dict[str, Any]] = []
    touched = [(o, "insert") for o in session.new] + [(o, "update") for o in session.dirty] + [
        (o, "delete") for o in session.deleted
    ]
    touched = [(o, a) for o, a in touched if isinstance(o, Base) and o.__tablename__ not in SKIP_TABLES]
    if not touched:
        return
    actor: Actor | None = session.info.get("actor")
    if actor is None:
        raise RuntimeError("a change was flushed without an acting user (session.info['actor'])")
    for obj, action in touched:
        state = inspect(obj)
        changes: dict[str, list[Any]] = {}
        for key in _column_attrs(obj):
            if key in SKIP_COLUMNS:
                continue
            if key in REDACTED_COLUMNS:
                if action != "update" or state.attrs[key].history.has_changes():
                    changes[key] = ["***" if action != "insert" else None, "***" if action != "delete" else None]
                continue
            if action == "insert":
                v = getattr(obj, key)
                if v is not None:
                    changes[key] = [None, jsonable(v)]
            elif action == "delete":
                v = state.attrs[key].loaded_value
                changes[key] = [jsonable(v if v is not None and not isinstance(v, type) else None), None]
            else:
                hist = state.attrs[key].history
                if hist.has_changes():
                    old = hist.deleted[0] if hist.deleted else None
                    new = hist.added[0] if hist.added else None
                    if old != new:
                        changes[key] = [jsonable(old), jsonable(new)]
        if action == "update" and not changes:
            continue
        entry = _entry(actor, action, obj, changes)
        entry["note"] = session.info.get("audit_note")
        entry["batch_id"] = session.info.get("batch_id")
        rows.append(entry)
    if rows:
        session.connection().execute(insert(AuditEntry), rows)


def install(factory: sessionmaker[Session]) -> None:
    event.listen(factory, "after_flush", _after_flush)


def record(session: Session, actor: Actor, action: str, *, table: str | None = None, row_id: int | None = None,
           row_uuid: str | None = None, changes: dict[str, Any] | None = None, note: str | None = None,
           batch_id: int | None = None) -> None:
    """An explicit audit row for something that is not a row change (login, export, backup…)."""
    session.execute(
        insert(AuditEntry),
        [{"at": utcnow(), "user_id": actor.user_id, "username": actor.username, "action": action,
          "table_name": table, "row_id": row_id, "row_uuid": row_uuid, "changes": changes, "note": note,
          "batch_id": batch_id}],
    )


def expand(changes: Any, fields: Sequence[str] | None) -> dict[str, Any] | None:
    """``changes`` of an audit entry in the usual ``{field: [old, new]}`` form: a compact insert
    entry (a list of values in ``fields`` order) becomes ``{field: [None, value]}`` for its
    non-null values; anything else is returned as it is."""
    if isinstance(changes, list):
        if fields is None or len(fields) != len(changes):
            raise ValueError("compact audit entry without its field list")
        return {k: [None, v] for k, v in zip(fields, changes, strict=True) if v is not None}
    return changes


def batch_fields(session: Session, batch_id: int | None, table: str) -> list[str] | None:
    """The field order of ``table``'s compact insert entries written by import batch ``batch_id``."""
    if batch_id is None:
        return None
    counts = session.scalar(select(ImportBatch.counts).where(ImportBatch.id == batch_id))
    fields = (counts or {}).get("audit_fields", {}).get(table) if isinstance(counts, dict) else None
    return list(fields) if fields else None


def bulk_rows(actor: Actor, action: str, table: str, rows: list[tuple[int, str | None, dict[str, Any]]],
              *, batch_id: int | None = None, note: str | None = None) -> list[dict[str, Any]]:
    """Audit row dicts for a bulk write: ``rows`` is ``(row_id, row_uuid, changes)``."""
    now = utcnow()
    return [
        {"at": now, "user_id": actor.user_id, "username": actor.username, "action": action, "table_name": table,
         "row_id": rid, "row_uuid": ruuid, "changes": {k: [jsonable(a), jsonable(b)] for k, (a, b) in ch.items()},
         "batch_id": batch_id, "note": note}
        for rid, ruuid, ch in rows
    ]

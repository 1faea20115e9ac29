"""The audit log, written for every ORM change by a session hook (:mod:`gridman.core.audit_trail`).

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

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gridman.core.audit_trail import (
    REDACTED_COLUMNS,
    SKIP_COLUMNS,
    SKIP_TABLES,
    ActingUser,
    install,
    jsonable,
)
from gridman.core.models import AuditEntry, ImportBatch, utcnow
from gridman.core.services.permissions import Actor

__all__ = ["REDACTED_COLUMNS", "SKIP_COLUMNS", "SKIP_TABLES", "batch_fields", "bulk_rows", "expand", "install",
           "jsonable", "record"]

def record(session: Session, actor: ActingUser, action: str, *, table: str | None = None, row_id: int | None = None,
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

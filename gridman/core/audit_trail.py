"""The audit trail's session hook: one ``audit_log`` row for every ORM insert, update and delete.

It sits below the database layer (``Database`` installs it on its session factory) and needs only
the models: the acting user is read from ``session.info["actor"]`` (anything with a ``user_id`` and
a ``username``). A flush that changes rows without an actor is a programming error and raises.
Explicit entries (logins, exports, bulk writes) are written by :mod:`gridman.core.services.audit`.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session, sessionmaker

from gridman.core.models import AuditEntry, Base, utcnow


class ActingUser(Protocol):
    """Who a change is recorded for (a :class:`~gridman.core.services.permissions.Actor`)."""

    @property
    def user_id(self) -> int | None: ...
    @property
    def username(self) -> str: ...


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


def _entry(actor: ActingUser, action: str, obj: Base, changes: dict[str, list[Any]] | None) -> dict[str, Any]:
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
    actor: ActingUser | None = session.info.get("actor")
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

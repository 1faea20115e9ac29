"""Settings of the database (the ``settings`` table: key → JSON value): read one, write one.
The ORM writes them, so a change is audited like any row (``Database.work``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gridman.core.models import Setting


def get(session: Session, key: str) -> Any:
    """The value of setting ``key`` (None when it is not set). No autoflush: callers read
    settings in the middle of building rows."""
    with session.no_autoflush:
        row = session.get(Setting, key)
    return row.value if row is not None else None


def put(session: Session, key: str, value: Any) -> None:
    """Set ``key`` to ``value`` (inserted or replaced) and flush. Permission checks are the caller's."""
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
    session.flush()

"""Declarative base and the mixins every exchangeable row carries."""

from __future__ import annotations

import uuid as _uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Naive UTC timestamp (both SQLite and PostgreSQL store it the same way)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_uuid() -> str:
    return str(_uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SyncMixin:
    """Stable identity and change tracking for rows exchanged with offline sites.

    ``uuid`` never changes and is the key across databases; ``version`` is SQLAlchemy's
    optimistic-locking counter (an UPDATE whose version no longer matches raises
    ``StaleDataError``, turned into :class:`gridman.core.services.errors.ConflictError`);
    ``updated_at`` is when the row last changed (UTC).
    """

    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]

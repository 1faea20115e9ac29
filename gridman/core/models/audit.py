"""The audit log and the records of imports/exchanges and settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gridman.core.models.base import Base, utcnow


class AuditEntry(Base):  # 操作日志
    """Who changed what, when, with the old and new values: ``changes`` is
    ``{field: [old, new]}`` (for inserts old is null, for deletes new is null). Written by the
    session hook in :mod:`gridman.core.services.audit` for every ORM change, and by bulk paths
    (imports) themselves. Never updated."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(20), nullable=False)  # insert/update/delete/login/export/...
    table_name: Mapped[str | None] = mapped_column(String(40))
    row_id: Mapped[int | None] = mapped_column(Integer)
    row_uuid: Mapped[str | None] = mapped_column(String(36))
    changes: Mapped[dict | None] = mapped_column(JSON)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_audit_log_table_row", "table_name", "row_id"),
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_batch", "batch_id"),
    )


class ImportBatch(Base):  # 导入记录
    """One census import or exchange check-in: who, when, which file, counts; undoable."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # census / exchange
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    file_name: Mapped[str | None] = mapped_column(String(300))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    package_id: Mapped[str | None] = mapped_column(String(36), index=True)  # exchange packages
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="done")  # done / undone
    counts: Mapped[dict | None] = mapped_column(JSON)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime)


class ExchangePackage(Base):  # 离线交换包
    """A workbook checked out to an offline site; its rows' versions at export are in the workbook."""

    __tablename__ = "exchange_packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), nullable=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    file_name: Mapped[str | None] = mapped_column(String(300))
    checksum: Mapped[str | None] = mapped_column(String(64))
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime)
    checkin_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    meta: Mapped[dict | None] = mapped_column(JSON)


class Setting(Base):  # 设置 (database id, remembered import mappings, policy defaults)
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict | list | str | int | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)

"""Backup now / restore (备份与恢复) of an SQLite database, through SQLite's online backup API.

PostgreSQL deployments back up with the server's own tools (pg_dump); these functions refuse
them with a message saying so.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gridman.core.db import Database, backup_sqlite, copy_sqlite, current_revision, known_revisions
from gridman.core.services.errors import GridmanError, ValidationError
from gridman.core.services.permissions import Actor, Perm, require


def _path(database: Database) -> Path:
    path = database.sqlite_path
    if path is None:
        raise GridmanError("PostgreSQL 数据库请使用服务器的备份工具（pg_dump）。",
                           en="Back up PostgreSQL databases with the server's tools (pg_dump).")
    return path


def backup_now(database: Database, actor: Actor) -> Path:
    """Write a consistent copy next to the database file; returns its path."""
    require(actor, Perm.BACKUP)
    path = _path(database)
    dest = backup_sqlite(path, tag="manual")
    with database.work(actor) as s:
        from gridman.core.services import audit

        audit.record(s, actor, "backup", note=str(dest))
    return dest


def restore(database: Database, actor: Actor, source: Path) -> Path:
    """Replace the database's content with ``source`` (a backup). The current content is backed up
    first (returned path), so a restore can itself be undone. Close other windows/sessions first."""
    require(actor, Perm.BACKUP)
    path = _path(database)
    source = Path(source)
    if not source.exists():
        raise ValidationError(f"备份文件不存在：{source}", field="file", en=f"No such backup file: {source}")
    try:
        con = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            rev = con.execute("SELECT version_num FROM alembic_version").fetchone()
            con.execute("SELECT count(*) FROM residents").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError:
        raise ValidationError(f"{source.name} 不是 gridman 数据库备份", field="file",
                              en=f"{source.name} is not a gridman backup") from None
    if rev is None or rev[0] not in known_revisions():
        raise ValidationError(f"{source.name} 来自更新版本的 gridman，无法恢复", field="file",
                              en=f"{source.name} comes from a newer gridman") from None
    safety = backup_sqlite(path, tag="before-restore")
    database.engine.dispose()
    copy_sqlite(source, path)
    database.engine.dispose()
    if current_revision(database) != rev[0]:  # pragma: no cover - defensive
        raise GridmanError("恢复失败", en="Restore failed")
    with database.work(actor) as s:
        from gridman.core.services import audit

        audit.record(s, actor, "restore", note=f"{source} (previous content saved as {safety})")
    return safety

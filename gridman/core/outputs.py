"""Where a file may be written (输出文件): the one guard every export, report, template, exchange
package and error workbook passes before it writes, and the one way it writes.

Refused, by resolved path and ``os.path.samefile`` (so symlinks, hard links and a different
letter case all count): the open database file, its ``-wal``/``-shm``/``-journal``, anything in
the attachments folder, any existing SQLite database (a backup, another gridman database) and a
folder. A file is written to a temporary file created exclusively in the same folder (never over
an existing file, mode 0600) and renamed onto the target only when the writer finished — a failed,
cancelled or killed write leaves no half file and keeps an older file of that name.

The database is named by whatever the caller holds: a ``Session``, a ``Database``, an ``Engine``,
a path or None (then only the rules that need no database apply).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gridman.core.errors import ValidationError

SQLITE_MAGIC = b"SQLite format 3\x00"
SIDE_FILES = ("-wal", "-shm", "-journal")


def database_file(bind: Any) -> Path | None:
    """The SQLite file behind ``bind`` (Session, Database, Engine, path), None for PostgreSQL."""
    if bind is None:
        return None
    if isinstance(bind, os.PathLike) or (isinstance(bind, str) and "://" not in bind):
        return Path(bind)
    url = bind if isinstance(bind, str) else getattr(bind, "url", None)
    if url is None and hasattr(bind, "get_bind"):
        url = bind.get_bind().engine.url
    if isinstance(url, str):
        from sqlalchemy.engine import make_url

        url = make_url(url)
    if url is None or url.get_backend_name() != "sqlite":
        return None
    name = url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def attachments_folder(bind: Any) -> Path | None:
    """The attachments folder of ``bind``'s database (see ``mediation.attachments``)."""
    if bind is None:
        return None
    from gridman.core.services.mediation.attachments import attachments_root_of

    return attachments_root_of(database_file(bind))


def is_sqlite_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _same_name_in_same_folder(target: Path, protected: Path) -> bool:
    """Also true when ``target`` does not exist yet (a future ``-wal``) or differs only in case."""
    return target.name.casefold() == protected.name.casefold() and _same(target.parent, protected.parent)


def _refuse(path: Path, zh: str, en: str) -> ValidationError:
    return ValidationError(f"不能写入 {path}：{zh}。请另选一个文件名或文件夹。", field="out",
                           en=f"Cannot write {path}: {en}. Choose another file name or folder.")


def check_output_path(path: str | os.PathLike[str], bind: Any = None) -> Path:
    """``path`` as a Path when a file may be written there; else a ValidationError naming it."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise _refuse(target, "这是一个文件夹", "it is a folder")
    db = database_file(bind)
    if db is not None:
        for p in [db, *(db.with_name(db.name + s) for s in SIDE_FILES)]:
            if _same(target, p) or _same_name_in_same_folder(target, p):
                raise _refuse(target, "这是正在使用的数据库文件", "it is the open database")
    att = attachments_folder(bind)
    if att is not None and att.exists():
        parent = target.resolve().parent
        for folder in (parent, *parent.parents):
            if _same(folder, att):
                raise _refuse(target, "这是案件附件文件夹", "it is inside the attachments folder")
    if is_sqlite_file(target):
        raise _refuse(target, "这是一个数据库或备份文件", "it is a database or backup file")
    for s in SIDE_FILES:
        if target.name.endswith(s) and is_sqlite_file(target.with_name(target.name[: -len(s)])):
            raise _refuse(target, "这是数据库的日志文件", "it belongs to a database")
    return target


@contextmanager
def replacing(path: str | os.PathLike[str], bind: Any = None) -> Iterator[Path]:
    """Check ``path``, yield a fresh temporary file beside it and move it onto ``path`` when the
    block ends without an error (checked again just before); on any error the temporary file goes."""
    target = check_output_path(path, bind)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    part = Path(name)
    try:
        yield part
        check_output_path(target, bind)
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], content: str, bind: Any = None) -> Path:
    """A whole text file (UTF-8) through :func:`replacing`."""
    with replacing(path, bind) as part:
        part.write_text(content, encoding="utf-8")
    return Path(path)

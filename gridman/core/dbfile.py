"""What an SQLite database file is, decided before gridman touches it, and what is wrong with a
damaged one.

:func:`check_before_open` runs before the first connection (which switches the file to WAL and so
writes to it): a path that does not exist (refused unless the caller creates databases), a folder,
a file that is not SQLite, a read-only file, an SQLite file of another program — each is refused
with a message naming what is wrong and what to do, and the file is left byte-identical (it is
only read, through a read-only connection).

:func:`diagnose` is what ``gridman db check`` reports on a damaged file: SQLite's
``integrity_check`` findings, the tables and indexes they are in, and the advice to restore a
backup. It reads through a read-only connection, so it works on files that will not open.

Qt-free; plain functions.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from gridman.core.errors import GridmanError

SQLITE_MAGIC = b"SQLite format 3\x00"
RESTORE_HINT_ZH = "请用备份恢复：gridman backup list 查看备份，gridman backup restore <备份文件> 恢复"
RESTORE_HINT_EN = "Restore a backup: gridman backup list shows them, gridman backup restore <backup file> restores one"


class DatabaseFileError(GridmanError):
    """The database file cannot be opened as it is (missing, a folder, not SQLite, read-only…)."""


def _read_only(path: Path) -> bool:
    """Not writable by this process — also for root, who may write anyway: a file whose mode has
    no write bit was made read-only on purpose."""
    mode = path.stat().st_mode
    return not os.access(path, os.W_OK) or not mode & 0o222


def _ro_connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def check_before_open(path: Path, *, create: bool) -> None:
    """Refuse ``path`` unless it is (or, with ``create``, will become) a gridman database.

    Raises :class:`DatabaseFileError`, or :class:`~gridman.core.db.SchemaError` for an SQLite
    file of another program. Reads only; a file refused here is left byte-identical."""
    if path.is_dir():
        raise DatabaseFileError(f"“{path}”是文件夹，不是数据库文件：请给出数据库文件的路径",
                                en=f"{path} is a folder, not a database file: give the database file's path")
    if not path.exists():
        if create:
            return
        raise DatabaseFileError(
            f"数据库文件“{path}”不存在：请检查路径；要新建数据库请用 gridman db init（或 gridman sample 生成样例库）",
            en=f"Database file {path} does not exist: check the path; to create one use gridman db init "
               "(or gridman sample for a sample database)")
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError:
        raise DatabaseFileError(f"无法读取数据库文件“{path}”：请检查文件权限",
                                en=f"Cannot read the database file {path}: check its permissions") from None
    if not head and create:
        return  # an empty file becomes a new database
    if head != SQLITE_MAGIC:
        raise DatabaseFileError(f"“{path}”不是数据库文件（不是 SQLite 格式）：请检查路径是否指向 gridman 数据库",
                                en=f"{path} is not a database file (not SQLite): check that the path names a gridman "
                                   "database")
    if _read_only(path):
        raise DatabaseFileError(f"数据库文件“{path}”是只读的：请改为可写，或复制一份到可写的位置再打开",
                                en=f"The database file {path} is read-only: make it writable, or copy it somewhere "
                                   "writable and open the copy")
    _refuse_foreign(path)


def _refuse_foreign(path: Path) -> None:
    from gridman.core.db import not_gridman_error

    try:
        con = _ro_connect(path)
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return  # damaged or busy: opening reports it (and ``db check`` diagnoses it)
    if names - {"alembic_version"} and "alembic_version" not in names:
        raise not_gridman_error(sorted(names))


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not even a URL: show its scheme only
        return url.split("://", 1)[0] + "://…"


def unknown_url(url: str) -> DatabaseFileError:
    return DatabaseFileError(f"无法识别数据库地址“{_shown(url)}”：请给出数据库文件路径，或 postgresql://用户@主机/库名 形式的地址",
                             en=f"Unrecognised database address {_shown(url)}: give a database file or a "
                                "postgresql://user@host/dbname URL")


def unreachable(url: str) -> DatabaseFileError:
    return DatabaseFileError(f"无法连接数据库“{_shown(url)}”：请检查地址、端口、用户名和密码，以及数据库服务是否在运行",
                             en=f"Cannot connect to the database {_shown(url)}: check the host, port, user name and "
                                "password, and that the database server is running")


# --- damage -------------------------------------------------------------------------------------


@dataclass
class Diagnosis:
    """What ``integrity_check`` found and where. ``ok``: no problem; ``problems``: SQLite's own
    lines (at most 100); ``places``: the tables and indexes they are in (``index (table)``);
    ``unreadable``: the file's schema itself could not be read."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    unreadable: bool = False

    def text(self, lang: str = "zh_CN") -> str:
        en = lang.startswith("en")
        if self.ok:
            return "ok"
        if self.unreadable:
            head = ("the file is damaged: its table list cannot be read" if en
                    else "文件已损坏：无法读取其中的表结构")
        else:
            where = "、".join(self.places) if not en else ", ".join(self.places)
            head = (f"damaged ({len(self.problems)} problems" + (f" in {where}" if where else "") + ")" if en
                    else f"已损坏（{len(self.problems)} 处问题" + (f"，位于 {where}" if where else "") + "）")
        return head + ("; " if en else "；") + (RESTORE_HINT_EN if en else RESTORE_HINT_ZH)


_TREE_RE = re.compile(r"\bTree (\d+)\b", re.I)
_INDEX_RE = re.compile(r"\bindex (\S+)")


def _broken_tables(con: sqlite3.Connection, tables: list[str]) -> list[str]:
    """The tables (with their indexes) whose own integrity check fails."""
    out = []
    for name in tables:
        try:
            rows = con.execute(f'PRAGMA integrity_check("{name.replace(chr(34), chr(34) * 2)}")').fetchall()
            if rows != [("ok",)]:
                out.append(name)
        except sqlite3.DatabaseError:
            out.append(name)
    return out


def diagnose(path: Path) -> Diagnosis:
    """Run ``PRAGMA integrity_check`` on ``path`` (read-only) and name where the damage is."""
    try:
        con = _ro_connect(path)
    except sqlite3.Error:
        return Diagnosis(ok=False, problems=["cannot open"], unreadable=True)
    try:
        try:
            objs = con.execute("SELECT type, name, tbl_name, rootpage FROM sqlite_master").fetchall()
        except sqlite3.DatabaseError as exc:
            return Diagnosis(ok=False, problems=[str(exc)], unreadable=True)
        try:
            rows = [r[0] for r in con.execute("PRAGMA integrity_check(100)").fetchall()]
            broken: list[str] = []
        except sqlite3.DatabaseError as exc:  # too damaged to check as a whole: table by table
            rows = [str(exc)]
            broken = _broken_tables(con, [name for typ, name, _t, _r in objs if typ == "table"])
    finally:
        con.close()
    problems = [r for r in rows if r != "ok"]
    if not problems:
        return Diagnosis(ok=True)
    by_root = {int(root): (name, tbl) for _t, name, tbl, root in objs if root}
    by_name = {name: tbl for _t, name, tbl, _r in objs}
    places: list[str] = list(broken)

    def place(name: str, tbl: str) -> None:
        p = name if name == tbl else f"{name} ({tbl})"
        if p not in places:
            places.append(p)

    for line in problems:
        for m in _INDEX_RE.finditer(line):
            if m.group(1) in by_name:
                place(m.group(1), by_name[m.group(1)])
        m2 = _TREE_RE.search(line)
        if m2 and int(m2.group(1)) in by_root:
            place(*by_root[int(m2.group(1))])
    return Diagnosis(ok=False, problems=problems, places=places)

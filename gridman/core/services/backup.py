"""Backup, verify, restore and the backup schedule (备份与恢复) of an SQLite database.

A backup is one SQLite file: a consistent copy of the database (SQLite's online backup API) plus
two tables of its own — ``gridman_backup_files`` (every case attachment the copy refers to, by
content hash) and ``gridman_backup_info`` (format, revision, time, and a SHA-256 over every row of
every register, so that a flipped byte in a data page is found even where ``integrity_check``
sees a well-formed page). It is written to a temporary file in the backup folder and renamed when
complete: a killed backup never leaves a half file under a backup's name. Files are 0600.

A restore (:func:`restore`) verifies the backup before touching anything (integrity, checksum,
schema version and the expected tables, attachments), brings an older backup's schema up to date
on a temporary copy, then takes the database's write lock (``BEGIN IMMEDIATE``: running writers are
waited for up to the busy timeout, otherwise the restore is refused), writes the before-restore
backup *while holding the lock* (so no write can slip between that copy and the swap) and replaces
every table's rows in the same transaction. Other writers wait for it; a kill at any point leaves
the old content or the new one, never a mixture.

PostgreSQL deployments back up with the server's own tools (pg_dump); these functions refuse
them with a message saying so.

Threading: every function opens its own connections; call them from a worker, not the GUI thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.request import pathname2url

from gridman.core.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    Database,
    backup_name,
    copy_sqlite,
    head_revision,
    known_revisions,
    open_database,
    upgrade_database,
)
from gridman.core.models import Base, Setting
from gridman.core.outputs import is_sqlite_file
from gridman.core.services.errors import GridmanError, ValidationError
from gridman.core.services.mediation.attachments import attachments_root_of
from gridman.core.services.permissions import Actor, Perm, require

FORMAT = 1
INFO_TABLE = "gridman_backup_info"
FILES_TABLE = "gridman_backup_files"
SCHEDULE_SETTING = "backup_schedule"
SCHEDULED_TAG = "scheduled"
PAUSE_ENV = "GRIDMAN_PAUSE_AT"  # tests: "<checkpoint>:<file>" — write the file and wait to be killed


def _pause(checkpoint: str) -> None:
    """A named point where a kill -9 test stops this process (no effect unless PAUSE_ENV names it)."""
    spec = os.environ.get(PAUSE_ENV, "")
    name, _, flag = spec.partition(":")
    if name == checkpoint and flag:
        Path(flag).write_text(checkpoint, encoding="utf-8")
        import time

        while True:  # pragma: no cover - only ever left by SIGKILL
            time.sleep(1)


def _live(database: Database) -> Path:
    path = database.sqlite_path
    if path is None:
        raise GridmanError("PostgreSQL 数据库请使用服务器的备份工具（pg_dump / pg_restore）。",
                           en="Back up and restore PostgreSQL databases with the server's tools (pg_dump / pg_restore).")
    return path


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{pathname2url(str(path.resolve()))}?mode=ro", uri=True)


# --- results ------------------------------------------------------------------------------


@dataclass
class BackupResult:
    path: str
    tag: str
    created_at: str
    revision: str
    size: int
    attachments: int
    missing_attachments: list[str] = field(default_factory=list)


@dataclass
class VerifyResult:
    path: str
    ok: bool
    revision: str | None = None
    created_at: str | None = None
    attachments: int | None = None  # None: an older backup without its attachments
    checksum: bool = False  # the backup carries a row checksum (and it matched when ok)
    problems: list[str] = field(default_factory=list)
    problems_en: list[str] = field(default_factory=list)

    def problem(self, zh: str, en: str) -> None:
        self.ok = False
        self.problems.append(zh)
        self.problems_en.append(en)


@dataclass
class BackupEntry:
    path: str
    tag: str
    modified: str
    size: int


@dataclass
class Schedule:
    every_days: int
    keep: int
    folder: str | None = None


# --- the content checksum -----------------------------------------------------------------


def rows_digest(con: sqlite3.Connection, schema: str = "main") -> str:
    """SHA-256 over every row of every model table and the schema version, ordered by key."""
    h = hashlib.sha256()
    for t in [*Base.metadata.sorted_tables]:
        pk = ", ".join(f'"{c.name}"' for c in t.primary_key.columns)
        h.update(f"\x00{t.name}\x00".encode())
        for row in con.execute(f'SELECT * FROM {schema}."{t.name}" ORDER BY {pk}'):
            h.update(repr(row).encode())
    for (v,) in con.execute(f"SELECT version_num FROM {schema}.alembic_version"):
        h.update(f"\x00alembic\x00{v}".encode())
    return h.hexdigest()


# --- create -------------------------------------------------------------------------------


def backup_folder(database: Database) -> Path:
    """Where backups go: the schedule's folder, else beside the database file."""
    sched = get_schedule(database)
    return Path(sched.folder) if sched and sched.folder else _live(database).parent


def create(database: Database, actor: Actor, *, folder: str | os.PathLike[str] | None = None,
           tag: str = "manual") -> BackupResult:
    """Write a verified-complete backup (database + attachments) into ``folder``."""
    require(actor, Perm.BACKUP)
    live = _live(database)
    res = _write_backup(live, Path(folder) if folder else backup_folder(database), tag)
    from gridman.core.services import audit

    with database.work(actor) as s:
        audit.record(s, actor, "backup", note=res.path)
    return res


def backup_now(database: Database, actor: Actor) -> Path:
    """The GUI's 立即备份: :func:`create` into the usual folder; returns the backup's path."""
    return Path(create(database, actor).path)


def _write_backup(live: Path, folder: Path, tag: str) -> BackupResult:
    if folder.exists() and not folder.is_dir():
        raise ValidationError(f"{folder} 不是文件夹", field="folder", en=f"{folder} is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    dest = backup_name(live, tag=tag, folder=folder)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=folder)
    os.close(fd)
    part = Path(name)
    try:
        copy_sqlite(live, part)
        _pause("backup-copied")
        res = _add_extras(part, live, tag)
        _fsync(part)
        _pause("backup-written")
        os.replace(part, dest)
        _fsync(folder)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    res.path, res.size = str(dest), dest.stat().st_size
    return res


def _add_extras(part: Path, live: Path, tag: str) -> BackupResult:
    """Attachments and the info table, in the copy (one transaction)."""
    root = attachments_root_of(live)
    con = sqlite3.connect(str(part), isolation_level=None)
    try:
        con.execute("BEGIN")
        con.execute(f"CREATE TABLE {FILES_TABLE} (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL)")
        con.execute(f"CREATE TABLE {INFO_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        missing: list[str] = []
        n = 0
        for (sha,) in con.execute("SELECT DISTINCT sha256 FROM incident_attachments ORDER BY sha256").fetchall():
            try:
                data = (root / sha[:2] / sha).read_bytes()
            except OSError:
                data = None
            if data is None or hashlib.sha256(data).hexdigest() != sha:
                missing.append(sha)
                continue
            con.execute(f"INSERT INTO {FILES_TABLE} VALUES (?, ?)", (sha, data))
            n += 1
        revision = con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        created = datetime.now().replace(microsecond=0).isoformat(sep=" ")
        info = {"format": FORMAT, "tag": tag, "created_at": created, "revision": revision,
                "source": live.name, "attachments": n, "missing_attachments": missing,
                "rows_sha256": rows_digest(con)}
        con.executemany(f"INSERT INTO {INFO_TABLE} VALUES (?, ?)", [(k, json.dumps(v)) for k, v in info.items()])
        con.execute("COMMIT")
    finally:
        con.close()
    return BackupResult("", tag, created, revision, 0, n, missing)


def _fsync(path: Path) -> None:
    with suppress(OSError):  # directories cannot be opened on every platform
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- verify -------------------------------------------------------------------------------


def verify(source: str | os.PathLike[str]) -> VerifyResult:
    """Check a backup without changing it: a readable SQLite file, ``integrity_check`` ok, a
    schema version this gridman knows, the row checksum and every attachment's content hash."""
    path = Path(source)
    res = VerifyResult(str(path), True)
    if not path.is_file():
        raise ValidationError(f"备份文件不存在：{path}", field="file", en=f"No such backup file: {path}")
    if not is_sqlite_file(path):
        raise ValidationError(f"{path.name} 不是 gridman 数据库备份", field="file",
                              en=f"{path.name} is not a gridman backup")
    try:
        con = _ro(path)
        try:
            _verify_open(con, res)
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        res.problem(f"文件已损坏，无法读取（{_plain(exc)}）", f"the file is damaged and cannot be read ({_plain(exc)})")
    return res


def _plain(exc: Exception) -> str:
    """SQLite's own words (no paths, no SQL): 'database disk image is malformed' and the like."""
    return str(exc).splitlines()[0][:120]


def _verify_open(con: sqlite3.Connection, res: VerifyResult) -> None:
    bad = [r[0] for r in con.execute("PRAGMA integrity_check(20)")]
    if bad != ["ok"]:
        res.problem("完整性检查未通过：" + "；".join(bad[:5]), "integrity check failed: " + "; ".join(bad[:5]))
        return
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "alembic_version" not in tables:
        res.problem("不是 gridman 数据库（没有架构版本）", "not a gridman database (no schema version)")
        return
    row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    res.revision = row[0] if row else None
    if res.revision not in known_revisions():
        res.problem(f"来自更新版本的 gridman（架构 {res.revision}），无法恢复",
                    f"written by a newer gridman (schema {res.revision}); cannot restore")
        return
    if res.revision == head_revision():
        _check_tables(con, "main", res)
    if INFO_TABLE not in tables:
        return  # an older backup: no checksum and no attachments inside
    info = {k: json.loads(v) for k, v in con.execute(f"SELECT key, value FROM {INFO_TABLE}")}
    res.created_at = info.get("created_at")
    if rows_digest(con) != info.get("rows_sha256"):
        res.problem("数据校验和不符：备份内容已被改动或损坏", "row checksum mismatch: the backup was altered or damaged")
    else:
        res.checksum = True
    n = 0
    for sha, data in con.execute(f"SELECT sha256, data FROM {FILES_TABLE}"):
        n += 1
        if hashlib.sha256(data).hexdigest() != sha:
            res.problem(f"附件 {sha[:12]}… 已损坏", f"attachment {sha[:12]}… is damaged")
    res.attachments = n
    absent = [r[0] for r in con.execute(
        f"SELECT DISTINCT sha256 FROM incident_attachments WHERE sha256 NOT IN (SELECT sha256 FROM {FILES_TABLE})")]
    if sorted(absent) != sorted(info.get("missing_attachments") or []):
        res.problem(f"备份缺少 {len(absent)} 个附件", f"{len(absent)} attachments are missing from the backup")


def _check_tables(con: sqlite3.Connection, schema: str, res: VerifyResult) -> None:
    """Every table and column of the models is present (a backup at the current schema version)."""
    for t in Base.metadata.sorted_tables:
        cols = {r[1] for r in con.execute(f'PRAGMA {schema}.table_info("{t.name}")')}
        lacking = sorted({c.name for c in t.columns} - cols)
        if not cols or lacking:
            res.problem(f"缺少表或列：{t.name} {'、'.join(lacking)}", f"missing table or columns: {t.name} {lacking}")


# --- list ---------------------------------------------------------------------------------

_TAG = re.compile(r"\.backup-(.+?)-\d{8}-\d{6}(?:-\d+)?$")


def list_backups(database: Database, folder: str | os.PathLike[str] | None = None) -> list[BackupEntry]:
    """The backups of this database in ``folder`` (default: the backup folder and beside the
    database), newest first. Temporary files of a backup being written are not listed."""
    live = _live(database)
    folders = {Path(folder)} if folder else {backup_folder(database), live.parent}
    found = []
    for d in folders:
        for p in d.glob(f"{live.stem}.backup-*{live.suffix}"):
            m = _TAG.search(p.stem)
            st = p.stat()
            found.append((st.st_mtime_ns, BackupEntry(str(p), m.group(1) if m else "", datetime.fromtimestamp(
                st.st_mtime).replace(microsecond=0).isoformat(sep=" "), st.st_size)))
    return [e for _, e in sorted(found, key=lambda t: (t[0], t[1].path), reverse=True)]


# --- restore ------------------------------------------------------------------------------


def restore(database: Database, actor: Actor, source: str | os.PathLike[str]) -> Path:
    """Replace the database's content with the backup ``source``; returns the before-restore
    backup (so a restore can itself be undone). Refused, with nothing changed, when the backup
    fails :func:`verify` or when running writers do not finish within the busy timeout."""
    require(actor, Perm.BACKUP)
    live = _live(database)
    source = Path(source)
    if source.exists() and os.path.samefile(source, live):
        raise ValidationError("不能用正在使用的数据库恢复它自己", field="file", en="Cannot restore a database from itself")
    checked = verify(source)
    if not checked.ok:
        raise ValidationError(f"{source.name} 未通过校验，未做任何更改：{checked.problems[0]}", field="file",
                              en=f"{source.name} failed verification; nothing was changed: {checked.problems_en[0]}")
    with _at_head(source, checked, live.parent) as ready:
        _restore_attachments(ready, attachments_root_of(live))
        safety = _swap(live, ready)
    database.engine.dispose()  # pooled connections start afresh on the restored content
    from gridman.core.services import audit

    with database.work(actor) as s:
        audit.record(s, actor, "restore", note=f"{source} (previous content saved as {safety})")
    return safety


@contextmanager
def _at_head(source: Path, checked: VerifyResult, workdir: Path) -> Iterator[Path]:
    """``source`` itself when it is at the current schema; else a temporary copy upgraded to it
    (and checked for the expected tables), removed afterwards."""
    if checked.revision == head_revision():
        yield source
        return
    fd, name = tempfile.mkstemp(prefix=".restore-", suffix=".sqlite", dir=workdir)
    os.close(fd)
    tmp = Path(name)
    try:
        copy_sqlite(source, tmp)
        db = open_database(tmp, upgrade=False)
        try:
            res = upgrade_database(db)
        finally:
            db.dispose()
        if res.backup is not None:
            res.backup.unlink(missing_ok=True)
        con = _ro(tmp)
        try:
            after = VerifyResult(str(source), True)
            _check_tables(con, "main", after)
        finally:
            con.close()
        if not after.ok:
            raise ValidationError(f"{source.name} 升级后不完整：{after.problems[0]}", field="file",
                                  en=f"{source.name} is incomplete after its upgrade: {after.problems_en[0]}")
        yield tmp
    finally:
        for p in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm", "-journal"))):
            p.unlink(missing_ok=True)


def _restore_attachments(source: Path, root: Path) -> None:
    """The backup's attachments that are not on disk (content-addressed: existing files are the
    same bytes; none is deleted — the before-restore backup refers to them too)."""
    con = _ro(source)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name=?", (FILES_TABLE,)).fetchone():
            return
        for sha, data in con.execute(f"SELECT sha256, data FROM {FILES_TABLE}"):
            dest = root / sha[:2] / sha
            if dest.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(f".{sha}.{os.getpid()}.tmp")
            part.write_bytes(data)
            os.replace(part, dest)
    finally:
        con.close()


def _swap(live: Path, ready: Path) -> Path:
    """Under the write lock: the before-restore backup, then every table's rows from ``ready``."""
    con = sqlite3.connect(f"file:{pathname2url(str(live.resolve()))}", timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                          isolation_level=None, uri=True)
    try:
        con.execute("PRAGMA foreign_keys=OFF")  # rows are replaced table by table, then all hold
        con.execute("ATTACH DATABASE ? AS src", (f"file:{pathname2url(str(ready.resolve()))}?mode=ro",))
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            raise GridmanError("数据库正在被其他操作写入（如导入），恢复未执行。请等其完成后再试。",
                               en="The database is busy with another write (an import?); nothing was restored. "
                                  "Try again when it has finished.") from None
        try:
            _pause("restore-locked")
            safety = _write_backup(live, live.parent, "before-restore")
            _pause("restore-safety-written")
            _copy_rows(con)
            _pause("restore-copied")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        _pause("restore-committed")
        con.execute("DETACH DATABASE src")
    finally:
        con.close()
    return Path(safety.path)


def _copy_rows(con: sqlite3.Connection) -> None:
    tables = [r[0] for r in con.execute(
        "SELECT name FROM main.sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE 'incidents_fts%' ORDER BY name")]
    if con.execute("SELECT 1 FROM main.sqlite_master WHERE name='sqlite_sequence'").fetchone():
        tables.append("sqlite_sequence")
    for t in tables:
        cols = ", ".join(f'"{r[1]}"' for r in con.execute(f'PRAGMA main.table_info("{t}")'))
        con.execute(f'DELETE FROM main."{t}"')
        if con.execute("SELECT 1 FROM src.sqlite_master WHERE name=?", (t,)).fetchone():
            con.execute(f'INSERT INTO main."{t}" ({cols}) SELECT {cols} FROM src."{t}"')
    if con.execute("SELECT 1 FROM main.sqlite_master WHERE name='incidents_fts'").fetchone():
        con.execute("INSERT INTO main.incidents_fts(incidents_fts) VALUES('rebuild')")


# --- schedule -----------------------------------------------------------------------------


def get_schedule(database: Database) -> Schedule | None:
    with database.session() as s:
        st = s.get(Setting, SCHEDULE_SETTING)
        v = st.value if st is not None else None
    if not isinstance(v, dict) or not v.get("every_days"):
        return None
    return Schedule(int(v["every_days"]), int(v.get("keep") or 1), v.get("folder"))


def set_schedule(database: Database, actor: Actor, *, every_days: int, keep: int = 7,
                 folder: str | os.PathLike[str] | None = None) -> Schedule | None:
    """Back up every ``every_days`` days (0: no schedule), keeping the newest ``keep`` scheduled
    backups, into ``folder`` (default: beside the database). Stored in the database's settings."""
    require(actor, Perm.BACKUP)
    live = _live(database)
    if not 0 <= every_days <= 366:
        raise ValidationError("备份间隔应为 0–366 天", field="every_days", en="The interval must be 0–366 days")
    if not 1 <= keep <= 1000:
        raise ValidationError("保留份数应为 1–1000", field="keep", en="Keep must be 1–1000")
    where = str(Path(folder).expanduser().resolve()) if folder else None
    if where is not None:
        p = Path(where)
        if p.exists() and not p.is_dir():
            raise ValidationError(f"{p} 不是文件夹", field="folder", en=f"{p} is not a folder")
        root = attachments_root_of(live)
        if p == root or root in p.parents:
            raise ValidationError("备份不能放在附件文件夹中", field="folder", en="Backups cannot go in the attachments folder")
    value = {"every_days": every_days, "keep": keep, "folder": where} if every_days else None
    with database.work(actor) as s:
        st = s.get(Setting, SCHEDULE_SETTING)
        if st is None:
            s.add(Setting(key=SCHEDULE_SETTING, value=value))
        else:
            st.value = value
    return get_schedule(database)


def create_if_due(database: Database, actor: Actor, *, now: datetime | None = None) -> BackupResult | None:
    """The scheduled backup when one is due (none yet, or the newest is ``every_days`` old), then
    only the newest ``keep`` scheduled backups are kept. None when nothing was due."""
    sched = get_schedule(database)
    if sched is None:
        return None
    now = now or datetime.now()
    folder = backup_folder(database)
    mine = [e for e in list_backups(database, folder) if e.tag == SCHEDULED_TAG]
    if mine and now - datetime.fromisoformat(mine[0].modified) < timedelta(days=sched.every_days) - timedelta(minutes=5):
        return None
    res = create(database, actor, folder=folder, tag=SCHEDULED_TAG)
    for old in [e for e in list_backups(database, folder) if e.tag == SCHEDULED_TAG][sched.keep:]:
        Path(old.path).unlink(missing_ok=True)
    return res

"""Engine, sessions and schema management for SQLite (default) and PostgreSQL (by URL).

Threading: an :class:`Database` may be shared between threads; each unit of work opens its own
``Session`` (``db.session()``), as SQLAlchemy recommends. SQLite runs in WAL mode with foreign
keys on and a busy timeout, so one writer and several readers can work at once.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gridman.core import config
from gridman.core.errors import DatabaseBusy

if TYPE_CHECKING:
    from gridman.core.audit_trail import ActingUser
    from gridman.core.tasks import TaskState

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long in all a unit of work tries to take SQLite's write lock (each try waits up to the busy
# timeout, then a pause that doubles) before it answers "database busy" (DatabaseBusy).
SQLITE_BUSY_TOTAL_S = 60.0


class SchemaError(RuntimeError):
    """The database cannot be used by this gridman (too new, not a gridman database…)."""


def resolve_url(db: str | os.PathLike[str] | None) -> str:
    """A file path or an SQLAlchemy URL; None → ``GRIDMAN_DB`` → the default file in the data dir."""
    if db is None:
        db = os.environ.get("GRIDMAN_DB") or str(config.default_db_path())
    s = str(db)
    if "://" in s:
        return s
    return "sqlite:///" + str(Path(s).expanduser().resolve())


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # Let SQLAlchemy manage transactions (pysqlite's own BEGIN handling is off, see
    # https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl)
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    try:
        cur.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:  # read-only media: keep the default journal
        pass
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_on_begin(conn: Any) -> None:
    # A unit of work that will write takes the write lock up front (BEGIN IMMEDIATE, see
    # _begin_immediate); a read-only session uses a deferred BEGIN and never blocks writers.
    raw = conn.connection.driver_connection
    if conn.get_execution_options().get("sqlite_immediate"):
        _begin_immediate(raw)
    else:
        conn.exec_driver_sql("BEGIN")
    conn.info[_CHANGES_AT_BEGIN] = raw.total_changes


_CHANGES_AT_BEGIN = "gridman_changes_at_begin"


def _begin_immediate(dbapi_conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, tried again with a growing pause while another writer holds the lock
    (each try itself waits up to the busy timeout) until SQLITE_BUSY_TOTAL_S have passed; then
    :class:`DatabaseBusy` — the one answer a user gets for a busy database, never the driver's."""
    deadline = time.monotonic() + SQLITE_BUSY_TOTAL_S
    pause = 0.05
    while True:
        try:
            dbapi_conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            if time.monotonic() + pause >= deadline:
                raise DatabaseBusy() from exc
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def _is_busy(exc: BaseException | None) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and str(exc) in ("database is locked", "database is busy")


def _busy_as_gridman_error(ctx: ExceptionContext) -> BaseException | None:
    """Any statement that met a busy database (a deferred transaction whose snapshot is stale, a
    write outside a unit of work) raises :class:`DatabaseBusy` instead of the driver's error."""
    if _is_busy(ctx.original_exception):
        return DatabaseBusy()
    return None


def make_engine(db: str | os.PathLike[str] | None = None, **kw: Any) -> Engine:
    url = resolve_url(db)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # read-only media: SQLite itself says what is wrong
                create_private(Path(u.database))
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kw)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        event.listen(engine, "handle_error", _busy_as_gridman_error)
    else:
        if u.get_backend_name() == "postgresql" and u.drivername == "postgresql":
            url = str(u.set(drivername="postgresql+psycopg"))
        engine = create_engine(url, pool_pre_ping=True, **kw)
    return engine


@dataclass
class Database:
    """An engine plus a session factory. Pass it in; never keep it in a module global."""

    engine: Engine
    url: str = field(repr=False)  # shown only through redact_url (gridman.core.redact); the engine masks it
    _factory: sessionmaker[Session] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from gridman.core import text_rules
        from gridman.core.audit_trail import install

        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        install(self._factory)
        text_rules.install(self.engine, self._factory)  # control characters out, lengths bounded

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def sqlite_path(self) -> Path | None:
        return sqlite_file(self.url)

    def session(self) -> Session:
        return self._factory()

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """One unit of work without an acting user (sign-in): commit on success, roll back on any
        exception. On SQLite it takes the write lock up front like :meth:`work`: a deferred
        transaction that read and then writes fails at once ("database is locked") when another
        writer committed meanwhile, instead of waiting its turn."""
        with self._factory() as s, s.begin():
            self._lock_for_writing(s)
            yield s

    def _lock_for_writing(self, s: Session) -> None:
        if self.dialect == "sqlite":
            s.connection(execution_options={"sqlite_immediate": True})

    @contextmanager
    def work(self, actor: ActingUser, *, note: str | None = None) -> Iterator[Session]:
        """One unit of work done by ``actor``: every change is audited, committed on success,
        rolled back on any exception. A lost optimistic-locking race becomes ConflictError."""
        from sqlalchemy.orm.exc import StaleDataError

        from gridman.core.errors import ConflictError

        try:
            with self._factory() as s, s.begin():
                self._lock_for_writing(s)
                s.info["actor"] = actor
                if note:
                    s.info["audit_note"] = note
                _track_changes(s)
                yield s
        except StaleDataError as exc:
            raise ConflictError(
                "该记录已被其他人修改，请重新加载后再操作。",
                en="Someone else changed this record meanwhile; reload it and try again.",
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()


# --- long jobs: read without the write lock, write under it (issue 16) ----------------------


@dataclass(frozen=True)
class Snapshot:
    """Where a long job's reading began: the newest audit id then (every write is audited)."""

    audit_id: int


def read_phase(session: Session) -> Snapshot:
    """Begin (again) the reading part of a long job — read the file, validate, plan — without
    SQLite's write lock, so that other writers (a warden's report) are not kept waiting meanwhile.
    A unit of work (:meth:`Database.work`) that holds the lock gives it up and reads from a fresh
    snapshot; it must not have written anything yet. PostgreSQL: nothing to give up (writers lock
    rows there, not the database). Pass the result to :func:`write_phase`."""
    from gridman.core import changes

    conn = session.connection()
    if conn.dialect.name == "sqlite":
        raw: Any = conn.connection.driver_connection
        if raw.in_transaction:
            if session.new or session.dirty or session.deleted or raw.total_changes != conn.info.get(
                    _CHANGES_AT_BEGIN, raw.total_changes):
                raise RuntimeError("read_phase() after this unit of work has written")
            raw.execute("ROLLBACK")
        raw.execute("BEGIN")
    return Snapshot(changes.newest(session))


def write_phase(session: Session, since: Snapshot) -> set[str]:
    """Take the write lock for the writing part of a long job begun by :func:`read_phase`
    (SQLite: BEGIN IMMEDIATE, tried again like :meth:`Database.work`, :class:`DatabaseBusy` at
    last) and answer, now under the lock, which tables others changed since ``since`` (from the
    audit log): the job plans again, or refuses, when its plan read one of them — it never writes
    a stale plan. ORM objects read before are expired; the unit of work's change notice starts
    here (what others wrote meanwhile is theirs)."""
    from gridman.core import changes
    from gridman.core.models import AuditEntry

    conn = session.connection()
    if conn.dialect.name == "sqlite":
        raw: Any = conn.connection.driver_connection
        if raw.in_transaction:  # the read snapshot: nothing written in it
            raw.execute("ROLLBACK")
        _begin_immediate(raw)
        conn.info[_CHANGES_AT_BEGIN] = raw.total_changes
    session.expire_all()
    if "actor" in session.info:
        changes.start(session)
    t = AuditEntry.__table__
    return set(session.execute(select(t.c.table_name).where(t.c.id > since.audit_id).distinct()).scalars())


def done_after_commit(session: Session, task: TaskState, message: str) -> None:
    """Report ``task`` 100 % ``message`` once ``session``'s transaction has committed (not before,
    not if it rolls back): a long job run in its caller's unit of work says "done" only when it is."""

    def done(_s: Session) -> None:
        if not task.cancelled:
            task.progress(1.0, message, force=True)

    event.listen(session, "after_commit", done, once=True)


def _track_changes(session: Session) -> None:
    """The unit of work reports what it changed (``gridman.core.changes.of(session)`` after it
    commits), read back from the audit log — the one change-notice mechanism."""
    from gridman.core import changes

    changes.start(session)


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (None: another database, or SQLite in memory)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return Path(u.database)
    return None


def open_database(db: str | os.PathLike[str] | None = None, *, upgrade: bool = True, create: bool = True,
                  **kw: Any) -> Database:
    """Open (and by default create/upgrade) a gridman database.

    An existing older database is copied to a backup file before it is upgraded; a database
    written by a newer gridman raises :class:`SchemaError`. An SQLite file is checked before the
    first connection (:func:`gridman.core.dbfile.check_before_open`): a folder, a file that is
    not SQLite, a read-only file or another program's database is refused and left untouched, and
    a missing file too unless ``create``.
    """
    url = resolve_url(db)
    path = sqlite_file(url)
    if path is not None and not str(path).startswith("file:"):
        from gridman.core.dbfile import check_before_open

        check_before_open(path, create=create)
    try:
        engine = make_engine(url, **kw)
    except (ArgumentError, NoSuchModuleError) as exc:
        from gridman.core.dbfile import unknown_url

        raise unknown_url(url) from exc
    database = Database(engine, url)
    if upgrade:
        try:
            upgrade_database(database)
        except Exception:
            database.dispose()
            raise
    return database


# --- schema versions (Alembic) -------------------------------------------------------------


# Objects migrations create by hand that the models cannot describe: the FTS5 table of incidents
# and its shadow tables (SQLite), the pg_trgm expression index (PostgreSQL). Autogenerate — in
# env.py and in the test that models and migrations agree — skips them.
AUTOGEN_SKIP_TABLE_PREFIXES = ("incidents_fts",)
AUTOGEN_SKIP_INDEXES = frozenset({"ix_incidents_text_trgm"})


def autogen_include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic ``include_name`` hook: False for the hand-made search objects above."""
    if type_ == "table" and name and name.startswith(AUTOGEN_SKIP_TABLE_PREFIXES):
        return False
    if type_ == "index" and name in AUTOGEN_SKIP_INDEXES:
        return False
    return True


def _alembic_config(database: Database):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = database.engine
    return cfg


def _script_directory():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg)


_REV_RE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M)


@functools.lru_cache(maxsize=1)
def file_head_revision() -> str | None:
    """The head revision read from the migration files' ``revision =`` / ``down_revision =``
    lines, without importing Alembic (start-up compares it with ``alembic_version``; a test keeps
    it equal to Alembic's own answer). None when the files do not name exactly one head."""
    revs: set[str] = set()
    downs: set[str] = set()
    for f in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(_REV_RE.findall(f.read_text(encoding="utf-8")))
        if "revision" not in found:
            continue
        revs.add(ast.literal_eval(found["revision"]))
        down = ast.literal_eval(found.get("down_revision", "None"))
        if isinstance(down, str):
            downs.add(down)
        elif isinstance(down, tuple | list):
            downs.update(down)
    heads = revs - downs
    return next(iter(heads)) if len(heads) == 1 else None


def head_revision() -> str:
    heads = _script_directory().get_heads()
    if len(heads) != 1:
        raise SchemaError(f"migrations have {len(heads)} heads: {heads}")
    return heads[0]


def known_revisions() -> set[str]:
    return {r.revision for r in _script_directory().walk_revisions()}


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as conn:
        if conn.dialect.name == "sqlite":  # one query instead of the inspector's
            has = conn.execute(
                text("SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'")).first() is not None
        else:
            has = inspect(conn).has_table("alembic_version")
        if not has:
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def create_private(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 (residents' data: owner only) unless it exists; SQLite
    gives its -wal/-shm/-journal the database file's mode. True when it was created here."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return True
    except FileExistsError:
        return False


def backup_name(path: Path, *, tag: str, folder: Path | None = None) -> Path:
    """A new file name for a backup of ``path``: ``<stem>.backup-<tag>-<stamp><suffix>`` in ``folder``
    (default: beside the database)."""
    folder = folder if folder is not None else path.parent
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    dest = folder / f"{path.stem}.backup-{tag}-{stamp}{path.suffix}"
    n = 1
    while dest.exists():
        dest = folder / f"{path.stem}.backup-{tag}-{stamp}-{n}{path.suffix}"
        n += 1
    return dest


def backup_sqlite(path: Path, *, tag: str) -> Path:
    """Copy an SQLite database (consistently, through the backup API) next to itself: written to a
    temporary file and renamed, so a killed copy never leaves a half backup under a backup's name."""
    dest = backup_name(path, tag=tag)
    part = dest.with_name(f".{dest.name}.part")
    try:
        copy_sqlite(path, part)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def copy_sqlite(source: Path, dest: Path) -> None:
    """Copy one SQLite database over another, consistently (the backup API, not a file copy).
    A new ``dest`` is created 0600 and in rollback-journal mode (a closed copy has no -wal)."""
    src = sqlite3.connect(str(source))
    try:
        create_private(dest)
        dst = sqlite3.connect(str(dest))
        with dst:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.close()
    finally:
        src.close()


@dataclass
class UpgradeResult:
    from_revision: str | None
    to_revision: str
    backup: Path | None = None

    @property
    def changed(self) -> bool:
        return self.from_revision != self.to_revision


def not_gridman_error(tables: list[str]) -> SchemaError:
    return SchemaError(f"这不是 gridman 数据库（含有表 {tables[:5]}…，但没有版本信息）。"
                       " / Not a gridman database (tables present but no schema version).")


def upgrade_database(database: Database, *, target: str = "head") -> UpgradeResult:
    """Bring the schema to ``target``. Backs an existing SQLite file up first; refuses newer ones.

    The common case — the database is at the head already — is decided from the migration files
    (:func:`file_head_revision`) without importing Alembic (a third of a second at start-up)."""
    try:
        cur = current_revision(database)
    except OperationalError as exc:
        if database.dialect == "sqlite":
            raise
        from gridman.core.dbfile import unreachable

        raise unreachable(database.url) from exc
    if target == "head" and cur is not None and cur == file_head_revision():
        return UpgradeResult(cur, cur)
    from alembic import command

    head = head_revision() if target == "head" else target
    if cur is not None and cur not in known_revisions():
        raise SchemaError(
            f"此数据库由更新版本的 gridman 创建（架构版本 {cur}），当前程序无法打开。请升级 gridman 后再试。"
            f" / This database was written by a newer gridman (schema {cur}); please upgrade gridman."
        )
    if cur == head:
        return UpgradeResult(cur, head)
    backup = None
    path = database.sqlite_path
    if cur is not None and path is not None and path.exists():
        backup = backup_sqlite(path, tag=f"v{cur}")
    elif cur is None:
        with database.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        if tables - {"alembic_version"}:
            raise not_gridman_error(sorted(tables))
    command.upgrade(_alembic_config(database), target)
    return UpgradeResult(cur, head, backup)


def table_counts(session: Session) -> dict[str, int]:
    from gridman.core.models import Base

    out: dict[str, int] = {}
    for name, table in Base.metadata.tables.items():
        out[name] = session.execute(select(func.count()).select_from(table)).scalar_one()
    return out


def integrity_check(database: Database, *, pages: bool = True) -> str:
    """'ok' or the problems found (SQLite: PRAGMA integrity_check + foreign_key_check; without
    ``pages`` the foreign keys only, when :func:`gridman.core.dbfile.diagnose` checked the pages)."""
    with database.engine.connect() as conn:
        if database.dialect == "sqlite":
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").fetchall()] if pages else []
            fk = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            problems = [r for r in rows if r != "ok"]
            if fk:
                problems.append(f"{len(fk)} foreign key violations, first: {tuple(fk[0])}")
            return "ok" if not problems else "; ".join(problems)
        conn.execute(text("SELECT 1"))
        return "ok"

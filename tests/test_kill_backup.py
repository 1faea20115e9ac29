"""kill -9 during `gridman backup create` and `gridman backup restore` (issue #16, Done when): the
process is stopped at named points (``GRIDMAN_PAUSE_AT=<point>:<flag file>`` makes it write the
flag and wait there) and killed with SIGKILL. Afterwards the live database passes
``integrity_check``, holds the old content or the new one (never a mixture), no half backup sits
under a backup's name, and the next run works."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from gridman.core.db import Database, open_database
from gridman.core.models import Resident
from gridman.core.sample import iter_rows_digest
from gridman.core.services import backup
from gridman.core.services.permissions import system_actor
from tests.helpers import signed_in

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def content(path: Path) -> dict[str, str]:
    """Every register's rows (the audit log aside: a restore adds its own entry; the CLI's sign-in
    sessions aside: the test's own sign-in writes one)."""
    d = open_database(path, upgrade=False)
    try:
        return {k: v for k, v in iter_rows_digest(d) if k not in ("audit_log", "cli_sessions")}
    finally:
        d.dispose()


def integrity(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def gm(db: Path, *args: str, pause: str | None = None, flag: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    if pause:
        env[backup.PAUSE_ENV] = f"{pause}:{flag}"
    return subprocess.Popen([sys.executable, "-m", "gridman", *signed_in(db, "admin"), "backup", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_at(db: Path, point: str, tmp_path: Path, *args: str) -> None:
    flag = tmp_path / f"{point}.flag"
    p = gm(db, *args, pause=point, flag=flag)
    deadline = time.monotonic() + 180
    while not flag.exists():
        assert p.poll() is None, f"ended before {point}: {p.communicate()}"
        assert time.monotonic() < deadline, f"never reached {point}"
        time.sleep(0.05)
    if point.startswith("restore") and point != "restore-committed":  # the restore holds the write lock
        other = sqlite3.connect(db, timeout=0.2, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    os.kill(p.pid, signal.SIGKILL)
    p.communicate()
    assert p.returncode == -signal.SIGKILL


@pytest.mark.parametrize("point", ["backup-copied", "backup-written"])
def test_kill_during_backup_create(sqlite_demo: Database, tmp_path: Path, point: str) -> None:
    path = sqlite_demo.sqlite_path
    before = content(path)
    folder = tmp_path / "backups"
    kill_at(path, point, tmp_path, "create", "--folder", str(folder))
    assert integrity(path) == "ok" and content(path) == before
    assert backup.list_backups(sqlite_demo, folder) == []  # no half backup under a backup's name
    p = gm(path, "create", "--folder", str(folder), "--json")
    out, err = p.communicate()
    assert p.returncode == 0, err
    [made] = backup.list_backups(sqlite_demo, folder)
    assert backup.verify(made.path).ok


@pytest.mark.parametrize("point", ["restore-locked", "restore-safety-written", "restore-copied", "restore-committed"])
def test_kill_during_restore(sqlite_demo: Database, tmp_path: Path, point: str) -> None:
    path = sqlite_demo.sqlite_path
    signed_in(path, "admin")  # before the backup: the restored database keeps the test's CLI session
    actor = system_actor(sqlite_demo.session())
    source = Path(backup.create(sqlite_demo, actor, folder=tmp_path / "b").path)
    new = content(path)
    with sqlite_demo.work(actor) as s:
        s.execute(update(Resident).where(Resident.id < 200).values(phone="13900000000"))
    sqlite_demo.dispose()
    old = content(path)
    assert old != new
    kill_at(path, point, tmp_path, "restore", str(source))
    assert integrity(path) == "ok"
    # all or nothing: killed before its commit nothing of it remains; after it, all of it
    assert content(path) == (new if point == "restore-committed" else old)
    p = gm(path, "restore", str(source), "--json")
    out, err = p.communicate()
    assert p.returncode == 0, err
    assert integrity(path) == "ok" and content(path) == new

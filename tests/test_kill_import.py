"""kill -9 during a census import and an offline check-in (issue 16): stopped at named points
(:mod:`gridman.core.checkpoints`) while reading, after validating, halfway through the write and
just before the commit, then killed with SIGKILL. Afterwards the database passes
``integrity_check``, holds exactly what it held before (all-or-nothing), and the next run works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from gridman.core import checkpoints
from gridman.core.db import Database, integrity_check, open_database, table_counts
from gridman.core.models import ExchangePackage
from gridman.core.services import census, exchange
from gridman.core.services.permissions import Actor, system_actor
from tests.helpers import build_tree
from tests.test_writers_starve import write_census

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

RUN = """
import sys
from gridman.core.db import open_database
from gridman.core.services import census, exchange
from gridman.core.services.permissions import system_actor
db = open_database(sys.argv[1])
with db.session() as s:
    admin = system_actor(s)
with db.work(admin) as s:
    if sys.argv[2] == "import":
        census.import_census(s, admin, path=sys.argv[3])
    else:
        exchange.checkin(s, admin, path=sys.argv[3])
print("done")
"""


def admin_of(db: Database) -> Actor:
    with db.session() as s:
        return system_actor(s)


def counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return table_counts(s)


def kill_at(db_path: Path, what: str, file: Path, point: str, tmp_path: Path) -> None:
    """Run ``what`` on ``file`` in another process, wait until it reaches ``point``, SIGKILL it."""
    ready = tmp_path / f"ready-{point}"
    env = {**os.environ, checkpoints.PAUSE_AT: point, checkpoints.READY_FILE: str(ready)}
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(db_path), what, str(file)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"{point} never reached"
            time.sleep(0.05)
        assert ready.read_text(encoding="utf-8") == point
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def after_kill(db_path: Path, before: dict[str, int]) -> None:
    db = open_database(db_path)
    try:
        assert integrity_check(db) == "ok"
        assert counts(db) == before  # nothing of the killed run is left
    finally:
        db.dispose()


def kill_everywhere(db: Database, what: str, file: Path, points: tuple[str, ...], tmp_path: Path) -> dict[str, int]:
    """Kill ``what`` at each of ``points`` in turn, checking the database after each; returns the
    table counts before (and after every kill)."""
    path = db.sqlite_path
    assert path is not None
    before = counts(db)
    db.dispose()
    for point in points:
        kill_at(path, what, file, point, tmp_path)
        after_kill(path, before)
    return before


def test_census_import_killed_at_every_point(sqlite_db: Database, tmp_path: Path) -> None:
    build_tree(sqlite_db)
    book = write_census(tmp_path / "c.xlsx", 3000)
    before = kill_everywhere(sqlite_db, "import", book, ("census.read", "census.validate", "census.write",
                                                         "census.commit"), tmp_path)
    db = open_database(sqlite_db.url)  # the next run works
    try:
        admin = admin_of(db)
        with db.work(admin) as s:
            res = census.import_census(s, admin, path=book)
        assert res.status == "imported" and res.inserted == 3000
        after = counts(db)
        assert after["residents"] == before["residents"] + 3000 and after["import_batches"] == 1
        assert integrity_check(db) == "ok"
    finally:
        db.dispose()


def test_checkin_killed_at_every_point(sqlite_demo: Database, tmp_path: Path) -> None:
    book = tmp_path / "g.xlsx"
    admin = admin_of(sqlite_demo)
    with sqlite_demo.work(admin) as s:
        package_id = exchange.checkout(s, admin, out=book, area_code="340104001001001").package_id
    wb = load_workbook(book)  # an offline edit: a household's phone
    ws = wb["户"]
    ws.cell(2, {c.value: c.column for c in ws[1]}["联系电话"], "13700000000")
    wb.save(book)
    before = kill_everywhere(sqlite_demo, "checkin", book, ("checkin.read", "checkin.validate", "checkin.write",
                                                            "checkin.commit"), tmp_path)
    db = open_database(sqlite_demo.url)  # the next run works
    try:
        admin = admin_of(db)
        with db.session() as s:
            assert s.scalar(select(ExchangePackage.checked_in_at).where(ExchangePackage.package_id == package_id)) \
                is None
        with db.work(admin) as s:
            res = exchange.checkin(s, admin, path=book)
        assert res.batch_id and res.counts["households"]["updated"] == 1
        assert integrity_check(db) == "ok" and counts(db)["import_batches"] == before["import_batches"] + 1
    finally:
        db.dispose()

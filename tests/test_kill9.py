"""kill -9 at several points of the overdue sweep, a grid merge and a grid split.

Each scenario runs the real CLI on a copy of the demo in a child process (``tests.kill_child``)
that stops dead at a chosen write — the first, one in the middle, the last, or just before the
COMMIT — and is killed there with SIGKILL. Afterwards the database passes ``integrity_check``,
holds either exactly what it held before or exactly what a complete run leaves (never part of
it), and running the command again completes it. (Import and check-in have their own kill tests;
backup and restore theirs.)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import shapely
from shapely import wkb

from tests.helpers import signed_in

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_db" / "gridman-demo.sqlite"
NOW = "2027-06-01T09:00:00"  # seven months after the demo's "now": many cases overdue

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def fingerprint(db: Path, tables: tuple[str, ...], audit_tables: tuple[str, ...]) -> str:
    """The content of ``tables`` (every column but timestamps and uuids, which differ from run to
    run) and who did what to which row in the audit rows about ``audit_tables`` (sign-ins and
    sessions are not part of the operation)."""
    con = sqlite3.connect(db)
    try:
        h = hashlib.sha256()
        for t in tables:
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({t})")
                    if "DATE" not in (r[2] or "").upper() and "TIME" not in (r[2] or "").upper()
                    and "uuid" not in r[1]]
            for row in con.execute(f"SELECT {', '.join(cols)} FROM {t} ORDER BY 1"):
                h.update(repr(row).encode())
        marks = ",".join("?" * len(audit_tables))
        for row in con.execute(f"SELECT username, action, table_name, row_id FROM audit_log "
                               f"WHERE table_name IN ({marks}) ORDER BY id", audit_tables):
            h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        con.close()


def integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def run_child(db: Path, ready: Path, n: int, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.kill_child", str(ready), str(n), "--",
                             *signed_in(db, "admin"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def complete(db: Path, ready: Path, args: list[str]) -> tuple[int, int]:
    p = run_child(db, ready, 0, args)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    writes, commits = map(int, ready.read_text(encoding="utf-8").split())
    ready.unlink()
    return writes, commits


def kill_at(db: Path, ready: Path, n: int, args: list[str]) -> bool:
    """Run until the n-th write (or commit, n < 0) and SIGKILL there; False if the run ended first."""
    p = run_child(db, ready, n, args)
    deadline = time.monotonic() + 300
    while not ready.exists():
        if p.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the child never reached its stop"
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.communicate(timeout=60)
    ready.unlink()
    return True


def check_scenario(tmp_path: Path, args: list[str], tables: tuple[str, ...], audit: tuple[str, ...]) -> None:
    ref = tmp_path / "ref.sqlite"
    shutil.copyfile(SAMPLE, ref)
    before = fingerprint(ref, tables, audit)
    ready = tmp_path / "ready"
    writes, commits = complete(ref, ready, args)
    after = fingerprint(ref, tables, audit)
    assert after != before and writes > 0, "the operation changed nothing: no point killing it"
    points = sorted({1, max(1, writes // 2), writes}) + [-commits]
    killed = 0
    for n in points:
        db = tmp_path / f"kill{n}.sqlite"
        shutil.copyfile(SAMPLE, db)
        killed += kill_at(db, ready, n, args)
        assert integrity(db) == "ok", f"stop {n}"
        # all or nothing: the last commit is the operation's, so every stop leaves it undone
        assert fingerprint(db, tables, audit) == before, f"stop {n} left part of the operation"
        complete(db, ready, args)  # the next run works and does the whole of it
        assert integrity(db) == "ok"
        assert fingerprint(db, tables, audit) == after, f"stop {n}: the run after the kill differs"
    assert killed == len(points)


def test_kill_9_during_the_overdue_sweep(tmp_path):
    check_scenario(tmp_path, ["incidents", "escalate-overdue", "--now", NOW, "--json"],
                   ("incidents", "incident_steps"), ("incidents", "incident_steps"))


def _two_grids_of_one_community() -> tuple[str, str, str]:
    con = sqlite3.connect(SAMPLE)
    try:
        rows = con.execute("SELECT g.code, g.boundary, c.id FROM areas g JOIN areas c ON g.parent_id = c.id "
                           "WHERE g.level = 'grid' AND g.boundary IS NOT NULL ORDER BY c.id, g.code").fetchall()
    finally:
        con.close()
    for (a, ga, ca), (b, _gb, cb) in zip(rows, rows[1:], strict=False):
        if ca == cb:
            return a, b, ga
    raise AssertionError("no community with two grids in the demo")


MOVED = ("areas", "households", "residents", "buildings", "incidents", "warden_assignments")


def test_kill_9_during_a_grid_merge(tmp_path):
    a, b, _ = _two_grids_of_one_community()
    check_scenario(tmp_path, ["grids", "merge", a, b, "--yes", "--json"], MOVED, MOVED)


def test_kill_9_during_a_grid_split(tmp_path):
    a, _b, boundary = _two_grids_of_one_community()
    g = wkb.loads(boundary)
    x0, y0, x1, y1 = g.bounds
    mid = (x0 + x1) / 2
    line = shapely.LineString([(mid, y0 - (y1 - y0)), (mid, y1 + (y1 - y0))])
    check_scenario(tmp_path, ["grids", "split", a, "--line", line.wkt, "--yes", "--json"], MOVED, MOVED)

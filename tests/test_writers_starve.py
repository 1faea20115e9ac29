"""Writers never starve (issue 16, item 4): an import reads, validates and plans without the write
lock and holds it only to write; a busy database answers with a clear message; "done" comes
after the commit. The 300k-row case runs the import in a process of its own (the file-lock case)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from gridman.core import db as db_mod
from gridman.core.db import Database, open_database
from gridman.core.enums import Role
from gridman.core.errors import DatabaseBusy
from gridman.core.models import ExchangePackage, Incident, Resident, User
from gridman.core.services import census, exchange, mediation
from gridman.core.services.permissions import Actor, actor_for, system_actor
from gridman.core.tasks import TaskState
from tests.helpers import build_tree, make_user, signed_in

GRID1 = "340104001001001"
HEADERS = ["户号", "网格编码", "姓名", "性别", "公民身份号码", "与户主关系", "联系电话"]


def write_census(path: Path, n: int, *, phone: str = "139", grid: str = GRID1) -> Path:
    """``n`` residents in households of three (户主, 配偶, 子女), written fast (StreamWriter)."""
    from gridman.core import idcard
    from gridman.core.xlsxstream import StreamWriter

    rel = ("户主", "配偶", "子女")
    with StreamWriter(path, sheet_name="实有人口") as w:
        w.write_row(HEADERS)
        for i in range(n):
            born = date(1950, 1, 1) + timedelta(days=i // 1000)
            sex = "M" if i % 2 else "F"
            w.write_row([f"H{i // 3:07d}", grid, f"张{i % 97}{i % 89}", "男" if sex == "M" else "女",
                         idcard.make("340104", born, i % 1000 // 2, sex), rel[i % 3], f"{phone}{i:08d}"])
    return path


def admin_of(db: Database) -> Actor:
    with db.session() as s:
        return system_actor(s)


def residents(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Resident)) or 0


def report(db: Database, warden: Actor, grid_id: int, title: str) -> float:
    """One warden's report (上报) in its own unit of work; returns the seconds it took."""
    t = time.monotonic()
    with db.work(warden) as s:
        mediation.report(s, warden, grid_id=grid_id, category="hazard", title=title)
    return time.monotonic() - t


@contextmanager
def impatient(db: Database, monkeypatch: pytest.MonkeyPatch, total: float = 1.0) -> Iterator[Database]:
    """A second handle on ``db``'s file whose writers give up on the write lock after ``total`` s."""
    monkeypatch.setattr(db_mod, "SQLITE_BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(db_mod, "SQLITE_BUSY_TOTAL_S", total)
    other = open_database(db.url)
    try:
        yield other
    finally:
        other.dispose()


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    raw = sqlite3.connect(str(path), isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        raw.execute("ROLLBACK")
        raw.close()


# --- a busy database: a clear message, after retrying ------------------------------------------


def test_busy_database_is_a_clear_message_after_retrying(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch,
                                                         ) -> None:
    tree = build_tree(sqlite_db)
    warden = make_user(sqlite_db, "w1", Role.WARDEN, grids=[tree.grid1])
    assert sqlite_db.sqlite_path is not None
    with impatient(sqlite_db, monkeypatch) as other, write_lock_held(sqlite_db.sqlite_path):
        t = time.monotonic()
        with pytest.raises(DatabaseBusy) as exc:
            report(other, warden, tree.grid1, "井盖缺失")
        waited = time.monotonic() - t
        # a write that did not ask for the lock up front meets the busy database mid-statement
        with pytest.raises(DatabaseBusy), other.session() as s:
            s.execute(text("UPDATE areas SET name = name WHERE id = :i"), {"i": tree.grid1})
    assert exc.value.message == "数据库正忙（另一项写入正在进行），请稍后重试。"
    assert "busy" in exc.value.text("en") and "locked" not in str(exc.value)
    assert 1.0 <= waited < 5  # tried again for the whole bounded total, then gave up
    assert report(other, warden, tree.grid1, "井盖缺失") < 1  # the lock is free again: it works


def test_busy_database_cli_exits_2_with_the_message(sqlite_demo: Database, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from gridman.cli import main

    path = sqlite_demo.sqlite_path
    assert path is not None
    sqlite_demo.dispose()
    monkeypatch.setattr(db_mod, "SQLITE_BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(db_mod, "SQLITE_BUSY_TOTAL_S", 1.0)
    with sqlite3.connect(str(path)) as c:
        grid = c.execute("SELECT a.code FROM areas a JOIN warden_assignments w ON w.grid_id = a.id "
                         "JOIN users u ON u.id = w.user_id WHERE u.username = 'warden'").fetchone()[0]
    capsys.readouterr()
    warden = signed_in(path, "warden")  # the sign-in's session row is written before the lock is taken
    with write_lock_held(path):
        rc = main([*warden, "incidents", "report", "--grid", grid, "--category", "hazard", "--title", "井盖缺失"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "数据库正忙（另一项写入正在进行），请稍后重试" in err
    assert "OperationalError" not in err and "locked" not in err and "意外错误" not in err


# --- an import keeps the write lock only while it writes ---------------------------------------


def _during(stage: tuple[float, float], fn: object) -> TaskState:
    """A task whose callback runs ``fn`` once, at the first progress report inside ``stage``."""
    fired: list[bool] = []

    def cb(f: float, _m: str) -> None:
        if not fired and stage[0] <= f < stage[1]:
            fired.append(True)
            fn()  # type: ignore[operator]

    return TaskState(cb, min_interval=0)


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_warden_reports_while_an_import_validates(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    dry_run: bool) -> None:
    tree = build_tree(db)
    warden = make_user(db, "w1", Role.WARDEN, grids=[tree.grid1])
    admin = admin_of(db)
    book = write_census(tmp_path / "c.xlsx", 60)
    took: list[float] = []
    with impatient(db, monkeypatch) as other:
        task = _during((0.15, 0.65), lambda: took.append(report(other, warden, tree.grid1, "井盖缺失")))
        with db.work(admin) as s:  # the caller's unit of work, as the CLI and the GUI open it
            res = census.import_census(s, admin, path=book, dry_run=dry_run, task=task)
    assert took and took[0] < 1  # not kept waiting by the import
    assert res.status == ("dry_run" if dry_run else "imported") and res.inserted == 60
    assert residents(db) == (0 if dry_run else 60)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1


def test_rows_changed_while_planning_are_planned_again(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    admin = admin_of(db)
    with db.work(admin) as s:
        census.import_census(s, admin, path=write_census(tmp_path / "a.xlsx", 9))
    with db.session() as s:
        first = s.scalars(select(Resident).order_by(Resident.id)).first()
        assert first is not None
        rid, v0 = first.id, first.version

    def meanwhile() -> None:  # someone edits a resident the file updates, after it was read
        with db.work(admin) as s2:
            r = s2.get(Resident, rid)
            assert r is not None
            r.note = "门卫登记"

    task = _during((0.15, 0.65), meanwhile)
    with db.work(admin) as s:
        res = census.import_census(s, admin, path=write_census(tmp_path / "b.xlsx", 9, phone="138"), task=task)
    assert res.status == "imported" and res.updated == 9
    with db.session() as s:
        r = s.get(Resident, rid)
        assert r is not None
        assert (r.note, r.phone[:3], r.version) == ("门卫登记", "138", v0 + 2)  # both changes kept


def test_done_is_reported_after_the_commit(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    admin = admin_of(db)
    seen: list[tuple[str, int]] = []

    def cb(f: float, m: str) -> None:
        if f >= 1.0:
            seen.append((m, residents(db)))  # what everyone else sees when the bar says 100 %

    with db.work(admin) as s:
        census.import_census(s, admin, path=write_census(tmp_path / "c.xlsx", 30), task=TaskState(cb))
        assert seen == []  # not before the commit
    assert seen == [("导入完成", 30)]


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_warden_reports_while_a_checkin_validates(demo_db: Database, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, dry_run: bool) -> None:
    admin = admin_of(demo_db)
    book = tmp_path / "g.xlsx"
    with demo_db.work(admin) as s:
        package = exchange.checkout(s, admin, out=book, area_code=GRID1).package_id
    with demo_db.session() as s:
        warden = actor_for(s, s.get(User, mediation.user_id(s, "warden")))

    def checked_in() -> bool:
        with demo_db.session() as s:
            return s.scalar(select(ExchangePackage.checked_in_at).where(ExchangePackage.package_id == package)) \
                is not None

    took: list[float] = []
    seen: list[tuple[str, bool]] = []

    def cb(f: float, m: str) -> None:
        if 0.35 <= f < 0.65 and not took:  # the package read, being checked: the report's incident
            took.append(report(other, warden, min(warden.grid_ids), "井盖缺失"))  # makes it plan again
        if f >= 1.0:
            seen.append((m, checked_in()))

    with impatient(demo_db, monkeypatch) as other:
        with demo_db.work(admin) as s:
            exchange.checkin(s, admin, path=book, dry_run=dry_run, task=TaskState(cb, min_interval=0))
            if not dry_run:
                assert seen == []  # not before the commit
    assert took and took[0] < 1
    assert seen == ([("试运行完成", False)] if dry_run else [("已导入", True)])


def test_the_gui_shows_the_busy_message() -> None:
    pytest.importorskip("PySide6")
    from gridman.gui.errors import describe

    assert describe(DatabaseBusy())[0] == "数据库正忙（另一项写入正在进行），请稍后重试。"


# --- a warden's report during a 300k-row import, in another process ----------------------------

IMPORT_SCRIPT = """
import sys
from gridman.core.db import open_database
from gridman.core.services import census
from gridman.core.services.permissions import system_actor
from gridman.core.tasks import TaskState
db = open_database(sys.argv[1])
with db.session() as s:
    admin = system_actor(s)
out = open(sys.argv[3], "w")
def cb(f, m):
    out.write(f"{f:.3f}\\n"); out.flush()
with db.work(admin) as s:
    res = census.import_census(s, admin, path=sys.argv[2], task=TaskState(cb, min_interval=0.2))
print(res.status, res.inserted)
"""


def test_a_warden_reports_during_a_300k_row_import(sqlite_db: Database, tmp_path: Path) -> None:
    tree = build_tree(sqlite_db)
    warden = make_user(sqlite_db, "w1", Role.WARDEN, grids=[tree.grid1])
    book = write_census(tmp_path / "big.xlsx", 300_000)
    progress = tmp_path / "progress.txt"
    proc = subprocess.Popen([sys.executable, "-c", IMPORT_SCRIPT, sqlite_db.url, str(book), str(progress)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    took: list[tuple[float, float, float]] = []  # the import's progress before and after, seconds taken
    try:
        while proc.poll() is None:
            if progress.exists() and progress.read_text().split():
                f0 = float(progress.read_text().split()[-1])
                t = report(sqlite_db, warden, tree.grid1, f"报告 {len(took)}")
                took.append((f0, float(progress.read_text().split()[-1]), t))
            time.sleep(0.5)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    print("reports (import progress before, after, seconds):", [(a, b, round(t, 2)) for a, b, t in took])
    assert proc.returncode == 0, err
    assert out.split() == ["imported", "300000"]
    assert residents(sqlite_db) == 300_000
    reading = [t for a, b, t in took if b < 0.6]  # begun and ended while the import read and validated
    writing = [t for a, b, t in took if b >= 0.65]  # ended once it had begun writing
    assert reading and writing
    # every report succeeded: while the import read and validated, without waiting for it; while it
    # wrote (one transaction, all-or-nothing), by waiting for the lock within the bounded total
    assert max(reading) < db_mod.SQLITE_BUSY_TIMEOUT_MS / 1000
    assert max(writing) < db_mod.SQLITE_BUSY_TOTAL_S

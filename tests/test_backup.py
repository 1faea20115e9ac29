"""Backup and restore (issue #16, Build 1): `gridman backup create|verify|restore|list|schedule`,
backups with their attachments, restore that verifies first and never loses a committed write,
files created 0600."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gridman.cli import main
from gridman.core.db import (
    Database,
    current_revision,
    head_revision,
    integrity_check,
    open_database,
    upgrade_database,
)
from gridman.core.enums import Role
from gridman.core.models import Incident, Resident, Setting, utcnow
from gridman.core.sample import iter_rows_digest
from gridman.core.services import backup
from gridman.core.services.errors import GridmanError, ValidationError
from gridman.core.services.mediation import attachments
from gridman.core.services.mediation.records import AttachmentInput
from gridman.core.services.permissions import system_actor
from tests.helpers import make_user, signed_in


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual umask: files would be 0644 unless created 0600 on purpose
    try:
        yield
    finally:
        os.umask(old)


def cli(db: object, capsys, *args: str, user: str = "admin") -> tuple[int, dict | None, str]:
    rc = main([*signed_in(db, user), "backup", *args])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if cap.out.strip().startswith("{") else None), cap.err


def private(p: str | Path) -> bool:
    return stat.S_IMODE(os.stat(p).st_mode) == 0o600


def files_sha(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (path, path.with_name(path.name + "-wal")) if p.exists()}


def add_attachment(db: Database, data: bytes) -> Path:
    with db.session() as s:
        actor = system_actor(s)
    with db.work(actor) as s:
        inc = s.scalars(select(Incident).order_by(Incident.id)).first()
        sha = attachments.store(s, actor, inc, AttachmentInput("photo.jpg", data), utcnow())
        return attachments.attachment_path(s, sha)


def test_backup_create_verify_list_restore_with_attachments(sqlite_demo: Database, capsys, umask_022) -> None:
    path = sqlite_demo.sqlite_path
    stored = add_attachment(sqlite_demo, b"\xff\xd8 a scanned agreement")
    rc, made, err = cli(path, capsys, "create", "--json")
    assert rc == 0 and made["attachments"] == 1 and made["missing_attachments"] == [], err
    assert private(made["path"])
    rc, ver, err = cli(path, capsys, "verify", made["path"], "--json")
    assert rc == 0 and ver["ok"] and ver["checksum"] and ver["attachments"] == 1, err
    rc, listed, _ = cli(path, capsys, "list", "--json")
    assert [b["path"] for b in listed["backups"]] == [made["path"]]
    stored.unlink()  # the attachment is lost on disk …
    before = dict(iter_rows_digest(sqlite_demo))
    with sqlite_demo.begin() as s:
        s.execute(Resident.__table__.update().where(Resident.id < 50).values(phone="000"))
    rc, res, err = cli(path, capsys, "restore", made["path"], "--json")
    assert rc == 0, err
    assert stored.read_bytes() == b"\xff\xd8 a scanned agreement"  # … and comes back with the restore
    after = dict(iter_rows_digest(sqlite_demo))
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items() if k != "audit_log"}
    assert private(res["before_restore"]) and backup.verify(res["before_restore"]).ok
    assert integrity_check(sqlite_demo) == "ok"


def test_backup_on_postgresql_is_refused_clearly(demo_db: Database, capsys, tmp_path: Path) -> None:
    rc, out, err = cli(demo_db.url, capsys, "create", "--folder", str(tmp_path / "b"), "--json")
    if demo_db.dialect == "postgresql":
        assert rc == 2 and "pg_dump" in err and not (tmp_path / "b").exists()
        rc, out, err = cli(demo_db.url, capsys, "restore", str(tmp_path / "x.sqlite"))
        assert rc == 2 and "pg_dump" in err
    else:
        assert rc == 0 and backup.verify(out["path"]).ok, err


def _flip(path: Path, old: bytes, new: bytes) -> None:
    raw = path.read_bytes()
    assert raw.count(old) >= 1
    path.write_bytes(raw.replace(old, new, 1))


def test_a_corrupted_backup_is_refused_and_the_live_database_is_untouched(sqlite_demo: Database, capsys) -> None:
    """The old restore checked only alembic_version and a count: it took these backups."""
    path = sqlite_demo.sqlite_path
    with sqlite_demo.session() as s:
        phone = s.scalars(select(Resident.phone).where(Resident.phone.is_not(None)).order_by(Resident.id)).first()
    good = Path(backup.create(sqlite_demo, system_actor(sqlite_demo.session())).path)
    data_flip = good.with_name("data-flip.sqlite")
    data_flip.write_bytes(good.read_bytes())
    _flip(data_flip, phone.encode(), phone[:-1].encode() + (b"0" if phone[-1] != "0" else b"1"))
    page_flip = good.with_name("page-flip.sqlite")
    raw = bytearray(good.read_bytes())
    page = int.from_bytes(raw[16:18], "big")
    for i in range(page * 3, page * 3 + 12):  # the b-tree header of page 4
        raw[i] ^= 0x5A
    page_flip.write_bytes(bytes(raw))
    signed_in(path, "admin")  # the CLI sign-in's session row is written before the live files' digest
    live = files_sha(path)
    for bad in (data_flip, page_flip):
        assert not backup.verify(bad).ok
        rc, _, err = cli(path, capsys, "restore", str(bad))
        assert rc == 2 and "未通过校验" in err and "未做任何更改" in err, err
        rc, out, _ = cli(path, capsys, "verify", str(bad), "--json")
        assert rc == 1 and out["problems"]
    assert files_sha(path) == live
    assert not list(path.parent.glob("*before-restore*"))
    assert integrity_check(sqlite_demo) == "ok"


def test_restore_never_loses_a_write_committed_while_it_runs(sqlite_demo: Database) -> None:
    """A writer commits all the time while three restores run: every committed row is afterwards
    in the live database or in a before-restore copy (the old restore lost writes that committed
    between its before-restore copy and the overwrite)."""
    path = sqlite_demo.sqlite_path
    actor = system_actor(sqlite_demo.session())
    source = Path(backup.create(sqlite_demo, actor).path)
    committed: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        w = open_database(path)
        who = system_actor(w.session())
        try:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    with w.work(who) as s:
                        s.add(Setting(key=f"w-{i}", value=i))
                    committed.append(f"w-{i}")
                except Exception:  # noqa: BLE001 - a refused write is allowed; a lost one is not
                    time.sleep(0.01)
        finally:
            w.dispose()

    t = threading.Thread(target=writer)
    t.start()
    safeties = []
    try:
        for _ in range(3):
            time.sleep(0.3)
            safeties.append(backup.restore(sqlite_demo, actor, source))
        time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    seen: set[str] = set()
    for f in [path, *safeties]:
        con = sqlite3.connect(f)
        seen |= {r[0] for r in con.execute("SELECT key FROM settings WHERE key LIKE 'w-%'")}
        con.close()
    assert len(committed) > 10
    assert set(committed) - seen == set()
    assert integrity_check(sqlite_demo) == "ok"


def test_restore_is_refused_while_another_writer_holds_the_database(sqlite_demo: Database, monkeypatch) -> None:
    path = sqlite_demo.sqlite_path
    actor = system_actor(sqlite_demo.session())
    source = Path(backup.create(sqlite_demo, actor).path)
    monkeypatch.setattr(backup, "SQLITE_BUSY_TIMEOUT_MS", 300)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a long import holding the write lock
    other.execute("INSERT INTO settings (key, value, updated_at) VALUES ('import', '1', '2026-01-01')")
    try:
        with pytest.raises(GridmanError) as e:
            backup.restore(sqlite_demo, actor, source)
        assert "正在被其他操作写入" in e.value.message
        assert not list(path.parent.glob("*before-restore*"))
    finally:
        other.execute("COMMIT")
        other.close()
    with sqlite_demo.session() as s:
        assert s.get(Setting, "import") is not None  # the writer's commit stands


def test_restoring_an_older_backup_brings_it_to_the_current_schema(sqlite_demo: Database, tmp_path: Path) -> None:
    old = tmp_path / "old.backup-manual-20250101-000000.sqlite"
    d = open_database(old, upgrade=False)
    upgrade_database(d, target="0002")
    d.dispose()
    actor = system_actor(sqlite_demo.session())
    safety = backup.restore(sqlite_demo, actor, old)
    assert current_revision(sqlite_demo) == head_revision()
    assert integrity_check(sqlite_demo) == "ok"
    with sqlite_demo.session() as s:
        assert s.scalar(select(Resident.id).limit(1)) is None
    assert backup.verify(safety).ok and not list(tmp_path.glob(".restore-*"))


def test_a_damaged_or_foreign_file_is_not_a_backup(sqlite_demo: Database, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for f in (text, tmp_path / "absent.sqlite"):
        with pytest.raises(ValidationError):
            backup.restore(sqlite_demo, system_actor(sqlite_demo.session()), f)
    with pytest.raises(ValidationError):
        backup.restore(sqlite_demo, system_actor(sqlite_demo.session()), sqlite_demo.sqlite_path)


def test_schedule_is_kept_in_the_database_and_create_if_due_honours_it(sqlite_db: Database, capsys,
                                                                        tmp_path: Path) -> None:
    path = sqlite_db.sqlite_path
    folder = tmp_path / "scheduled"
    make_user(sqlite_db, "boss", Role.ADMIN)

    def cli(db: object, capsys, *args: str) -> tuple[int, dict | None, str]:
        return globals()["cli"](db, capsys, *args, user="boss")
    rc, out, err = cli(path, capsys, "create", "--if-due", "--json")
    assert rc == 0 and out == {"created": False, "scheduled": False}, err
    rc, out, err = cli(path, capsys, "schedule", "--every-days", "2", "--keep", "1", "--folder", str(folder), "--json")
    assert rc == 0 and out["schedule"] == {"every_days": 2, "keep": 1, "folder": str(folder.resolve())}, err
    rc, out, err = cli(path, capsys, "create", "--if-due", "--json")
    assert rc == 0 and out["created"] and Path(out["path"]).parent == folder.resolve(), err
    first = out["path"]
    rc, out, _ = cli(path, capsys, "create", "--if-due", "--json")
    assert out["created"] is False
    later = backup.create_if_due(sqlite_db, system_actor(sqlite_db.session()), now=datetime.now() + timedelta(days=3))
    assert later is not None and [e.path for e in backup.list_backups(sqlite_db, folder)] == [later.path]
    assert not Path(first).exists()  # keep 1
    rc, out, err = cli(path, capsys, "schedule", "--every-days", "0", "--json")
    assert rc == 0 and out["schedule"] is None
    rc, out, err = cli(path, capsys, "schedule", "--every-days", "-1")
    assert rc == 2 and "0–366" in err


def test_new_databases_and_backups_are_private(tmp_path: Path, capsys, umask_022) -> None:
    """Residents' data is created 0600 (it was 0644): db init, the sample, backups."""
    fresh = tmp_path / "fresh.sqlite"
    assert main(["--db", str(fresh), "db", "init", "--json"]) == 0
    assert private(fresh)
    d = open_database(fresh)
    try:
        made = backup.create(d, system_actor(d.session()))
        assert private(made.path)
    finally:
        d.dispose()
    capsys.readouterr()

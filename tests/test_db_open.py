"""Opening a database file (issue #16, Build 7): what is not a gridman database is refused with a
clear answer (exit 2) and left byte-identical; a missing path is refused unless the command creates
one; ``db check`` diagnoses a damaged file instead of failing on it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from gridman.cli import main
from gridman.core.db import SchemaError, open_database
from gridman.core.errors import GridmanError


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse refusals
        rc = int(exc.code or 0)
    out = capsys.readouterr()
    return rc, out.out, out.err


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_a_missing_db_path_is_refused_and_not_created(tmp_path, capsys):
    typo = tmp_path / "gridmna.sqlite"
    rc, out, err = cli(capsys, "--db", str(typo), "stats")
    assert rc == 2 and out == ""
    assert "不存在" in err and "gridman db init" in err and "意外" not in err
    assert not typo.exists() and not list(tmp_path.iterdir())
    rc, _out, err = cli(capsys, "--lang", "en", "--db", str(typo), "incidents", "queue")
    assert rc == 2 and "does not exist" in err and not typo.exists()
    with pytest.raises(GridmanError):
        open_database(typo, create=False)
    # the commands that create a database still do
    rc, _out, err = cli(capsys, "--db", str(typo), "db", "init", "--json")
    assert rc == 0, err
    assert typo.exists()
    pw = tmp_path / "pw"
    pw.write_text("Office#2026pw\n", encoding="utf-8")
    pw.chmod(0o600)
    rc, _out, err = cli(capsys, "--db", str(typo), "users", "add", "chief", "--password-file", str(pw), "--json")
    assert rc == 0, err  # the first account, made without signing in
    rc, out, err = cli(capsys, "--db", str(typo), "--as", "chief", "--password-file", str(pw), "stats", "--json")
    assert rc == 0 and json.loads(out)["tables"]["residents"] == 0, err


def test_a_text_file_a_folder_and_a_read_only_file_get_a_clear_answer(tmp_path, empty_templates, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("这不是数据库\n", encoding="utf-8")
    rc, _out, err = cli(capsys, "--db", str(text), "stats")
    assert rc == 2 and "不是数据库文件" in err and "意外" not in err
    assert text.read_text(encoding="utf-8") == "这不是数据库\n"

    folder = tmp_path / "folder"
    folder.mkdir()
    rc, _out, err = cli(capsys, "--db", str(folder), "stats")
    assert rc == 2 and "文件夹" in err and "意外" not in err
    assert not list(folder.iterdir())

    ro_dir = tmp_path / "ro"
    ro_dir.mkdir()
    ro = ro_dir / "ro.sqlite"
    shutil.copyfile(empty_templates["sqlite"], ro)
    ro.chmod(stat.S_IRUSR | stat.S_IRGRP)
    before = _files(ro_dir)
    try:
        rc, _out, err = cli(capsys, "--db", str(ro), "incidents", "escalate-overdue")
        assert rc == 2 and "只读" in err and "意外" not in err
        rc, _out, err = cli(capsys, "--lang", "en", "--db", str(ro), "stats")
        assert rc == 2 and "read-only" in err
        assert _files(ro_dir) == before
    finally:
        ro.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_a_foreign_sqlite_file_is_left_byte_identical(tmp_path, capsys):
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers (name) VALUES ('甲')")
    con.commit()
    con.close()
    before = _files(tmp_path)
    with pytest.raises(SchemaError):
        open_database(other)
    for argv in (["stats"], ["db", "init"], ["db", "upgrade"], ["db", "check"]):
        rc, _out, err = cli(capsys, "--db", str(other), *argv)
        assert rc == 3 and "不是 gridman 数据库" in err, argv
    # no WAL switch (header bytes 18-19), no -wal/-shm, no backup copy: nothing written
    assert _files(tmp_path) == before


def _damage(path: Path, table: str) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=DELETE")
    page = con.execute("PRAGMA page_size").fetchone()[0]
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE type='index' AND tbl_name=?", (table,)).fetchone()[0]
    con.close()
    with path.open("r+b") as f:
        f.seek((root - 1) * page + 100)
        f.write(b"\xff" * 200)


def test_db_check_diagnoses_a_damaged_file(demo_templates, tmp_path, capsys):
    bad = tmp_path / "bad.sqlite"
    shutil.copyfile(demo_templates["sqlite"], bad)
    _damage(bad, "residents")
    before = bad.read_bytes()
    rc, out, err = cli(capsys, "--db", str(bad), "db", "check")
    assert rc == 1 and "意外" not in err, err
    assert "已损坏" in out and "residents" in out and "gridman backup restore" in out
    rc, out, _err = cli(capsys, "--lang", "en", "--db", str(bad), "db", "check", "--json")
    res = json.loads(out)
    assert rc == 1 and res["damaged"] is True and "residents" in res["places"]
    assert "damaged" in res["integrity"] and "gridman backup restore" in res["integrity"]
    assert bad.read_bytes() == before  # diagnosing reads only
    from gridman.core.dbfile import diagnose

    assert diagnose(Path(demo_templates["sqlite"])).ok


def test_db_check_names_the_index_integrity_check_reports(demo_templates, tmp_path):
    """A damaged index (a row missing from it) is named with its table."""
    from gridman.core.dbfile import diagnose

    path = tmp_path / "ix.sqlite"
    shutil.copyfile(demo_templates["sqlite"], path)
    con = sqlite3.connect(path)
    name, table = con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type='index' AND tbl_name='residents' "
                              "AND sql IS NOT NULL").fetchone()
    con.execute("PRAGMA journal_mode=DELETE")
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (name,)).fetchone()[0]
    page = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    with path.open("r+b") as f:  # an empty leaf index page: the rows are missing from the index
        f.seek((root - 1) * page)
        f.write(bytes([0x0A, 0, 0, 0, 0, (page >> 8) & 0xFF, page & 0xFF, 0]) + bytes(page - 8))
    d = diagnose(path)
    assert not d.ok and any(name in p and table in p for p in d.places), (d.problems[:3], d.places)


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_open_database_still_creates_by_default(tmp_path):
    db = open_database(tmp_path / "new" / "g.sqlite")
    db.dispose()
    assert (tmp_path / "new" / "g.sqlite").exists()


def test_an_unknown_or_unreachable_database_address_gets_a_clear_answer(capsys):
    rc, _out, err = cli(capsys, "--db", "postgresql://clerk:s3cret-pw@127.0.0.1:1/gridman", "stats")
    assert rc == 2 and "无法连接数据库" in err and "意外" not in err
    assert "s3cret-pw" not in err  # the password is never printed
    rc, _out, err = cli(capsys, "--db", "foo://somewhere/x", "db", "init")
    assert rc == 2 and "无法识别数据库地址" in err and "意外" not in err

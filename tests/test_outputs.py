"""No output path destroys the database (issue #16, Build 1): every command and service that writes
a file refuses the open database (by any name: symlink, hard link, letter case), its -wal/-shm,
any SQLite file (backups) and the attachments folder — and writes through a temporary file."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from gridman.cli import main
from gridman.core.db import Database, integrity_check
from gridman.core.sample import iter_rows_digest
from gridman.core.services import export as ex
from gridman.core.services.errors import ValidationError
from gridman.core.services.mediation.attachments import attachments_root
from gridman.core.services.monthly_report import monthly_report
from gridman.core.services.permissions import system_actor
from tests.census_util import make_id, write_xlsx
from tests.helpers import signed_in

COMMUNITY = "340104001001"
STREET = "340104001"


def _commands(target: str, workbook: str) -> dict[str, list[str]]:
    return {
        "export residents": ["export", "residents", "--out", target],
        "report monthly": ["report", "monthly", "--area", STREET, "--month", "2026-03", "--out", target],
        "exchange checkout": ["exchange", "checkout", "--area", COMMUNITY, "--out", target],
        "areas export-geojson": ["areas", "export-geojson", "--area", STREET, "--out", target],
        "export template": ["export", "template", "residents", "--out", target],
        "import census --report": ["import", "census", workbook, "--report", target],
    }


def _bad_workbook(tmp_path: Path) -> str:
    rows = [["户号", "网格", "姓名", "公民身份号码", "与户主关系"],
            ["OUT1", "340104001001001", "输出一", make_id(date(1970, 1, 1), "M", area="340102"), "户主"],
            ["OUT1", "340104001001001", "输出二", "12345", "配偶"]]
    return str(write_xlsx(tmp_path / "in.xlsx", rows))


def _targets(db_file: Path) -> dict[str, Path]:
    d = db_file.parent
    links = d / "links"
    links.mkdir(exist_ok=True)
    sym = links / "sym.xlsx"
    sym.symlink_to(db_file)
    hard = links / "hard.xlsx"
    os.link(db_file, hard)
    return {"the file": db_file, "a symlink": sym, "a hard link": hard,
            "its -wal": db_file.with_name(db_file.name + "-wal"),
            "another letter case": d / db_file.name.upper(), "via ..": d / "links" / ".." / db_file.name}


def test_every_output_command_refuses_the_open_database(sqlite_demo: Database, tmp_path: Path, capsys) -> None:
    """6 of 6 commands overwrote the database on the old code (`export residents --out X` → 0 bytes)."""
    db_file = sqlite_demo.sqlite_path
    assert db_file is not None
    signed_in(db_file, "admin")  # the sign-in's session row is written before the "before" digest
    before = dict(iter_rows_digest(sqlite_demo))
    size = db_file.stat().st_size
    wb = _bad_workbook(tmp_path)
    for how, target in _targets(db_file).items():
        for name, args in _commands(str(target), wb).items():
            rc = main([*signed_in(db_file, "admin"), *args])
            err = capsys.readouterr().err
            assert rc == 2, (name, how, err)
            assert "不能写入" in err and str(target) in err and "数据库" in err, (name, how, err)
    assert db_file.stat().st_size == size
    assert integrity_check(sqlite_demo) == "ok"
    assert dict(iter_rows_digest(sqlite_demo)) == before
    assert not list(tmp_path.glob(".*.part")), "no temporary file left behind"


def test_outputs_refuse_backups_and_the_attachments_folder(demo_db: Database, tmp_path: Path) -> None:
    """On both backends: an existing SQLite file (a backup, another database) and anything in the
    attachments folder are never written over (the old code wrote them)."""
    backup = tmp_path / "gridman.backup-manual-20260101-000000.sqlite"
    import sqlite3

    con = sqlite3.connect(backup)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    kept = backup.read_bytes()
    with demo_db.session() as s:
        actor = system_actor(s)
        att = attachments_root(s)
    att.mkdir(parents=True, exist_ok=True)
    for target in (backup, att / "ab" / "list.xlsx", att / "x.xlsx", tmp_path):
        with pytest.raises(ValidationError) as e:
            ex.write_template("residents", target, bind=demo_db)
        assert str(target) in e.value.message
        with pytest.raises(ValidationError), demo_db.work(actor) as s:
            ex.export_list(s, actor, list_name="residents", out=target)
        with pytest.raises(ValidationError), demo_db.work(actor) as s:
            monthly_report(s, actor, area_code=STREET, month="2026-03", out=target)
    assert backup.read_bytes() == kept
    assert not list(att.rglob("*.xlsx"))


def test_files_are_written_to_a_temporary_file_and_renamed(demo_db: Database, tmp_path: Path) -> None:
    """Writing over a name replaces the file (a rename), never writes through it: another hard link
    to the old file keeps its bytes (the old code saved in place, changing both)."""
    with demo_db.session() as s:
        actor = system_actor(s)

    def linked_pair(name: str) -> tuple[Path, Path]:
        out, other = tmp_path / f"{name}.xlsx", tmp_path / f"{name}-other-link.xlsx"
        out.write_bytes(b"old workbook")
        os.link(out, other)
        return out, other

    out, other = linked_pair("template")
    ex.write_template("residents", out, bind=demo_db)
    assert openpyxl.load_workbook(out).sheetnames and other.read_bytes() == b"old workbook"
    out, other = linked_pair("list")
    with demo_db.work(actor) as s:
        ex.export_list(s, actor, list_name="households", out=out, area_code=COMMUNITY)
    assert openpyxl.load_workbook(out).sheetnames and other.read_bytes() == b"old workbook"
    assert not list(tmp_path.glob(".*.part"))

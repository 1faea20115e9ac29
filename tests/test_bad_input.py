"""Every bad input a clear answer (issue #16, Build 7): hostile values on the command line are
refused with a message in the user's language naming what is wrong and what to write, exit code 2,
nothing changed; text reaches no table with control characters or beyond its length."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import bindparam, func, select, update

from gridman.core.db import Database, table_counts
from gridman.core.errors import ValidationError
from gridman.core.models import Incident, Resident
from gridman.core.services.permissions import system_actor
from tests.helpers import signed_in
from tests.test_db_open import cli

HUGE = "9223372036854775808"  # 2^63: one past the largest id the databases hold
GRID = "340104001001001"


def _state(db: Database) -> tuple[dict[str, int], int]:
    with db.session() as s:
        return table_counts(s), s.scalar(select(func.coalesce(func.sum(Incident.version), 0))) or 0


def _bad_arguments(tmp: Path) -> list[tuple[list[str], str]]:
    not_json = tmp / "choices.json"
    not_json.write_text("{不是 JSON", encoding="utf-8")
    a_list = tmp / "list.json"
    a_list.write_text("[1, 2]", encoding="utf-8")
    return [
        (["incidents", "show", HUGE], "超出范围"),
        (["incidents", "show", "99999999999999999999999999"], "超出范围"),
        (["incidents", "act", "accept", HUGE], "超出范围"),
        (["incidents", "act", HUGE, "accept"], "超出范围"),
        (["incidents", "act", "accept", "1", "--version", HUGE], "超出范围"),
        (["incidents", "report", "--grid", GRID, "--category", "dispute", "--title", "t", "--resident", HUGE], "超出范围"),
        (["incidents", "queue", "--limit", HUGE], "超出范围"),
        (["incidents", "queue", "--offset", HUGE], "超出范围"),
        (["incidents", "policy", "--set", "grid", HUGE], "超出范围"),
        (["import", "undo", HUGE], "超出范围"),
        (["import", "list", "--limit", HUGE], "超出范围"),
        (["exchange", "undo", HUGE], "超出范围"),
        (["grids", "check", "--household-limit", HUGE], "超出范围"),
        (["coverage", "--facility-kind", "x", "--radius", "nan"], "超出范围"),
        (["incidents", "escalate-overdue", "--now", "9999-12-31"], "年份超出范围"),
        (["incidents", "act", "accept", "1", "--now", "9999-12-31T23:59"], "年份超出范围"),
        (["incidents", "queue", "--now", "9999-12-31"], "年份超出范围"),
        (["incidents", "queue", "--now", "yesterday"], "ISO"),
        (["stats", "mediation", "--to", "9999-12-31"], "年份超出范围"),
        (["report", "monthly", "--area", "340104001001", "--month", "9999-12", "--out", str(tmp / "m.xlsx")],
         "年份超出范围"),
        (["report", "monthly", "--area", "340104001001", "--month", "2026-13", "--out", str(tmp / "m.xlsx")],
         "YYYY-MM"),
        (["exchange", "checkin", str(not_json), "--choices", str(not_json)], "不是有效的 JSON"),
        (["exchange", "checkin", str(not_json), "--choices", str(a_list)], "JSON 对象"),
        (["exchange", "checkin", str(not_json), "--choices", str(tmp)], "文件夹"),
        (["exchange", "checkin", str(tmp / "missing.xlsx")], "找不到文件"),
        (["import", "census", str(tmp)], "文件夹"),
        (["import", "census", ""], "为空"),
        (["export", "residents", "--out", str(tmp)], "文件夹"),
        (["export", "residents", "--out", ""], "为空"),
        (["report", "monthly", "--area", "340104001001", "--month", "2026-11", "--out", str(tmp)], "文件夹"),
        (["exchange", "checkout", "--area", "340104001001", "--out", str(tmp)], "文件夹"),
        (["areas", "export-geojson", "--area", "340104001", "--out", str(tmp)], "文件夹"),
        (["incidents", "report", "--grid", GRID, "--category", "dispute", "--title", "t", "--attach", str(tmp)],
         "文件夹"),
        (["grids", "split", GRID, "--line", "garbage"], "LINESTRING"),
    ]


def test_bad_arguments_get_a_clear_answer_and_change_nothing(demo_db, tmp_path, capsys):
    signed_in(demo_db.url, "admin")  # the CLI session's row is written before the state is taken
    before = _state(demo_db)
    for argv, words in _bad_arguments(tmp_path):
        rc, out, err = cli(capsys, *signed_in(demo_db.url, "admin"), *argv)
        assert rc == 2, (argv, err)
        assert words in err and "意外" not in err and "Traceback" not in err, (argv, err)
        assert err.lstrip().splitlines()[-1].startswith("错误："), (argv, err)
    assert _state(demo_db) == before
    assert not list(tmp_path.glob("*.xlsx"))


def test_bad_arguments_answer_in_english_with_lang_en(tmp_path, capsys):
    db = tmp_path / "missing.sqlite"  # parsing refuses before any database is opened
    rc, _out, err = cli(capsys, "--lang", "en", "--db", str(db), "incidents", "show", HUGE)
    assert rc == 2 and "error: " in err and "out of range" in err and "超出" not in err
    rc, _out, err = cli(capsys, "--lang", "en", "--db", str(db), "report", "monthly", "--area", "x", "--month",
                        "9999-12", "--out", str(tmp_path / "m.xlsx"))
    assert rc == 2 and "year must lie between 1900 and 2999" in err
    assert not db.exists()


def test_control_characters_are_stripped_from_stored_and_echoed_text(demo_db, capsys):
    rc, out, err = cli(capsys, *signed_in(demo_db.url, "admin"), "incidents", "report", "--json", "--grid", GRID,
                       "--category", "dispute", "--title", "噪音\x1b[31m纠纷\x07", "--description",
                       "第一行\r\n第二行\t完\x00", "--party", "张\x1b三", "--now", "2026-11-01T09:00")
    assert rc == 0, err
    iid = json.loads(out)["incident_id"]
    rc, out, err = cli(capsys, *signed_in(demo_db.url, "admin"), "incidents", "show", str(iid))
    assert rc == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\x00" not in out
    with demo_db.session() as s:
        inc = s.get(Incident, iid)
        assert (inc.title, inc.description) == ("噪音[31m纠纷", "第一行\n第二行\t完")
        assert [p.name for p in inc.parties] == ["张三"]
    # a NUL in a search text is no database error (PostgreSQL refuses NUL in a query)
    rc, _out, err = cli(capsys, *signed_in(demo_db.url, "admin"), "incidents", "queue", "--text", "纠\x00纷")
    assert rc == 0, err


def test_too_long_text_is_refused_naming_the_field(demo_db, capsys):
    signed_in(demo_db.url, "admin")  # the CLI session's row is written before the state is taken
    before = _state(demo_db)
    long = "长" * 20_001
    rc, _out, err = cli(capsys, *signed_in(demo_db.url, "admin"), "incidents", "report", "--grid", GRID,
                        "--category", "dispute", "--title", "t", "--description", long, "--now", "2026-11-01T09:00")
    assert rc == 2 and "“描述”太长" in err and "20001" in err and "意外" not in err
    rc, _out, err = cli(capsys, "--lang", "en", *signed_in(demo_db.url, "admin"), "incidents", "report", "--grid",
                        GRID, "--category", "dispute", "--title", "t", "--description", long,
                        "--now", "2026-11-01T09:00")
    assert rc == 2 and "Description is too long: 20001 characters, at most 20000" in err
    assert _state(demo_db) == before


def test_the_text_rule_covers_core_statements_and_orm_objects(demo_db):
    """Bulk writes (census import, exchange check-in) use Core statements: the same rule holds."""
    with demo_db.session() as s:
        admin = system_actor(s)
        rid, rid2 = s.scalars(select(Resident.id).order_by(Resident.id).limit(2)).all()
    with demo_db.work(admin) as s:
        s.execute(update(Resident).where(Resident.id == rid).values(note="备\x1b注\x00", name="王\x7f五"))
        t = Resident.__table__
        s.execute(update(t).where(t.c.id == bindparam("rid")), [{"rid": rid2, "note": "批量\x1b"}])
    with demo_db.work(admin) as s:
        r = s.get(Resident, rid)
        r.phone = "138\x0000"
    with demo_db.session() as s:
        r, r2 = s.get(Resident, rid), s.get(Resident, rid2)
        assert (r.note, r.name, r.phone, r2.note) == ("备注", "王五", "13800", "批量")
    with pytest.raises(ValidationError) as ei, demo_db.work(admin) as s:
        s.execute(update(Resident).where(Resident.id == rid).values(note="x" * 20_001))
    assert "备注" in ei.value.text() and "Note" in ei.value.text("en")
    with demo_db.session() as s:
        assert s.get(Resident, rid).note == "备注"


def test_the_parsers_own_refusals_are_in_the_users_language(tmp_path, capsys):
    db = str(tmp_path / "missing.sqlite")
    rc, _out, err = cli(capsys, "--db", db, "incidents", "show")
    assert rc == 2 and "错误：缺少必需的参数：id" in err
    rc, _out, err = cli(capsys, "--db", db, "incidents", "queue", "--level", "village")
    assert rc == 2 and "错误：参数 --level：无效的选项 'village'" in err
    rc, _out, err = cli(capsys, "--lang", "en", "--db", db, "incidents", "show")
    assert rc == 2 and "error: the following arguments are required: id" in err

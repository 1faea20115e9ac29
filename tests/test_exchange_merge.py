"""Exchange merges per field (issue 16, Build 5): a row changed both offline and centrally keeps the
offline changes to fields that did not change centrally, whatever the resolution; the conflict
table names only the fields changed on both sides to different values. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from gridman.core.db import Database
from gridman.core.models import Area, Resident
from gridman.core.services import people
from tests.test_exchange import G1, Sheet, admin_of, checkin, checkout


def _resident(db: Database) -> tuple[int, str]:
    with db.session() as s:
        g1 = s.scalar(select(Area.id).where(Area.code == G1))
        r = s.scalar(select(Resident).where(Resident.grid_id == g1).order_by(Resident.id).limit(1))
        assert r is not None
        return r.id, r.uuid


def _edit_offline(book: Path, uuid: str, values: dict[str, Any]) -> None:
    wb = load_workbook(book)
    sh = Sheet(wb, "实有人口")
    for header, v in values.items():
        sh.set(uuid, header, v)
    wb.save(book)


def _edit_centrally(db: Database, rid: int, **values: Any) -> None:
    a = admin_of(db)
    with db.work(a) as s:
        r = s.get(Resident, rid)
        assert r is not None
        people.update_resident(s, a, rid, expected_version=r.version, **values)


def _row(db: Database, rid: int) -> Resident:
    with db.session() as s:
        r = s.get(Resident, rid)
        assert r is not None
        s.expunge(r)
        return r


def _prepare(db: Database, tmp_path: Path) -> tuple[int, str, Path]:
    rid, uuid = _resident(db)
    _edit_centrally(db, rid, ethnicity="汉族", phone="13800000001", employer="原单位")
    book = tmp_path / "g.xlsx"
    checkout(db, book, grid_codes=[G1])
    return rid, uuid, book


def test_offline_edit_of_a_field_not_changed_centrally_survives_keep_central(demo_db: Database,
                                                                             tmp_path: Path) -> None:
    """The reported loss: 民族 汉族 → 回族 offline, the phone changed on both sides."""
    rid, uuid, book = _prepare(demo_db, tmp_path)
    _edit_offline(book, uuid, {"民族": "回族", "联系电话": "13900000009"})
    _edit_centrally(demo_db, rid, phone="13700000007")
    res = checkin(demo_db, book)  # keep-central, the default
    r = _row(demo_db, rid)
    assert r.ethnicity == "回族"
    assert r.phone == "13700000007"
    (conf,) = res.conflicts
    assert conf.uuid == uuid and conf.resolution == "keep-central"
    assert [(f.field, f.offline, f.central, f.clash) for f in conf.fields] == [
        ("phone", "13900000009", "13700000007", True)]


def test_rows_changed_on_both_sides_in_different_fields_merge_without_a_conflict(demo_db: Database,
                                                                                 tmp_path: Path) -> None:
    rid, uuid, book = _prepare(demo_db, tmp_path)
    _edit_offline(book, uuid, {"民族": "回族"})
    _edit_centrally(demo_db, rid, phone="13700000007")
    res = checkin(demo_db, book, resolve="ask")  # nothing to ask about
    assert res.conflicts == []
    assert res.counts["residents"].get("updated") == 1
    r = _row(demo_db, rid)
    assert (r.ethnicity, r.phone) == ("回族", "13700000007")


def test_same_change_on_both_sides_is_no_conflict(demo_db: Database, tmp_path: Path) -> None:
    rid, uuid, book = _prepare(demo_db, tmp_path)
    _edit_offline(book, uuid, {"联系电话": "13700000007", "工作单位": "离线单位"})
    _edit_centrally(demo_db, rid, phone="13700000007", ethnicity="满族")
    res = checkin(demo_db, book, resolve="ask")
    assert res.conflicts == []
    r = _row(demo_db, rid)
    assert (r.phone, r.employer, r.ethnicity) == ("13700000007", "离线单位", "满族")


@pytest.mark.parametrize("resolve", ["keep-central", "keep-offline"])
def test_conflict_table_shows_only_true_conflicts(demo_db: Database, tmp_path: Path, resolve: str) -> None:
    """Fields changed only offline or only centrally are not in the conflict; each resolution still
    takes the offline-only field."""
    rid, uuid, book = _prepare(demo_db, tmp_path)
    _edit_offline(book, uuid, {"民族": "回族", "联系电话": "13900000009"})
    _edit_centrally(demo_db, rid, phone="13700000007", employer="中心单位")
    res = checkin(demo_db, book, resolve=resolve)
    (conf,) = res.conflicts
    assert [f.field for f in conf.fields] == ["phone"]
    r = _row(demo_db, rid)
    assert (r.ethnicity, r.employer) == ("回族", "中心单位")
    assert r.phone == ("13700000007" if resolve == "keep-central" else "13900000009")


def test_exchange_workbook_keeps_formula_like_text_as_text(demo_db: Database, tmp_path: Path) -> None:
    """A resident's note "=HYPERLINK(…)" is checked out as text with Excel's quote prefix (stays
    text when the clerk edits the cell), and comes back unchanged."""
    rid, uuid = _resident(demo_db)
    evil = '=HYPERLINK("http://example.invalid/x","点我")'
    _edit_centrally(demo_db, rid, note=evil)
    book = tmp_path / "g.xlsx"
    checkout(demo_db, book, grid_codes=[G1])
    wb = load_workbook(book)
    sh = Sheet(wb, "实有人口")
    cell = sh.ws.cell(sh.row_of(uuid), sh.col["备注"])
    assert (cell.value, cell.data_type, cell.quotePrefix) == (evil, "s", True)
    assert cell.protection.locked is False  # still editable, like the rest of its column
    plain = sh.ws.cell(sh.row_of(uuid), sh.col["姓名"])
    assert plain.data_type == "s" and not plain.quotePrefix
    res = checkin(demo_db, book)
    assert res.conflicts == [] and _row(demo_db, rid).note == evil

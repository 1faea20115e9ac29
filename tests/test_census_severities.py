"""Census import severities (issue 16, Build 6) on SQLite and PostgreSQL, with real workbooks:
identity errors refuse the person, secondary errors import it without that value (a warning);
identical duplicate rows collapse; 15-digit IDs become 18 digits; formula cells give their saved
values; a claimed whole-sheet <dimension> is ignored; a second phone column is the landline; the
error workbook keeps formula-like text as text and says its counts in Chinese."""

from __future__ import annotations

import re
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import select

from gridman.core import idcard
from gridman.core.db import Database
from gridman.core.models import Resident
from gridman.core.services import census as ci
from gridman.core.services.permissions import system_actor
from tests.census_util import make_id, write_xlsx
from tests.helpers import build_tree

G1 = "340104001001001"
ID_A = make_id(date(1980, 1, 2), "M")
ID_B = make_id(date(1982, 3, 4), "F")
HEAD = ["序号", "户号", "网格", "姓名", "公民身份号码", "与户主关系"]


def _run(db: Database, path: Path, **kw: Any) -> ci.ImportResult:
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        return ci.import_census(s, admin, path=path, **kw)


def _people(db: Database) -> dict[str, Resident]:
    with db.session() as s:
        out = {r.name: r for r in s.scalars(select(Resident))}
        for r in out.values():
            s.expunge(r)
        return out


def _codes(res: ci.ImportResult) -> set[tuple[int, str | None, str, str]]:
    return {(i.row, i.field, i.code, i.severity) for i in res.issues}


def _patch_sheet(path: Path, edit: Any) -> Path:
    """Rewrite the first worksheet's XML of a workbook with ``edit(xml bytes) -> bytes``."""
    out = path.with_name("patched-" + path.name)
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = edit(data)
            zout.writestr(item, data)
    return out


def test_a_bad_secondary_field_imports_the_person_without_it(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    rows = [[*HEAD, "联系电话", "标签", "民族", "现住址"],
            [1, "S1", G1, "张三", ID_A, "户主", "13955", "外星人", "火星族", "x" * 300],
            [2, "S1", G1, "李四", ID_B, "配偶", "13800138000", "低保", "汉族", "某路1号"]]
    res = _run(db, write_xlsx(tmp_path / "s.xlsx", rows))
    assert (res.status, res.inserted, res.rejected) == ("imported", 2, 0)
    got = _codes(res)
    for f, code in (("phone", "phone"), ("tags", "tag"), ("ethnicity", "enum"), ("current_address", "too_long")):
        assert (2, f, code, "warning") in got, (f, code, got)
    assert res.warnings >= 4 and not any(i.severity == "error" for i in res.issues)
    # the error workbook has the warning row, its bad cells amber with the reason (quarantine: only that row)
    res = _run(db, write_xlsx(tmp_path / "s2.xlsx", rows), policy="quarantine", dry_run=True)
    ws = openpyxl.load_workbook(ci.write_error_workbook(res, tmp_path / "r.xlsx"))["导入问题"]
    got_rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert [r[-1] for r in got_rows] == [2] and "该项未导入" in got_rows[0][-2]
    people = _people(db)
    assert (people["张三"].phone, people["张三"].ethnicity, people["张三"].current_address) == (None, None, None)
    assert people["张三"].citizen_id == ID_A
    assert people["李四"].phone == "13800138000"


def test_a_bad_identity_field_still_refuses_the_person(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    rows = [HEAD, [1, "S1", G1, "张三", "340104198001020000", "户主"], [2, "S2", G1, "", ID_B, "户主"]]
    res = _run(db, write_xlsx(tmp_path / "s.xlsx", rows), policy="quarantine")
    assert (res.inserted, res.rejected) == (0, 2)
    assert {(i.row, i.field, i.severity) for i in res.issues} >= {(2, "citizen_id", "error"), (3, "name", "error")}


def test_identical_duplicate_rows_collapse_to_one(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    rows = [HEAD, [1, "D1", G1, "张三", ID_A, "户主"], [2, "D1", G1, "张三", ID_A, "户主"],
            [3, "D1", G1, "李四", None, "配偶"], [4, "D1", G1, "李四", None, "配偶"]]
    res = _run(db, write_xlsx(tmp_path / "d.xlsx", rows))
    assert (res.status, res.inserted, res.rejected) == ("imported", 2, 0)
    assert {(2, "citizen_id", "duplicate_identical", "warning"), (4, "name", "duplicate_identical", "warning")} \
        <= _codes(res)
    assert sorted(p.name for p in _people(db).values()) == ["张三", "李四"]


def test_different_rows_with_one_id_are_still_both_refused(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    rows = [HEAD, [1, "D1", G1, "张三", ID_A, "户主"], [2, "D1", G1, "张叁", ID_A, "户主"]]
    res = _run(db, write_xlsx(tmp_path / "d.xlsx", rows), policy="quarantine")
    assert (res.inserted, res.rejected) == (0, 2)


def test_fifteen_digit_ids_become_eighteen(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    old_text, old_number = "340104800101001", 340104820304002
    rows = [HEAD, [1, "F1", G1, "老号一", old_text, "户主"], [2, "F1", G1, "老号二", old_number, "配偶"]]
    res = _run(db, write_xlsx(tmp_path / "f.xlsx", rows))
    assert (res.status, res.inserted) == ("imported", 2)
    people = _people(db)
    one, two = people["老号一"], people["老号二"]
    assert one.citizen_id == idcard.upgrade(old_text) == "34010419800101001" + one.citizen_id[-1]
    assert idcard.is_valid(one.citizen_id) and (one.birth_date, one.sex) == (date(1980, 1, 1), "M")
    assert two.citizen_id == idcard.upgrade(str(old_number)) and (two.birth_date, two.sex) == (date(1982, 3, 4), "F")
    assert {(2, "citizen_id", "id_upgraded", "warning"), (3, "citizen_id", "id_upgraded", "warning")} <= _codes(res)


def test_formula_cells_use_their_saved_values_with_a_warning(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    rows = [HEAD, ["=ROW()-1", "M1", G1, "=\"张\"&\"三\"", ID_A, "户主"], ["=ROW()-1", "M1", G1, "李四", ID_B, "配偶"]]
    src = write_xlsx(tmp_path / "m.xlsx", rows)

    def cache(xml: bytes) -> bytes:  # what Excel saves: each formula with its last result
        xml = re.sub(rb'<c r="A(\d+)"([^>]*)><f>ROW\(\)-1</f><v\s*/>',
                     lambda m: b'<c r="A%s"%s><f>ROW()-1</f><v>%d</v>' % (m.group(1), m.group(2), int(m.group(1)) - 1),
                     xml)
        return re.sub(rb'<c r="D2"([^>]*)><f>(.*?)</f><v\s*/>',
                      lambda m: b'<c r="D2" t="str"><f>' + m.group(2) + "</f><v>张三</v>".encode(), xml)

    path = _patch_sheet(src, cache)
    assert b"<f>" in zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    res = _run(db, path)
    assert (res.status, res.inserted) == ("imported", 2)
    assert sorted(_people(db)) == ["张三", "李四"]
    assert (2, "name", "formula", "warning") in _codes(res)
    assert any(i.code == "formula" and i.field is None and "序号" in i.message for i in res.issues)


def test_a_whole_sheet_dimension_is_ignored(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    src = write_xlsx(tmp_path / "w.xlsx", [HEAD, [1, "W1", G1, "张三", ID_A, "户主"]])
    path = _patch_sheet(src, lambda xml: re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:XFD1048576"/>',
                                                xml))
    assert b"A1:XFD1048576" in zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    res = _run(db, path)
    assert (res.status, res.inserted) == ("imported", 1)


def test_a_second_phone_column_is_the_landline(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    a = write_xlsx(tmp_path / "a.xlsx", [[*HEAD, "联系电话", "固定电话"],
                                         [1, "P1", G1, "张三", ID_A, "户主", "13800138000", "0551-62345678"]])
    res = _run(db, a)
    assert res.status == "imported" and res.mapping["固定电话"] == "landline"
    b = write_xlsx(tmp_path / "b.xlsx", [[*HEAD, "电话", "电话"],
                                         [1, "P2", G1, "李四", ID_B, "户主", "13900139000", "010-12345678"]])
    res = _run(db, b)
    assert res.status == "imported"
    people = _people(db)
    assert (people["张三"].phone, people["张三"].landline) == ("13800138000", "0551-62345678")
    assert (people["李四"].phone, people["李四"].landline) == ("13900139000", "010-12345678")


def test_error_workbook_keeps_formula_like_text_as_text(db: Database, tmp_path: Path) -> None:
    build_tree(db)
    evil = '=HYPERLINK("http://example.invalid/x","点我")'
    rows = [[*HEAD, "出生日期", "备注"],
            [1, "E1", G1, "张三", ID_A, "户主", date(1980, 1, 2), evil],
            [2, "E1", G1, "李四", "123", "配偶", None, "@SUM(1)"]]
    res = _run(db, write_xlsx(tmp_path / "e.xlsx", rows, literal=True))
    assert res.status == "rejected"
    out = ci.write_error_workbook(res, tmp_path / "report.xlsx")
    wb = openpyxl.load_workbook(out)
    ws = wb["导入问题"]
    hdr = {c.value: c.column for c in ws[1]}
    cell = ws.cell(2, hdr["备注"])
    assert (cell.value, cell.data_type) == (evil, "s") and cell.quotePrefix
    assert ws.cell(3, hdr["备注"]).data_type == "s" and ws.cell(3, hdr["备注"]).quotePrefix
    assert ws.cell(2, hdr["序号"]).value == 1 and ws.cell(2, hdr["序号"]).data_type == "n"
    assert ws.cell(2, hdr["出生日期"]).is_date
    assert not any(c.data_type == "f" for row in ws.iter_rows() for c in row)
    info = {r[0].value: r[1].value for r in wb["说明"].iter_rows()}
    assert info["读取行数"] == 2 and info["新增"] == 0 and "rows_read" not in info and "rejected" not in info
    assert info["结果"] == "有错误，整个文件未导入"

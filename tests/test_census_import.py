"""Census import on both databases: real workbooks in many shapes, exact DB content and reports."""

from __future__ import annotations

from datetime import date

import openpyxl
import pytest
from sqlalchemy import select

from gridman.core.enums import Role
from gridman.core.models import AuditEntry, ImportBatch, Resident, Setting
from gridman.core.services import audit, people
from gridman.core.services import census as ci
from gridman.core.services.errors import ConflictError, PermissionDenied
from gridman.core.services.permissions import system_actor
from gridman.core.tasks import Cancelled, TaskState
from tests.census_util import counts, make_id, residents, write_xlsx
from tests.helpers import build_tree, make_user

G1, G2, G3 = "340104001001001", "340104001001002", "340104002001001"
ID_A = make_id(date(1980, 1, 2), "M")
ID_B = make_id(date(1982, 3, 4), "F", want_x=True)
ID_C = make_id(date(2010, 5, 6), "M")
ID_D = make_id(date(1975, 5, 6), "M")
ID_E = make_id(date(1999, 9, 9), "F")
FW = str.maketrans("0123456789", "０１２３４５６７８９")


def admin_of(db):
    with db.session() as s:
        return system_actor(s)


def run(db, actor, path, **kw):
    with db.work(actor) as s:
        return ci.import_census(s, actor, path=path, **kw)


def issues(res):
    return [(i.row, i.column, i.code) for i in res.issues]


def census_rows():
    return [
        ["西园社区实有人口信息采集表"],
        ["填报单位：西园社区", None, None, None, "填报日期：2026年3月"],
        ["序号", "户号", "网格", "姓名", "公民身份号码", "性别", "出生日期", "与户主关系", "人口类型", "联系电话", "民族", "标签"],
        [None, "必填", "必填", "必填", "18位，文本格式", "可选", "yyyy-mm-dd", "必填", "可选", "可选", "可选", "可选"],
        [1, "H001", G1, "张三", ID_A.translate(FW), "男", "1980-01-02", "户主", "户籍", "13800138000", "汉", "低保、残疾"],
        [2, "H001", G1, "李四", ID_B.lower(), "女", "1982/3/4", "妻", "户籍人口", "+86 139 0013 9000", "汉族", ""],
        [],
        [3, "H001", G1, "张小", ID_C, None, 20100506, "子", None, None, "汉族", "留守儿童"],
        [4, "H002", "第2网格", "王五", ID_D, "", "1975年5月6日", "户主", "流动人口", "0551-62345678", "回族", None],
        [5, "H002", "第2网格", "赵六", "", "女", 27000, "配偶", "流动", None, "回族", None],
        [6, "H002", "第2网格", "钱七", ID_E, None, "1999.9.9", "子女", "流动", None, "回族", None],
        [7, "H002", "第2网格", "孙八", None, "男", date(2001, 2, 3), "其他", "流动", None, None, None],
        ["合计", None, None, "7人"],
    ]


EXPECTED = [  # (household, grid, name, sex, id, birth, relation, type, phone, ethnicity, status, tags)
    ("H001", G1, "张三", "M", ID_A, date(1980, 1, 2), "head", "registered", "13800138000", "汉族", "active",
     ("disabled", "low_income")),
    ("H001", G1, "张小", "M", ID_C, date(2010, 5, 6), "child", "registered", None, "汉族", "active",
     ("left_behind_child",)),
    ("H001", G1, "李四", "F", ID_B, date(1982, 3, 4), "spouse", "registered", "13900139000", "汉族", "active", ()),
    ("H002", G2, "孙八", "M", None, date(2001, 2, 3), "other", "floating", None, None, "active", ()),
    ("H002", G2, "王五", "M", ID_D, date(1975, 5, 6), "head", "floating", "0551-62345678", "回族", "active", ()),
    ("H002", G2, "赵六", "F", None, date(1973, 12, 2), "spouse", "floating", None, "回族", "active", ()),
    ("H002", G2, "钱七", "F", ID_E, date(1999, 9, 9), "child", "floating", None, "回族", "active", ()),
]


def test_title_rows_notes_row_every_date_form_exact_db_content(db, tmp_path):
    build_tree(db)
    path = write_xlsx(tmp_path / "采集表.xlsx", census_rows(), merge="A1:L1")
    admin = admin_of(db)
    res = run(db, admin, path)
    assert res.status == "imported", res.issues
    assert (res.sheet, res.header_row, res.rows_read) == ("人口", 3, 7)
    assert res.skipped_rows == [(4, "说明行 / notes row"), (13, "合计行 / totals row")]
    assert (res.inserted, res.updated, res.unchanged, res.rejected, res.warnings) == (7, 0, 0, 0, 0)
    assert (res.households_created, res.tags_added) == (2, 3)
    assert res.unknown_columns == []
    assert residents(db) == sorted(EXPECTED, key=lambda r: r[2])
    with db.session() as s:
        batch = s.get(ImportBatch, res.batch_id)
        assert (batch.kind, batch.file_name, batch.status, len(batch.file_sha256)) == ("census", "采集表.xlsx", "done", 64)
        assert batch.counts["inserted"] == 7
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.batch_id == res.batch_id)))
        acts = sorted((a.table_name, a.action) for a in entries)
        assert acts == sorted([("households", "insert")] * 2 + [("residents", "insert")] * 7)
        fields = {t: audit.batch_fields(s, res.batch_id, t) for t in ("residents", "households")}
        expanded = [audit.expand(a.changes, fields[a.table_name]) for a in entries]
        zs = next(c for c in expanded if c.get("name") == [None, "张三"])
        hh = sorted(c["household_no"][1] for a, c in zip(entries, expanded, strict=True) if a.table_name == "households")
        assert hh == sorted({r[0] for r in EXPECTED})
        assert zs["tags"] == [None, ["low_income", "disabled"]]
        assert zs["citizen_id"] == [None, ID_A] and zs["birth_date"] == [None, "1980-01-02"]
        assert zs["relation_to_head"] == [None, "head"]
    # the same file again: nothing changes
    again = run(db, admin, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 7)
    assert residents(db) == sorted(EXPECTED, key=lambda r: r[2])


def test_english_headers_and_numbers_as_ids(db, tmp_path):
    build_tree(db)
    rows = [["Household No", "Grid", "Name", "ID Number", "Sex", "Birthday", "Relationship", "Phone", "Shoe size"],
            ["E1", G1, "Alice", ID_B, "F", "1982-03-04", "head", 13800138000, 38],
            ["E1", G1, "Bob", float(ID_A), "M", "1980-01-02", "spouse", None, 43]]
    path = write_xlsx(tmp_path / "en.xlsx", rows)
    res = run(db, admin_of(db), path)
    assert res.status == "rejected"
    assert res.unknown_columns == ["Shoe size"]
    assert issues(res) == [(3, "ID Number", "id_corrupted")]
    assert residents(db) == []
    q = run(db, admin_of(db), path, policy="quarantine")
    assert (q.inserted, q.rejected) == (1, 1)
    assert residents(db) == [("E1", G1, "Alice", "F", ID_B, date(1982, 3, 4), "head", "registered", "13800138000",
                              None, "active", ())]


def error_rows():
    return [
        ["户号", "网格", "姓名", "身份证号", "与户主关系", "出生日期"],
        ["H010", G1, "甲", ID_A, "户主", None],
        ["H010", G1, "乙", ID_B, "户主", None],
        ["H011", G1, "丙", ID_A, "配偶", None],
        ["H011", G1, "丁", 3.40104199001011e17, "子女", None],
        ["H012", "火星网格", "戊", None, "户主", "1990-13-01"],
        ["H013", G2, "己", ID_C, "户主", "2010-05-07"],
        ["H014", G2, "庚", ID_D, "户主", None],
    ]


EXPECTED_ISSUES = [
    (2, "与户主关系", "two_heads"), (2, "身份证号", "duplicate_in_file"),
    (3, "与户主关系", "two_heads"),
    (4, "与户主关系", "no_head"), (4, "身份证号", "duplicate_in_file"),
    (5, "与户主关系", "no_head"), (5, "身份证号", "id_corrupted"),
    (6, "出生日期", "date_invalid"), (6, "网格", "grid_unknown"),
    (7, "出生日期", "birth_mismatch"),
]


def test_duplicates_two_heads_reject_whole_file_with_exact_report(db, tmp_path):
    build_tree(db)
    before = counts(db)
    path = write_xlsx(tmp_path / "bad.xlsx", error_rows())
    res = run(db, admin_of(db), path)
    assert res.status == "rejected"
    assert issues(res) == EXPECTED_ISSUES
    assert (res.inserted, res.rejected, res.warnings) == (0, 7, 3)  # 1990-13-01: a secondary field (issue 16)
    # not a single row written, no batch recorded — only the audit row of the check (issue 16)
    assert counts(db) == {**before, "audit_log": before["audit_log"] + 1}
    msgs = {(i.row, i.code): i.message for i in res.issues}
    assert msgs[(2, "two_heads")] == "户号 H010 有 2 位户主（第 2、3 行），一户只能有一位户主"
    assert msgs[(4, "duplicate_in_file")] == "身份证号与第 2 行重复"
    assert msgs[(7, "birth_mismatch")] == "出生日期 2010-05-07 与身份证号中的 2010-05-06 不一致"
    out = ci.write_error_workbook(res, tmp_path / "report.xlsx")
    wb = openpyxl.load_workbook(out)
    ws = wb["导入问题"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("户号", "网格", "姓名", "身份证号", "与户主关系", "出生日期", "错误原因", "原行号")
    assert [r[7] for r in rows[1:]] == [2, 3, 4, 5, 6, 7, 8]  # reject policy: every row, to fix and re-import
    assert rows[1][6] == ("与户主关系：户号 H010 有 2 位户主（第 2、3 行），一户只能有一位户主；身份证号：身份证号与第 4 行重复")
    assert rows[7][6] is None  # row 8 had no problem
    assert rows[1][3] == ID_A and ws.cell(2, 4).number_format == "@"  # IDs stay text
    red = {(c.row, c.column) for row in ws.iter_rows(min_row=2) for c in row if c.fill.fgColor.rgb == "00FFC7CE"}
    amber = {(c.row, c.column) for row in ws.iter_rows(min_row=2) for c in row if c.fill.fgColor.rgb == "00FFEB9C"}
    assert red == {(2, 5), (2, 4), (3, 5), (4, 4), (5, 4), (6, 2), (7, 6)}
    assert amber == {(4, 5), (5, 5), (6, 6)}  # warnings only
    assert ws.cell(6, 2).comment.text == "数据库内找不到网格“火星网格” / No grid '火星网格' in the import area"
    assert ws.cell(5, 4).comment.text.startswith("身份证号被 Excel 转成了科学计数法数字")


def test_quarantine_imports_valid_rows_and_reports_the_rest(db, tmp_path):
    build_tree(db)
    path = write_xlsx(tmp_path / "bad.xlsx", error_rows())
    res = run(db, admin_of(db), path, policy="quarantine")
    assert res.status == "imported"
    assert (res.inserted, res.rejected) == (1, 6)
    assert residents(db) == [("H014", G2, "庚", "M", ID_D, date(1975, 5, 6), "head", "registered", None, None,
                              "active", ())]
    wb = openpyxl.load_workbook(ci.write_error_workbook(res, tmp_path / "q.xlsx"))
    assert [r[7] for r in wb["导入问题"].iter_rows(min_row=2, values_only=True)] == [2, 3, 4, 5, 6, 7]
    # the clerk fixes the report in Excel and imports it again
    ws = wb["导入问题"]
    ws.cell(3, 5).value = "配偶"  # 乙 is the spouse
    ws.cell(4, 4).value, ws.cell(4, 5).value = ID_E, "户主"  # 丙's real ID; 丙 heads H011
    ws.cell(4, 6).value = "1999-09-09"
    ws.cell(5, 4).value = None  # 丁: ID unknown for now
    ws.cell(6, 2).value, ws.cell(6, 6).value = G3, "1990-12-01"
    ws.cell(7, 6).value = "2010-05-06"
    wb.save(tmp_path / "fixed.xlsx")
    res2 = run(db, admin_of(db), tmp_path / "fixed.xlsx")
    assert res2.status == "imported", issues(res2)
    assert (res2.inserted, res2.rejected) == (6, 0)
    assert [r[2] for r in residents(db)] == sorted(["甲", "乙", "丙", "丁", "戊", "己", "庚"])


def test_update_by_id_and_by_household_name_then_undo(db, tmp_path):
    build_tree(db)
    admin = admin_of(db)
    run(db, admin, write_xlsx(tmp_path / "a.xlsx", census_rows()))
    base = residents(db)
    rows = [["户号", "姓名", "公民身份号码", "联系电话", "民族", "标签"],
            ["H001", "张三", ID_A, "13700137000", None, "低保"],  # phone changes; tags already there
            ["H002", "赵六", None, None, "汉族", "独居老人"],  # no ID: matched by household + name
            ["H002", "周九", None, None, None, None]]  # new member of an existing household
    res = run(db, admin, write_xlsx(tmp_path / "b.xlsx", rows))
    assert (res.inserted, res.updated, res.unchanged, res.tags_added) == (1, 2, 0, 1), issues(res)
    now = {r[2]: r for r in residents(db)}
    assert now["张三"][8] == "13700137000"
    assert now["赵六"][9] == "汉族" and now["赵六"][11] == ("elderly_alone",)
    assert now["周九"][:3] == ("H002", G2, "周九")
    with db.session() as s:
        upd = {a.row_id: a.changes for a in s.scalars(select(AuditEntry).where(
            AuditEntry.batch_id == res.batch_id, AuditEntry.action == "update"))}
        zs = s.scalar(select(Resident).where(Resident.name == "张三"))
        assert upd[zs.id] == {"phone": ["13800138000", "13700137000"], "version": [1, 2]}
    with db.work(admin) as s:
        u = ci.undo_import(s, admin, batch_id=res.batch_id)
    assert (u.residents_deleted, u.residents_restored, u.tags_removed) == (1, 2, 1)
    assert residents(db) == base
    with db.session() as s:
        assert s.get(ImportBatch, res.batch_id).status == "undone"


def test_undo_refused_when_rows_changed_since(db, tmp_path):
    build_tree(db)
    admin = admin_of(db)
    res = run(db, admin, write_xlsx(tmp_path / "a.xlsx", census_rows()))
    with db.work(admin) as s:
        r = s.scalar(select(Resident).where(Resident.name == "王五"))
        people.update_resident(s, admin, r.id, expected_version=r.version, phone="13600136000")
    snapshot = residents(db)
    with pytest.raises(ConflictError) as exc, db.work(admin) as s:
        ci.undo_import(s, admin, batch_id=res.batch_id)
    assert "之后已被修改" in exc.value.message
    assert residents(db) == snapshot


def test_dry_run_reports_exactly_and_writes_nothing(db, tmp_path):
    build_tree(db)
    before = counts(db)
    path = write_xlsx(tmp_path / "a.xlsx", census_rows())
    dry = run(db, admin_of(db), path, dry_run=True)
    assert (dry.status, dry.inserted, dry.households_created, dry.tags_added, dry.batch_id) == ("dry_run", 7, 2, 3, None)
    assert counts(db) == {**before, "audit_log": before["audit_log"] + 1}  # the dry run's audit row (issue 16)
    real = run(db, admin_of(db), path)
    assert (real.inserted, real.households_created, real.tags_added) == (7, 2, 3)
    with db.work(admin_of(db)) as s:
        u = ci.undo_import(s, admin_of(db), batch_id=real.batch_id)
    assert (u.residents_deleted, u.households_deleted, u.tags_removed) == (7, 2, 3)
    after = counts(db)
    assert {k: after[k] for k in ("residents", "households", "resident_tags")} == {
        k: before[k] for k in ("residents", "households", "resident_tags")}


def test_sheets_explicit_and_remembered_mapping(db, tmp_path):
    build_tree(db)
    admin = admin_of(db)
    data = [["户号", "网格", "名字", "身份证", "家庭角色"], ["M1", G1, "吴一", ID_A, "户主"]]
    path = write_xlsx(tmp_path / "m.xlsx", data, sheet="一月", extra={"二月": data, "说明": [["本表说明"]]})
    with pytest.raises(ci.ImportFileError) as exc:
        run(db, admin, path)
    assert "一月、二月" in exc.value.message and "--sheet" in exc.value.message
    with pytest.raises(ci.ImportFileError) as exc:
        run(db, admin, path, sheet="三月")
    assert "一月、二月、说明" in exc.value.message
    res = run(db, admin, path, sheet="二月", mapping={"家庭角色": "relation_to_head"})
    assert res.status == "imported" and res.mapping["家庭角色"] == "relation_to_head"
    assert residents(db)[0][6] == "head"
    with db.session() as s:
        assert s.get(Setting, ci.header_set_key(data[0])).value["家庭角色"] == "relation_to_head"
    # next time the same header set is mapped the same way without --map
    data2 = [data[0], ["M1", G1, "吴一", ID_A, "户主"], ["M1", G1, "吴二", ID_B, "配偶"]]
    res2 = run(db, admin, write_xlsx(tmp_path / "m2.xlsx", data2))
    assert res2.mapping["家庭角色"] == "relation_to_head" and res2.inserted == 1


def test_grid_by_ambiguous_name_and_scope(db, tmp_path):
    tree = build_tree(db)
    rows = [["户号", "网格", "姓名", "与户主关系"], ["S1", "第1网格", "一", "户主"], ["S2", G3, "二", "户主"]]
    path = write_xlsx(tmp_path / "s.xlsx", rows)
    res = run(db, admin_of(db), path)
    assert issues(res) == [(2, "网格", "grid_ambiguous")]
    clerk = make_user(db, "clerk1", Role.CLERK, area_id=tree.street)  # 笔架山街道 only
    res = run(db, clerk, path)
    assert issues(res) == [(3, "网格", "grid_unknown")]
    assert "笔架山街道" in res.issues[0].message
    res = run(db, clerk, path, area_code="340104001001")  # the community: 第1网格 is no longer ambiguous
    assert issues(res) == [(3, "网格", "grid_unknown")]
    with pytest.raises(PermissionDenied):
        run(db, clerk, path, area_code="340104002")


def test_permissions_clerk_and_admin_import_warden_refused(db, tmp_path):
    tree = build_tree(db)
    path = write_xlsx(tmp_path / "p.xlsx", [["户号", "网格", "姓名", "与户主关系", "标签"],
                                           ["P1", G1, "一", "户主", "社区矫正"], ["P2", G1, "二", "户主", None]])
    warden = make_user(db, "w1", Role.WARDEN, grids=[tree.grid1])
    staff = make_user(db, "cs1", Role.COMMUNITY_STAFF, area_id=tree.community)
    for who in (warden, staff):
        with pytest.raises(PermissionDenied):
            run(db, who, path)
    clerk = make_user(db, "clerk2", Role.CLERK)
    res = run(db, clerk, path, policy="quarantine")  # a clerk may not set sensitive tags
    assert issues(res) == [(2, "标签", "tag_sensitive")] and res.inserted == 1
    with db.session() as s:
        assert s.get(ImportBatch, res.batch_id).user_id == clerk.user_id
    res = run(db, admin_of(db), path)
    assert (res.inserted, res.unchanged) == (1, 1)


def test_progress_and_cancellation(db, tmp_path):
    build_tree(db)
    before = counts(db)
    path = write_xlsx(tmp_path / "a.xlsx", census_rows())
    seen: list[tuple[float, str]] = []
    prog = TaskState(lambda f, m: seen.append((f, m)), min_interval=0)
    run(db, admin_of(db), path, dry_run=True, task=prog)
    assert seen[0][0] == 0.0 and seen[-1] == (1.0, "试运行完成，未写入")
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)

    def cancel_in_write(f, m):
        if f >= 0.65:
            prog2.cancel()
    prog2 = TaskState(cancel_in_write, min_interval=0)
    with pytest.raises(Cancelled):
        run(db, admin_of(db), path, task=prog2)
    assert counts(db) == {**before, "audit_log": before["audit_log"] + 1}  # the dry run's audit row (issue 16)


def test_a_scoped_clerk_lists_and_undoes_only_imports_in_their_scope(db, tmp_path):
    """Imports are scoped like every other row (scope.rows on the batch's area): a clerk of 西园社区
    sees their own import, not one into 琥珀社区 nor one into every area (the administrator's), and
    may not undo those."""
    tree = build_tree(db)
    admin = admin_of(db)
    clerk = make_user(db, "clerk_xy", Role.CLERK, area_id=tree.community)
    everywhere = run(db, admin, write_xlsx(tmp_path / "all.xlsx", [["户号", "网格", "姓名", "与户主关系"],
                                                                   ["A1", G1, "全市甲", "户主"]]))
    other = run(db, admin, write_xlsx(tmp_path / "other.xlsx", [["户号", "网格", "姓名", "与户主关系"],
                                                                ["B1", G3, "琥珀甲", "户主"]]), area_code="340104002001")
    own = run(db, clerk, write_xlsx(tmp_path / "own.xlsx", [["户号", "网格", "姓名", "与户主关系"],
                                                            ["C1", G2, "西园甲", "户主"]]))
    assert all(r.status == "imported" for r in (everywhere, other, own))
    with db.session() as s:
        assert [b.id for b in ci.list_imports(s, clerk)] == [own.batch_id]
        assert [b.id for b in ci.list_imports(s, admin)] == [own.batch_id, other.batch_id, everywhere.batch_id]
    for batch in (everywhere, other):
        with db.work(clerk) as s, pytest.raises(PermissionDenied):
            ci.undo_import(s, clerk, batch_id=batch.batch_id)
    with db.work(clerk) as s:
        assert ci.undo_import(s, clerk, batch_id=own.batch_id).residents_deleted == 1


def test_a_citizen_id_registered_outside_the_clerks_scope_is_refused_without_its_name(db, tmp_path):
    """A resident registered outside a scoped clerk's area is neither named to them (the
    name-mismatch message would tell whose ID it is) nor moved into their grid by an import."""
    tree = build_tree(db)
    admin = admin_of(db)
    other = run(db, admin, write_xlsx(tmp_path / "other.xlsx", [["户号", "网格", "姓名", "与户主关系", "公民身份号码"],
                                                                ["B1", G3, "琥珀甲", "户主", ID_A]]))
    assert other.status == "imported"
    clerk = make_user(db, "clerk_xy2", Role.CLERK, area_id=tree.community)
    for name in ("别人", "琥珀甲"):
        res = run(db, clerk, write_xlsx(tmp_path / f"own_{name}.xlsx", [["户号", "网格", "姓名", "与户主关系", "公民身份号码"],
                                                                        ["C1", G1, name, "户主", ID_A]]))
        assert issues(res) == [(2, "公民身份号码", "out_of_scope")] and res.status == "rejected"
        assert all("琥珀甲" not in i.message and "琥珀甲" not in i.en for i in res.issues)
    with db.session() as s:
        assert s.scalar(select(Resident.grid_id).where(Resident.citizen_id == ID_A)) == tree.grid3


def test_a_building_outside_the_clerks_scope_is_not_linked(db, tmp_path):
    """A building code or name is looked up in the row's grid, else in the grids the clerk may
    import into: a clerk cannot hang their residents on a building of another street."""
    from gridman.core.models import Building

    tree = build_tree(db)
    with db.work(admin_of(db)) as s:
        s.add(Building(grid_id=tree.grid3, code="HP-01", name="琥珀1栋"))
    clerk = make_user(db, "clerk_xy3", Role.CLERK, area_id=tree.community)
    res = run(db, clerk, write_xlsx(tmp_path / "b.xlsx", [["户号", "网格", "楼栋", "姓名", "与户主关系"],
                                                          ["D1", G1, "HP-01", "西园乙", "户主"]]))
    assert issues(res) == [(2, "楼栋", "building_unknown")] and res.status == "rejected"
    res = run(db, admin_of(db), write_xlsx(tmp_path / "b2.xlsx", [["户号", "网格", "楼栋", "姓名", "与户主关系"],
                                                                  ["D2", G1, "HP-01", "西园丙", "户主"]]))
    assert res.status == "imported"  # the unrestricted may (as before)

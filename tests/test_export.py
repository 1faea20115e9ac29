"""Exports (masking, text-not-formula, dates, frozen header), templates, the monthly report,
and the export → import round trip (a hypothesis property) on both databases."""

from __future__ import annotations

import itertools
import zipfile
from datetime import date, datetime

import openpyxl
import pytest
import python_calamine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gridman.core import enums
from gridman.core.enums import Role
from gridman.core.models import Area, AuditEntry, Incident, Resident
from gridman.core.services import census as ci
from gridman.core.services import export as ex
from gridman.core.services.errors import PermissionDenied, ValidationError
from gridman.core.services.monthly_report import monthly_report
from gridman.core.services.permissions import system_actor
from tests.census_util import make_id, residents, write_xlsx
from tests.helpers import build_tree, make_user

G1, G2 = "340104001001001", "340104001001002"
ID_A = make_id(date(1980, 1, 2), "M")
ID_B = make_id(date(1982, 3, 4), "F")


def admin_of(db):
    with db.session() as s:
        return system_actor(s)


def seed(db, tmp_path):
    rows = [["户号", "网格", "姓名", "公民身份号码", "与户主关系", "联系电话", "标签", "备注", "工作单位", "居住证有效期"],
            ["X1", G1, "=1+1", ID_A, "户主", "+86 13800138000", "低保、社区矫正", "@SUM(A1)", "-5", "2027-01-31"],
            ["X1", G1, "李四", ID_B, "配偶", None, None, "+1", "=HYPERLINK(\"http://x\")", None]]
    admin = admin_of(db)
    with db.work(admin) as s:
        res = ci.import_census(s, admin, path=write_xlsx(tmp_path / "seed.xlsx", rows, literal=True))
    assert res.status == "imported", res.issues


def export(db, actor, tmp_path, name="residents", **kw):
    out = tmp_path / f"{name}-{actor.username}.xlsx"
    with db.work(actor) as s:
        res = ex.export_list(s, actor, list_name=name, out=out, **kw)
    return res, openpyxl.load_workbook(out)


def test_masking_text_not_formulas_dates_and_layout(db, tmp_path):
    tree = build_tree(db)
    seed(db, tmp_path)
    clerk = make_user(db, "clerk1", Role.CLERK)
    staff = make_user(db, "cs", Role.COMMUNITY_STAFF, area_id=tree.community)
    res, wb = export(db, clerk, tmp_path)
    ws = wb.active
    assert res.rows == 2 and res.masked_ids and res.hidden_sensitive_tags
    head = [c.value for c in ws[1]]
    assert head[:4] == ["户号", "网格编码", "楼栋", "姓名"] and "公民身份号码" in head
    rows = {r[3]: dict(zip(head, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)}
    assert rows["=1+1"]["公民身份号码"] == ID_A[:4] + "*" * 14  # issue 16: the last four no longer shown
    assert rows["=1+1"]["标签"] == "低保"  # the sensitive 社区矫正对象 is not shown to a clerk
    assert rows["=1+1"]["备注"] == "@SUM(A1)" and rows["=1+1"]["工作单位"] == "-5"
    assert rows["李四"]["备注"] == "+1" and rows["李四"]["工作单位"] == '=HYPERLINK("http://x")'
    assert rows["=1+1"]["居住证有效期"] == datetime(2027, 1, 31)
    assert rows["=1+1"]["与户主关系"] == "户主" and rows["=1+1"]["人口类型"] == "户籍人口"
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["G"].width > 15
    for row in ws.iter_rows(min_row=2):
        for c in row:
            assert c.data_type != "f"
    with zipfile.ZipFile(tmp_path / "residents-clerk1.xlsx") as z:
        xml = z.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in xml and b"<f " not in xml
    id_col = head.index("公民身份号码") + 1
    assert ws.cell(2, id_col).data_type == "s" and ws.cell(2, id_col).number_format == "@"
    res2, wb2 = export(db, staff, tmp_path)
    r2 = {r[3]: r for r in wb2.active.iter_rows(min_row=2, values_only=True)}
    assert not res2.masked_ids and r2["=1+1"][head.index("公民身份号码")] == ID_A
    assert r2["=1+1"][head.index("标签")] == "低保、社区矫正对象"
    with db.session() as s:
        notes = [a.note for a in s.scalars(select(AuditEntry).where(AuditEntry.action == "export"))]
    assert len(notes) == 2 and all("实有人口台账 2 行" in n for n in notes)


def test_filters_scope_and_refusals(db, tmp_path):
    tree = build_tree(db)
    seed(db, tmp_path)
    admin = admin_of(db)
    assert export(db, admin, tmp_path, filters={"relation_to_head": "配偶"})[0].rows == 1
    assert export(db, admin, tmp_path, filters={"tag": "low_income"})[0].rows == 1
    assert export(db, admin, tmp_path, area_code=G2)[0].rows == 0
    with pytest.raises(ValidationError):
        export(db, admin, tmp_path, filters={"shoe": "43"})
    with pytest.raises(ValidationError):
        export(db, admin, tmp_path, name="cats")
    warden = make_user(db, "w", Role.WARDEN, grids=[tree.grid1])
    with pytest.raises(PermissionDenied):
        export(db, warden, tmp_path)


def test_every_list_exports_what_sql_counts(demo_db, tmp_path):
    admin = admin_of(demo_db)
    with demo_db.session() as s:
        street = s.scalar(select(Area).where(Area.level == "street").order_by(Area.code))
        sub = select(Area.id).where(Area.path.like(street.path + "%"))
        n_res = s.scalar(select(func.count()).select_from(Resident).where(Resident.grid_id.in_(sub)))
        n_inc = s.scalar(select(func.count()).select_from(Incident).where(Incident.grid_id.in_(sub)))
    got = {}
    for name in ex.LISTS:
        out = tmp_path / f"{name}.xlsx"
        with demo_db.work(admin) as s:
            res = ex.export_list(s, admin, list_name=name, out=out, area_code=street.code)
        sheet = python_calamine.CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()
        assert len(sheet) == res.rows + 1 and sheet[0][0] == ex.LISTS[name].cols[0].header
        got[name] = res.rows
    assert got["residents"] == n_res and got["incidents"] == n_inc
    assert all(v > 0 for v in got.values()), got


def test_lists_show_labels_of_coded_fields_with_catalogue_headers(demo_db, tmp_path):
    """户类型 was written as its code (family) while the exchange showed 家庭户; every coded
    column of every list now shows labels, under the catalogue's headers."""
    from gridman.core import fields

    admin = admin_of(demo_db)
    for name in ("households", "organisations", "visits"):
        out = tmp_path / f"{name}.xlsx"
        with demo_db.work(admin) as s:
            ex.export_list(s, admin, list_name=name, out=out)
        sheet = python_calamine.CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()
        cat = fields.get(name).view("export")
        assert sheet[0] == [f.zh for f in cat]
        for j, f in enumerate(cat):
            if f.kind in ("enum", "choice"):
                labels = {f.choice_label(c) for c in f.choices} if f.choices else set(enums.labels(f.enum))
                values = {row[j] for row in sheet[1:]} - {""}
                assert values and values <= labels, (name, f.key, values - labels)


def test_monthly_report_figures_and_charts(demo_db, tmp_path):
    admin = admin_of(demo_db)
    with demo_db.session() as s:
        street = s.scalar(select(Area).where(Area.level == "street").order_by(Area.code))
        sub = select(Area.id).where(Area.path.like(street.path + "%"))
        month = s.scalar(select(func.max(Incident.reported_at)).where(Incident.grid_id.in_(sub)))
        start = datetime(month.year, month.month, 1)
        in_month = (Incident.grid_id.in_(sub), Incident.reported_at >= start, Incident.status != "merged")
        by_cat = dict(s.execute(select(Incident.category, func.count()).where(*in_month).group_by(Incident.category)).all())
        n_pop = s.scalar(select(func.count()).select_from(Resident).where(Resident.grid_id.in_(sub),
                                                                          Resident.status == "active"))
    with demo_db.work(admin) as s:
        rep = monthly_report(s, admin, area_code=street.code, month=f"{start:%Y-%m}", out=tmp_path / "m.xlsx")
    assert rep.population == n_pop and rep.incidents == sum(by_cat.values())
    wb = openpyxl.load_workbook(tmp_path / "m.xlsx")
    assert wb.sheetnames == ["人口", "事件", "调处", "说明"]
    cats = {r[0]: r[1] for r in wb["事件"].iter_rows(min_row=4, max_row=9, values_only=True)}
    assert cats["矛盾纠纷"] == by_cat.get("dispute", 0) and cats["其他"] == by_cat.get("other", 0)
    total = [r for r in wb["调处"].iter_rows(values_only=True) if r[0] == "合计"][0]
    assert total[2] == rep.incidents and total[3] == rep.closed
    assert total[4] == round(rep.closed / rep.incidents, 4)
    assert len(wb["人口"]._charts) == 1 and len(wb["事件"]._charts) == 1 and len(wb["调处"]._charts) == 1
    with pytest.raises(ValidationError):
        with demo_db.work(admin) as s:
            monthly_report(s, admin, area_code=street.code, month="2026-13", out=tmp_path / "x.xlsx")


def test_templates_committed_match_generated_and_round_trip(db, tmp_path):
    build_tree(db)
    for name in ex.LISTS:
        fresh = openpyxl.load_workbook(ex.write_template(name, tmp_path / f"{name}.xlsx"))
        committed = openpyxl.load_workbook(ex.template_path(name))
        assert fresh.sheetnames == committed.sheetnames
        for sh in fresh.sheetnames:
            assert list(fresh[sh].values) == list(committed[sh].values), (name, sh)
        ws = committed.worksheets[0]
        assert committed["选项"].sheet_state == "hidden"
        if name == "residents":
            sources = {str(dv.sqref).split(":")[0][0]: dv.formula1 for dv in ws.data_validations.dataValidation}
            assert sources["E"].startswith("=选项!")  # 性别 drop-down
            assert len([v for v in committed["选项"].iter_cols(values_only=True) if v[0] == "民族"][0]) == 57
    # fill the committed residents template the way a clerk would, and import it
    wb = openpyxl.load_workbook(ex.template_path("residents"))
    ws = wb.worksheets[0]
    head = [c.value for c in ws[1]]
    def put(r, **kv):
        for k, v in kv.items():
            ws.cell(r, head.index(k) + 1, v)
    put(3, 户号="T1", 网格编码=G1, 姓名="模板一", 公民身份号码=ID_A, 与户主关系="户主", 人口类型="户籍人口", 民族="汉族")
    put(4, 户号="T1", 姓名="模板二", 公民身份号码=ID_B, 与户主关系="配偶", 性别="女", 出生日期=date(1982, 3, 4))
    wb.save(tmp_path / "filled.xlsx")
    admin = admin_of(db)
    with db.work(admin) as s:
        res = ci.import_census(s, admin, path=tmp_path / "filled.xlsx")
    assert (res.status, res.inserted, res.header_row, res.skipped_rows) == ("imported", 2, 1, [(2, "说明行 / notes row")]), res.issues
    before = residents(db)
    res2, _ = export(db, admin, tmp_path)
    with db.work(admin) as s:
        again = ci.import_census(s, admin, path=res2.path)
    assert (again.unchanged, again.inserted, again.updated) == (2, 0, 0)
    assert residents(db) == before


_counter = itertools.count(1)
NAMES = st.text(alphabet="张王李赵刘陈杨黄周吴伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平刚桂英=+-@ ", min_size=1,
                max_size=6).map(str.strip).filter(bool)
PERSON = st.fixed_dictionaries({
    "name": NAMES,
    "sex": st.sampled_from(["M", "F"]),
    "born": st.dates(date(1930, 1, 1), date(2020, 12, 31)),
    "with_id": st.booleans(),
    "phone": st.one_of(st.none(), st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)),
    "ptype": st.sampled_from(["户籍人口", "流动人口", "人户分离", "境外人员"]),
    "eth": st.sampled_from(["汉族", "回族", "满族", "壮族", None]),
    "note": st.one_of(st.none(), st.text(alphabet="=+-@abc备注 ,;'\"<>&", min_size=1, max_size=12).map(str.strip)
                      .filter(bool)),
    "tags": st.lists(st.sampled_from(["低保", "残疾人", "独居老人", "寿星卡"]), max_size=2, unique=True),
})


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(households=st.lists(st.lists(PERSON, min_size=1, max_size=4), min_size=1, max_size=4))
def test_property_export_then_import_changes_nothing(db, tmp_path_factory, households):
    with db.session() as s:
        if s.scalar(select(func.count()).select_from(Area)) == 0:
            build_tree(db)
    tmp = tmp_path_factory.mktemp("rt")
    admin = admin_of(db)
    rows = [["户号", "网格编码", "姓名", "性别", "出生日期", "公民身份号码", "与户主关系", "人口类型", "民族",
             "联系电话", "备注", "标签"]]
    for members in households:
        hno = f"P{next(_counter):05d}"
        seen_names: set[str] = set()
        for k, p in enumerate(members):
            name = p["name"]
            if name in seen_names:
                name += str(k)
            seen_names.add(name)
            cid = make_id(p["born"], p["sex"], seq=next(_counter) % 480 + 1) if p["with_id"] else None
            rows.append([hno, G1 if k % 2 else G2 and G1, name, "男" if p["sex"] == "M" else "女", p["born"], cid,
                         "户主" if k == 0 else "子女", p["ptype"], p["eth"], p["phone"], p["note"], "、".join(p["tags"])])
    with db.work(admin) as s:
        first = ci.import_census(s, admin, path=write_xlsx(tmp / "gen.xlsx", rows, text_cols=(6, 10), literal=True))
    if first.status != "imported":  # a generated ID may collide with one of an earlier example
        assert {i.code for i in first.issues} <= {"duplicate_in_db", "duplicate_in_file"}
        return
    before = residents(db)
    out = tmp / "all.xlsx"
    with db.work(admin) as s:
        ex.export_list(s, admin, list_name="residents", out=out)
    with db.work(admin) as s:
        again = ci.import_census(s, admin, path=out)
    assert again.status == "imported", again.issues[:3]
    assert (again.inserted, again.updated, again.rejected) == (0, 0, 0)
    assert again.unchanged == len(before)
    assert residents(db) == before


def test_export_reports_progress_and_a_cancel_leaves_no_file_and_no_log_entry(demo_db, tmp_path):
    """An export reports its progress; cancelled half-way it leaves no workbook (an older file of
    that name stays as it was) and no audit entry; a later export writes the whole list."""
    from gridman.core import tasks

    admin = admin_of(demo_db)
    out = tmp_path / "台账.xlsx"
    out.write_bytes(b"an older export")
    seen: list[float] = []

    def cancel_half_way(fraction: float, _m: str) -> None:
        seen.append(fraction)
        if fraction > 0:
            task.cancel()

    task = tasks.TaskState(cancel_half_way, min_interval=0)
    with pytest.raises(tasks.Cancelled), demo_db.work(admin) as s:
        ex.export_list(s, admin, list_name="residents", out=out, task=task)
    assert out.read_bytes() == b"an older export"
    assert not out.with_name(out.name + ".part").exists()
    with demo_db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "export")) == 0
        total = s.scalar(select(func.count()).select_from(Resident))
    assert 0 < seen[-1] < 1
    seen.clear()
    with demo_db.work(admin) as s:
        res = ex.export_list(s, admin, list_name="residents", out=out,
                             task=tasks.TaskState(lambda f, _m: seen.append(f), min_interval=0))
    assert seen[0] == 0.0 and seen == sorted(seen) and len(seen) >= total // ex.PROGRESS_ROWS
    sheet = python_calamine.CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()
    assert len(sheet) == res.rows + 1 == total + 1


def test_a_sensitive_tag_filter_is_refused_for_a_role_that_may_not_see_it(db, tmp_path):
    """Filtering an export by a sensitive tag must not tell a clerk who carries it (the rows or
    their count): issue 16 — the filter is refused (it selected nothing before), as the registers do."""
    tree = build_tree(db)
    seed(db, tmp_path)
    clerk = make_user(db, "clerk1", Role.CLERK)
    staff = make_user(db, "cs", Role.COMMUNITY_STAFF, area_id=tree.community)
    for t in ("community_correction", "社区矫正对象"):
        with pytest.raises(PermissionDenied):
            export(db, clerk, tmp_path, filters={"tag": t})
        assert export(db, staff, tmp_path, filters={"tag": t})[0].rows == 1
    assert export(db, clerk, tmp_path, filters={"tag": "low_income"})[0].rows == 1

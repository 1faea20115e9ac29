"""Render the main views offscreen with a CJK font and save PNGs into docs/screenshots/.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--lang en]

Works on a temporary copy of the committed demo database (never opened read-write) and on
temporary settings, so it changes nothing of the user's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", default="zh_CN")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--only", choices=["offline-exchange"], help="render only this shot")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gridman-shots-"))
    os.environ["GRIDMAN_DATA_DIR"] = str(tmp / "data")
    from gridman.gui.qt import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    from gridman.gui.app import make_app

    app = make_app()
    from gridman.core.db import open_database
    from gridman.core.services.auth import authenticate
    from gridman.gui.dialogs.signin import SignInDialog
    from gridman.gui.i18n import set_language
    from gridman.gui.main_window import MainWindow
    from gridman.gui.ops import OpRunner

    set_language(args.lang)
    db_path = tmp / "demo.sqlite"
    shutil.copyfile(ROOT / "sample_db" / "gridman-demo.sqlite", db_path)
    db = open_database(db_path)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.lang == "zh_CN" else f"-{args.lang}"

    def settle(runner: OpRunner, extra: float = 0.3) -> None:
        deadline = time.time() + 20
        while time.time() < deadline:
            app.processEvents()
            if runner.pending == 0:
                break
            time.sleep(0.02)
        end = time.time() + extra
        while time.time() < end:
            app.processEvents()
            time.sleep(0.02)

    def save(widget, name: str) -> None:  # type: ignore[no-untyped-def]
        path = out / f"{name}{suffix}.png"
        widget.grab().save(str(path))
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)

    if args.only == "offline-exchange":
        offline_exchange_shot(db, tmp, settle, save)
        db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
        return 0

    runner = OpRunner(db)
    dlg = SignInDialog(runner)
    dlg.username.setText("warden")
    dlg.password.setText("gridman123")
    dlg.show()
    settle(runner)
    save(dlg, "sign-in")
    dlg.close()

    with db.begin() as s:
        street = authenticate(s, "street", "gridman123")
        admin = authenticate(s, "admin", "gridman123")
    win = MainWindow(db, street, runner=OpRunner(db, street))
    win.resize(1440, 880)
    win.show()
    settle(win.runner)
    for i, name in ((0, "map"), (1, "register"), (3, "incidents"), (4, "dashboard")):
        win.show_view(i)
        settle(win.runner, 0.6)
        save(win, name)
    win.show_view(2)
    settle(win.runner, 0.3)
    save(win, "register-households")
    # the resident form with its history, the case view, the household form
    win.show_view(1)
    settle(win.runner)
    d = win.open_row("residents", win.residents.model.ids[0])
    settle(win.runner)
    save(d, "resident-form")
    d.close()
    win.show_view(3)
    settle(win.runner)
    c = win.incidents.open_case(win.incidents.model.ids[0])
    settle(win.runner)
    save(c, "case-view")
    c.close()
    f = win.register_household()
    settle(win.runner)
    f.household_no.setText("3401040010010019999")
    f.address.setText("马鞍山路翡翠苑9栋101室")
    from datetime import date

    from gridman.core import idcard

    f.add_member(name="王建国", citizen_id=idcard.make("340104", date(1980, 3, 4), 1, "M"), relation="head")
    f.add_member(name="李秀英", citizen_id="34010419820506002", relation="spouse")
    f.validate()
    settle(win.runner)
    save(f, "household-form")
    f.close()
    # the supervisor's queue, a case with the actions the supervisor may take, the report form
    win.show_view(6)
    settle(win.runner, 0.5)
    save(win, "queue")
    from gridman.core.services import mediation

    with db.session() as s:
        actionable = next((r.id for r in win.queue.rows if r.level == "street"
                           and "accept" in mediation.allowed_actions(s, street, r.id)), win.queue.rows[0].id)
    c = win.open_case(actionable)
    settle(win.runner)
    save(c, "case-actions")
    c.close()
    r = win.report_incident()
    settle(win.runner)
    r.title.setText("楼上装修噪音影响休息")
    r.description.setPlainText("3栋2单元居民反映楼上夜间装修，协商未果。")
    r.subcategory.setCurrentIndex(r.subcategory.findData("neighbour"))
    r.party_search.setText(win.residents.model.rows[0][0] if win.residents.model.rows else "")
    r._search_residents()  # noqa: SLF001 — what the debounce timer does
    settle(win.runner)
    r._add_resident()  # noqa: SLF001
    r.party_free.setText("装修施工队负责人")
    r._add_free()  # noqa: SLF001
    if r.building.count() > 1:
        r.building.setCurrentIndex(1)
    r.set_photos(["现场照片1.jpg", "现场照片2.jpg"])
    settle(win.runner, 0.2)
    save(r, "report-form")
    r.close()
    win.show_view(1)
    settle(win.runner)
    e = win.export_list("residents")
    settle(win.runner)
    e.out.setText("/home/user/实有人口台账-导出.xlsx")
    save(e, "export-dialog")
    e.close()
    win.close()
    win.runner.wait()
    # the clerk's import wizard: the mapping page and the result page with the error report
    import openpyxl

    with db.begin() as s:
        clerk = authenticate(s, "clerk", "gridman123")
    cwin = MainWindow(db, clerk, runner=OpRunner(db, clerk))
    cwin.resize(1440, 880)
    cwin.show()
    settle(cwin.runner)
    grid_code = "340104001001001"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "人口"
    ws.append(["户号", "网格", "姓名", "性别", "身份证号", "与户主关系", "出生日期", "联系电话", "备注"])
    rows = [("DEMO-H01", grid_code, "赵志强", "男", idcard.make("340104", date(1978, 2, 3), 11, "M"), "户主", "1978-02-03"),
            ("DEMO-H01", grid_code, "钱美玲", "女", idcard.make("340104", date(1980, 7, 9), 12, "F"), "配偶", "1980-07-09"),
            ("DEMO-H02", "第99网格", "孙建华", "男", idcard.make("340104", date(1966, 1, 1), 13, "M"), "户主", "1966-01-01"),
            ("DEMO-H03", grid_code, "李红", "女", "34010419900101123", "户主", "1990-01-01")]
    for i, row in enumerate(rows):
        ws.append([*row, f"1390000000{i}", ""])
    book = tmp / "社区人口登记表.xlsx"
    wb.save(book)
    cwin.show_view(7)
    settle(cwin.runner)
    save(cwin, "import-export")
    wiz = cwin.exchange.open_wizard()
    wiz.policy.setCurrentIndex(wiz.policy.findData("quarantine"))
    wiz.set_file(str(book))
    settle(cwin.runner, 0.3)
    save(wiz, "import-mapping")
    wiz.validate()
    settle(cwin.runner, 0.3)
    save(wiz, "import-check")
    wiz.start_import()
    settle(cwin.runner, 0.5)
    save(wiz, "import-result")
    wiz.close()
    cwin.close()
    cwin.runner.wait()
    offline_exchange_shot(db, tmp, settle, save)
    # the demo's boundaries are clean: a boundary file with a new grid drawn over its neighbours
    # (through the boundary import) and the holiday calendar give the check and the editor
    # something to show (the copy of the database only)
    from sqlalchemy import select

    from gridman.core.models import Area
    from gridman.core.services import geometry, time_limits

    with db.work(admin) as s:
        g = s.scalar(select(Area).where(Area.code == "340104001001002"))
        fc = geometry.export_geojson(s, admin, area_id=g.id)
        feat = fc["features"][0]
        feat["properties"].update(code="340104001001099", name="新建第99网格")
        ring = feat["geometry"]["coordinates"]

        def shift(c):  # type: ignore[no-untyped-def]
            return [shift(x) for x in c] if isinstance(c[0], list | tuple) else [c[0] + 0.0012, c[1] + 0.0006]

        feat["geometry"]["coordinates"] = shift(ring)
        (tmp / "boundaries.geojson").write_text(geometry.geojson_text(fc), encoding="utf-8")
        geometry.import_geojson(s, admin, data=fc, level="grid", source="boundaries.geojson")
        for day, name, work in ((date(2026, 10, 1), "国庆节", False), (date(2026, 10, 2), "国庆节", False),
                                (date(2026, 10, 3), "国庆节", False), (date(2026, 10, 10), "国庆节调休", True)):
            time_limits.set_holiday(s, admin, day=day, is_workday=work, name=name)
    awin = MainWindow(db, admin, runner=OpRunner(db, admin))
    awin.resize(1440, 880)
    awin.show()
    settle(awin.runner)
    awin.select_area(next(iter(awin.area_items)))
    awin.show_view(5)
    settle(awin.runner, 0.5)
    save(awin, "admin")
    awin.admin.tabs.setCurrentWidget(awin.admin.policy)
    settle(awin.runner, 0.3)
    save(awin, "admin-policy")
    street_id = next(i for i, it in awin.area_items.items() if it.text() == "笔架山街道")
    awin.select_area(street_id)
    awin.admin.tabs.setCurrentWidget(awin.admin.grid_check)
    awin.admin.grid_check.run_check()
    settle(awin.runner, 0.3)
    save(awin, "admin-grid-check")
    b = awin.admin.grid_check.open_import()
    settle(awin.runner, 0.2)
    b.file.setText(str(tmp / "boundaries.geojson"))
    b.level.setCurrentIndex(b.level.findData("grid"))
    b.run(dry_run=True)
    settle(awin.runner, 0.2)
    save(b, "boundary-import")
    b.close()
    awin.show_view(0)
    settle(awin.runner, 0.6)
    save(awin, "map-city")
    awin.close()
    awin.runner.wait()
    db.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def offline_exchange_shot(db, tmp: Path, settle, save) -> None:  # type: ignore[no-untyped-def]
    """离线交换: a community checked out through the page, the workbook edited offline (openpyxl)
    while some of the same residents change centrally, and the check-in's dry run with its
    conflict table."""
    from openpyxl import load_workbook
    from sqlalchemy import select

    from gridman.core.models import Area, Resident
    from gridman.core.services import people
    from gridman.core.services.auth import authenticate
    from gridman.gui.main_window import MainWindow
    from gridman.gui.ops import OpRunner

    with db.begin() as s:
        clerk = authenticate(s, "clerk", "gridman123")
    win = MainWindow(db, clerk, runner=OpRunner(db, clerk))
    win.resize(1440, 880)
    win.show()
    settle(win.runner)
    win.show_view(7)
    settle(win.runner)
    page = win.exchange.build().exchange_widget
    settle(win.runner)
    page.select_checkout_area("340104001001")
    book = tmp / "离线交换-怡景园社区.xlsx"
    page.out_edit.setText(str(book))
    page.run_checkout()
    settle(win.runner, 0.2)
    with db.session() as s:
        g1 = s.scalar(select(Area.id).where(Area.code == "340104001001001"))
        res = [(r.id, r.uuid) for r in s.scalars(select(Resident).where(Resident.grid_id == g1)
                                                 .order_by(Resident.id).limit(6))]
    offline = {res[0][1]: {"联系电话": "13955120001"}, res[1][1]: {"联系电话": "13955120002"},
               res[2][1]: {"现住址": "怡景园小区3栋2单元502室"}, res[3][1]: {"状态": "迁出"},
               res[4][1]: {"工作单位": "合肥市第一人民医院", "联系电话": "13955120005"}}
    central = {res[1][0]: {"phone": "13855110002"}, res[2][0]: {"current_address": "怡景园小区3栋1单元301室"},
               res[3][0]: {"status": "deceased"}, res[4][0]: {"employer": "安徽大学"}}
    wb = load_workbook(book)
    ws = wb["实有人口"]
    col = {c.value: c.column for c in ws[1] if c.value}
    for r in range(2, ws.max_row + 1):
        for h, v in offline.get(ws.cell(r, 1).value, {}).items():
            ws.cell(r, col[h], v)
    back = tmp / "离线交换-怡景园社区-交回.xlsx"
    wb.save(back)
    for rid, changes in central.items():
        with db.work(clerk) as s:
            r = s.get(Resident, rid)
            people.update_resident(s, clerk, rid, expected_version=r.version, **changes)
    page.tabs.setCurrentIndex(1)
    page.in_edit.setText(str(back))
    page.run_dry()
    settle(win.runner, 0.3)
    if page.boxes:
        page.choose(0, "offline")
    settle(win.runner, 0.2)
    save(win, "offline-exchange")
    page.tabs.setCurrentIndex(0)
    settle(win.runner, 0.2)
    save(win, "offline-exchange-checkout")
    page.run_apply()
    settle(win.runner, 0.2)
    page.tabs.setCurrentIndex(2)
    settle(win.runner, 0.2)
    page.package_table.selectRow(0)
    settle(win.runner, 0.1)
    save(win, "offline-exchange-packages")
    win.close()
    win.runner.wait()


if __name__ == "__main__":
    raise SystemExit(main())

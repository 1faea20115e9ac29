"""A clerk runs the import wizard on a workbook with errors (written here with openpyxl): sheet,
editable mapping with a preview, the dry-run preview, the import on a background thread, and a
result page that offers the error workbook. Export of a list as filtered."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import openpyxl

from gridman.gui.qt import Qt, QUrl
from tests.census_util import make_id
from tests.gui.conftest import raw, wait_runner
from tests.gui.test_mediation_gui import window


def workbook(path: Path, grid_code: str) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "填表说明"
    ws.append(["本表为测试说明页"])
    ws2 = wb.create_sheet("人口")
    ws2.append(["户号", "网格", "姓名", "身份证号", "与户主关系", "出生日期", "手机（备用）"])
    ws2.append(["GUI-H001", grid_code, "导入甲", make_id(date(1980, 1, 2), "M", area="110101"), "户主", "1980-01-02",
                "13900000001"])
    ws2.append(["GUI-H001", grid_code, "导入乙", make_id(date(1982, 3, 4), "F", area="110101"), "配偶", "1982-03-04",
                "13900000002"])
    ws2.append(["GUI-H002", "火星网格", "导入丙", make_id(date(1990, 5, 6), "M", area="110101"), "户主", "1990-05-06",
                ""])
    ws2.append(["GUI-H003", grid_code, "导入丁", "110101199001011234", "户主", "1990-01-01", ""])
    wb.save(path)
    return path


def _to_the_preview(qtbot, wiz, path: Path) -> None:  # type: ignore[no-untyped-def]
    """File → the sheet 人口 → the mapping as found → the validation preview (page 4)."""
    wiz.set_file(str(path))
    qtbot.waitUntil(lambda: wiz.page == 1, timeout=10_000)
    wiz.load_sheet("人口")
    qtbot.waitUntil(lambda: wiz.page == 2, timeout=10_000)
    wiz.validate()
    qtbot.waitUntil(lambda: wiz.page == 3, timeout=15_000)


def test_clerk_imports_a_workbook_with_errors_and_gets_the_error_report(qtbot, sqlite_demo, signed_in, tmp_path):
    grid_code = raw(sqlite_demo, "SELECT code FROM areas WHERE level = 'grid' ORDER BY code LIMIT 1")[0][0]
    path = workbook(tmp_path / "人口导入.xlsx", grid_code)
    win = window(qtbot, sqlite_demo, signed_in("clerk"))
    win.show_view(7)
    page = win.exchange.build()
    assert page.import_button.isEnabled()
    assert page.exchange_box.title() == "离线交换"  # the place the offline exchange page goes
    wiz = page.open_wizard()
    wiz.policy.setCurrentIndex(wiz.policy.findData("quarantine"))
    wiz.file_edit.setText(str(path))
    qtbot.mouseClick(wiz.next_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: wiz.page == 1, timeout=10_000)  # two sheets: the user picks one
    assert [wiz.sheets.item(i).text() for i in range(wiz.sheets.count())] == ["填表说明", "人口"]
    wiz.sheets.setCurrentRow(1)
    qtbot.mouseClick(wiz.next_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: wiz.page == 2, timeout=10_000)
    # the mapping page: each column, the field it maps to, sample values
    table = wiz.map_table
    assert [table.item(i, 0).text() for i in range(table.rowCount())][:3] == ["户号", "网格", "姓名"]
    assert table.item(2, 2).text() == "导入甲" and table.item(2, 3).text() == "导入乙"
    assert wiz.mapping()["身份证号"] == "citizen_id"
    assert "手机（备用）" not in wiz.mapping() or wiz.mapping()["手机（备用）"] == "phone"
    wiz.set_field("手机（备用）", "phone")  # the user corrects the mapping
    qtbot.mouseClick(wiz.next_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: wiz.page == 3, timeout=15_000)
    assert wiz.check is not None and wiz.check.dry_run
    assert (wiz.check.rows_read, wiz.check.inserted, wiz.check.rejected) == (4, 2, 2)
    assert wiz.issues.rowCount() >= 2
    assert {wiz.issues.item(i, 0).text() for i in range(wiz.issues.rowCount())} >= {"4", "5"}
    assert raw(sqlite_demo, "SELECT count(*) FROM residents WHERE name LIKE '导入%'") == [(0,)]  # dry run
    qtbot.mouseClick(wiz.next_button, Qt.MouseButton.LeftButton)  # 开始导入
    qtbot.waitUntil(lambda: wiz.page == 5, timeout=30_000)
    wait_runner(qtbot, win.runner)
    assert wiz.import_result is not None and wiz.import_result.status == "imported"
    got = raw(sqlite_demo, "SELECT name, phone FROM residents WHERE name LIKE '导入%' ORDER BY name")
    assert got == [("导入乙", "13900000002"), ("导入甲", "13900000001")]
    assert "新增 2 人" in wiz.result_label.text()
    # the result page offers the error workbook: it exists and lists the two rejected rows
    assert wiz.open_report.isVisible()
    assert wiz.error_report is not None and wiz.error_report.exists()
    assert wiz.error_report_url() == QUrl.fromLocalFile(str(wiz.error_report))
    rows = list(openpyxl.load_workbook(wiz.error_report)["导入问题"].iter_rows(min_row=2, values_only=True))
    assert sorted(r[2] for r in rows) == sorted(["导入丙", "导入丁"])


def test_export_dialog_writes_the_list_as_filtered(qtbot, sqlite_demo, signed_in, tmp_path):
    win = window(qtbot, sqlite_demo, signed_in("street"))
    win.show_view(1)
    v = win.residents
    v.pop_type.setCurrentIndex(v.pop_type.findData("floating"))
    wait_runner(qtbot, win.runner)
    d = win.export_list("residents")
    qtbot.waitUntil(lambda: d.area_code is not None, timeout=10_000)
    assert d.filters == {"population_type": "floating", "status": "active"}
    assert "流动人口" in d.filter_label.text()
    out = tmp_path / "floating.xlsx"
    d.out.setText(str(out))
    assert d.message.isHidden() and d.export_job.isHidden()  # an idle dialog keeps no empty rows
    d.run_export()
    qtbot.waitUntil(lambda: hasattr(d, "export_result"), timeout=15_000)
    assert not d.message.isHidden()
    expected = raw(sqlite_demo, "SELECT count(*) FROM residents r JOIN households h ON h.id = r.household_id "
                                "JOIN areas g ON g.id = h.grid_id WHERE r.population_type = 'floating' "
                                "AND r.status = 'active' AND g.path LIKE ?", f"%/{win.area_id}/%")[0][0]
    assert d.export_result.rows == expected > 0
    assert openpyxl.load_workbook(out).active.max_row == expected + 1


def test_cancel_stops_the_import_and_writes_nothing(qtbot, sqlite_demo, signed_in, tmp_path):
    """The pool's threads are held busy so the import is queued; Cancel is pressed before it runs:
    the import stops at its first progress report, nothing is written, the window kept working."""
    import threading

    grid_code = raw(sqlite_demo, "SELECT code FROM areas WHERE level = 'grid' ORDER BY code LIMIT 1")[0][0]
    path = workbook(tmp_path / "cancel.xlsx", grid_code)
    win = window(qtbot, sqlite_demo, signed_in("clerk"))
    wiz = win.exchange.build().open_wizard()
    _to_the_preview(qtbot, wiz, path)
    wait_runner(qtbot, win.runner)
    gate = threading.Event()
    for _ in range(win.runner.pool.maxThreadCount()):
        win.runner.run(lambda _s, _t: gate.wait(10), mode="none", label="hold")
    wiz.start_import()
    assert wiz.page == 4 and wiz.import_job.button.isEnabled()
    qtbot.mouseClick(wiz.import_job.button, Qt.MouseButton.LeftButton)
    assert not wiz.import_job.button.isEnabled()
    gate.set()
    qtbot.waitUntil(lambda: wiz.page == 5, timeout=15_000)
    assert "导入已取消" in wiz.result_label.text()
    assert not wiz.open_report.isVisible()
    assert raw(sqlite_demo, "SELECT count(*) FROM residents WHERE name LIKE '导入%'") == [(0,)]


def test_monthly_report_of_the_supervisors_street(qtbot, sqlite_demo, signed_in, tmp_path):
    win = window(qtbot, sqlite_demo, signed_in("street"))
    d = win.exchange.build().open_monthly()
    qtbot.waitUntil(lambda: d.area.count() > 0, timeout=10_000)
    codes = [d.area.itemData(i) for i in range(d.area.count())]
    assert codes[0] == "340104001" and all(c.startswith("340104001") for c in codes)  # own street and below
    out = tmp_path / "monthly.xlsx"
    d.out.setText(str(out))
    d.run_report()
    qtbot.waitUntil(lambda: hasattr(d, "report_result"), timeout=30_000)
    assert out.exists() and len(openpyxl.load_workbook(out).sheetnames) >= 2
    assert str(out) in d.message.text()


def test_error_workbook_of_a_rejected_import_is_written_off_the_gui_thread(qtbot, sqlite_demo, signed_in, tmp_path,
                                                                          monkeypatch):
    """A rejected file (policy reject, two bad rows): the result page comes at once and the error
    workbook — every row, to fix and import again — is written by a background job, not by the GUI
    thread (a large one takes seconds and froze the window)."""
    import threading

    from gridman.core.services import census

    grid_code = raw(sqlite_demo, "SELECT code FROM areas WHERE level = 'grid' ORDER BY code LIMIT 1")[0][0]
    path = workbook(tmp_path / "rejected.xlsx", grid_code)
    writers: list[int] = []
    real = census.write_error_workbook

    def recording(*a, **k):  # the real writer, noting the thread it runs on
        writers.append(threading.get_ident())
        return real(*a, **k)

    monkeypatch.setattr(census, "write_error_workbook", recording)
    win = window(qtbot, sqlite_demo, signed_in("clerk"))
    wiz = win.exchange.build().open_wizard()
    assert wiz.policy.currentData() == "reject"
    _to_the_preview(qtbot, wiz, path)
    wiz.start_import()
    qtbot.waitUntil(lambda: wiz.page == 5, timeout=30_000)
    wait_runner(qtbot, win.runner)
    assert wiz.import_result is not None and wiz.import_result.status == "rejected"
    assert writers and threading.get_ident() not in writers
    assert wiz.open_report.isVisible() and wiz.error_report is not None and wiz.error_report.exists()
    rows = list(openpyxl.load_workbook(wiz.error_report)["导入问题"].iter_rows(min_row=2, values_only=True))
    assert sorted(r[2] for r in rows) == sorted(["导入甲", "导入乙", "导入丙", "导入丁"])
    assert str(wiz.error_report) in wiz.report_path.text()
    assert raw(sqlite_demo, "SELECT count(*) FROM residents WHERE name LIKE '导入%'") == [(0,)]

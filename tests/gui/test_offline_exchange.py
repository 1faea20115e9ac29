"""The 离线交换 page (issue 7 in the GUI): a clerk checks out a community through the page, the
workbook is edited with openpyxl while the same resident is changed centrally through the
services, the check-in's dry run shows exactly the conflicting field, "take offline" for it is
applied; a tampered workbook is refused with the reason shown and nothing written; undo from the
package list, and its refusal once a row was changed since. Roles without the permissions cannot
use the tabs."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook

from gridman.core.services import people
from gridman.gui.offline_exchange import OfflineExchangePage
from gridman.gui.qt import QMessageBox, Qt
from tests.gui.conftest import raw, wait_runner
from tests.gui.test_mediation_gui import window

COMMUNITY = "340104001001"  # 笔架山怡景园社区 of the demo sample
G1, G2 = "340104001001001", "340104001001002"


def set_cell(path: Path, out: Path, edits: dict[str, dict[str, object]], *, sheet: str = "实有人口") -> None:
    """edits: uuid → header → value, written with openpyxl like an offline clerk in Excel."""
    wb = load_workbook(path)
    ws = wb[sheet]
    col = {c.value: c.column for c in ws[1] if c.value}
    for r in range(2, ws.max_row + 1):
        u = ws.cell(r, 1).value
        for h, v in edits.get(u, {}).items():
            ws.cell(r, col[h], v)
    wb.save(out)


def phones(db, ids):  # type: ignore[no-untyped-def]
    return [raw(db, "SELECT phone FROM residents WHERE id = ?", i)[0][0] for i in ids]


def test_check_out_edit_check_in_with_a_conflict_then_undo(qtbot, sqlite_demo, signed_in, tmp_path):
    clerk = signed_in("clerk")
    win = window(qtbot, sqlite_demo, clerk)
    win.show_view(7)
    view = win.exchange.build()
    page: OfflineExchangePage = view.exchange_widget
    assert page.parent() is view.exchange_box
    qtbot.waitUntil(page.isVisible, timeout=5_000)
    qtbot.waitUntil(lambda: page.area_box.count() > 0, timeout=10_000)
    # the area selected in the tree is the one offered for check-out
    community_id = raw(sqlite_demo, "SELECT id FROM areas WHERE code = ?", COMMUNITY)[0][0]
    win.select_area(community_id)
    qtbot.waitUntil(lambda: page.area_box.currentData() == community_id, timeout=5_000)
    assert page.grid_list.count() == raw(sqlite_demo, "SELECT count(*) FROM areas WHERE level = 'grid' AND code LIKE ?",
                                         COMMUNITY + "%")[0][0]
    # check out the community through the page
    page.select_checkout_area(COMMUNITY)
    book = tmp_path / "out.xlsx"
    page.out_edit.setText(str(book))
    qtbot.mouseClick(page.checkout_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.checkout_result is not None, timeout=20_000)
    res = page.checkout_result
    assert book.exists() and res.area_code == COMMUNITY
    n_res = raw(sqlite_demo, "SELECT count(*) FROM residents r JOIN areas a ON a.id = r.grid_id "
                             "WHERE a.code LIKE ?", COMMUNITY + "%")[0][0]
    assert res.counts["residents"] == n_res
    assert res.package_id in page.checkout_label.text() and str(book) in page.checkout_label.text()
    (id1, u1, name1), (id2, u2, name2) = [tuple(r) for r in raw(
        sqlite_demo, "SELECT r.id, r.uuid, r.name FROM residents r JOIN areas a ON a.id = r.grid_id "
                     "WHERE a.code = ? ORDER BY r.id LIMIT 2", G1)]
    phone1_before, phone2_before = phones(sqlite_demo, [id1, id2])
    # offline: two phones changed; centrally: the second resident's phone too → one conflicting field
    edited = tmp_path / "back.xlsx"
    set_cell(book, edited, {u1: {"联系电话": "13900000001"}, u2: {"联系电话": "13900000002"}})
    with sqlite_demo.work(clerk) as s:
        v = raw(sqlite_demo, "SELECT version FROM residents WHERE id = ?", id2)[0][0]
        people.update_resident(s, clerk, id2, expected_version=v, phone="13700000002")
    # a tampered copy (checksum changed in the metadata sheet) is refused, nothing written
    tampered = tmp_path / "tampered.xlsx"
    wb = load_workbook(edited)
    for r in wb["_元数据"].iter_rows(min_row=2):
        if r[0].value == "checksum":
            r[2].value = "0" * 64
    wb.save(tampered)
    page.tabs.setCurrentIndex(1)
    page.in_edit.setText(str(tampered))
    qtbot.mouseClick(page.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.last_error is not None, timeout=20_000)
    assert type(page.last_error).__name__ == "ExchangeRefused" and page.last_error.reason == "tampered"
    assert "拒绝导入" in page.error_box.text() and page.error_box.isVisible()
    assert "拒绝导入" in page.checkin_label.text() and page.dry is None
    page.error_box.close()
    assert raw(sqlite_demo, "SELECT count(*) FROM import_batches WHERE kind = 'exchange'") == [(0,)]
    assert phones(sqlite_demo, [id1, id2]) == [phone1_before, "13700000002"]
    # the real workbook: dry run → exactly the one conflicting field
    page.last_error = None
    page.in_edit.setText(str(edited))
    qtbot.mouseClick(page.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.dry is not None, timeout=20_000)
    assert page.last_error is None
    t = page.conflicts
    assert t.rowCount() == 1
    assert [t.item(0, c).text() for c in range(6)] == [
        "实有人口", name2, "联系电话", phone_or_empty(phone2_before),
        "13700000002", "13900000002"]
    assert page.rows[0].uuid == u2 and page.boxes[0].currentData() == "keep-central"  # the safe default
    assert "更新 1 行" in page.checkin_label.text() and "冲突 1 行" in page.checkin_label.text()
    assert phones(sqlite_demo, [id1, id2]) == [phone1_before, "13700000002"]  # a dry run writes nothing
    # "all offline" then back, then the user picks offline for the field
    qtbot.mouseClick(page.all_offline, Qt.MouseButton.LeftButton)
    assert page.boxes[0].currentData() == "offline"
    qtbot.mouseClick(page.all_central, Qt.MouseButton.LeftButton)
    assert page.choices() == {u2: {"phone": "central"}}
    page.choose(0, "offline")
    qtbot.mouseClick(page.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.applied is not None, timeout=20_000)
    wait_runner(qtbot, win.runner)
    assert phones(sqlite_demo, [id1, id2]) == ["13900000001", "13900000002"]
    batch = page.applied.batch_id
    assert raw(sqlite_demo, "SELECT package_id, status FROM import_batches WHERE id = ?", batch) == [
        (res.package_id, "done")]
    assert f"批次 {batch}" in page.checkin_label.text()
    # the package list shows it checked in, by whom; undo it from there
    page.tabs.setCurrentIndex(2)
    wait_runner(qtbot, win.runner)
    page.select_package(res.package_id)
    row = page.package_table.currentRow()
    assert "已导回" in page.package_table.item(row, 5).text() and "clerk" in page.package_table.item(row, 5).text()
    assert page.undo_button.isEnabled()
    box = page.undo_selected()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: "已撤销" in page.package_label.text(), timeout=20_000)
    wait_runner(qtbot, win.runner)
    assert phones(sqlite_demo, [id1, id2]) == [phone1_before, "13700000002"]
    assert raw(sqlite_demo, "SELECT status FROM import_batches WHERE id = ?", batch) == [("undone",)]
    page.select_package(res.package_id)
    assert not page.undo_button.isEnabled()
    assert page.package_table.item(page.package_table.currentRow(), 5).text() == "已导出，待导回"
    # check in again (keep central everywhere), change a row it touched, and undo is refused
    page.tabs.setCurrentIndex(1)
    page.dry = page.applied = None
    page.run_dry()
    qtbot.waitUntil(lambda: page.dry is not None, timeout=20_000)
    page.run_apply()
    qtbot.waitUntil(lambda: page.applied is not None, timeout=20_000)
    wait_runner(qtbot, win.runner)
    assert phones(sqlite_demo, [id1, id2]) == ["13900000001", "13700000002"]
    with sqlite_demo.work(clerk) as s:
        v = raw(sqlite_demo, "SELECT version FROM residents WHERE id = ?", id1)[0][0]
        people.update_resident(s, clerk, id1, expected_version=v, note="之后又改")
    page.tabs.setCurrentIndex(2)
    wait_runner(qtbot, win.runner)
    page.select_package(res.package_id)
    page.last_error = None
    page.undo_selected(confirm=False)
    qtbot.waitUntil(lambda: page.last_error is not None, timeout=20_000)
    assert "不能撤销" in page.error_box.text() and "未撤销" in page.package_label.text()
    assert phones(sqlite_demo, [id1]) == ["13900000001"]
    win.close()
    win.runner.wait()


def phone_or_empty(v: object) -> str:
    return "（空）" if v in (None, "") else str(v)


def test_roles_without_the_permissions_cannot_use_the_tabs(qtbot, sqlite_demo, signed_in):
    from gridman.gui.ops import OpRunner

    for user, can_out, can_in in (("community", True, False), ("warden", False, False), ("clerk", True, True)):
        actor = signed_in(user)
        runner = OpRunner(sqlite_demo, actor)
        page = OfflineExchangePage(runner, actor)
        qtbot.addWidget(page)
        assert page.tabs.isTabEnabled(0) is can_out and page.tabs.isTabEnabled(1) is can_in, user
        assert (not page.undo_button.isHidden()) is can_in
        assert page.tabs.isTabEnabled(2) is (can_out or can_in), user
        wait_runner(qtbot, runner)
        runner.wait()


def test_cell_errors_are_listed_by_sheet_row_and_column_and_nothing_is_written(qtbot, sqlite_demo, signed_in,
                                                                                tmp_path):
    """A workbook with a bad enumeration cell: the dry run is refused with a table naming the cell,
    in English for an English user; no batch is recorded."""
    from gridman.core.services import exchange
    from gridman.gui import i18n
    from gridman.gui.ops import OpRunner
    from gridman.gui.qt import QLabel, QPushButton

    clerk = signed_in("clerk")
    book = tmp_path / "g.xlsx"
    uuid, name = raw(sqlite_demo, "SELECT r.uuid, r.name FROM residents r JOIN areas a ON a.id = r.grid_id "
                                  "WHERE a.code = ? ORDER BY r.id LIMIT 1", G1)[0]
    i18n.set_language("en")
    try:
        runner = OpRunner(sqlite_demo, clerk)
        page = OfflineExchangePage(runner, clerk)
        qtbot.addWidget(page)
        page.show()
        # a set of two grids of the community, checked out through the page
        qtbot.waitUntil(lambda: page.area_box.count() > 0, timeout=10_000)
        page.select_checkout_area(COMMUNITY)
        page.only_grids.setChecked(True)
        for i in range(page.grid_list.count()):
            it = page.grid_list.item(i)
            if it.data(Qt.ItemDataRole.UserRole) in (G1, G2):
                it.setCheckState(Qt.CheckState.Checked)
        assert page.checked_grids() == [G1, G2]
        page.out_edit.setText(str(book))
        page.run_checkout()
        qtbot.waitUntil(lambda: page.checkout_result is not None, timeout=20_000)
        n = raw(sqlite_demo, "SELECT count(*) FROM residents r JOIN areas a ON a.id = r.grid_id WHERE a.code IN (?, ?)",
                G1, G2)[0][0]
        assert page.checkout_result.counts["residents"] == n and page.checkout_result.area_code == COMMUNITY
        meta = {r[0].value: r[2].value for r in load_workbook(book, read_only=True)["_元数据"].iter_rows(min_row=2)}
        assert meta["grid_codes"] == f'["{G1}", "{G2}"]'
        bad = tmp_path / "bad.xlsx"
        set_cell(book, bad, {uuid: {"状态": "外出"}})
        page.tabs.setCurrentIndex(1)
        page.in_edit.setText(str(bad))
        page.run_dry()
        qtbot.waitUntil(lambda: page.last_error is not None, timeout=20_000)
        wait_runner(qtbot, runner)
        assert isinstance(page.last_error, exchange.ExchangeInvalid)
        assert page.stack.currentIndex() == 2 and page.issues.rowCount() >= 1
        cells = [[page.issues.item(i, j).text() for j in range(4)] for i in range(page.issues.rowCount())]
        wb_row = next(r for r in range(2, 10_000) if load_workbook(bad)["实有人口"].cell(r, 1).value == uuid)
        assert ["Residents", str(wb_row), "Status"] in [c[:3] for c in cells]
        assert any("外出" in c[3] for c in cells)
        assert "nothing was imported" in page.checkin_label.text()
        assert "nothing was imported" in page.error_box.text()
        # the page's own text is English (data and the service's cell reasons aside)
        import re

        han = re.compile(r"[\u3400-\u9fff]")
        texts = [page.tabs.tabText(i) for i in range(page.tabs.count())]
        texts += [b.text() for b in page.findChildren(QPushButton)]
        texts += [lb.text() for lb in page.findChildren(QLabel)]
        for t in (page.conflicts, page.issues, page.package_table):
            texts += [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())]
        bad_texts = [t for t in texts if han.search(t) and name not in t and "外出" not in t
                     and str(tmp_path) not in t]
        assert not bad_texts, bad_texts
        assert raw(sqlite_demo, "SELECT count(*) FROM import_batches WHERE kind = 'exchange'") == [(0,)]
        runner.wait()
    finally:
        i18n.set_language("zh_CN")


def test_cancel_a_check_out_and_a_dry_run_from_the_page(qtbot, sqlite_demo, signed_in, tmp_path):
    """Cancel while the job runs: the page's controls come back, no file and no package record are
    written; the progress bar shows the service's progress when it is not cancelled."""
    from gridman.gui.ops import OpRunner

    clerk = signed_in("clerk")
    runner = OpRunner(sqlite_demo, clerk)
    page = OfflineExchangePage(runner, clerk)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: page.area_box.count() > 0, timeout=10_000)
    wait_runner(qtbot, runner)
    page.select_checkout_area(COMMUNITY)
    (tmp_path / "out").mkdir()
    book = tmp_path / "out" / "out.xlsx"
    page.out_edit.setText(str(book))
    n_packages = raw(sqlite_demo, "SELECT count(*) FROM exchange_packages")[0][0]
    page.run_checkout()
    assert page.checkout_job.isVisible() and not page.checkout_button.isEnabled()
    qtbot.mouseClick(page.checkout_job.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.checkout_button.isEnabled(), timeout=20_000)
    wait_runner(qtbot, runner)
    assert "已取消" in page.checkout_label.text() and page.checkout_result is None
    assert not page.checkout_job.isVisible()
    assert list((tmp_path / "out").iterdir()) == []
    assert raw(sqlite_demo, "SELECT count(*) FROM exchange_packages")[0][0] == n_packages
    # not cancelled: it runs to the end, the bar having followed the service
    values: list[int] = []
    page.checkout_job.bar.valueChanged.connect(values.append)
    page.run_checkout()
    qtbot.waitUntil(lambda: page.checkout_result is not None, timeout=20_000)
    assert book.exists() and values and max(values) > 0
    # a dry run cancelled: the check-in tab is back to its start, no batch
    page.tabs.setCurrentIndex(1)
    page.in_edit.setText(str(book))
    page.run_dry()
    page.cancel_checkin()
    qtbot.waitUntil(lambda: page.check_button.isEnabled(), timeout=20_000)
    wait_runner(qtbot, runner)
    assert "已取消" in page.checkin_label.text() and page.dry is None and page.last_error is None
    assert raw(sqlite_demo, "SELECT count(*) FROM import_batches")[0][0] == 0
    runner.wait()

"""Journeys through the real window (offscreen): sign in, register a household, scope, edit
conflict, settings that persist, map and dashboard, administration."""

from __future__ import annotations

from gridman.core import idcard
from gridman.core.services import people
from gridman.gui.dialogs.resident_form import ResidentDialog
from gridman.gui.dialogs.signin import SignInDialog
from gridman.gui.main_window import MainWindow
from gridman.gui.ops import OpRunner
from gridman.gui.qt import QDialog, QDialogButtonBox, QMessageBox, Qt
from tests.gui.conftest import raw, type_text, wait_runner


def sign_in(qtbot, db, username: str, password: str = "gridman123"):  # type: ignore[no-untyped-def]
    runner = OpRunner(db)
    dlg = SignInDialog(runner)
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.username.clear()  # the dialog pre-fills the last user
    type_text(qtbot, dlg.username, username)
    type_text(qtbot, dlg.password, password)
    return runner, dlg


def open_window(qtbot, db, username: str) -> MainWindow:  # type: ignore[no-untyped-def]
    runner, dlg = sign_in(qtbot, db, username)
    with qtbot.waitSignal(dlg.signed_in, timeout=15_000):
        qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert dlg.result() == QDialog.DialogCode.Accepted
    win = MainWindow(db, dlg.actor, runner=runner)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.tree_loaded, timeout=15_000):
        win.show()
    wait_runner(qtbot, runner)
    if win.sweeper.timer.isActive():
        # the overdue sweep starts 1.5 s after the window and may change the cases a test is
        # about to act on (on a loaded machine, after the loads above): let its first run finish
        qtbot.waitUntil(lambda: win.sweeper.last is not None, timeout=30_000)
        wait_runner(qtbot, runner)
    return win


def test_wrong_password_is_refused_in_the_dialog(qtbot, sqlite_demo):
    runner, dlg = sign_in(qtbot, sqlite_demo, "warden", "nope")
    qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "不正确" in dlg.message.text(), timeout=10_000)
    assert dlg.actor is None and dlg.result() != QDialog.DialogCode.Accepted
    runner.wait()


def test_warden_signs_in_and_registers_a_household_with_two_residents(qtbot, sqlite_demo):
    win = open_window(qtbot, sqlite_demo, "warden")
    assert "许蕊" in win.user_label.text() and "网格员" in win.user_label.text()
    grid = min(win.actor.grid_ids)
    qtbot.waitUntil(lambda: win.area_id == grid, timeout=5_000)
    form = win.register_household()
    qtbot.waitUntil(lambda: form.grid.count() > 0, timeout=10_000)
    assert form.grid.currentData() == grid
    assert not form.save_button.isEnabled()  # household number is required
    type_text(qtbot, form.household_no, "GUI-TEST-0001")
    type_text(qtbot, form.address, "测试路1号")
    for name, seq, sex in (("测试甲", 11, "M"), ("测试乙", 12, "F")):
        qtbot.mouseClick(form.add_button, Qt.MouseButton.LeftButton)
        r = form.members.rowCount() - 1
        type_text(qtbot, form.cell(r, 0), name)
        cid = idcard.make("340104", __import__("datetime").date(1980 + seq, 3, 4), seq, sex)
        bad = cid[:17] + ("0" if cid[17] != "0" else "1")
        type_text(qtbot, form.cell(r, 1), bad)  # wrong check digit: flagged as you type
        assert "校验位" in form.message.text() and not form.save_button.isEnabled()
        form.cell(r, 1).clear()
        type_text(qtbot, form.cell(r, 1), cid)
    assert form.message.text() == "" and form.save_button.isEnabled()
    with qtbot.waitSignal(form.registered, timeout=15_000):
        qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    rows = raw(sqlite_demo, """SELECT r.name, r.relation_to_head, r.grid_id FROM residents r JOIN households h
                ON h.id = r.household_id WHERE h.household_no = 'GUI-TEST-0001' ORDER BY r.id""")
    assert rows == [("测试甲", "head", grid), ("测试乙", "spouse", grid)]
    audit = raw(sqlite_demo, "SELECT count(*) FROM audit_log WHERE table_name='residents' AND username='warden'")
    assert audit[0][0] == 2
    # the broadcast refreshed the register: the new residents are listed
    win.show_view(1)
    win.residents.search.setText("测试")
    qtbot.waitUntil(lambda: win.residents.model.rowCount() == 2, timeout=10_000)
    win.close()
    win.runner.wait()


def test_warden_cannot_see_another_grids_residents(qtbot, sqlite_demo):
    win = open_window(qtbot, sqlite_demo, "warden")
    own = set(win.actor.grid_ids)
    # the tree holds only the warden's grids (and the areas leading to them)
    grid_items = [i for i, it in win.area_items.items() if not it.hasChildren() and it.parent() is not None]
    assert set(grid_items) == own
    win.show_view(1)
    qtbot.waitUntil(lambda: win.residents.model.rowCount() > 0 and not win.residents.model.busy, timeout=10_000)
    wait_runner(qtbot, win.runner)
    other_names = {r[0] for r in raw(sqlite_demo, f"""SELECT name FROM residents
                   WHERE grid_id NOT IN ({','.join(map(str, own))})""")}
    own_count = raw(sqlite_demo, f"SELECT count(*) FROM residents WHERE status='active' AND grid_id IN ({','.join(map(str, own))})")[0][0]
    assert win.residents.model.total == own_count
    shown = {win.residents.model.rows[i][0] for i in range(win.residents.model.rowCount())}
    assert all(gid in own for gid in raw_grid_ids(sqlite_demo, win.residents.model.ids))
    assert shown - other_names or shown  # names may repeat across grids; ids decide
    # searching for a resident of another grid finds nothing
    stranger = raw(sqlite_demo, f"SELECT citizen_id FROM residents WHERE citizen_id IS NOT NULL AND grid_id NOT IN ({','.join(map(str, own))}) LIMIT 1")[0][0]
    win.residents.search.setText(stranger)
    win.residents.apply_filters()
    qtbot.waitUntil(lambda: win.residents.model.total == 0, timeout=10_000)
    wait_runner(qtbot, win.runner)  # the count and the first page are separate reads; both must land
    assert win.residents.model.rowCount() == 0
    # and opening such a resident directly is refused with a dialog, not shown
    other_id = raw(sqlite_demo, f"SELECT id FROM residents WHERE grid_id NOT IN ({','.join(map(str, own))}) LIMIT 1")[0][0]
    dlg = win.open_row("residents", other_id)
    qtbot.waitUntil(lambda: dlg.findChild(QMessageBox, "errorBox") is not None, timeout=10_000)
    box = dlg.findChild(QMessageBox, "errorBox")
    assert "无权" in box.text() and "管理员" in box.informativeText()
    assert not dlg.loaded and dlg.edits["name"].text() == ""
    win.close()
    win.runner.wait()


def click_at(qtbot, widget, viewbox, x: float, y: float) -> None:  # type: ignore[no-untyped-def]
    """Click the point (x, y) of a pyqtgraph view box (data coordinates) with the mouse."""
    from gridman.gui.qt import QPointF

    qtbot.wait(50)
    scene_pt = viewbox.mapViewToScene(QPointF(x, y))
    pos = widget.mapFromScene(scene_pt)
    qtbot.mouseClick(widget.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def raw_grid_ids(db, ids):  # type: ignore[no-untyped-def]
    return [r[0] for r in raw(db, f"SELECT grid_id FROM residents WHERE id IN ({','.join(map(str, ids))})")]


def test_edit_conflict_shows_the_reload_message(qtbot, sqlite_demo):
    win = open_window(qtbot, sqlite_demo, "community")
    rid, name = raw(sqlite_demo, f"""SELECT r.id, r.name FROM residents r JOIN areas a ON a.id = r.grid_id
                    WHERE a.path LIKE (SELECT path FROM areas WHERE id = {win.actor.area_id}) || '%' LIMIT 1""")[0]
    dlg = win.open_row("residents", rid)
    assert isinstance(dlg, ResidentDialog)
    qtbot.waitUntil(lambda: dlg.loaded, timeout=10_000)
    assert dlg.edits["name"].text() == name
    # someone else saves meanwhile (through the service, as another window would)
    with sqlite_demo.work(win.actor) as s:
        r = people.get_resident(s, win.actor, rid)
        people.update_resident(s, win.actor, rid, expected_version=r.version, phone="13900000000")
    dlg.edits["note"].clear()
    type_text(qtbot, dlg.edits["note"], "我的修改")
    assert dlg.save_button.isEnabled()
    # as-you-type validation: an impossible date disables saving
    dlg.edits["birth_date"].clear()
    type_text(qtbot, dlg.edits["birth_date"], "1990-02-30")
    assert not dlg.save_button.isEnabled() and "日期" in dlg.message.text()
    dlg.edits["birth_date"].setText(str(dlg.original["birth_date"] or ""))
    dlg.validate()
    qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.conflict_box is not None, timeout=10_000)
    box = dlg.conflict_box
    assert isinstance(box, QMessageBox) and "重新加载" in box.informativeText() + box.text()
    assert [b.text() for b in box.buttons() if b.text() == "重新加载"]
    assert raw(sqlite_demo, "SELECT note, phone FROM residents WHERE id=?", rid)[0] != ("我的修改", "13900000000")
    qtbot.mouseClick(dlg.reload_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.edits["phone"].text() == "13900000000", timeout=10_000)
    # after the reload the edit goes through
    type_text(qtbot, dlg.edits["note"], "我的修改")
    with qtbot.waitSignal(dlg.saved, timeout=10_000):
        qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    assert raw(sqlite_demo, "SELECT note FROM residents WHERE id=?", rid)[0][0] == "我的修改"
    # the resident's history lists both saves (newest first), from the audit log
    again = win.open_row("residents", rid)
    qtbot.waitUntil(lambda: again.loaded, timeout=10_000)
    n_audit = raw(sqlite_demo, "SELECT count(*) FROM audit_log WHERE table_name='residents' AND row_id=?", rid)[0][0]
    assert again.history.rowCount() == n_audit >= 2
    changes = [again.history.item(i, 3).text() for i in range(again.history.rowCount())]
    assert "我的修改" in changes[0] and "13900000000" in changes[1]
    assert again.history.item(0, 1).text() == "community"
    win.close()
    win.runner.wait()


def test_settings_persist_between_runs(qtbot, sqlite_demo):
    win = open_window(qtbot, sqlite_demo, "admin")
    from gridman.gui.qt import QGuiApplication

    screen = QGuiApplication.primaryScreen().availableGeometry()
    want = (min(1111, screen.width() - 60), min(777, screen.height() - 60))
    win.resize(*want)
    win.splitter.setSizes([260, want[0] - 270])
    win.show_view(4)
    win.residents.table.setColumnWidth(0, 187)
    sizes = win.splitter.sizes()
    win.close()
    win.runner.wait()
    again = open_window(qtbot, sqlite_demo, "admin")
    assert again.tabs.currentIndex() == 4
    # the offscreen screen is 800 px wide, narrower than the window's minimum: compare the height
    assert again.height() == want[1]
    assert again.splitter.sizes()[0] == sizes[0]  # the tree pane; the rest follows the window width
    assert again.residents.table.columnWidth(0) == 187
    again.close()
    again.runner.wait()


def test_map_dashboard_and_shortcuts(qtbot, sqlite_demo):
    from gridman.gui.qt import QKeySequence

    win = open_window(qtbot, sqlite_demo, "street")
    win.show_view(0)
    qtbot.waitUntil(lambda: win.map.data is not None, timeout=15_000)
    grids = raw(sqlite_demo, f"""SELECT id, center_lon, center_lat FROM areas WHERE level='grid'
                AND path LIKE (SELECT path FROM areas WHERE id={win.actor.area_id}) || '%'""")
    assert sorted(win.map.data.ids) == sorted(g[0] for g in grids)
    assert len(win.map.layer.items) >= 1  # combined paths, not one item per grid
    assert len(win.map.layer.items) <= 5 < len(grids)
    gid, lon, lat = grids[1]
    assert win.map.grid_at(lon, lat) == gid
    with qtbot.waitSignal(win.map.grid_clicked, timeout=5_000) as clicked:
        click_at(qtbot, win.map.plot_widget, win.map.plot.getViewBox(), lon, lat)  # a real mouse click
    assert clicked.args == [gid]
    qtbot.waitUntil(lambda: win.area_id == gid, timeout=5_000)
    # the map keeps the grid in its community's context, highlighted
    community = raw(sqlite_demo, "SELECT parent_id FROM areas WHERE id=?", gid)[0][0]
    assert win.map.area_id == community and win.map.selected == gid
    qtbot.waitUntil(lambda: win.runner.pending == 0, timeout=10_000)
    assert gid in win.map.data.ids and not win.map.layer.highlight.path().isEmpty()
    assert "户数" in win.map.tooltip(gid)
    # Ctrl+5 opens the dashboard; a category bar opens the incidents list filtered by it
    assert win.view_actions[4].shortcut() == QKeySequence("Ctrl+5")
    win.view_actions[4].trigger()
    assert win.tabs.currentWidget() is win.dashboard
    qtbot.waitUntil(lambda: win.dashboard.data is not None, timeout=15_000)
    kind, filt = win.dashboard.bar_at(2, 1.0, 0.0)
    assert kind == "incidents"
    # click the first bar of the category chart
    plot = win.dashboard.plots[2]
    click_at(qtbot, win.dashboard.glw, plot.getViewBox(), 1.0, 0.0)
    qtbot.waitUntil(lambda: win.tabs.currentWidget() is win.incidents, timeout=5_000)
    assert win.incidents.category.currentData() == filt["category"]
    qtbot.waitUntil(lambda: win.incidents.model.total is not None, timeout=10_000)
    expect = raw(sqlite_demo, "SELECT count(*) FROM incidents WHERE grid_id=? AND category=?", gid, filt["category"])
    assert win.incidents.model.total == expect[0][0]
    win.act_find.trigger()
    assert win.incidents.search.hasFocus() or win.focusWidget() is win.incidents.search
    win.close()
    win.runner.wait()


def test_admin_backs_up_and_restores(qtbot, sqlite_demo):
    win = open_window(qtbot, sqlite_demo, "admin")
    win.show_view(5)
    admin = win.admin
    qtbot.waitUntil(lambda: admin.users.model.total is not None, timeout=10_000)
    assert admin.users.model.total == raw(sqlite_demo, "SELECT count(*) FROM users WHERE is_system = 0")[0][0]
    qtbot.mouseClick(admin.backup_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: admin.last_backup is not None, timeout=15_000)
    assert admin.last_backup.exists()
    before = raw(sqlite_demo, "SELECT count(*) FROM households")[0][0]
    with sqlite_demo.work(win.actor) as s:
        grid = s.scalar(__import__("sqlalchemy").text("SELECT id FROM areas WHERE level='grid' LIMIT 1"))
        people.register_household(s, win.actor, grid_id=grid, household_no="AFTER-BACKUP")
    assert raw(sqlite_demo, "SELECT count(*) FROM households")[0][0] == before + 1
    with qtbot.waitSignal(admin.restored, timeout=20_000):
        admin.restore_from(admin.last_backup, confirm=False)
    assert raw(sqlite_demo, "SELECT count(*) FROM households")[0][0] == before
    win.close()
    win.runner.wait()


def test_double_click_opens_households_and_other_rows(qtbot, sqlite_demo):
    from gridman.gui.dialogs.household_form import HouseholdDialog
    from gridman.gui.dialogs.row_detail import RowDetailDialog

    win = open_window(qtbot, sqlite_demo, "community")
    win.show_view(2)
    win.others.setCurrentIndex(0)  # households
    hh_view = win.registers["households"]
    qtbot.waitUntil(lambda: hh_view.model.rowCount() > 0, timeout=10_000)
    rect = hh_view.table.visualRect(hh_view.model.index(0, 0))
    qtbot.mouseClick(hh_view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(hh_view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    d = next(w for w in win.dialogs if isinstance(w, HouseholdDialog))
    qtbot.waitUntil(lambda: d.view is not None, timeout=10_000)
    hid = hh_view.model.ids[0]
    members = raw(sqlite_demo, "SELECT count(*) FROM residents WHERE household_id=?", hid)[0][0]
    assert d.members.rowCount() == members > 0 and d.view.household_no == hh_view.model.display(0, 0)
    d.close()
    win.others.setCurrentIndex(2)  # premises
    pv = win.registers["premises"]
    qtbot.waitUntil(lambda: pv.model.rowCount() > 0, timeout=10_000)
    rd = win.open_row("premises", pv.model.ids[0])
    assert isinstance(rd, RowDetailDialog)
    name = raw(sqlite_demo, "SELECT name FROM premises WHERE id=?", pv.model.ids[0])[0][0]
    assert rd.values["name"] == name
    rd.close()
    win.close()
    win.runner.wait()


def test_admin_changes_a_users_role_and_disables_an_account(qtbot, sqlite_demo):
    """系统管理 → 修改用户: the community account becomes a street supervisor of 琥珀街道 and is
    disabled; it can no longer sign in; the audit log has the change but never a password hash."""
    win = open_window(qtbot, sqlite_demo, "admin")
    win.show_view(5)
    admin = win.admin
    users = admin.users
    qtbot.waitUntil(lambda: users.model.total is not None and users.model.rowCount() > 0, timeout=10_000)
    uid, street = raw(sqlite_demo, "SELECT u.id, a.id FROM users u, areas a WHERE u.username = 'community' "
                                   "AND a.name = '琥珀街道'")[0]
    row = next(r for r in range(users.model.rowCount()) if users.model.row_id(r) == uid)
    users.table.selectRow(row)
    admin.edit_user()
    d = admin.edit_dialog
    qtbot.waitUntil(lambda: d.version is not None, timeout=10_000)
    assert d.username.text() == "community" and d.active.isChecked()
    d.role.setCurrentIndex(d.role.findData("street_supervisor"))
    d.area.setCurrentIndex(d.area.findData(street))
    d.active.setChecked(False)
    type_text(qtbot, d.password, "newpass99")
    with qtbot.waitSignal(d.accepted, timeout=10_000):
        qtbot.mouseClick(d.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert raw(sqlite_demo, "SELECT role, area_id, active FROM users WHERE id = ?", uid) == [
        ("street_supervisor", street, 0)]
    changes = raw(sqlite_demo, "SELECT changes FROM audit_log WHERE table_name = 'users' AND row_id = ? "
                               "AND action = 'update'", uid)[0][0]
    assert '"***"' in changes and "scrypt" not in changes
    runner, dlg = sign_in(qtbot, sqlite_demo, "community", "newpass99")
    qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "不正确" in dlg.message.text(), timeout=10_000)
    win.close()
    win.runner.wait()


def test_resident_history_shows_local_times(qtbot, sqlite_demo, signed_in, monkeypatch):
    """The audit log stores naive UTC; the history shows the computer's time, as the case views do."""
    import time
    from datetime import UTC, datetime

    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        actor = signed_in("community")
        rid = raw(sqlite_demo, "SELECT id FROM residents ORDER BY id LIMIT 1")[0][0]
        with sqlite_demo.work(actor) as s:
            r = people.get_resident(s, actor, rid)
            people.update_resident(s, actor, rid, expected_version=r.version, phone="13900000001")
        at = raw(sqlite_demo, "SELECT max(at) FROM audit_log WHERE table_name='residents' AND row_id=?", rid)[0][0]
        runner = OpRunner(sqlite_demo, actor)
        dlg = ResidentDialog(runner, actor, rid)
        qtbot.addWidget(dlg)
        qtbot.waitUntil(lambda: dlg.loaded, timeout=10_000)
        local = datetime.fromisoformat(at).replace(tzinfo=UTC).astimezone()
        assert dlg.history.item(0, 0).text() == f"{local:%Y-%m-%d %H:%M}"
        runner.wait()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()

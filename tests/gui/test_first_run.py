"""First run (issue #15 Build 1): on a database nobody can sign in to, ``gridman`` opens the setup
wizard instead of the sign-in; finishing it creates the office name, the administrator and the root
area, and signs the administrator in. Also: 修改密码 from the menu, 解除锁定 on the users page."""

from __future__ import annotations

import pytest

from gridman.core.services import auth, setup
from gridman.core.services.errors import PermissionDenied
from gridman.gui.dialogs.setup_wizard import SetupWizard
from gridman.gui.main_window import MainWindow
from gridman.gui.ops import OpRunner
from gridman.gui.qt import QApplication, QDialogButtonBox, Qt, QTimer
from tests.gui.conftest import raw, run_gui_driven, type_text, wait_runner
from tests.gui.test_journeys import open_window


def fill(qtbot, w: SetupWizard, *, password: str = "Hefei-admin-1", again: str | None = None) -> None:  # type: ignore[no-untyped-def]
    type_text(qtbot, w.office, "蜀山区网格化服务管理中心")
    w.username.clear()
    type_text(qtbot, w.username, "chief")
    type_text(qtbot, w.display_name, "王主任")
    type_text(qtbot, w.password, password)
    type_text(qtbot, w.password2, password if again is None else again)
    w.area_code.clear()
    type_text(qtbot, w.area_code, "340100")
    type_text(qtbot, w.area_name, "合肥市")


def test_gridman_on_a_new_database_runs_the_wizard_and_signs_the_administrator_in(qtbot, sqlite_db):
    """Before: only a sign-in nobody could pass (the only account was the system account)."""
    path = str(sqlite_db.sqlite_path)
    sqlite_db.dispose()
    seen: dict[str, object] = {}

    def drive() -> None:
        wiz = next((w for w in QApplication.topLevelWidgets() if isinstance(w, SetupWizard) and w.isVisible()), None)
        win = next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()), None)
        if win is not None:
            if win.area_items and win.runner.pending == 0:  # the tree is loaded, no job in flight
                seen["user"] = win.user_label.text()
                win.close()
                return
        elif wiz is not None and not seen.get("submitted"):
            fill(qtbot, wiz)
            qtbot.mouseClick(wiz.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
            seen["submitted"] = True
        QTimer.singleShot(50, drive)

    rc = run_gui_driven(path, drive)
    assert rc == 0 and seen.get("submitted")
    assert "王主任" in str(seen.get("user"))
    from gridman.core.db import open_database

    db = open_database(path)
    try:
        assert raw(db, "SELECT username, role, active FROM users WHERE is_system = 0") == [("chief", "admin", 1)]
        assert raw(db, "SELECT code, name, level, parent_id FROM areas") == [("340100", "合肥市", "city", None)]
        with db.session() as s:
            assert setup.office_name(s) == "蜀山区网格化服务管理中心"
        acts = raw(db, "SELECT action, table_name, username FROM audit_log ORDER BY id")
        assert ("first_run", "users", "system") in acts and ("insert", "areas", "system") in acts
        assert ("insert", "users", "system") in acts and ("login", "users", "chief") in acts
        with db.begin() as s:
            assert auth.authenticate(s, "chief", "Hefei-admin-1").username == "chief"
    finally:
        db.dispose()


def test_the_wizard_says_what_the_password_needs(qtbot, sqlite_db):
    runner = OpRunner(sqlite_db)
    w = SetupWizard(runner)
    qtbot.addWidget(w)
    w.show()
    fill(qtbot, w, password="123456")
    assert "太短" in w.rule.text()  # while typing
    qtbot.mouseClick(w.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "至少 8 位" in w.message.text(), timeout=10_000)  # and from the service
    assert w.actor is None
    w.password.clear()
    type_text(qtbot, w.password, "Hefei-admin-1")
    qtbot.mouseClick(w.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert "不一致" in w.message.text()
    assert raw(sqlite_db, "SELECT count(*) FROM users WHERE is_system = 0") == [(0,)]  # nothing half-made
    assert raw(sqlite_db, "SELECT count(*) FROM areas") == [(0,)]
    wait_runner(qtbot, runner)


def test_change_password_from_the_menu_and_unlock_from_the_users_page(qtbot, sqlite_demo):
    win = open_window(qtbot, sqlite_demo, "clerk")
    dlg = win.change_password()
    type_text(qtbot, dlg.current, "gridman123")
    type_text(qtbot, dlg.new, "clerk")
    type_text(qtbot, dlg.again, "clerk")
    qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "太短" in dlg.message.text(), timeout=10_000)
    for w in (dlg.new, dlg.again):
        w.clear()
        type_text(qtbot, w, "Office-pass-7")
    with qtbot.waitSignal(dlg.accepted, timeout=10_000):
        qtbot.mouseClick(dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    wait_runner(qtbot, win.runner)
    win.close()
    win.runner.wait()
    for _ in range(5):  # lock the clerk
        with pytest.raises(PermissionDenied), sqlite_demo.begin() as s:
            auth.authenticate(s, "clerk", "wrong-guess-1")
    uid = raw(sqlite_demo, "SELECT id FROM users WHERE username = 'clerk'")[0][0]
    win = open_window(qtbot, sqlite_demo, "admin")
    win.show_view(5)
    users = win.admin.users
    qtbot.waitUntil(lambda: users.model.total is not None and users.model.rowCount() > 0, timeout=10_000)
    users.table.selectRow(next(r for r in range(users.model.rowCount()) if users.model.row_id(r) == uid))
    win.admin.unlock()
    qtbot.waitUntil(lambda: raw(sqlite_demo, "SELECT locked_until FROM users WHERE id = ?", uid) == [(None,)],
                    timeout=10_000)
    wait_runner(qtbot, win.runner)  # the users list refreshes after the unlock: let it finish first
    win.close()
    win.runner.wait()
    with sqlite_demo.begin() as s:
        assert auth.authenticate(s, "clerk", "Office-pass-7").username == "clerk"

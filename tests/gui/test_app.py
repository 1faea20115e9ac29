"""`gridman` with no command: the sign-in dialog (database opening behind it), then the window."""

from __future__ import annotations

from gridman.gui.qt import QApplication, QTimer
from tests.gui.conftest import run_gui_driven


def test_run_gui_signs_in_and_opens_the_main_window(qtbot, sqlite_demo):
    from gridman.gui.dialogs.signin import SignInDialog
    from gridman.gui.main_window import MainWindow

    path = str(sqlite_demo.sqlite_path)
    sqlite_demo.dispose()
    seen: dict[str, object] = {}

    def drive() -> None:
        dlg = next((w for w in QApplication.topLevelWidgets() if isinstance(w, SignInDialog) and w.isVisible()), None)
        win = next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()), None)
        if win is not None:
            if win.area_items and win.runner.pending == 0:
                seen["user"] = win.user_label.text()
                win.close()
                return
        elif dlg is not None and not seen.get("submitted") and dlg.runner.db is not None:
            dlg.username.setText("warden")
            dlg.password.setText("gridman123")
            dlg.submit()
            seen["submitted"] = True
        QTimer.singleShot(50, drive)

    rc = run_gui_driven(path, drive)
    assert rc == 0
    assert "许蕊" in str(seen.get("user")) and "网格员" in str(seen.get("user"))

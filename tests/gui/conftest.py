from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _gui_settings(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Path]:
    """QSettings in a temp dir (never the developer's real settings); Chinese UI by default."""
    from gridman.gui.i18n import set_language
    from gridman.gui.qt import QSettings

    d = tmp_path_factory.mktemp("qsettings")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(d))
    set_language("zh_CN")
    yield d
    set_language("zh_CN")


@pytest.fixture
def signed_in(sqlite_demo):  # type: ignore[no-untyped-def]
    """A function: user name → Actor, signed in through services.auth."""
    from gridman.core.services.auth import authenticate

    def sign(username: str):  # type: ignore[no-untyped-def]
        with sqlite_demo.begin() as s:
            return authenticate(s, username, "gridman123")

    return sign


def raw(db, sql: str, *args):  # type: ignore[no-untyped-def]
    """Independent answers straight from the SQLite file (not through the code under test)."""
    con = sqlite3.connect(str(db.sqlite_path))
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def wait_runner(qtbot, runner, timeout: int = 15_000) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=timeout)


def type_text(qtbot, widget, text: str) -> None:  # type: ignore[no-untyped-def]
    """Type like a user: ASCII through key clicks, Chinese through an input-method commit (as a
    pinyin IME delivers it; QTest cannot synthesise non-ASCII key events)."""
    from PySide6.QtGui import QInputMethodEvent

    from gridman.gui.qt import QApplication

    widget.setFocus()
    if text.isascii():
        qtbot.keyClicks(widget, text)
        return
    ev = QInputMethodEvent()
    ev.setCommitString(text)
    QApplication.sendEvent(widget, ev)


def run_gui_driven(db_path: str, drive, lang: str = "zh_CN") -> int:  # type: ignore[no-untyped-def]
    """``gridman`` with no command on ``db_path``, with ``drive()`` called from the event loop
    (it re-arms itself with QTimer until it closes the window). run_gui installs an excepthook and
    a log file for the process: both are undone afterwards for the other tests."""
    import logging
    import sys

    from gridman.gui.app import run_gui
    from gridman.gui.qt import QTimer

    hook, handlers = sys.excepthook, list(logging.getLogger("gridman").handlers)
    QTimer.singleShot(50, drive)
    try:
        return run_gui(db=db_path, lang=lang)
    finally:
        sys.excepthook = hook
        for h in logging.getLogger("gridman").handlers:
            if h not in handlers:
                logging.getLogger("gridman").removeHandler(h)
                h.close()

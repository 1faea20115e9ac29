"""Start the desktop application: QApplication, database (upgraded with a backup), main window."""

from __future__ import annotations

import logging
import os
import sys
import traceback

from gridman.core import config

log = logging.getLogger("gridman.gui")


def _install_excepthook() -> None:
    """No traceback reaches a user: it goes to the log; the user gets a dialog."""

    def hook(exc_type, exc, tb):  # type: ignore[no-untyped-def]
        log.error("unhandled: %s", "".join(traceback.format_exception(exc_type, exc, tb)))
        from gridman.gui.qt import QApplication, QMessageBox

        if QApplication.instance() is not None:
            QMessageBox.critical(None, "gridman", f"发生意外错误：{exc}\n\n详情已写入日志：{config.log_dir() / 'gui.log'}")

    sys.excepthook = hook


def _setup_logging() -> None:
    handler = logging.FileHandler(config.log_dir() / "gui.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("gridman")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def run_gui(db: str | None = None, lang: str | None = None) -> int:
    from gridman.core.db import SchemaError, open_database
    from gridman.gui.main_window import MainWindow
    from gridman.gui.qt import QApplication, QMessageBox

    _setup_logging()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("gridman")
    app.setOrganizationName("gridman")
    _install_excepthook()
    try:
        database = open_database(db)
    except SchemaError as exc:
        QMessageBox.critical(None, "gridman", str(exc))
        return 3
    win = MainWindow(database, lang=lang or os.environ.get("GRIDMAN_LANG", "zh_CN"))
    win.show()
    rc = app.exec()
    database.dispose()
    return int(rc)

"""Start the desktop application: QApplication, database (upgraded with a backup), sign-in,
main window. No traceback reaches a user: it goes to ``<data dir>/logs/gui.log``."""

from __future__ import annotations

import logging
import os
import sys
import traceback

from gridman.core import config

log = logging.getLogger("gridman.gui")
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei")


def _install_excepthook() -> None:
    """Unhandled errors: traceback to the log; the user gets a dialog in their language."""

    def hook(exc_type, exc, tb):  # type: ignore[no-untyped-def]
        log.error("unhandled: %s", "".join(traceback.format_exception(exc_type, exc, tb)))
        from gridman.gui.errors import show_error
        from gridman.gui.qt import QApplication

        if QApplication.instance() is not None:
            show_error(QApplication.activeWindow(), exc)

    sys.excepthook = hook


def _setup_logging() -> None:
    handler = logging.FileHandler(config.log_dir() / "gui.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("gridman")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def make_app():  # type: ignore[no-untyped-def]
    """The QApplication with the names QSettings uses and a CJK font when one is installed."""
    from gridman.gui.qt import QApplication, QFont, QFontDatabase

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("gridman")
    app.setOrganizationName("gridman")
    families = set(QFontDatabase.families())
    for fam in CJK_FONTS:
        if fam in families:
            f = QFont(fam)
            f.setPointSize(10)
            app.setFont(f)
            break
    return app


def run_gui(db: str | None = None, lang: str | None = None) -> int:
    """Sign-in first (shown at once; the database opens behind it) — or the first-run wizard when
    nobody can sign in yet — then the main window."""
    from gridman.gui.dialogs.signin import SignInDialog
    from gridman.gui.i18n import set_language
    from gridman.gui.ops import OpRunner
    from gridman.gui.qt import QDialog
    from gridman.gui.settings import saved_language

    _setup_logging()
    app = make_app()
    set_language(lang or os.environ.get("GRIDMAN_LANG") or saved_language())
    _install_excepthook()
    runner = OpRunner(None)
    dlg = SignInDialog(runner, database=db, preload=True)
    result, actor = dlg.exec(), dlg.actor
    if result == SignInDialog.SETUP:  # nobody can sign in yet: the first-run wizard instead
        from gridman.gui.dialogs.setup_wizard import SetupWizard

        wizard = SetupWizard(runner)
        result, actor = wizard.exec(), wizard.actor
    if result != QDialog.DialogCode.Accepted or actor is None or runner.db is None:
        runner.wait()
        if runner.db is not None:
            runner.db.dispose()
        return 3 if dlg.open_error is not None else 0
    from gridman.gui.main_window import MainWindow

    database = runner.db
    win = MainWindow(database, actor, runner=runner)
    runner.setParent(win)
    win.show()
    win.admin.backup_if_due()
    rc = app.exec()
    runner.wait()
    database.dispose()
    return int(rc)

"""The GUI's save dialogs refuse the open database like the CLI (the same guard, in the services),
and the administration page makes the scheduled backup when one is due (pytest-qt, offscreen)."""

from __future__ import annotations

import hashlib

from gridman.core.services import backup
from gridman.gui.admin.view import AdminView
from gridman.gui.import_export.export_dialogs import ExportDialog
from gridman.gui.ops import OpRunner
from tests.gui.conftest import raw, wait_runner


def test_export_dialog_refuses_to_save_over_the_database(qtbot, sqlite_demo, signed_in):
    path = sqlite_demo.sqlite_path
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    runner = OpRunner(sqlite_demo, signed_in("admin"))
    d = ExportDialog(runner, runner.actor, kind="residents", area_id=None)
    qtbot.addWidget(d)
    wait_runner(qtbot, runner)
    d.out.setText(str(path))
    d.run_export()
    qtbot.waitUntil(lambda: "不能写入" in d.message.text(), timeout=15_000)
    assert str(path) in d.message.text()
    wait_runner(qtbot, runner)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert raw(sqlite_demo, "PRAGMA integrity_check") == [("ok",)]


def test_admin_page_makes_the_scheduled_backup_when_due(qtbot, sqlite_demo, signed_in, tmp_path):
    actor = signed_in("admin")
    backup.set_schedule(sqlite_demo, actor, every_days=1, keep=3, folder=tmp_path / "b")
    runner = OpRunner(sqlite_demo, actor)
    view = AdminView(runner, actor)
    qtbot.addWidget(view)
    view.backup_if_due()
    qtbot.waitUntil(lambda: view.last_backup is not None, timeout=20_000)
    assert view.last_backup.parent == (tmp_path / "b").resolve() and backup.verify(view.last_backup).ok
    view.last_backup = None
    view.backup_if_due()  # not due again today
    wait_runner(qtbot, runner)
    assert view.last_backup is None and len(backup.list_backups(sqlite_demo, tmp_path / "b")) == 1

"""系统管理: the administration page — its tabs (users and roles, time limits and holidays, the
grid check) and the backup-and-restore box (``services.backup``)."""

from __future__ import annotations

from pathlib import Path

from gridman.core.changes import Changes
from gridman.core.services import backup
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.admin.grid_check import GridCheckView
from gridman.gui.admin.policy import PolicyEditor
from gridman.gui.admin.users import AssignForm, EditUserForm, UserForm
from gridman.gui.errors import show_error, show_info
from gridman.gui.i18n import tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    Signal,
)
from gridman.gui.registers.view import RegisterView


def admin_tabs(runner: OpRunner, actor: Actor) -> tuple[QTabWidget, PolicyEditor | None, GridCheckView]:
    """The extra administration tabs (the admin view shows them under its users and backup)."""
    tabs = QTabWidget()
    policy = None
    if actor.can(Perm.MANAGE_POLICY):
        policy = PolicyEditor(runner, actor)
        tabs.addTab(policy, tr("办理时限与节假日"))
    check = GridCheckView(runner, actor)
    tabs.addTab(check, tr("网格边界检查"))
    return tabs, policy, check

class AdminView(QWidget):
    restored = Signal()

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.users: RegisterView | None = None
        self.tabs, self.policy, self.grid_check = admin_tabs(runner, actor)
        self.tabs.setObjectName("adminTabs")
        if actor.can(Perm.MANAGE_USERS):
            self.users = RegisterView(runner, actor, "users")
            self.users.add_action(tr("新建用户"), self.new_user, name="newUser")
            self.users.add_action(tr("修改用户"), self.edit_user, name="editUser")
            self.users.add_action(tr("分配网格"), self.assign, name="assignGrid")
            self.users.add_action(tr("解除锁定"), self.unlock, name="unlockUser")
            self.tabs.insertTab(0, self.users, tr("用户与角色"))
            self.tabs.setCurrentIndex(0)
        lay.addWidget(self.tabs, 1)
        box = QGroupBox(tr("备份与恢复"))
        row = QHBoxLayout(box)
        self.backup_button = QPushButton(tr("立即备份"))
        self.backup_button.setObjectName("backupNow")
        self.backup_button.clicked.connect(self.backup_now)
        self.restore_button = QPushButton(tr("从备份恢复…"))
        self.restore_button.clicked.connect(self.restore)
        for b in (self.backup_button, self.restore_button):
            b.setEnabled(actor.can(Perm.BACKUP) and runner.db.sqlite_path is not None)
            row.addWidget(b)
        self.backup_label = QLabel(tr("备份文件保存在数据库文件旁边。"))
        self.backup_label.setWordWrap(True)
        row.addWidget(self.backup_label, 1)
        lay.addWidget(box)
        self.last_backup: Path | None = None

    def set_area(self, area_id: int | None) -> None:
        self.grid_check.set_area(area_id)

    def mark_dirty(self) -> None:
        if self.users is not None:
            self.users.mark_dirty()

    def refresh(self) -> None:
        if self.users is not None:
            self.users.refresh()

    def new_user(self) -> None:
        UserForm(self.runner, self.actor, self).open()

    def edit_user(self) -> None:
        ids = self.users.selected_ids() if self.users else []
        if len(ids) != 1:
            show_info(self, tr("请先在列表中选择一位用户。"))
            return
        self.edit_dialog = EditUserForm(self.runner, self.actor, ids[0], self)
        self.edit_dialog.open()

    def assign(self) -> None:
        ids = self.users.selected_ids() if self.users else []
        if len(ids) != 1:
            show_info(self, tr("请先在列表中选择一位网格员。"))
            return
        AssignForm(self.runner, self.actor, ids[0], self).open()

    def unlock(self) -> None:
        """解除锁定: lift the lock on the selected accounts (services.lockout.unlock)."""
        ids = self.users.selected_ids() if self.users else []
        if not ids:
            show_info(self, tr("请先在列表中选择一位用户。"))
            return
        actor = self.actor

        def job(s, _t):  # type: ignore[no-untyped-def]
            from gridman.core.services import lockout

            for uid in ids:
                lockout.unlock(s, actor, uid)
            return len(ids)

        self.runner.run(job, mode="write", on_error=self._error, label="unlock")

    def backup_now(self) -> None:
        db, actor = self.runner.db, self.actor
        self.backup_button.setEnabled(False)
        self.runner.run(lambda _s, _t: backup.backup_now(db, actor), mode="none", on_done=self._backed_up,
                        on_error=self._error, label="backup")

    def backup_if_due(self) -> None:
        """The scheduled backup (``gridman backup schedule``), when one is due, at start-up."""
        db, actor = self.runner.db, self.actor
        if not self.backup_button.isEnabled():
            return
        self.runner.run(lambda _s, _t: backup.create_if_due(db, actor), mode="none",
                        on_done=self._scheduled_done, on_error=self._error, label="scheduled-backup")

    def _scheduled_done(self, res: backup.BackupResult | None) -> None:
        if res is not None:
            self._backed_up(Path(res.path))

    def _backed_up(self, path: Path) -> None:
        self.backup_button.setEnabled(True)
        self.last_backup = path
        self.backup_label.setText(tr("已备份到：{path}").format(path=path))

    def _error(self, exc: BaseException) -> None:
        self.backup_button.setEnabled(True)
        show_error(self, exc)

    def restore(self) -> None:
        path = self.runner.db.sqlite_path
        start = str(path.parent) if path else ""
        fn, _ = QFileDialog.getOpenFileName(self, tr("选择备份文件"), start, tr("数据库备份 (*.sqlite)"))
        if fn:
            self.restore_from(Path(fn), confirm=True)

    def restore_from(self, source: Path, *, confirm: bool = True) -> None:
        if confirm:
            ans = QMessageBox.question(self, tr("从备份恢复"),
                                       tr("将用 {name} 替换当前全部数据（当前数据会先另存一份）。继续吗？").format(
                                           name=source.name))
            if ans != QMessageBox.StandardButton.Yes:
                return
        db, actor = self.runner.db, self.actor
        self.runner.run(lambda _s, _t: backup.restore(db, actor, source), mode="none", on_done=self._restored,
                        on_error=self._error, label="restore")

    def _restored(self, safety: Path) -> None:
        self.backup_label.setText(tr("已恢复。恢复前的数据另存为：{path}").format(path=safety))
        self.runner.broadcast(Changes.all())
        self.restored.emit()

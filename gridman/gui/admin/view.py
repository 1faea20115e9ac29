"""系统管理: users and roles, warden↔grid assignments (services.auth), backup now and restore."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gridman.core import enums
from gridman.core.models import Area, User
from gridman.core.services import auth, backup, registers
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.errors import describe, show_error, show_info
from gridman.gui.i18n import language, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
    Signal,
)
from gridman.gui.views.register_view import RegisterView


def _role_combo() -> QComboBox:
    combo = QComboBox()
    for r in enums.Role:
        combo.addItem(enums.label(r, language()), r.value)
    return combo


def _area_combo() -> QComboBox:
    combo = QComboBox()
    combo.addItem(tr("（不限）"), None)
    return combo


def _add_areas(combo: QComboBox, areas: list[tuple[int, str, str]]) -> None:
    for i, n, lv in areas:
        combo.addItem(f"{n}（{enums.label(lv, language(), enums.AreaLevel)}）", i)


class UserForm(QDialog):
    """新建用户: user name, name, password, role and (for staff roles) the area."""

    created = Signal(int)

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.setWindowTitle(tr("新建用户"))
        form = QFormLayout(self)
        self.username, self.display_name, self.password = QLineEdit(), QLineEdit(), QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.role, self.area = _role_combo(), _area_combo()
        form.addRow(tr("用户名"), self.username)
        form.addRow(tr("姓名"), self.display_name)
        form.addRow(tr("初始密码"), self.password)
        form.addRow(tr("角色"), self.role)
        form.addRow(tr("管辖区域"), self.area)
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00020;")
        form.addRow(self.message)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.button(QDialogButtonBox.StandardButton.Ok).setText(tr("创建"))
        bb.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("取消"))
        bb.accepted.connect(self.save)
        bb.rejected.connect(self.reject)
        form.addRow(bb)
        runner.run(lambda s, _t: registers.area_choices(s, levels=("street", "community")), on_done=self._areas,
                   label="areas")

    def _areas(self, areas: list[tuple[int, str, str]]) -> None:
        _add_areas(self.area, areas)

    def save(self) -> None:
        actor = self.actor
        u, n, p, role, area_id = (self.username.text().strip(), self.display_name.text().strip(),
                                  self.password.text(), self.role.currentData(), self.area.currentData())

        def job(s, _t):  # type: ignore[no-untyped-def]
            area = s.get(Area, area_id) if area_id else None
            return auth.create_user(s, actor, username=u, display_name=n or u, password=p, role=role, area=area).id

        self.runner.run(job, mode="write", on_done=self._done, on_error=self._failed, label="create-user")

    def _done(self, uid: int) -> None:
        self.runner.changed.emit("users", [uid])
        self.created.emit(uid)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.message.setText(describe(exc)[0])


class EditUserForm(QDialog):
    """修改用户: name, role, scope area, enabled, a new password (services.auth.update_user)."""

    def __init__(self, runner: OpRunner, actor: Actor, user_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.user_id = runner, actor, user_id
        self.version: int | None = None
        self.setObjectName("editUser")
        self.setWindowTitle(tr("修改用户"))
        form = QFormLayout(self)
        self.username = QLabel()
        self.display_name, self.password = QLineEdit(), QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText(tr("留空则不修改"))
        self.role, self.area = _role_combo(), _area_combo()
        self.active = QCheckBox(tr("启用"))
        form.addRow(tr("用户名"), self.username)
        form.addRow(tr("姓名"), self.display_name)
        form.addRow(tr("新密码"), self.password)
        form.addRow(tr("角色"), self.role)
        form.addRow(tr("管辖区域"), self.area)
        form.addRow("", self.active)
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00020;")
        self.message.setWordWrap(True)
        form.addRow(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(tr("保存"))
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("取消"))
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

        def load(s, _t):  # type: ignore[no-untyped-def]
            u = s.get(User, user_id)
            areas = registers.area_choices(s, levels=("street", "community"))
            return (u.username, u.display_name, u.role, u.area_id, u.active, u.version), areas

        runner.run(load, on_done=self._loaded, on_error=lambda e: show_error(self, e), label="user")

    def _loaded(self, data: tuple) -> None:  # type: ignore[type-arg]
        (username, name, role, area_id, active, version), areas = data
        _add_areas(self.area, areas)
        self.username.setText(username)
        self.display_name.setText(name)
        self.role.setCurrentIndex(max(0, self.role.findData(role)))
        self.area.setCurrentIndex(max(0, self.area.findData(area_id)))
        self.active.setChecked(bool(active))
        self.version = version

    def save(self) -> None:
        actor, uid, version = self.actor, self.user_id, self.version
        kw = {"display_name": self.display_name.text(), "role": self.role.currentData(),
              "area_id": self.area.currentData(), "active": self.active.isChecked(),
              "new_password": self.password.text() or None}

        def job(s, _t):  # type: ignore[no-untyped-def]
            return auth.update_user(s, actor, uid, expected_version=version, **kw).id

        self.runner.run(job, mode="write", on_done=self._done, on_error=lambda e: self.message.setText(describe(e)[0]),
                        label="update-user")

    def _done(self, uid: int) -> None:
        self.runner.changed.emit("users", [uid])
        self.accept()


class AssignForm(QDialog):
    """分配网格: give a warden a grid (from today)."""

    def __init__(self, runner: OpRunner, actor: Actor, user_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.user_id = runner, actor, user_id
        self.setWindowTitle(tr("分配网格"))
        form = QFormLayout(self)
        self.grid = QComboBox()
        form.addRow(tr("网格"), self.grid)
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00020;")
        form.addRow(self.message)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.button(QDialogButtonBox.StandardButton.Ok).setText(tr("分配"))
        bb.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("取消"))
        bb.accepted.connect(self.save)
        bb.rejected.connect(self.reject)
        form.addRow(bb)
        runner.run(lambda s, _t: registers.grid_choices(s, actor), on_done=self._grids, label="grids")

    def _grids(self, grids: list[tuple[int, str]]) -> None:
        for i, n in grids:
            self.grid.addItem(n, i)

    def save(self) -> None:
        actor, uid, gid = self.actor, self.user_id, self.grid.currentData()

        def job(s, _t):  # type: ignore[no-untyped-def]
            user = s.scalar(select(User).where(User.id == uid))
            auth.assign_warden(s, actor, user=user, grid=s.get(Area, gid))
            return uid

        self.runner.run(job, mode="write", on_done=self._done,
                        on_error=lambda e: self.message.setText(describe(e)[0]), label="assign")

    def _done(self, uid: int) -> None:
        self.runner.changed.emit("users", [uid])
        self.accept()


class AdminView(QWidget):
    restored = Signal()

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.users: RegisterView | None = None
        from gridman.gui.views.admin_extra import admin_tabs

        self.tabs, self.policy, self.grid_check = admin_tabs(runner, actor)
        self.tabs.setObjectName("adminTabs")
        if actor.can(Perm.MANAGE_USERS):
            self.users = RegisterView(runner, actor, "users")
            self.users.add_action(tr("新建用户"), self.new_user, name="newUser")
            self.users.add_action(tr("修改用户"), self.edit_user, name="editUser")
            self.users.add_action(tr("分配网格"), self.assign, name="assignGrid")
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

    def backup_now(self) -> None:
        db, actor = self.runner.db, self.actor
        self.backup_button.setEnabled(False)
        self.runner.run(lambda _s, _t: backup.backup_now(db, actor), mode="none", on_done=self._backed_up,
                        on_error=self._error, label="backup")

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
        self.runner.changed.emit("all", None)
        self.restored.emit()

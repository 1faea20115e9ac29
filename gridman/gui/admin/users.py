"""用户与角色: the forms of the users page — new user, edit user, give a warden a grid — over
``services.auth`` (``create_user``, ``user_details``/``update_user``, ``assign_warden``)."""

from __future__ import annotations

from gridman.core import enums
from gridman.core.services import areas, auth, registers
from gridman.core.services.areas import AreaChoice
from gridman.core.services.permissions import Actor
from gridman.gui.dialogs.foot import message_and_buttons
from gridman.gui.dialogs.setup_wizard import policy_rule
from gridman.gui.errors import describe, show_error
from gridman.gui.i18n import language, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QWidget,
    Signal,
)


def _role_combo() -> QComboBox:
    combo = QComboBox()
    for r in enums.Role:
        combo.addItem(enums.label(r, language()), r.value)
    return combo


def _area_combo() -> QComboBox:
    combo = QComboBox()
    combo.addItem(tr("（不限）"), None)
    return combo


def _add_areas(combo: QComboBox, choices: list[AreaChoice]) -> None:
    for a in choices:
        combo.addItem(a.label(language()), a.id)


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
        self.password.setToolTip(policy_rule())
        self.password.setPlaceholderText(tr("至少 8 位，两类字符"))
        form.addRow(tr("角色"), self.role)
        form.addRow(tr("管辖区域"), self.area)
        self.message, self.buttons = message_and_buttons(self, form, tr("创建"))
        runner.run(lambda s, _t: areas.choices(s, actor, levels=("street", "community")), on_done=self._areas,
                   label="areas")

    def _areas(self, choices: list[AreaChoice]) -> None:
        _add_areas(self.area, choices)

    def save(self) -> None:
        actor = self.actor
        u, n, p, role, area_id = (self.username.text().strip(), self.display_name.text().strip(),
                                  self.password.text(), self.role.currentData(), self.area.currentData())

        def job(s, _t):  # type: ignore[no-untyped-def]
            return auth.create_user(s, actor, username=u, display_name=n or u, password=p, role=role,
                                    area_id=area_id).id

        self.runner.run(job, mode="write", on_done=self._done, on_error=self._failed, label="create-user")

    def _done(self, uid: int) -> None:
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
        self.password.setToolTip(policy_rule())
        self.role, self.area = _role_combo(), _area_combo()
        self.active = QCheckBox(tr("启用"))
        form.addRow(tr("用户名"), self.username)
        form.addRow(tr("姓名"), self.display_name)
        form.addRow(tr("新密码"), self.password)
        form.addRow(tr("角色"), self.role)
        form.addRow(tr("管辖区域"), self.area)
        form.addRow("", self.active)
        self.message, self.buttons = message_and_buttons(self, form, tr("保存"))

        def load(s, _t):  # type: ignore[no-untyped-def]
            u = auth.user_details(s, actor, user_id)
            return (u.username, u.display_name, u.role, u.area_id, u.active, u.version), areas.choices(
                s, actor, levels=("street", "community"))

        runner.run(load, on_done=self._loaded, on_error=lambda e: show_error(self, e), label="user")

    def _loaded(self, data: tuple) -> None:  # type: ignore[type-arg]
        (username, name, role, area_id, active, version), choices = data
        _add_areas(self.area, choices)
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
        self.message, self.buttons = message_and_buttons(self, form, tr("分配"))
        runner.run(lambda s, _t: registers.grid_choices(s, actor), on_done=self._grids, label="grids")

    def _grids(self, grids: list[tuple[int, str]]) -> None:
        for i, n in grids:
            self.grid.addItem(n, i)

    def save(self) -> None:
        actor, uid, gid = self.actor, self.user_id, self.grid.currentData()

        def job(s, _t):  # type: ignore[no-untyped-def]
            auth.assign_warden(s, actor, user_id=uid, grid_id=gid)
            return uid

        self.runner.run(job, mode="write", on_done=self._done,
                        on_error=lambda e: self.message.setText(describe(e)[0]), label="assign")

    def _done(self, uid: int) -> None:
        self.accept()


"""首次使用设置: the first-run wizard, shown instead of the sign-in when nobody can sign in yet
(``services.auth.needs_first_account``). One page, three steps: the office's name, the first
administrator (under the password policy, checked as it is typed), the root area (e.g. 340100
合肥市, a city). Finishing runs ``services.setup.first_run`` as the system account and then signs
the new administrator in (``services.auth.authenticate``), both off the GUI thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gridman.core.enums import AreaLevel, label
from gridman.core.services import password_policy
from gridman.gui.dialogs.foot import message_and_buttons
from gridman.gui.errors import describe
from gridman.gui.i18n import is_english, language, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QComboBox,
    QDialog,
    QFont,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
    Signal,
)

if TYPE_CHECKING:
    from gridman.core.services.permissions import Actor

ROOT_LEVELS = (AreaLevel.CITY, AreaLevel.DISTRICT)


def policy_rule() -> str:
    """The password policy in the current language (the services keep both)."""
    return password_policy.RULE_EN if is_english() else password_policy.RULE_ZH


def _group(title: str) -> tuple[QGroupBox, QFormLayout, QVBoxLayout]:
    """A step's box: a form, and below it (outside the form, where wrapped text gets its height)
    room for notes."""
    box = QGroupBox(title)
    outer = QVBoxLayout(box)
    form = QFormLayout()
    outer.addLayout(form)
    return box, form, outer


def _note(text: str) -> QLabel:
    note = QLabel(text)
    note.setWordWrap(True)
    note.setStyleSheet("color: #666;")
    return note


def _line(name: str, text: str = "", *, password: bool = False) -> QLineEdit:
    edit = QLineEdit(text)
    edit.setObjectName(name)
    if password:
        edit.setEchoMode(QLineEdit.EchoMode.Password)
    return edit


class SetupWizard(QDialog):
    """The first-run setup; ``actor`` is the signed-in administrator once it is accepted."""

    signed_in = Signal(object)  # Actor

    def __init__(self, runner: OpRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.actor: Actor | None = None
        self.setObjectName("setupWizard")
        self.setWindowTitle(tr("首次使用设置 — gridman 网格化管理"))
        lay = QVBoxLayout(self)
        title = QLabel(tr("欢迎使用网格化服务管理系统"))
        f = QFont(title.font())
        f.setPointSize(f.pointSize() + 4)
        f.setBold(True)
        title.setFont(f)
        lay.addWidget(title)
        intro = QLabel(tr("这个数据库还没有可以登录的账号。请填写单位名称，创建系统管理员账号，并设定起始区划。"))
        intro.setWordWrap(True)
        lay.addWidget(intro)
        lay.addWidget(self._office_box())
        lay.addWidget(self._admin_box())
        lay.addWidget(self._area_box())
        self.message, self.buttons = message_and_buttons(self, lay, tr("完成并登录"), cancel_text=tr("退出"),
                                                         on_ok=self.submit)
        self.setMinimumWidth(600)
        self.resize(self.sizeHint())  # room for the wrapped notes (a dialog's first size ignores them)
        self.office.setFocus()

    def _office_box(self) -> QGroupBox:
        box, form, outer = _group(tr("① 单位"))
        self.office = _line("office")
        self.office.setPlaceholderText(tr("例如：蜀山区网格化服务管理中心"))
        form.addRow(tr("单位名称"), self.office)
        outer.addWidget(_note(tr("单位名称会印在打印的文书上。")))
        return box

    def _admin_box(self) -> QGroupBox:
        box, form, outer = _group(tr("② 系统管理员账号"))
        self.username, self.display_name = _line("username", "admin"), _line("displayName")
        self.password, self.password2 = _line("password", password=True), _line("password2", password=True)
        form.addRow(tr("用户名"), self.username)
        form.addRow(tr("姓名"), self.display_name)
        form.addRow(tr("密码"), self.password)
        form.addRow(tr("再次输入密码"), self.password2)
        self.rule = _note(policy_rule())
        self.rule.setObjectName("passwordRule")
        outer.addWidget(self.rule)
        for w in (self.password, self.username):
            w.textChanged.connect(self._check_password)
        return box

    def _area_box(self) -> QGroupBox:
        box, form, outer = _group(tr("③ 起始区划"))
        self.area_code, self.area_name = _line("areaCode", "340100"), _line("areaName")
        self.area_name.setPlaceholderText(tr("例如：合肥市"))
        self.area_level = QComboBox()
        self.area_level.setObjectName("areaLevel")
        for lv in ROOT_LEVELS:
            self.area_level.addItem(label(lv, language()), lv.value)
        form.addRow(tr("区划代码"), self.area_code)
        form.addRow(tr("区划名称"), self.area_name)
        form.addRow(tr("层级"), self.area_level)
        outer.addWidget(_note(tr("其下的区县、街道、社区和网格可以稍后在“系统管理”中添加或从边界文件导入。")))
        return box

    def _check_password(self) -> None:
        """Say what the password still needs while it is typed (the service checks it again)."""
        p = self.password.text()
        problem = password_policy.problem(p, self.username.text().strip()) if p else None
        if problem is None:
            self.rule.setText(policy_rule())
            self.rule.setStyleSheet("color: #666;")
        else:
            self.rule.setText(problem[1] if is_english() else problem[0])
            self.rule.setStyleSheet("color: #b00020;")

    def submit(self) -> None:
        from gridman.core.services.setup import FirstRun

        if not self.office.text().strip() or not self.username.text().strip() or not self.area_name.text().strip():
            self.message.setText(tr("请填写单位名称、用户名和区划名称。"))
            return
        if self.password.text() != self.password2.text():
            self.message.setText(tr("两次输入的密码不一致。"))
            return
        if self.runner.db is None:
            self.message.setText(tr("数据库尚未打开，请稍候。"))
            return
        form = FirstRun(office_name=self.office.text(), username=self.username.text().strip(),
                        display_name=self.display_name.text().strip() or self.username.text().strip(),
                        password=self.password.text(), area_code=self.area_code.text().strip(),
                        area_name=self.area_name.text(), area_level=self.area_level.currentData())
        db = self.runner.db
        self.buttons.setEnabled(False)
        self.message.setText(tr("正在创建…"))

        def job(_s: Any, _t: Any) -> Actor:
            from gridman.core.services import auth, setup
            from gridman.core.services.permissions import system_actor

            with db.session() as s:
                system = system_actor(s)
            with db.work(system) as s:
                setup.first_run(s, form)
            with db.begin() as s:
                return auth.authenticate(s, form.username, form.password)

        self.runner.run(job, mode="none", on_done=self._ok, on_error=self._failed, label="first-run")

    def _ok(self, actor: Actor) -> None:
        from gridman.gui.dialogs.signin import finish_sign_in

        finish_sign_in(self, actor)

    def _failed(self, exc: BaseException) -> None:
        self.buttons.setEnabled(True)
        self.message.setText(describe(exc)[0])

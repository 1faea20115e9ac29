"""Sign-in (登录): user name and password checked by services.auth.authenticate off the GUI thread."""

from __future__ import annotations

from gridman.core.services.auth import authenticate
from gridman.core.services.permissions import Actor
from gridman.gui.errors import describe
from gridman.gui.i18n import tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QDialog,
    QDialogButtonBox,
    QFont,
    QFormLayout,
    QLabel,
    QLineEdit,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
)
from gridman.gui.settings import app_settings


class SignInDialog(QDialog):
    signed_in = Signal(object)  # Actor

    def __init__(self, runner: OpRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.actor: Actor | None = None
        self.setWindowTitle(tr("登录 — gridman 网格化管理"))
        lay = QVBoxLayout(self)
        title = QLabel(tr("网格化服务管理系统"))
        f = QFont(title.font())
        f.setPointSize(f.pointSize() + 6)
        f.setBold(True)
        title.setFont(f)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(title)
        sub = QLabel(tr("人 · 地 · 情 · 事 · 组织　基层治理一张网"))
        sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        sub.setStyleSheet("color: #666;")
        lay.addWidget(sub)
        form = QFormLayout()
        self.username = QLineEdit(str(app_settings().value("signin/last_user", "")))
        self.username.setObjectName("username")
        self.password = QLineEdit()
        self.password.setObjectName("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow(tr("用户名"), self.username)
        form.addRow(tr("密码"), self.password)
        lay.addLayout(form)
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setStyleSheet("color: #b00020;")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(tr("登录"))
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("退出"))
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.setMinimumWidth(380)
        (self.password if self.username.text() else self.username).setFocus()

    def submit(self) -> None:
        user, pw = self.username.text().strip(), self.password.text()
        if not user or not pw:
            self.message.setText(tr("请输入用户名和密码。"))
            return
        self.buttons.setEnabled(False)
        self.message.setText(tr("正在登录…"))
        self.runner.run(lambda s, _t: authenticate(s, user, pw), mode="begin", on_done=self._ok,
                        on_error=self._failed, label="sign-in")

    def _ok(self, actor: Actor) -> None:
        self.actor = actor
        app_settings().setValue("signin/last_user", actor.username)
        self.signed_in.emit(actor)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.buttons.setEnabled(True)
        msg, _next = describe(exc)
        self.message.setText(msg)
        self.password.selectAll()
        self.password.setFocus()

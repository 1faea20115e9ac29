"""修改密码: a signed-in user changes their own password (``services.auth.change_password``: the
current password, then the new one twice, under the password policy)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gridman.gui.dialogs.foot import message_and_buttons
from gridman.gui.dialogs.setup_wizard import policy_rule
from gridman.gui.errors import describe
from gridman.gui.i18n import tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import QDialog, QFormLayout, QLabel, QLineEdit, QWidget

if TYPE_CHECKING:
    from gridman.core.services.permissions import Actor


class ChangePasswordDialog(QDialog):
    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.setObjectName("changePassword")
        self.setWindowTitle(tr("修改密码"))
        form = QFormLayout(self)
        self.current, self.new, self.again = QLineEdit(), QLineEdit(), QLineEdit()
        for name, w in (("current", self.current), ("new", self.new), ("again", self.again)):
            w.setObjectName(name)
            w.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow(tr("当前密码"), self.current)
        form.addRow(tr("新密码"), self.new)
        form.addRow(tr("再次输入新密码"), self.again)
        rule = QLabel(policy_rule())
        rule.setWordWrap(True)
        rule.setStyleSheet("color: #666;")
        form.addRow("", rule)
        self.message, self.buttons = message_and_buttons(self, form, tr("修改"))
        self.setMinimumWidth(420)

    def save(self) -> None:
        if self.new.text() != self.again.text():
            self.message.setText(tr("两次输入的密码不一致。"))
            return
        actor, old, new = self.actor, self.current.text(), self.new.text()

        def job(s: Any, _t: Any) -> None:
            from gridman.core.services.auth import change_password

            change_password(s, actor, old_password=old, new_password=new)

        self.buttons.setEnabled(False)
        self.runner.run(job, mode="write", on_done=lambda _r: self.accept(), on_error=self._failed,
                        label="change-password")

    def _failed(self, exc: BaseException) -> None:
        self.buttons.setEnabled(True)
        self.message.setText(describe(exc)[0])

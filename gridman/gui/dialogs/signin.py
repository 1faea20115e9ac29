"""Sign-in (登录): user name and password checked by services.auth.authenticate off the GUI thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from gridman.core.services.permissions import Actor


def finish_sign_in(dialog: Any, actor: Actor) -> None:
    """How every way of signing in ends (this dialog, the first-run wizard): the dialog's
    ``actor``, the user name remembered for next time, ``signed_in`` emitted, accepted."""
    dialog.actor = actor
    app_settings().setValue("signin/last_user", actor.username)
    dialog.signed_in.emit(actor)
    dialog.accept()


class SignInDialog(QDialog):
    """The sign-in. On a database where nobody can sign in yet it closes with :data:`SETUP` as
    soon as the database is open, and the caller shows the first-run wizard instead."""

    SETUP = 2  # exec() result: open the first-run wizard (dialogs.setup_wizard)
    signed_in = Signal(object)  # Actor

    database_ready = Signal()

    def __init__(self, runner: OpRunner, parent: QWidget | None = None, *, database: str | None = None,
                 preload: bool = False) -> None:
        """With ``runner.db`` None, the dialog opens ``database`` (path/URL/None = default) in the
        background while the user types, and then (``preload``) imports the main window's modules."""
        super().__init__(parent)
        self.runner = runner
        self.open_error: BaseException | None = None
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
        self._pending_submit = False
        if runner.db is None:
            self._open(database, preload)

    def _open(self, database: str | None, preload: bool) -> None:
        def job(_s: Any, _t: Any) -> Any:
            from gridman.core.db import open_database

            db = open_database(database)
            if preload:
                import gridman.gui.main_window  # noqa: F401 — warm the imports while the user types
            return db

        self.runner.run(job, mode="none", on_done=self._opened, on_error=self._open_failed, label="open-db")

    def _opened(self, db: Any) -> None:
        self.runner.db = db
        self.database_ready.emit()
        from gridman.core.services.auth import needs_first_account

        self.runner.run(lambda s, _t: needs_first_account(s), on_done=self._first_run_checked,
                        on_error=self._open_failed, label="first-run-check")

    def _first_run_checked(self, needed: bool) -> None:
        if needed:
            self.done(self.SETUP)
        elif self._pending_submit:
            self.submit()

    def _open_failed(self, exc: BaseException) -> None:
        self.open_error = exc
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        from gridman.core.db import SchemaError

        self.message.setText(str(exc) if isinstance(exc, SchemaError) else describe(exc)[0] + "\n" + describe(exc)[1])

    def submit(self) -> None:
        user, pw = self.username.text().strip(), self.password.text()
        if not user or not pw:
            self.message.setText(tr("请输入用户名和密码。"))
            return
        self.buttons.setEnabled(False)
        self.message.setText(tr("正在登录…"))
        if self.runner.db is None:
            self._pending_submit = True
            return
        self._pending_submit = False

        def job(s: Any, _t: Any) -> Actor:
            from gridman.core.services.auth import authenticate

            return authenticate(s, user, pw)

        self.runner.run(job, mode="begin", on_done=self._ok,
                        on_error=self._failed, label="sign-in")

    def _ok(self, actor: Actor) -> None:
        finish_sign_in(self, actor)

    def _failed(self, exc: BaseException) -> None:
        self.buttons.setEnabled(True)
        msg, _next = describe(exc)
        self.message.setText(msg)
        self.password.selectAll()
        self.password.setFocus()

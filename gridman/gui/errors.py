"""Errors as dialogs in the user's language, with what to do next. No traceback reaches a user:
unexpected errors are logged (``<data dir>/logs/gui.log``) and summarised."""

from __future__ import annotations

import logging

from gridman.core import config
from gridman.core.services.errors import (
    ConflictError,
    GridmanError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from gridman.gui.i18n import language, tr
from gridman.gui.qt import QMessageBox, QWidget

log = logging.getLogger("gridman.gui")


def describe(exc: BaseException) -> tuple[str, str]:
    """(message, what to do next) for an exception, in the current language."""
    if isinstance(exc, GridmanError):
        msg = exc.text(language())
        if isinstance(exc, PermissionDenied):
            nxt = tr("如需此权限，请联系系统管理员。")
        elif isinstance(exc, ValidationError):
            nxt = tr("请修改标出的内容后再保存。")
        elif isinstance(exc, ConflictError):
            nxt = tr("请点击“重新加载”查看最新信息，再重新修改。")
        elif isinstance(exc, NotFound):
            nxt = tr("该记录可能已被删除，请按 F5 刷新。")
        else:
            nxt = tr("请检查后重试。")
        return msg, nxt
    log.error("unexpected error shown to the user: %r", exc)
    return (tr("发生意外错误，操作未完成。"),
            tr("请重试；如果问题仍然存在，请把日志文件发给系统管理员：") + str(config.log_dir() / "gui.log"))


def show_error(parent: QWidget | None, exc: BaseException, *, title: str | None = None) -> QMessageBox:
    """A non-blocking message box (window-modal); returned so callers and tests can inspect it."""
    msg, nxt = describe(exc)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title or tr("无法完成操作"))
    box.setText(msg)
    box.setInformativeText(nxt)
    box.setObjectName("errorBox")
    box.open()
    return box


def show_info(parent: QWidget | None, text: str, *, title: str | None = None) -> QMessageBox:
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Information)
    box.setWindowTitle(title or "gridman")
    box.setText(text)
    box.setObjectName("infoBox")
    box.open()
    return box

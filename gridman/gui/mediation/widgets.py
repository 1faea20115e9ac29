"""Small widgets and texts the mediation windows share: an OK/Cancel box,
action names, filter boxes of an enumeration."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from gridman.core import enums
from gridman.core.services import mediation
from gridman.core.services.errors import ConflictError
from gridman.gui.errors import show_error, show_info
from gridman.gui.i18n import N_, language, pick, tr
from gridman.gui.qt import QComboBox, QDialogButtonBox, QMessageBox, QWidget

CONFLICT_TEXT = N_("该案件已被他人修改，请重新加载")


def ok_cancel(ok_text: str) -> QDialogButtonBox:
    bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    bb.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    bb.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("取消"))
    return bb


def action_text(action: str) -> str:
    """An action's name as the service declares it, in the current language."""
    zh, en = mediation.ACTION_LABELS.get(action, (action, action))
    return pick(zh, en)


def enum_filter(all_text: str, enum: type[StrEnum], values: Iterable[str] | None = None) -> QComboBox:
    """A filter box: ``all_text`` (no filter, data None), then the members of ``enum`` (or only
    ``values``) by their label, with the code as data."""
    cb = QComboBox()
    cb.addItem(all_text, None)
    for v in values if values is not None else [m.value for m in enum]:
        cb.addItem(enums.label(v, language(), enum), v)
    return cb


def show_failure(parent: QWidget, exc: BaseException) -> QMessageBox | None:
    """A failed action: a concurrent change gets the plain "reload" message (returned, so a test
    can read it), anything else the usual error dialog."""
    if isinstance(exc, ConflictError):
        return show_info(parent, tr(CONFLICT_TEXT), title=tr("无法完成操作"))
    show_error(parent, exc)
    return None

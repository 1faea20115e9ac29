"""Small pieces the mediation windows share: times in local time, an OK/Cancel box, action names."""

from __future__ import annotations

from datetime import UTC, datetime

from gridman.core.services import mediation
from gridman.gui.i18n import N_, pick, tr
from gridman.gui.qt import QDialogButtonBox

CONFLICT_TEXT = N_("该案件已被他人修改，请重新加载")


def local_time(dt: datetime | None) -> str:
    """A stored (naive UTC) time in the computer's time zone."""
    if dt is None:
        return "—"
    return dt.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M")


def ok_cancel(ok_text: str) -> QDialogButtonBox:
    bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    bb.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    bb.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("取消"))
    return bb


def action_text(action: str) -> str:
    """An action's name as the service declares it, in the current language."""
    zh, en = mediation.ACTION_LABELS.get(action, (action, action))
    return pick(zh, en)

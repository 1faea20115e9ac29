"""The foot of a form dialog: the red error line, then OK and Cancel — one shape for every form."""

from __future__ import annotations

from collections.abc import Callable

from gridman.gui.i18n import tr
from gridman.gui.qt import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout


def message_and_buttons(dialog: QDialog, layout: QFormLayout | QVBoxLayout, ok_text: str, *,
                        cancel_text: str | None = None,
                        on_ok: Callable[[], None] | None = None) -> tuple[QLabel, QDialogButtonBox]:
    """Add the error line (object name ``message``) and OK (``ok_text``, runs ``on_ok``, else
    ``dialog.save``) / Cancel (``cancel_text``, default 取消; rejects) to ``layout``."""
    message = QLabel()
    message.setObjectName("message")
    message.setStyleSheet("color: #b00020;")
    message.setWordWrap(True)
    bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    bb.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    bb.button(QDialogButtonBox.StandardButton.Cancel).setText(cancel_text or tr("取消"))
    bb.accepted.connect(on_ok or dialog.save)  # type: ignore[attr-defined]
    bb.rejected.connect(dialog.reject)
    for w in (message, bb):
        if isinstance(layout, QFormLayout):
            layout.addRow(w)
        else:
            layout.addWidget(w)
    return message, bb

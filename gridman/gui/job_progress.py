"""A progress bar with a Cancel button for one background job of the offline exchange page."""

from __future__ import annotations

from gridman.gui.i18n import tr
from gridman.gui.ops import Op
from gridman.gui.qt import QHBoxLayout, QProgressBar, QPushButton, QWidget

STEPS = 1000


class JobProgress(QWidget):
    """Shows the progress of the op it was started with; :meth:`cancel` (the page connects the
    button) asks the op to stop — the service then raises and writes nothing. Hidden while no job
    runs."""

    def __init__(self, cancel_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.op: Op | None = None
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setRange(0, STEPS)
        self.button = QPushButton(tr("取消"))
        self.button.setObjectName(cancel_name)
        lay.addWidget(self.bar, 1)
        lay.addWidget(self.button)
        self.setVisible(False)

    def start(self, op: Op) -> None:
        self.op = op
        self.bar.setValue(0)
        self.button.setEnabled(True)
        self.setVisible(True)

    def progressed(self, fraction: float, _message: str = "") -> None:
        self.bar.setValue(int(fraction * STEPS))

    def cancel(self) -> bool:
        """Ask the running op to stop; False when none runs."""
        if self.op is None or self.op.finished:
            return False
        self.op.cancel()
        self.button.setEnabled(False)
        return True

    def stop(self) -> None:
        self.op = None
        self.setVisible(False)

    def ended_by_cancel(self) -> bool:
        """Did the op end because it was cancelled (it then reports neither result nor error)?"""
        return self.op is not None and self.op.finished and self.op.task.cancelled

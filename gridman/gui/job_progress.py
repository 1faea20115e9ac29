"""A progress bar with a Cancel button for one background job (an :class:`~gridman.gui.ops.Op`):
the offline exchange page, the census import wizard and the boundary import show their jobs with it;
and the line beside it that says what the job is doing or how it ended."""

from __future__ import annotations

from gridman.gui.i18n import tr
from gridman.gui.ops import Op
from gridman.gui.qt import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

STEPS = 1000


class JobMessage(QLabel):
    """A word-wrapped line that says what a job is doing or how it ended. Hidden while it has
    nothing to say, so an idle dialog's form keeps no empty row (a gap above its buttons)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setVisible(False)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self.setVisible(bool(text))


class JobProgress(QWidget):
    """Shows the progress of the op it was started with; its Cancel button (:meth:`cancel`) asks
    the op to stop — the service then raises and writes nothing. Hidden while no job runs; the
    button is enabled only while the job runs and was not cancelled.

    ``label``, if given, is the owner's label that says what the job is doing: it shows
    "正在取消…" once the user cancels, and with ``messages`` also the job's progress messages.
    The owner calls :meth:`stop` when the job has ended (its ``on_done``, ``on_error`` or
    ``on_cancelled`` callback)."""

    def __init__(self, cancel_name: str, cancel_text: str | None = None, *, label: QLabel | None = None,
                 messages: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.op: Op | None = None
        self.label, self.messages = label, messages
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setRange(0, STEPS)
        self.button = QPushButton(cancel_text or tr("取消"))
        self.button.setObjectName(cancel_name)
        self.button.setEnabled(False)
        self.button.clicked.connect(self.cancel)
        lay.addWidget(self.bar, 1)
        lay.addWidget(self.button)
        self.setVisible(False)

    def start(self, op: Op) -> None:
        self.op = op
        self.bar.setValue(0)
        self.button.setEnabled(True)
        self.setVisible(True)

    def progressed(self, fraction: float, message: str = "") -> None:
        self.bar.setValue(int(fraction * STEPS))
        if self.messages and self.label is not None:
            self.label.setText(message)

    def cancel(self) -> bool:
        """Ask the running op to stop; False when none runs."""
        if self.op is None or self.op.finished:
            return False
        self.op.cancel()
        self.button.setEnabled(False)
        if self.label is not None:
            self.label.setText(tr("正在取消…"))
        return True

    def stop(self) -> None:
        self.op = None
        self.button.setEnabled(False)
        self.setVisible(False)

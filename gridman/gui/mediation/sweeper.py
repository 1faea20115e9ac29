"""The overdue sweep in the background of the window (``mediation.escalate_overdue``)."""

from __future__ import annotations

import logging
from typing import Any

from gridman.core.services import mediation
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.ops import OpRunner
from gridman.gui.qt import QObject, QTimer, Signal

log = logging.getLogger("gridman.gui.mediation")

class OverdueSweeper(QObject):
    """Runs ``mediation.escalate_overdue`` for the signed-in user in the background at start-up
    and every ``interval_ms`` (10 minutes), and broadcasts the cases it moved."""

    overdue = Signal(object)  # {level: overdue active cases} after each run (the status bar shows it)

    def __init__(self, runner: OpRunner, actor: Actor, *, interval_ms: int = 600_000, parent: Any = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.last: mediation.SweepResult | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.sweep)

    def start(self, *, delay_ms: int = 1500) -> None:
        if not (self.actor.is_admin or self.actor.can(Perm.HANDLE_INCIDENT)):
            return
        QTimer.singleShot(delay_ms, self.sweep)
        self.timer.start()

    def sweep(self) -> None:
        actor = self.actor
        self.runner.run(lambda s, _t: mediation.escalate_overdue(s, actor), mode="write", on_done=self._done,
                        on_error=self._failed, label="escalate-overdue")

    def _failed(self, exc: BaseException) -> None:
        # a background chore: a conflict or a refusal is logged, the next run tries again
        log.warning("overdue sweep failed: %s", exc)

    def _done(self, res: mediation.SweepResult) -> None:
        self.last = res
        actor = self.actor
        self.runner.run(lambda s, _t: mediation.overdue_counts(s, actor), on_done=self.overdue.emit,
                        on_error=self._failed, label="overdue-counts")

"""The one Qt-free progress-and-cancel protocol for long jobs (as Orange3's TaskState, calibre's abort).

Every long service (census import, exchange checkout/check-in/open, boundary import, assignment,
exports, the monthly report, the sample) takes ``task: TaskState | None = None`` and, between
batches, calls ``task.progress(fraction, message)`` (throttled here, so calling it per row is cheap)
and ``task.check()``, which raises :class:`Cancelled` once the user asked to stop. A service checks
before it writes, or inside its transaction, so a cancelled job leaves nothing written (the
transaction rolls back on the exception). ``task.sub(a, b)`` hands a stage the range ``a..b`` of
the whole bar.

The GUI's op runner owns the task and relays progress to the GUI thread; the CLI passes one with a
print callback (:func:`printer`); tests pass one and cancel it from the callback.

Threading: ``cancel()`` may be called from any thread; ``progress`` runs the callback in the
worker's thread (the callback must itself be thread-safe, e.g. a queued Qt signal).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from gridman.core.errors import GridmanError

ProgressCallback = Callable[[float, str], None]


class Cancelled(GridmanError):
    """The user cancelled the job; nothing was written."""

    def __init__(self) -> None:
        super().__init__("已取消，未写入任何数据。", en="Cancelled; nothing was written.")


class TaskState:
    """Progress and cancellation of one job. ``progress`` also checks for cancellation, so a job
    that reports between batches stops at the next report."""

    def __init__(self, callback: ProgressCallback | None = None, *, min_interval: float = 0.05) -> None:
        self._cancel = threading.Event()
        self._callback = callback
        self._min_interval = min_interval
        self._last = 0.0
        self.fraction = 0.0
        self.message = ""

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop."""
        if self._cancel.is_set():
            raise Cancelled()

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        """Report ``fraction`` (0..1) done; raises :class:`Cancelled` once cancelled."""
        self.check()
        self.fraction, self.message = max(0.0, min(1.0, fraction)), message
        now = time.monotonic()
        if self._callback is not None and (force or fraction <= 0.0 or fraction >= 1.0
                                           or now - self._last >= self._min_interval):
            self._last = now
            self._callback(self.fraction, message)

    def step(self, done: int, total: int, message: str = "") -> None:
        """``progress(done / total, message)``, for loops over a known count."""
        self.progress(done / total if total else 1.0, message)

    def sub(self, start: float, end: float) -> TaskState:
        """A view of this task for one stage: its 0..1 maps to ``start..end`` of the whole bar;
        cancelling either cancels both."""
        return _SubTask(self, start, end)


class _SubTask(TaskState):
    def __init__(self, parent: TaskState, start: float, end: float) -> None:  # noqa: D107
        self._parent = parent
        self._start, self._span = start, end - start
        self.fraction = 0.0
        self.message = ""

    @property
    def cancelled(self) -> bool:
        return self._parent.cancelled

    def cancel(self) -> None:
        self._parent.cancel()

    def check(self) -> None:
        self._parent.check()

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        self.fraction, self.message = max(0.0, min(1.0, fraction)), message
        self._parent.progress(self._start + self._span * self.fraction, message, force=force)


def ensure(task: TaskState | None) -> TaskState:
    """The task a service works with: the caller's, or a silent one that is never cancelled."""
    return task if task is not None else TaskState()


def printer(*, quiet: bool = False) -> TaskState:
    """A task for the CLI: progress on stderr (a carriage-return line), nothing when ``quiet``."""
    if quiet:
        return TaskState()
    return TaskState(lambda f, m: print(f"\r{f * 100:5.1f}% {m}\033[K", end="", file=sys.stderr), min_interval=0.5)

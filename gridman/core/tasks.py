"""The Qt-free progress/cancel protocol for long jobs (as Orange3's TaskState, calibre's abort).

A job is a callable ``fn(session, task)``; it calls ``task.progress(fraction, message)`` now and
then (throttled here, so calling it per row is cheap) and checks ``task.cancelled`` (or calls
``task.check()``, which raises :class:`Cancelled`). The GUI's op runner owns the task and relays
progress to the GUI thread; a CLI may pass :class:`TaskState` with a print callback.

Threading: ``cancel()`` may be called from any thread; ``progress`` runs the callback in the
worker's thread (the callback must itself be thread-safe, e.g. a queued Qt signal).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

ProgressCallback = Callable[[float, str], None]


class Cancelled(Exception):  # noqa: N818 — a control-flow signal, not an error
    """The user cancelled the job."""


class TaskState:
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
        if self._cancel.is_set():
            raise Cancelled()

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        self.fraction, self.message = max(0.0, min(1.0, fraction)), message
        now = time.monotonic()
        if self._callback is not None and (force or fraction >= 1.0 or now - self._last >= self._min_interval):
            self._last = now
            self._callback(self.fraction, message)

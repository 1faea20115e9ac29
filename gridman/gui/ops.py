"""Background database work for the GUI (as Anki's CollectionOp): the GUI thread never waits on
the database.

``OpRunner.run(fn, ...)`` runs ``fn(session, task)`` on a thread pool with a fresh session of its
own — a read session, or a unit of work for the signed-in user (``mode="write"``: committed, every
change audited) — and delivers the result or the error back on the GUI thread through queued
signals. ``task`` is a :class:`gridman.core.tasks.TaskState` (Qt-free progress and cancel); every
job's progress is relayed on ``progress(op, fraction, message)`` (the main window's bar and
Cancel button show it), and ``op.cancel()`` stops the job at its next check — a write job rolls
back, leaving nothing written.

After a write job commits, the runner broadcasts what it changed on ``changes`` — a
:class:`gridman.core.changes.Changes` read from the unit of work's audit rows, never written by
hand — so each view refreshes only what it shows. ``broadcast(changes)`` is for the rare job that
is not a unit of work (restoring a backup: ``Changes.all()``).

Threading: create and use the runner on the GUI thread; callbacks run on the GUI thread.
Unexpected exceptions are logged with their traceback (the log file in the data directory);
users see a dialog (gridman.gui.errors), never a traceback.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import shiboken6

from gridman.core import changes
from gridman.core.changes import Changes
from gridman.core.services.errors import GridmanError
from gridman.core.tasks import Cancelled, TaskState
from gridman.gui.qt import QObject, QRunnable, QThreadPool, Signal

if TYPE_CHECKING:  # the sign-in dialog shows before SQLAlchemy is imported
    from gridman.core.db import Database
    from gridman.core.services.permissions import Actor

log = logging.getLogger("gridman.gui.ops")


class _Relay(QObject):
    done = Signal(object, object)  # result, Changes | None
    failed = Signal(object)
    progress = Signal(float, str)


class Op:
    """A running job: ``cancel()`` asks it to stop (it checks ``task.cancelled``)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.task = TaskState()
        self.finished = False

    def cancel(self) -> None:
        self.task.cancel()


class _Job(QRunnable):
    def __init__(self, db: Database | None, actor: Actor | None, mode: str, fn: Callable[..., Any], op: Op,
                 relay: _Relay) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.db, self.actor, self.mode, self.fn, self.op, self.relay = db, actor, mode, fn, op, relay

    def run(self) -> None:  # worker thread
        try:
            if self.mode != "none" and self.db is None:
                raise RuntimeError("no database open yet")
            changed: Changes | None = None
            if self.mode == "write":
                if self.actor is None:
                    raise RuntimeError("write op without a signed-in user")
                with self.db.work(self.actor) as s:
                    result = self.fn(s, self.op.task)
                    self.op.task.check()  # cancelled at the very end: still rolled back
                changed = changes.of(s)
            elif self.mode == "begin":
                with self.db.begin() as s:
                    result = self.fn(s, self.op.task)
            elif self.mode == "none":
                result = self.fn(None, self.op.task)
            else:
                with self.db.session() as s:
                    result = self.fn(s, self.op.task)
                    s.rollback()
        except Cancelled as exc:
            self.relay.failed.emit(exc)
        except GridmanError as exc:
            self.relay.failed.emit(exc)
        except Exception as exc:  # noqa: BLE001 — delivered to the GUI as a dialog, logged here
            log.error("op %s failed:\n%s", self.op.label, traceback.format_exc())
            self.relay.failed.emit(exc)
        else:
            self.relay.done.emit(result, changed)


def _deliver(callback: Callable[[Any], None], value: Any, label: str) -> None:
    """Call a job's callback on the GUI thread — unless what it reports to is gone: the user
    closed the window or view (its Qt object deleted) while the job ran. A bound method of a
    deleted QObject is skipped; a signal whose source was deleted ("Signal source has been
    deleted") or a widget already deleted raises RuntimeError inside the callback, which is
    logged and dropped. Anything else propagates."""
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, QObject) and not shiboken6.isValid(owner):
        log.info("op %s finished after its receiver was deleted; result dropped", label)
        return
    try:
        callback(value)
    except RuntimeError as exc:
        msg = str(exc)
        if "has been deleted" not in msg and "already deleted" not in msg:
            raise
        log.info("op %s finished after its receiver was deleted (%s); result dropped", label, msg)


class OpRunner(QObject):
    """Runs database jobs off the GUI thread and broadcasts what the write jobs changed."""

    changes = Signal(object)  # gridman.core.changes.Changes, after every write job that changed something
    progress = Signal(object, float, str)  # op, fraction 0..1, message — any job that reports progress
    op_finished = Signal(object)  # op (done, failed or cancelled)
    busy_changed = Signal(int)  # number of jobs running
    error = Signal(object)  # an error no callback handled (the window shows it)

    def __init__(self, db: Database | None, actor: Actor | None = None, *, threads: int = 3,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.actor = actor
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(threads)
        self._live: dict[_Relay, Op] = {}
        # Jobs outlive a runner deleted with its window (teardown): stop them at their next check.
        # What they queued is dropped by the liveness check in run()'s closures.
        live = self._live
        self.destroyed.connect(lambda *_a: [op.cancel() for op in list(live.values())])

    @property
    def pending(self) -> int:
        return len(self._live)

    def broadcast(self, changed: Changes) -> None:
        """Tell the views what changed (after each write job; by hand only for a job that is not
        a unit of work, e.g. ``Changes.all()`` after a restore)."""
        if not changed:
            return
        self.changes.emit(changed)

    def run(self, fn: Callable[[Any, TaskState], Any], *, on_done: Callable[[Any], None] | None = None,
            on_error: Callable[[BaseException], None] | None = None,
            on_progress: Callable[[float, str], None] | None = None, mode: str = "read",
            label: str = "", on_cancelled: Callable[[BaseException], None] | None = None) -> Op:
        """Run ``fn(session, task)`` in the background (``mode``: "read", "write" — a unit of
        work of the signed-in user, committed and broadcast —, "begin", or "none": no session).
        A cancelled job (``tasks.Cancelled``) calls neither ``on_done`` nor ``on_error``, only
        ``on_cancelled(exc)`` if given (its writes rolled back)."""
        op = Op(label or getattr(fn, "__name__", "op"))
        relay = _Relay()
        self._live[relay] = op

        def alive() -> bool:
            """The runner still exists. Its closures below run from the event queue, possibly
            after the runner was deleted with its window: then nothing is emitted or called."""
            if shiboken6.isValid(self):
                return True
            if not op.finished:
                op.finished = True
                self._live.pop(relay, None)
                log.info("op %s finished after its runner was deleted; result dropped", op.label)
            return False

        def finish() -> None:
            op.finished = True
            self._live.pop(relay, None)
            self.op_finished.emit(op)
            self.busy_changed.emit(len(self._live))

        def done(result: Any, changed: Changes | None) -> None:
            if not alive():
                return
            finish()
            if on_done is not None:
                _deliver(on_done, result, op.label)
            if changed:
                self.broadcast(changed)

        def failed(exc: BaseException) -> None:
            if not alive():
                return
            finish()
            if isinstance(exc, Cancelled):
                if on_cancelled is not None:
                    _deliver(on_cancelled, exc, op.label)
                return
            if on_error is not None:
                _deliver(on_error, exc, op.label)
            else:
                self.error.emit(exc)

        def progressed(fraction: float, message: str) -> None:
            if op.finished or not alive():
                return
            self.progress.emit(op, fraction, message)
            owner = getattr(on_progress, "__self__", None)
            if on_progress is not None and not (isinstance(owner, QObject) and not shiboken6.isValid(owner)):
                on_progress(fraction, message)

        relay.done.connect(done)
        relay.failed.connect(failed)
        relay.progress.connect(progressed)
        op.task._callback = lambda f, m: relay.progress.emit(f, m)  # noqa: SLF001
        self.busy_changed.emit(len(self._live))
        self.pool.start(_Job(self.db, self.actor, mode, fn, op, relay))
        return op

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until the pool is idle (shutdown and tests; never call from a slot)."""
        return bool(self.pool.waitForDone(msecs))

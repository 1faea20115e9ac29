"""The op runner: work off the GUI thread, results and errors back on it, progress and cancel
through the Qt-free TaskState, unexpected errors logged and described without a traceback."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import text

from gridman.core.changes import Changes
from gridman.core.services.errors import ValidationError
from gridman.gui.errors import describe, show_error
from gridman.gui.ops import OpRunner
from gridman.gui.qt import QApplication


def test_results_errors_progress_and_cancel(qtbot, sqlite_demo, signed_in, caplog):
    runner = OpRunner(sqlite_demo, signed_in("admin"))
    gui_thread = threading.get_ident()
    seen: dict[str, object] = {}

    def job(s, task):  # type: ignore[no-untyped-def]
        seen["worker"] = threading.get_ident()
        for i in range(5):
            task.progress((i + 1) / 5, f"step {i}", force=True)
        return s.scalar(text("SELECT count(*) FROM residents"))

    progress: list[float] = []
    runner.run(job, on_done=lambda r: seen.__setitem__("result", (r, threading.get_ident())),
               on_progress=lambda f, _m: progress.append(f))
    qtbot.waitUntil(lambda: "result" in seen, timeout=10_000)
    count, thread = seen["result"]  # type: ignore[misc]
    assert count > 0 and thread == gui_thread and seen["worker"] != gui_thread
    qtbot.waitUntil(lambda: len(progress) == 5, timeout=5_000)
    assert progress[-1] == 1.0

    # a service refusal arrives as the exception, described in the user's language
    errs: list[BaseException] = []
    runner.run(lambda s, t: (_ for _ in ()).throw(ValidationError("姓名不能为空", field="name", en="Name is required")),
               on_error=errs.append)
    qtbot.waitUntil(lambda: bool(errs), timeout=5_000)
    msg, nxt = describe(errs[0])
    assert msg == "姓名不能为空" and "修改" in nxt

    # an unexpected error: logged with its traceback; the user sees a plain sentence
    caplog.set_level(logging.ERROR, logger="gridman")
    runner.run(lambda s, t: 1 / 0, on_error=errs.append)
    qtbot.waitUntil(lambda: len(errs) == 2, timeout=5_000)
    assert isinstance(errs[1], ZeroDivisionError)
    assert "Traceback" in caplog.text and "ZeroDivisionError" in caplog.text
    box = show_error(None, errs[1])
    assert "Traceback" not in box.text() + box.informativeText() and "日志" in box.informativeText()
    box.close()

    # cancel: the job sees task.cancelled and stops; neither callback runs
    started, release = threading.Event(), threading.Event()
    outcome: list[str] = []

    def long_job(_s, task):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(5)
        task.check()
        return "finished"

    op = runner.run(long_job, mode="none", on_done=lambda r: outcome.append(r),
                    on_error=lambda e: outcome.append("error"))
    assert started.wait(5)
    op.cancel()
    release.set()
    qtbot.waitUntil(lambda: op.finished, timeout=5_000)
    QApplication.processEvents()
    assert outcome == []
    runner.wait()


def test_changed_broadcast_reaches_only_interested_views(qtbot, sqlite_demo, signed_in):
    from gridman.gui.main_window import MainWindow

    win = MainWindow(sqlite_demo, signed_in("admin"))
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.tree_loaded, timeout=15_000):
        win.show()
    win.show_view(1)
    qtbot.waitUntil(lambda: win.runner.pending == 0, timeout=10_000)
    incidents, buildings = win.incidents, win.registers["buildings"]
    incidents._dirty = buildings._dirty = False
    win.runner.changes.emit(Changes.of("residents", [1], reshaped=False))
    assert not incidents._pending and not buildings._pending  # not shown there
    assert win.residents.model.busy  # the shown residents register re-queried at once
    win.runner.changes.emit(Changes.of("incidents", [1], reshaped=False))
    assert incidents._pending and not buildings._pending  # hidden: applied when next shown
    qtbot.waitUntil(lambda: win.runner.pending == 0, timeout=10_000)
    win.close()
    win.runner.wait()


def test_a_job_finishing_after_its_receiver_was_deleted_is_dropped(qtbot, sqlite_demo, signed_in, caplog):
    """The user closes a view while its load runs: the result has nowhere to go and is dropped
    quietly (it was "Signal source has been deleted" in the Qt event loop)."""
    import shiboken6

    from gridman.gui.qt import QObject, Signal

    class Receiver(QObject):
        got = Signal(object)

        def take(self, value):
            self.value = value

    runner = OpRunner(sqlite_demo, signed_in("admin"))
    gate = threading.Event()

    def job(s, _task):
        gate.wait(10)
        return s.execute(text("SELECT count(*) FROM residents")).scalar_one()

    by_signal, by_method, alive = Receiver(), Receiver(), Receiver()
    runner.run(job, on_done=by_signal.got.emit, label="signal")
    runner.run(job, on_done=by_method.take, label="method")
    runner.run(job, on_done=alive.take, label="alive")
    shiboken6.delete(by_signal)
    shiboken6.delete(by_method)
    caplog.set_level(logging.INFO, logger="gridman.gui.ops")
    gate.set()
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=10_000)
    assert alive.value > 0  # the live receiver still gets its result
    dropped = [r.getMessage() for r in caplog.records if "result dropped" in r.getMessage()]
    assert len(dropped) == 2 and any("op signal" in m for m in dropped) and any("op method" in m for m in dropped)


def test_a_runner_destroyed_with_jobs_in_flight_emits_nothing(qtbot, sqlite_demo, signed_in):
    """The window that owns the runner is deleted (a test's teardown, a language switch) while
    its jobs still run or their results wait in the event queue: nothing is emitted from the
    deleted runner (it was "Signal source has been deleted" from ``finish``), the jobs' own
    callbacks are not called, and the pool is left idle."""
    import shiboken6

    from gridman.gui.qt import QObject

    owner = QObject()
    runner = OpRunner(sqlite_demo, signed_in("admin"), parent=owner)
    gate = threading.Event()
    delivered: list[object] = []

    def job(s, task):  # type: ignore[no-untyped-def]
        gate.wait(10)
        task.progress(0.5, "half")
        return s.execute(text("SELECT count(*) FROM residents")).scalar_one()

    def failing(_s, _task):  # type: ignore[no-untyped-def]
        gate.wait(10)
        raise ValidationError("不对", en="wrong")

    runner.run(job, on_done=delivered.append, on_progress=lambda f, m: delivered.append(m))
    runner.run(failing, on_error=delivered.append)
    runner.run(job)  # no callbacks: its result only goes to the runner's signals
    pool = runner.pool
    shiboken6.delete(owner)  # the runner goes with its parent
    assert not shiboken6.isValid(runner)
    gate.set()
    assert pool.waitForDone(10_000)
    for _ in range(5):  # deliver whatever the jobs queued
        QApplication.processEvents()
        qtbot.wait(20)
    assert delivered == []

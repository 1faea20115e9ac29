"""Typed change notices in the real window (offscreen): an edit at row ~150 of the residents
register refreshes that row in place — scroll position and selection kept, no tree, map or
dashboard reload; a new household reloads the register keeping its place and reloads the tree's
counts; an incident's status change reloads the tree and marks the map stale but leaves the
residents register alone. A long write job shows its progress in the status bar and Cancel
there stops it with nothing written."""

from __future__ import annotations

import time

from gridman.core.changes import Changes
from gridman.core.models import Incident
from gridman.core.services import people
from gridman.gui import interests
from gridman.gui.qt import QAbstractItemView, Qt
from tests.gui.conftest import raw, type_text, wait_runner
from tests.gui.test_journeys import open_window


def _spy_jobs(win) -> list[str]:  # type: ignore[no-untyped-def]
    """The labels of the jobs the window starts from now on (the real runner still runs them)."""
    labels: list[str] = []
    run = win.runner.run

    def spy(fn, **kw):  # type: ignore[no-untyped-def]
        labels.append(kw.get("label", ""))
        return run(fn, **kw)

    win.runner.run = spy
    return labels


def _quiet_window(qtbot, db):  # type: ignore[no-untyped-def]
    """The admin's window after the overdue sweeper's first run (1.5 s after opening; its
    escalations are real writes that would mark views stale), its timer stopped."""
    win = open_window(qtbot, db, "admin")
    win.sweeper.timer.stop()
    qtbot.wait(1800)
    wait_runner(qtbot, win.runner)
    return win


def test_an_edit_keeps_scroll_and_selection_and_reloads_only_what_changed(qtbot, sqlite_demo):
    win = _quiet_window(qtbot, sqlite_demo)
    win.show_view(0)  # build the map once, so that its staleness can be seen
    qtbot.waitUntil(lambda: win.map.built and not win.map.view._dirty, timeout=20_000)
    win.show_view(1)
    view, model, table = win.residents, win.residents.model, win.residents.table
    wait_runner(qtbot, win.runner)
    with qtbot.waitSignal(model.fetched, timeout=15_000):
        model.fetchMore()
    assert model.rowCount() == 400
    table.selectRow(150)
    table.scrollTo(model.index(150, 0), QAbstractItemView.ScrollHint.PositionAtTop)
    scroll = table.verticalScrollBar().value()
    rid = model.ids[150]
    assert scroll > 0 and view.selected_ids() == [rid]
    jobs = _spy_jobs(win)

    dlg = win.open_row("residents", rid)
    qtbot.waitUntil(lambda: dlg.loaded, timeout=10_000)
    dlg.edits["name"].clear()
    type_text(qtbot, dlg.edits["name"], "改名测试")
    with qtbot.waitSignal(dlg.saved, timeout=10_000):
        qtbot.mouseClick(dlg.save_button, Qt.MouseButton.LeftButton)
    wait_runner(qtbot, win.runner)
    assert raw(sqlite_demo, "SELECT name FROM residents WHERE id=?", rid)[0][0] == "改名测试"
    name_col = [c.key for c in model.columns].index("name")
    assert model.ids[150] == rid and model.index(150, name_col).data() == "改名测试"
    assert model.rowCount() == 400 and table.verticalScrollBar().value() == scroll
    assert view.selected_ids() == [rid] and table.currentIndex().row() == 150
    # the form loads and saves; then only that row is re-fetched: no tree, page, count, map or dashboard
    assert jobs == ["resident", "update-resident", "residents:rows"]
    assert not win.map.view._dirty

    # a new household in the first resident's grid: the register reloads what it had, in place;
    # the tree's counts reload
    grid = raw(sqlite_demo, "SELECT grid_id FROM residents WHERE id=?", rid)[0][0]
    actor = win.actor
    win.runner.run(lambda s, _t: people.register_household(s, actor, grid_id=grid, household_no="CHG-GUI-1",
                                                           members=[{"name": "新户主", "relation_to_head": "head"}]).id,
                   mode="write", label="register")
    with qtbot.waitSignal(win.tree_loaded, timeout=15_000):
        pass
    wait_runner(qtbot, win.runner)
    assert "residents:reload" in jobs and "tree" in jobs and "residents:page0" not in jobs
    assert model.ids[150] == rid and model.rowCount() >= 400
    assert table.verticalScrollBar().value() == scroll and view.selected_ids() == [rid]
    assert win.map.view._dirty  # hidden map: reloads its counts when next shown

    # an incident's status: tree (open count) and map, not the residents register
    win.map.view._dirty = False
    del jobs[:]
    iid = raw(sqlite_demo, "SELECT id FROM incidents WHERE status NOT IN ('closed', 'archived') LIMIT 1")[0][0]

    def close(s, _t):  # type: ignore[no-untyped-def]
        s.get(Incident, iid).status = "closed"

    win.runner.run(close, mode="write", label="close-incident")
    with qtbot.waitSignal(win.tree_loaded, timeout=15_000):
        pass
    wait_runner(qtbot, win.runner)
    assert "tree" in jobs and not [j for j in jobs if j.startswith("residents:")]
    assert win.map.view._dirty
    # the incidents register, never shown yet, loads in full when first shown; shown once, it
    # keeps the change for when it is shown again
    assert win.incidents._dirty
    win.show_view(3)
    wait_runner(qtbot, win.runner)
    win.show_view(1)
    win.runner.run(close, mode="write", label="close-again")  # no field changes: nothing to report
    wait_runner(qtbot, win.runner)
    assert not win.incidents._pending

    def reopen(s, _t):  # type: ignore[no-untyped-def]
        s.get(Incident, iid).status = "reported"

    win.runner.run(reopen, mode="write", label="reopen")
    wait_runner(qtbot, win.runner)
    assert win.incidents._pending.ids("incidents") == {iid} and not win.incidents._dirty
    win.close()
    win.runner.wait()


def test_cancel_in_the_status_bar_stops_a_long_write_with_nothing_written(qtbot, sqlite_demo):
    win = open_window(qtbot, sqlite_demo, "admin")
    assert not win.progress.isVisible() and not win.cancel_button.isVisible()
    rows = raw(sqlite_demo, "SELECT id, version, note FROM residents ORDER BY id LIMIT 20")
    audit_before = raw(sqlite_demo, "SELECT count(*) FROM audit_log")[0][0]
    actor = win.actor
    broadcast: list[Changes] = []
    win.runner.changes.connect(broadcast.append)

    def job(s, task):  # type: ignore[no-untyped-def]
        for i, (rid, ver, _note) in enumerate(rows):
            people.update_resident(s, actor, rid, expected_version=ver, note="批量修改")
            task.step(i + 1, len(rows), f"{i + 1}/{len(rows)}")
            if i == 2:  # wait for the user's Cancel (deterministic: the job is still mid-way)
                deadline = time.monotonic() + 10
                while not task.cancelled and time.monotonic() < deadline:
                    time.sleep(0.01)
        return len(rows)

    done: list[object] = []
    op = win.runner.run(job, mode="write", on_done=done.append, on_error=done.append, label="bulk-note")
    qtbot.waitUntil(lambda: win.progress.isVisible() and win.progress_op is op, timeout=10_000)
    assert win.cancel_button.isVisible() and win.progress.value() > 0
    qtbot.mouseClick(win.cancel_button, Qt.MouseButton.LeftButton)
    assert op.task.cancelled and not win.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: op.finished, timeout=10_000)
    wait_runner(qtbot, win.runner)
    assert done == [] and broadcast == []  # cancelled: no result, no error dialog, nothing broadcast
    assert not win.progress.isVisible() and not win.cancel_button.isVisible()
    assert raw(sqlite_demo, "SELECT id, version, note FROM residents ORDER BY id LIMIT 20") == rows
    assert raw(sqlite_demo, "SELECT count(*) FROM audit_log")[0][0] == audit_before
    win.close()
    win.runner.wait()


def test_interests_name_edits_touch_no_figures():
    name = Changes.of("residents", [1], reshaped=False)
    name = Changes(tables={"residents": name.tables["residents"].__class__(updated=frozenset({1}),
                                                                          fields=frozenset({"name"}))})
    assert interests.register_needs("residents", name) and interests.register_needs("households", name)
    assert not (interests.tree_needs(name) or interests.map_needs(name) or interests.dashboard_needs(name))
    assert not interests.register_needs("incidents", name) and not interests.queue_needs(name)
    moved = Changes(tables={"residents": name.tables["residents"].__class__(updated=frozenset({1}),
                                                                           fields=frozenset({"grid_id"}))})
    assert interests.tree_needs(moved) and interests.map_needs(moved) and interests.dashboard_needs(moved)
    status = Changes(tables={"incidents": name.tables["residents"].__class__(updated=frozenset({5}),
                                                                            fields=frozenset({"status"}))})
    assert interests.tree_needs(status) and interests.map_needs(status) and interests.queue_needs(status)
    assert not interests.register_needs("residents", status)
    assert interests.tree_needs(Changes.all()) and interests.register_needs("visits", Changes.all())

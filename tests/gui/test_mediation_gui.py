"""Journeys of the mediation GUI through the real window (offscreen, the demo database): report a
dispute with a party from the register; the supervisor finds it in the queue, escalates and
resolves it and the right level verifies it; only the allowed actions are offered; a concurrent
change shows the conflict message and reloads; the overdue sweep runs in the background."""

from __future__ import annotations

import tempfile
from pathlib import Path

from gridman.core import enums
from gridman.core.services import mediation
from gridman.gui.main_window import MainWindow
from gridman.gui.ops import OpRunner
from gridman.gui.qt import QDialogButtonBox, Qt
from tests.gui.conftest import raw, type_text, wait_runner
from tests.gui.test_journeys import open_window


def window(qtbot, db, actor) -> MainWindow:  # type: ignore[no-untyped-def]
    win = MainWindow(db, actor, runner=OpRunner(db, actor))
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.tree_loaded, timeout=15_000):
        win.show()
    wait_runner(qtbot, win.runner)
    return win


def report_dispute(qtbot, win: MainWindow, title: str) -> int:  # type: ignore[no-untyped-def]
    """The warden fills the report form: a party found in the register, one by free text."""
    form = win.report_incident()
    qtbot.waitUntil(lambda: form.grid.count() > 0 and form.building.count() > 1, timeout=10_000)
    grid = form.grid.currentData()
    name = raw(win.db, "SELECT r.name FROM residents r JOIN households h ON h.id = r.household_id "
                       "WHERE h.grid_id = ? AND r.status = 'active' ORDER BY r.id LIMIT 1", grid)[0][0]
    type_text(qtbot, form.title, title)
    type_text(qtbot, form.party_search, name)
    qtbot.waitUntil(lambda: form.party_results.count() > 0, timeout=10_000)
    qtbot.mouseClick(form.add_resident, Qt.MouseButton.LeftButton)
    type_text(qtbot, form.party_free, "王某某")
    qtbot.mouseClick(form.add_free, Qt.MouseButton.LeftButton)
    form.building.setCurrentIndex(1)
    form.set_point(117.25, 31.85)
    photo = Path(tempfile.mkdtemp()) / "现场.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    form.set_photos([str(photo)])
    assert form.party_list.count() == 2
    with qtbot.waitSignal(form.reported, timeout=15_000) as sig:
        qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    iid = int(sig.args[0])
    rows = raw(win.db, "SELECT grid_id, category, level, status, building_id, lon FROM incidents WHERE id = ?", iid)
    assert rows == [(grid, "dispute", "grid", "reported", form.building.currentData(), 117.25)]
    parties = raw(win.db, "SELECT name, resident_id IS NOT NULL FROM incident_parties WHERE incident_id = ? "
                          "ORDER BY id", iid)
    assert parties == [(name, 1), ("王某某", 0)]
    atts = raw(win.db, "SELECT filename, size FROM incident_attachments WHERE incident_id = ?", iid)
    assert atts == [("现场.png", 264)]
    return iid


def act_in_view(qtbot, view, action: str, *, note: str = "", agreement: str = "") -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: action in view.action_buttons, timeout=10_000)
    version = view.view.version
    qtbot.mouseClick(view.action_buttons[action], Qt.MouseButton.LeftButton)
    d = view.action_dialog
    if action != "accept":
        assert d is not None and d.isVisible()
        if note:
            type_text(qtbot, d.widgets["note"], note)
        if agreement:
            type_text(qtbot, d.widgets["agreement_text"], agreement)
        qtbot.mouseClick(d.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.view is not None and view.view.version > version, timeout=15_000)
    wait_runner(qtbot, view.runner)


def merge_in_dialog(qtbot, view, into: int) -> None:  # type: ignore[no-untyped-def]
    """Click 合并 in the case view, pick case ``into`` in the dialog, confirm."""
    qtbot.waitUntil(lambda: "merge" in view.action_buttons, timeout=10_000)
    qtbot.mouseClick(view.action_buttons["merge"], Qt.MouseButton.LeftButton)
    d = view.action_dialog
    box = d.widgets["into_id"]
    qtbot.waitUntil(lambda: box.findData(into) >= 0, timeout=10_000)
    box.setCurrentIndex(box.findData(into))
    qtbot.mouseClick(d.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


def test_supervisor_finds_escalates_and_resolves_a_wardens_dispute(qtbot, sqlite_demo, signed_in):
    warden = window(qtbot, sqlite_demo, signed_in("warden"))
    iid = report_dispute(qtbot, warden, "GUI测试：楼道堆物纠纷")
    # the warden cannot settle it and escalates it from the case view
    view = warden.open_case(iid)
    act_in_view(qtbot, view, "escalate", note="网格无法调处")
    assert raw(sqlite_demo, "SELECT level, status FROM incidents WHERE id = ?", iid) == [("community", "reported")]
    assert "escalate" not in view.action_buttons  # the case left the warden's level
    view.close()
    warden.close()
    # the community escalates it from its queue (bulk escalate of the selected case)
    community = window(qtbot, sqlite_demo, signed_in("community"))
    community.show_view(6)
    qtbot.waitUntil(lambda: community.queue.row_of(iid) >= 0, timeout=10_000)
    cq = community.queue
    other = next(r for r in cq.rows if r.level == "grid")  # the warden's level: not the community's to escalate
    sm = cq.table.selectionModel()
    for row in (cq.row_of(iid), cq.row_of(other.id)):
        sm.select(cq.table.model().index(row, 0), sm.SelectionFlag.Select | sm.SelectionFlag.Rows)
    assert cq.selected_ids() == sorted([iid, other.id])
    cq.bulk("escalate", note="涉及多个社区，请街道协调")
    qtbot.waitUntil(lambda: hasattr(cq, "last_bulk"), timeout=15_000)
    assert (cq.last_bulk.done, cq.last_bulk.skipped_ids) == ([iid], [other.id])  # done, and skipped with a message
    assert f"#{other.id}" in cq.bulk_box.text()
    assert raw(sqlite_demo, "SELECT level FROM incidents WHERE id = ?", other.id) == [(other.level,)]
    community.close()
    # the supervisor signs in, finds it by text in the queue, accepts and resolves it
    street = open_window(qtbot, sqlite_demo, "street")
    street.show_view(6)
    q = street.queue
    qtbot.waitUntil(lambda: len(q.rows) > 0, timeout=10_000)
    # the handler filter offers the handlers met in the queue and filters in SQL
    assert q.handler.count() > 2
    assert q.more_button.isHidden() == (q.total <= len(q.rows))
    hid = q.handler.itemData(2)
    q.handler.setCurrentIndex(2)
    qtbot.waitUntil(lambda: q.rows and all(r.handler_id == hid for r in q.rows), timeout=10_000)
    q.handler.setCurrentIndex(0)
    type_text(qtbot, q.search, "楼道堆物")
    qtbot.waitUntil(lambda: [r.id for r in q.rows] == [iid], timeout=10_000)
    assert q.rows[0].level == "street"
    with qtbot.waitSignal(q.open_case, timeout=5_000) as sig:
        q._open(0)  # noqa: SLF001 — as a double-click on the row
    view = street.open_case(int(sig.args[0]))
    act_in_view(qtbot, view, "accept")
    act_in_view(qtbot, view, "resolve", agreement="双方同意三日内清理楼道杂物")
    # resolved at street level: the street itself verifies (there is no level above)
    assert raw(sqlite_demo, "SELECT status, handled_level FROM incidents WHERE id = ?", iid) == [("resolved", "street")]
    act_in_view(qtbot, view, "verify", note="现场核实已清理")
    rows = raw(sqlite_demo, "SELECT status, closed_at IS NOT NULL, agreement_text FROM incidents WHERE id = ?", iid)
    assert rows == [("closed", 1, "双方同意三日内清理楼道杂物")]
    steps = raw(sqlite_demo, "SELECT action FROM incident_steps WHERE incident_id = ? ORDER BY seq", iid)
    assert [s[0] for s in steps] == ["report", "escalate", "escalate", "accept", "resolve", "verify"]
    assert view.steps.rowCount() == 6  # the whole timeline shown
    # the queue no longer lists the closed case (the broadcast refreshed it)
    qtbot.waitUntil(lambda: q.row_of(iid) < 0, timeout=10_000)


def test_only_allowed_actions_are_offered(qtbot, sqlite_demo, signed_in):
    w_actor, c_actor = signed_in("warden"), signed_in("community")
    grid = min(w_actor.grid_ids)
    with sqlite_demo.work(w_actor) as s:
        r = mediation.report(s, w_actor, grid_id=grid, category="dispute", title="GUI测试：邻里噪音")
        r = mediation.accept(s, w_actor, r.incident_id, expected_version=r.version)
        r = mediation.resolve(s, w_actor, r.incident_id, expected_version=r.version, agreement_text="晚十点后不再施工")
    iid = r.incident_id
    win = window(qtbot, sqlite_demo, w_actor)
    view = win.open_case(iid)
    qtbot.waitUntil(lambda: view.view is not None, timeout=10_000)
    wait_runner(qtbot, win.runner)
    # resolved at grid level: the community verifies; the warden sees no verify
    assert "verify" not in view.action_buttons and "verify_fail" not in view.action_buttons
    assert list(view.action_buttons) == ["attach"]
    with sqlite_demo.session() as s:
        assert view.allowed == mediation.allowed_actions(s, w_actor, iid)
    view.close()
    win.close()
    win2 = window(qtbot, sqlite_demo, c_actor)
    view2 = win2.open_case(iid)
    qtbot.waitUntil(lambda: view2.view is not None, timeout=10_000)
    assert set(view2.action_buttons) == {"verify", "verify_fail"}
    # someone else verifies meanwhile: the click meets a conflict, the message says so, the view reloads
    with sqlite_demo.work(c_actor) as s:
        mediation.verify(s, c_actor, iid, expected_version=r.version)
    qtbot.mouseClick(view2.action_buttons["verify"], Qt.MouseButton.LeftButton)
    d = view2.action_dialog
    qtbot.mouseClick(d.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: hasattr(view2, "conflict_box"), timeout=10_000)
    assert view2.conflict_box.text() == "该案件已被他人修改，请重新加载"
    qtbot.waitUntil(lambda: view2.view.status == "closed", timeout=10_000)
    assert set(view2.action_buttons) == {"evaluate", "reopen"}
    # evaluate with 基本满意
    qtbot.mouseClick(view2.action_buttons["evaluate"], Qt.MouseButton.LeftButton)
    d = view2.action_dialog
    d.widgets["satisfaction"].setCurrentIndex(d.widgets["satisfaction"].findData("basic"))
    qtbot.mouseClick(d.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view2.view.satisfaction == "basic", timeout=10_000)
    assert "evaluate" not in view2.action_buttons
    assert raw(sqlite_demo, "SELECT satisfaction FROM incidents WHERE id = ?", iid) == [("basic",)]


def test_overdue_sweep_runs_in_the_background_at_start(qtbot, sqlite_demo, signed_in, monkeypatch):
    from gridman.gui.mediation import queue_view

    monkeypatch.setattr(queue_view, "PAGE", 50)  # the street's ~125 active cases span three pages
    actor = signed_in("street")
    before = raw(sqlite_demo, "SELECT count(*) FROM incident_steps WHERE action IN ('escalate', 'overdue') "
                              "AND note LIKE '超期%'")[0][0]
    win = window(qtbot, sqlite_demo, actor)
    qtbot.waitUntil(lambda: win.sweeper.last is not None, timeout=15_000)
    res = win.sweeper.last
    after = raw(sqlite_demo, "SELECT count(*) FROM incident_steps WHERE action IN ('escalate', 'overdue') "
                             "AND note LIKE '超期%'")[0][0]
    assert after - before == res.escalated + res.flagged > 0
    assert win.sweeper.timer.isActive() and win.sweeper.timer.interval() == 600_000
    # then the status bar shows the overdue cases left per level (as the service counts them)
    qtbot.waitUntil(lambda: win.overdue_label.text() != "", timeout=10_000)
    with sqlite_demo.session() as s:
        counts = mediation.overdue_counts(s, actor)
    assert win.overdue_label.text().startswith("超期未办结：")
    assert f"街道 {counts['street']}" in win.overdue_label.text()
    # the queue loads 50 rows, "load more" the next 50, in deadline order
    win.show_view(6)
    q = win.queue
    qtbot.waitUntil(lambda: len(q.rows) == 50, timeout=10_000)
    assert q.total > 100 and q.more_button.isVisible()
    first = [r.id for r in q.rows]
    qtbot.mouseClick(q.more_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(q.rows) == 100, timeout=10_000)
    assert [r.id for r in q.rows][:50] == first
    dues = [r.due_at for r in q.rows]
    assert dues == sorted(dues)


def test_report_form_takes_its_place_from_a_map_click(qtbot, sqlite_demo, signed_in):
    from gridman.core.services import geometry
    from gridman.gui.admin.boundary_import import CRS_NAMES

    assert tuple(CRS_NAMES) == geometry.CRS_CHOICES  # the boundary import offers every system
    win = window(qtbot, sqlite_demo, signed_in("warden"))
    form = win.report_incident()
    qtbot.mouseClick(form.map_button, Qt.MouseButton.LeftButton)
    assert win.tabs.currentIndex() == 0  # the map is shown
    view = win.map.build()
    qtbot.waitUntil(lambda: view.data is not None, timeout=15_000)
    view.point_clicked.emit(117.2561, 31.8512)  # what a click on the plot emits (lon, lat)
    assert form.point == (117.2561, 31.8512)
    assert form.point_label.text() == "117.25610, 31.85120"


def test_merge_a_duplicate_into_the_case_picked_in_the_dialog(qtbot, sqlite_demo, signed_in):
    actor = signed_in("warden")
    grid = min(actor.grid_ids)
    with sqlite_demo.work(actor) as s:
        first = mediation.report(s, actor, grid_id=grid, category="hazard", title="GUI测试：井盖缺失").incident_id
        dup = mediation.report(s, actor, grid_id=grid, category="hazard", title="GUI测试：井盖丢失").incident_id
    win = window(qtbot, sqlite_demo, actor)
    view = win.open_case(dup)
    merge_in_dialog(qtbot, view, first)
    assert view.action_dialog.widgets["into_id"].findData(dup) < 0  # not into itself
    qtbot.waitUntil(lambda: view.view is not None and view.view.status == "merged", timeout=15_000)
    assert raw(sqlite_demo, "SELECT status, merged_into_id FROM incidents WHERE id = ?", dup) == [("merged", first)]
    assert view.action_buttons == {} and view.actions_label.text() == "当前没有您可执行的操作。"
    # the case kept is accepted and referred to the committee picked in the dialog
    view2 = win.open_case(first)
    act_in_view(qtbot, view2, "accept")
    qtbot.mouseClick(view2.action_buttons["refer"], Qt.MouseButton.LeftButton)
    d = view2.action_dialog
    assert d.widgets["target"].count() == len(enums.ReferralTarget)
    d.widgets["target"].setCurrentIndex(d.widgets["target"].findData("property"))
    qtbot.mouseClick(d.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view2.view.status == "referred", timeout=15_000)
    assert raw(sqlite_demo, "SELECT status, referral_target FROM incidents WHERE id = ?", first) == [
        ("referred", "property")]
    assert "物业" in view2.header.text()  # the committee named in the case view


def test_bulk_assign_gives_selected_cases_to_a_handler_picked_in_the_dialog(qtbot, sqlite_demo, signed_in):
    """The street supervisor selects two street-level cases and assigns both to a supervisor of
    the street chosen in the dialog (the only candidates the service offers)."""
    street = open_window(qtbot, sqlite_demo, "street")
    street.show_view(6)
    q = street.queue
    qtbot.waitUntil(lambda: len(q.rows) > 0, timeout=10_000)
    mine = [r for r in q.rows if r.level == "street" and r.status in ("reported", "accepted", "in_progress")][:2]
    assert len(mine) == 2
    sm = q.table.selectionModel()
    for r in mine:
        sm.select(q.table.model().index(q.row_of(r.id), 0), sm.SelectionFlag.Select | sm.SelectionFlag.Rows)
    q.bulk("assign")
    d = q.bulk_dialog
    qtbot.waitUntil(lambda: d.widgets["handler_id"].count() > 0, timeout=10_000)
    uid = d.widgets["handler_id"].itemData(0)
    assert raw(sqlite_demo, "SELECT role FROM users WHERE id = ?", uid) == [("street_supervisor",)]
    qtbot.mouseClick(d.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: hasattr(q, "last_bulk"), timeout=15_000)
    assert sorted(q.last_bulk.done) == sorted(r.id for r in mine) and q.last_bulk.skipped == []
    for r in mine:
        assert raw(sqlite_demo, "SELECT handler_id FROM incidents WHERE id = ?", r.id) == [(uid,)]
        last = raw(sqlite_demo, "SELECT action FROM incident_steps WHERE incident_id = ? ORDER BY seq DESC LIMIT 1",
                   r.id)
        assert last == [("assign",)]


def test_merging_refreshes_the_open_view_of_the_case_kept(qtbot, sqlite_demo, signed_in):
    """The case kept shows the duplicate's timeline as soon as the merge is done (the broadcast
    names both cases; it named the merged one twice before)."""
    actor = signed_in("warden")
    grid = min(actor.grid_ids)
    with sqlite_demo.work(actor) as s:
        first = mediation.report(s, actor, grid_id=grid, category="hazard", title="GUI测试：路灯不亮").incident_id
        dup = mediation.report(s, actor, grid_id=grid, category="hazard", title="GUI测试：路灯坏了").incident_id
    win = window(qtbot, sqlite_demo, actor)
    kept = win.open_case(first)
    qtbot.waitUntil(lambda: kept.view is not None, timeout=10_000)
    assert kept.view.merged_ids == []
    view = win.open_case(dup)
    merge_in_dialog(qtbot, view, first)
    qtbot.waitUntil(lambda: kept.view.merged_ids == [dup], timeout=15_000)
    assert kept.steps.rowCount() == 3  # its report, the duplicate's report and its merge


def test_action_dialog_fields_come_from_the_declaration(qtbot, sqlite_demo, signed_in):
    """Each action's dialog shows exactly its declared inputs (a move's target level excepted) and
    refuses a missing required one with the service's message."""
    from gridman.gui.mediation.action_dialog import ActionDialog

    actor = signed_in("street")
    win = window(qtbot, sqlite_demo, actor)
    for action in mediation.CASE_ACTIONS:
        spec = mediation.action_spec(action)
        d = ActionDialog(action.value, runner=win.runner, actor=actor, incident_ids=[1], category="dispute")
        qtbot.addWidget(d)
        assert list(d.widgets) == [i.key for i in spec.inputs if i.kind != mediation.Kind.LEVEL], action
        wait_runner(qtbot, win.runner)
    d = ActionDialog("resolve", runner=win.runner, actor=actor, incident_ids=[1], category="dispute")
    qtbot.addWidget(d)
    d.show()
    qtbot.mouseClick(d.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert d.isVisible() and d.message.text() == "请填写调解协议内容"
    d2 = ActionDialog("resolve", runner=win.runner, actor=actor, incident_ids=[1], category="hazard")
    qtbot.addWidget(d2)
    d2.show()
    qtbot.mouseClick(d2.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert not d2.isVisible() and d2.values()["agreement_text"] is None  # not required for a hazard


def test_bulk_dialog_acts_on_the_cases_selected_when_it_opened(qtbot, sqlite_demo, signed_in):
    """The list reloads or the selection changes while the dialog is open: the action applies to
    the cases the user had selected when asking for it, not to what is selected at OK."""
    street = open_window(qtbot, sqlite_demo, "street")
    street.show_view(6)
    q = street.queue
    qtbot.waitUntil(lambda: len(q.rows) > 2, timeout=10_000)
    active = [r for r in q.rows if r.level == "street" and r.status in ("reported", "accepted", "in_progress")]
    mine, other = active[:2], active[2]
    assigns = "SELECT count(*) FROM incident_steps WHERE incident_id = ? AND action = 'assign'"
    before = raw(sqlite_demo, assigns, other.id)
    sm = q.table.selectionModel()
    for r in mine:
        sm.select(q.table.model().index(q.row_of(r.id), 0), sm.SelectionFlag.Select | sm.SelectionFlag.Rows)
    q.bulk("assign")
    d = q.bulk_dialog
    qtbot.waitUntil(lambda: d.widgets["handler_id"].count() > 0, timeout=10_000)
    sm.clearSelection()  # meanwhile the user clicks another row
    sm.select(q.table.model().index(q.row_of(other.id), 0), sm.SelectionFlag.Select | sm.SelectionFlag.Rows)
    qtbot.mouseClick(d.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: hasattr(q, "last_bulk"), timeout=15_000)
    assert sorted(q.last_bulk.done) == sorted(r.id for r in mine)
    assert raw(sqlite_demo, assigns, other.id) == before

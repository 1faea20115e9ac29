"""Register table models without a view: paging, lazy fetch, SQL filters, sorting and scope."""

from __future__ import annotations

from datetime import date

import pytest

from gridman.core.services.registers import Filters
from gridman.gui.ops import OpRunner
from gridman.gui.registers.table_model import ID_ROLE, RegisterModel
from tests.gui.conftest import raw, wait_runner


@pytest.fixture
def admin_runner(qtbot, sqlite_demo, signed_in):  # type: ignore[no-untyped-def]
    actor = signed_in("admin")
    runner = OpRunner(sqlite_demo, actor)
    yield runner, actor
    runner.wait()


def load(qtbot, model, filters=None):  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(model.loaded, timeout=15_000):
        if filters is None:
            model.refresh()
        else:
            model.set_filters(filters)
    wait_runner(qtbot, model.runner)


def test_residents_model_pages_and_fetches_more(qtbot, sqlite_demo, admin_runner):
    runner, actor = admin_runner
    model = RegisterModel(runner, actor, "residents", page_size=100)
    load(qtbot, model)
    total = raw(sqlite_demo, "SELECT count(*) FROM residents")[0][0]
    assert model.rowCount() == 100 and model.total == total
    assert model.columnCount() == len(model.columns)
    assert model.canFetchMore()
    with qtbot.waitSignal(model.fetched, timeout=15_000):
        model.fetchMore()
    assert model.rowCount() == 200
    first_ids = [r[0] for r in raw(sqlite_demo, "SELECT id FROM residents ORDER BY id LIMIT 200")]
    assert model.ids == first_ids
    assert model.data(model.index(0, 0), ID_ROLE) == first_ids[0]
    assert model.headerData(0, __import__("PySide6.QtCore").QtCore.Qt.Orientation.Horizontal) == "姓名"


def test_sql_filters_match_an_independent_query(qtbot, sqlite_demo, admin_runner):
    runner, actor = admin_runner
    model = RegisterModel(runner, actor, "residents", page_size=5000)
    load(qtbot, model, Filters(population_type="floating"))
    expect = raw(sqlite_demo, "SELECT count(*) FROM residents WHERE population_type='floating'")[0][0]
    assert model.rowCount() == expect > 0
    # tag + age range
    today = date.today()
    cutoff = today.replace(year=today.year - 60).isoformat()
    load(qtbot, model, Filters(tags=("elderly_alone",), age_min=60))
    expect = raw(sqlite_demo, """SELECT count(*) FROM residents r WHERE r.birth_date <= ? AND EXISTS (
                 SELECT 1 FROM resident_tags rt JOIN tags t ON t.id = rt.tag_id
                 WHERE rt.resident_id = r.id AND t.code = 'elderly_alone')""", cutoff)[0][0]
    assert model.rowCount() == expect > 0
    # search text on names
    name = raw(sqlite_demo, "SELECT name FROM residents ORDER BY id LIMIT 1")[0][0]
    load(qtbot, model, Filters(text=name))
    expect = raw(sqlite_demo, "SELECT count(*) FROM residents WHERE name LIKE ? OR current_address LIKE ?",
                 f"%{name}%", f"%{name}%")[0][0]
    assert model.rowCount() == expect >= 1
    # a grid (area) filter
    grid = raw(sqlite_demo, "SELECT id FROM areas WHERE level='grid' ORDER BY code LIMIT 1 OFFSET 3")[0][0]
    load(qtbot, model, Filters(area_id=grid))
    expect = raw(sqlite_demo, "SELECT count(*) FROM residents WHERE grid_id=?", grid)[0][0]
    assert model.rowCount() == expect > 0


def test_sorting_is_done_in_sql(qtbot, sqlite_demo, admin_runner):
    from gridman.gui.qt import Qt

    runner, actor = admin_runner
    model = RegisterModel(runner, actor, "households", page_size=50)
    load(qtbot, model)
    col = [c.key for c in model.columns].index("household_no")
    with qtbot.waitSignal(model.loaded, timeout=15_000):
        model.sort(col, Qt.SortOrder.DescendingOrder)
    expect = [r[0] for r in raw(sqlite_demo, "SELECT household_no FROM households ORDER BY household_no DESC LIMIT 50")]
    assert [model.display(i, col) for i in range(model.rowCount())] == expect


def test_warden_sees_only_own_grids_and_clerk_sees_masked_ids(qtbot, sqlite_demo, signed_in):
    warden = signed_in("warden")
    runner = OpRunner(sqlite_demo, warden)
    model = RegisterModel(runner, warden, "residents", page_size=10_000)
    load(qtbot, model)
    grids = {r[0] for r in raw(sqlite_demo, """SELECT wa.grid_id FROM warden_assignments wa JOIN users u
              ON u.id = wa.user_id WHERE u.username='warden' AND wa.end_date IS NULL""")}
    in_scope = raw(sqlite_demo, f"SELECT id FROM residents WHERE grid_id IN ({','.join(map(str, grids))}) ORDER BY id")
    assert model.ids == [r[0] for r in in_scope]
    # a grid that is not the warden's: nothing, even when asked for explicitly
    other = raw(sqlite_demo, f"SELECT id FROM areas WHERE level='grid' AND id NOT IN ({','.join(map(str, grids))}) LIMIT 1")[0][0]
    load(qtbot, model, Filters(area_id=other))
    assert model.rowCount() == 0
    runner.wait()
    clerk = signed_in("clerk")
    runner = OpRunner(sqlite_demo, clerk)
    model = RegisterModel(runner, clerk, "residents", page_size=20)
    load(qtbot, model)
    col = [c.key for c in model.columns].index("citizen_id")
    shown = [model.display(i, col) for i in range(model.rowCount()) if model.display(i, col)]
    assert shown and all("*" in s for s in shown)
    # sensitive tags are not shown to a clerk
    tag_col = [c.key for c in model.columns].index("tags")
    sensitive = {r[0] for r in raw(sqlite_demo, "SELECT name FROM tags WHERE sensitive = 1")}
    load(qtbot, model, Filters())
    assert not any(t in sensitive for i in range(model.rowCount()) for t in model.display(i, tag_col).split("、"))
    runner.wait()


def test_incidents_model_overdue_first_with_coloured_time_left(qtbot, sqlite_demo, admin_runner):
    from gridman.gui.qt import Qt

    runner, actor = admin_runner
    model = RegisterModel(runner, actor, "incidents", page_size=100)
    load(qtbot, model, Filters(status="open"))
    keys = [c.key for c in model.columns]
    left = [model.rows[i][keys.index("time_left")] for i in range(model.rowCount())]
    assert left and left[0] is not None and left[0] < 0  # overdue first
    ranks = [0 if (h is not None and h < 0) else 1 for h in left]
    assert ranks == sorted(ranks)
    brush = model.data(model.index(0, keys.index("time_left")), Qt.ItemDataRole.BackgroundRole)
    assert brush is not None and brush.color().red() > brush.color().green()
    assert "超期" in model.display(0, keys.index("time_left"))
    n_open = raw(sqlite_demo, """SELECT count(*) FROM incidents WHERE status IN
                 ('reported','accepted','in_progress','failed','referred')""")[0][0]
    assert model.total == n_open


def test_a_clerk_clicking_the_masked_id_header_keeps_the_default_order(qtbot, sqlite_demo, signed_in):
    """Issue 16: sorting by a field the role sees masked is refused by the service; the register
    asks ``registers.sortable`` first and keeps its default order instead of failing."""
    from gridman.gui.qt import Qt

    clerk = signed_in("clerk")
    runner = OpRunner(sqlite_demo, clerk)
    model = RegisterModel(runner, clerk, "residents", page_size=50)
    load(qtbot, model)
    first = list(model.ids)
    failed: list[BaseException] = []
    model.failed.connect(failed.append)
    col = [c.key for c in model.columns].index("citizen_id")
    model.sort(col, Qt.SortOrder.DescendingOrder)
    assert model.sort_key is None
    load(qtbot, model)
    assert model.ids == first and not failed
    model.sort([c.key for c in model.columns].index("name"), Qt.SortOrder.AscendingOrder)
    assert model.sort_key == "name"
    runner.wait()

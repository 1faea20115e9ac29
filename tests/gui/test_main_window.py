from __future__ import annotations

from gridman.gui.main_window import MainWindow


def test_main_window_shows_area_tree_with_counts(qtbot, sqlite_demo):
    w = MainWindow(sqlite_demo)
    qtbot.addWidget(w)
    w.show()
    root = w.model.invisibleRootItem()
    assert root.rowCount() == 1 and root.child(0).text().startswith("合肥市")
    district = root.child(0).child(0)
    assert district.text() == "蜀山区（区县）" and district.rowCount() == 2
    # a grid row shows its households and residents
    grid_row = district.child(0).child(0)
    community = grid_row
    first_grid = community.child(0, 0)
    assert first_grid.text().startswith("第1网格")
    assert int(community.child(0, 1).text()) > 0 and int(community.child(0, 2).text()) > 0

"""系统管理 pages on their own (pytest-qt, offscreen, the demo database): the boundary import
with progress and Cancel, giving a warden a grid, the grid check of the default area."""

from __future__ import annotations

import json

import shapely
from shapely.geometry import mapping

from gridman.core.tasks import Cancelled
from gridman.gui.admin.boundary_import import BoundaryImportDialog
from gridman.gui.admin.grid_check import GridCheckView
from gridman.gui.admin.users import AssignForm
from gridman.gui.errors import describe
from gridman.gui.ops import OpRunner
from gridman.gui.qt import QDialogButtonBox, Qt
from tests.gui.conftest import raw, wait_runner


def _grid_file(tmp_path, community: str, lon: float, lat: float, n: int):  # type: ignore[no-untyped-def]
    """A file of ``n`` small new grids under ``community`` (codes ``community`` 9xxxx)."""
    codes = [f"{community}9{k:04d}" for k in range(n)]
    feats = [{"type": "Feature", "properties": {"code": c, "name": f"导入{k}"},
              "geometry": mapping(shapely.box(lon + k * 1e-4, lat, lon + k * 1e-4 + 9e-5, lat + 9e-5))}
             for k, c in enumerate(codes)]
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False), encoding="utf-8")
    return path, codes


def _dialog(qtbot, db, actor, path, community_id: int) -> BoundaryImportDialog:  # type: ignore[no-untyped-def]
    d = BoundaryImportDialog(OpRunner(db, actor), actor)
    qtbot.addWidget(d)
    qtbot.waitUntil(lambda: d.parent_area.findData(community_id) >= 0, timeout=10_000)
    d.file.setText(str(path))
    d.level.setCurrentIndex(d.level.findData("grid"))
    d.parent_area.setCurrentIndex(d.parent_area.findData(community_id))
    return d


def _community(db):  # type: ignore[no-untyped-def]
    return raw(db, "SELECT id, code, center_lon, center_lat FROM areas WHERE level = 'community' ORDER BY code LIMIT 1")[0]


def test_boundary_import_previews_then_imports(qtbot, sqlite_demo, signed_in, tmp_path):
    cid, ccode, lon, lat = _community(sqlite_demo)
    path, codes = _grid_file(tmp_path, ccode, lon, lat, 3)
    d = _dialog(qtbot, sqlite_demo, signed_in("admin"), path, cid)
    qtbot.mouseClick(d.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.message.text().startswith("预览"), timeout=15_000)
    assert "新建 3" in d.message.text() and not d.import_job.button.isEnabled()
    assert raw(sqlite_demo, f"SELECT count(*) FROM areas WHERE code IN ({','.join('?' * 3)})", *codes) == [(0,)]
    with qtbot.waitSignal(d.imported, timeout=15_000):
        qtbot.mouseClick(d.import_button, Qt.MouseButton.LeftButton)
    assert raw(sqlite_demo, f"SELECT count(*), min(parent_id), max(parent_id) FROM areas WHERE code IN "
                            f"({','.join('?' * 3)})", *codes) == [(3, cid, cid)]
    wait_runner(qtbot, d.runner)


def test_boundary_import_cancel_writes_nothing(qtbot, sqlite_demo, signed_in, tmp_path):
    """Cancel while a large file is being imported: the dialog says so, no area of the file exists."""
    cid, ccode, lon, lat = _community(sqlite_demo)
    path, codes = _grid_file(tmp_path, ccode, lon, lat, 2000)
    d = _dialog(qtbot, sqlite_demo, signed_in("admin"), path, cid)
    audit_before = raw(sqlite_demo, "SELECT count(*) FROM audit_log")[0][0]
    qtbot.mouseClick(d.import_button, Qt.MouseButton.LeftButton)
    assert d.import_job.button.isEnabled() and not d.import_button.isEnabled()
    qtbot.waitUntil(lambda: d.import_job.bar.value() > 0, timeout=15_000)  # the job reports progress
    qtbot.mouseClick(d.import_job.button, Qt.MouseButton.LeftButton)
    cancelled = describe(Cancelled())[0]
    qtbot.waitUntil(lambda: d.message.text() == cancelled, timeout=30_000)
    assert d.import_button.isEnabled() and not d.import_job.button.isEnabled()
    assert raw(sqlite_demo, f"SELECT count(*) FROM areas WHERE code LIKE '{ccode}9%' AND length(code) = "
                            f"{len(codes[0])}") == [(0,)]
    assert raw(sqlite_demo, "SELECT count(*) FROM audit_log")[0][0] == audit_before
    wait_runner(qtbot, d.runner)


def test_assign_form_gives_a_warden_a_grid(qtbot, sqlite_demo, signed_in):
    admin = signed_in("admin")
    uid = raw(sqlite_demo, "SELECT id FROM users WHERE username = 'warden'")[0][0]
    before = raw(sqlite_demo, "SELECT count(*) FROM warden_assignments WHERE user_id = ?", uid)[0][0]
    form = AssignForm(OpRunner(sqlite_demo, admin), admin, uid)
    qtbot.addWidget(form)
    qtbot.waitUntil(lambda: form.grid.count() > 0, timeout=10_000)
    form.grid.setCurrentIndex(form.grid.count() - 1)
    gid = form.grid.currentData()
    with qtbot.waitSignal(form.accepted, timeout=10_000):
        form.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
    assert raw(sqlite_demo, "SELECT count(*) FROM warden_assignments WHERE user_id = ?", uid)[0][0] == before + 1
    assert raw(sqlite_demo, "SELECT grid_id FROM warden_assignments WHERE user_id = ? ORDER BY id DESC LIMIT 1",
               uid) == [(gid,)]
    # a user who is not a warden is refused with the service's message
    staff = raw(sqlite_demo, "SELECT id FROM users WHERE username = 'community'")[0][0]
    form2 = AssignForm(OpRunner(sqlite_demo, admin), admin, staff)
    qtbot.addWidget(form2)
    qtbot.waitUntil(lambda: form2.grid.count() > 0, timeout=10_000)
    form2.save()
    qtbot.waitUntil(lambda: "不是网格员" in form2.message.text(), timeout=10_000)


def test_grid_check_without_a_selection_checks_the_city(qtbot, sqlite_demo, signed_in):
    view = GridCheckView(OpRunner(sqlite_demo, signed_in("admin")), signed_in("admin"))
    qtbot.addWidget(view)
    view.run_check()
    qtbot.waitUntil(lambda: view.report is not None, timeout=60_000)
    city = raw(sqlite_demo, "SELECT code, (SELECT count(*) FROM areas) FROM areas WHERE parent_id IS NULL "
                            "ORDER BY code LIMIT 1")[0]
    assert (view.report.root_code, view.report.areas_checked) == city
    assert view.table.rowCount() == len(view.report.issues) and view.run_button.isEnabled()

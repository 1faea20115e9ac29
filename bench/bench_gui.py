"""GUI benchmarks (issue 6). Prints figures next to their peers from the same run; never pass/fail.

1. Start-up to a usable main window on the demo database (signed in, area tree and first view
   loaded) — next to a bare ``QApplication`` start, each in a fresh process.
2. Opening the residents register over the city database (bench/out/city.sqlite, generated when
   absent): time until the first rows are painted and the process's memory — next to loading
   every resident id (what an id-holding model would do) in the same process.
3. Redrawing the map with all city grids in a 1400×900 frame: combined QPainterPath per colour
   class (what MapView does) next to one QGraphicsPathItem per grid.

Usage: QT_QPA_PLATFORM=offscreen python bench/bench_gui.py [--skip-city] [--frames N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
CITY = ROOT / "bench" / "out" / "city.sqlite"

BARE = r"""
import time, os, sys
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication([])
w = QMainWindow(); w.resize(1400, 860); w.show(); app.processEvents()
print(time.perf_counter() - t0)
"""

FULL = r"""
import time, os, sys
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from gridman.gui.qt import QSettings
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[3])
from gridman.gui.app import make_app
app = make_app()
from gridman.gui.dialogs.signin import SignInDialog
from gridman.gui.ops import OpRunner
runner = OpRunner(None)
dlg = SignInDialog(runner, database=sys.argv[2], preload=True)   # as run_gui does
dlg.show()
app.processEvents()
t_dialog = time.perf_counter() - t0
while runner.db is None:        # the database opens (and imports warm up) while the user types
    app.processEvents(); time.sleep(0.001)
t_ready = time.perf_counter() - t0
dlg.username.setText("street"); dlg.password.setText("gridman123")
t1 = time.perf_counter()
dlg.submit()
while dlg.actor is None:
    app.processEvents(); time.sleep(0.001)
t_auth = time.perf_counter() - t1
from gridman.gui.main_window import MainWindow
w = MainWindow(runner.db, dlg.actor, runner=runner)
w.show()
done = {"tree": False, "rows": False}
w.tree_loaded.connect(lambda: done.__setitem__("tree", True))
w.residents.model.loaded.connect(lambda: done.__setitem__("rows", True))
while not all(done.values()):
    app.processEvents(); time.sleep(0.001)
app.processEvents()
t_usable = time.perf_counter() - t1
import resource
print(t_dialog, t_ready, t_auth, t_usable, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
w.close(); runner.wait()
"""


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_startup(tmp: Path, runs: int = 3) -> None:
    db = tmp / "demo.sqlite"
    shutil.copyfile(ROOT / "sample_db" / "gridman-demo.sqlite", db)
    rows: list[list[float]] = []
    bare = []
    for i in range(runs):
        r = subprocess.run([sys.executable, "-c", BARE], capture_output=True, text=True, check=True)
        bare.append(float(r.stdout.split()[0]))
        r = subprocess.run([sys.executable, "-c", FULL, str(ROOT), str(db), str(tmp / f"settings{i}")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("start-up run failed:", r.stderr[-1500:])
            return
        rows.append([float(x) for x in r.stdout.split()[:5]])
    med = statistics.median
    dialog, ready, auth, usable, peak = (list(c) for c in zip(*rows, strict=True))
    print(f"start-up (median of {runs} fresh processes; interpreter start not included):")
    print(f"  bare QApplication + empty window shown           : {med(bare) * 1000:6.0f} ms")
    print(f"  gridman sign-in dialog shown                     : {med(dialog) * 1000:6.0f} ms")
    print(f"  database open + imports warm (behind the dialog) : {med(ready) * 1000:6.0f} ms")
    print(f"  'sign in' click → usable main window             : {med(usable) * 1000:6.0f} ms   "
          f"(of which password check {med(auth) * 1000:.0f} ms; tree + residents register loaded)")
    print(f"  total if the user typed instantly                : {med([r + u for r, u in zip(ready, usable, strict=True)]) * 1000:6.0f} ms   "
          f"(peak RSS {max(peak):.0f} MB; target < 1000 ms)")


def ensure_city() -> bool:
    if CITY.exists():
        return True
    print(f"generating {CITY} (a few minutes)…", flush=True)
    CITY.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "gridman", "sample", "--scale", "city", "--out", str(CITY)],
                       cwd=ROOT)
    return r.returncode == 0 and CITY.exists()


def open_city_readonly():  # type: ignore[no-untyped-def]
    from gridman.core.db import open_database

    return open_database(f"sqlite:///file:{CITY}?mode=ro&uri=true", upgrade=False)


def bench_register(app) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from gridman.core.services.permissions import system_actor
    from gridman.gui.ops import OpRunner
    from gridman.gui.qt import QTableView
    from gridman.gui.registers.table_model import RegisterModel

    db = open_city_readonly()
    with db.session() as s:
        actor = system_actor(s)
        n = s.scalar(text("SELECT count(*) FROM residents"))
    base = rss_mb()
    runner = OpRunner(db, actor)
    view = QTableView()
    view.resize(1200, 800)
    model = RegisterModel(runner, actor, "residents")
    view.setModel(model)
    view.show()
    app.processEvents()
    painted = {"t": None}
    t0 = time.perf_counter()

    def first_rows() -> None:
        view.viewport().repaint()
        painted["t"] = time.perf_counter() - t0

    model.loaded.connect(first_rows)
    model.refresh()
    while painted["t"] is None:
        app.processEvents()
        time.sleep(0.0005)
    t_first = painted["t"]
    counted = {"t": None}
    model.counted.connect(lambda _n: counted.__setitem__("t", time.perf_counter() - t0))
    while counted["t"] is None and model.total is None:
        app.processEvents()
        time.sleep(0.001)
    t_count = counted["t"] or (time.perf_counter() - t0)
    # scroll to the bottom a few times: lazy fetches
    t1 = time.perf_counter()
    for _ in range(5):
        before = model.rowCount()
        view.scrollToBottom()
        app.processEvents()
        while model.rowCount() == before:
            app.processEvents()
            time.sleep(0.0005)
    t_fetch = (time.perf_counter() - t1) / 5
    mem_model = rss_mb()
    # peer: every resident id in memory (an id-holding model over the whole city)
    t2 = time.perf_counter()
    with db.session() as s:
        ids = list(s.scalars(text("SELECT id FROM residents ORDER BY id")))
    t_ids = time.perf_counter() - t2
    mem_ids = rss_mb()
    print(f"residents register over the city database ({n:,} residents, administrator = whole city):")
    print(f"  first rows painted       : {t_first * 1000:7.0f} ms   (target < 300 ms)")
    print(f"  total count (background) : {t_count * 1000:7.0f} ms   (shown in the status line when ready)")
    print(f"  next page while scrolling: {t_fetch * 1000:7.0f} ms   ({model.rowCount()} rows held after 5 pages)")
    print(f"  process RSS              : {mem_model:7.0f} MB   (before the register {base:.0f} MB; target < 400 MB)")
    print(f"  peer — load all {len(ids):,} ids: {t_ids * 1000:7.0f} ms, RSS {mem_ids:.0f} MB")
    view.close()
    runner.wait()
    del ids
    db.dispose()


def bench_map(app, frames: int) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    import pyqtgraph as pg
    import shapely

    from gridman.core.services import dashboard
    from gridman.core.services.permissions import system_actor
    from gridman.gui.map.view import CLASS_COLOURS, GridLayer, classify, rings_path
    from gridman.gui.qt import QBrush, QColor, QGraphicsPathItem, QPen

    db = open_city_readonly()
    with db.session() as s:
        actor = system_actor(s)
        t0 = time.perf_counter()
        grids = [g for g in dashboard.map_grids(s, actor) if g.boundary]
        fig = dashboard.grid_figures(s, actor)
        t_load = time.perf_counter() - t0
    geoms = np.asarray(shapely.from_wkb([g.boundary for g in grids]), dtype=object)
    classes = classify([fig.open_incidents.get(g.id, 0) for g in grids])
    x0, y0, x1, y1 = shapely.total_bounds(geoms)

    def frame_ms(pw, pan: bool = False) -> float:  # type: ignore[no-untyped-def]
        """Median time to render the widget; with ``pan`` the view moves a little each frame
        (as while dragging), so item transforms and the scene index are updated too."""
        pw.grab()  # warm
        times = []
        dx = (x1 - x0) / 200
        for i in range(frames):
            t = time.perf_counter()
            if pan:
                shift = dx * (i % 20 - 10)
                pw.setRange(xRange=(x0 + shift, x1 + shift), yRange=(y0, y1), padding=0.02)
                app.processEvents()
            pw.grab()
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000

    def make_plot():  # type: ignore[no-untyped-def]
        pw = pg.PlotWidget(background="w")
        pw.resize(1400, 900)
        pw.getPlotItem().hideAxis("left")
        pw.getPlotItem().hideAxis("bottom")
        pw.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.02)
        pw.show()
        app.processEvents()
        return pw

    # combined paths (MapView's GridLayer)
    pw = make_plot()
    t = time.perf_counter()
    layer = GridLayer(pw.getPlotItem())
    layer.set_classes(geoms, classes)
    t_build = time.perf_counter() - t
    app.processEvents()
    combined = frame_ms(pw)
    combined_pan = frame_ms(pw, pan=True)
    tree = shapely.STRtree(geoms)
    pts = shapely.points(np.random.default_rng(1).uniform([x0, y0], [x1, y1], size=(1000, 2)))
    t = time.perf_counter()
    for p in pts:
        tree.query(p, predicate="intersects")
    t_hit = (time.perf_counter() - t) / len(pts) * 1e6
    pw.close()
    # peer: one QGraphicsPathItem per grid
    pw2 = make_plot()
    pen = QPen(QColor("#5f6b7a"))
    pen.setCosmetic(True)
    t = time.perf_counter()
    for geom, c in zip(geoms, classes, strict=True):
        it = QGraphicsPathItem(rings_path([geom]))
        it.setPen(pen)
        it.setBrush(QBrush(QColor(CLASS_COLOURS[c])))
        pw2.getPlotItem().addItem(it)
    t_build2 = time.perf_counter() - t
    app.processEvents()
    per_item = frame_ms(pw2)
    per_item_pan = frame_ms(pw2, pan=True)
    pw2.close()
    print(f"map redraw, {len(grids):,} grids, 1400×900 frame (median of {frames} frames):")
    print(f"  combined path per colour class ({len(layer.items)} items): {combined:6.1f} ms/frame, panning "
          f"{combined_pan:6.1f} ms/frame   (build {t_build * 1000:.0f} ms; target < 30 ms)")
    print(f"  peer — one QGraphicsPathItem per grid      : {per_item:6.1f} ms/frame, panning "
          f"{per_item_pan:6.1f} ms/frame   (build {t_build2 * 1000:.0f} ms)")
    print(f"  grid + figures query {t_load * 1000:.0f} ms; STRtree hit-test {t_hit:.0f} µs per point")
    db.dispose()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-city", action="store_true")
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gridman-bench-gui-"))
    os.environ["GRIDMAN_DATA_DIR"] = str(tmp / "data")
    try:
        bench_startup(tmp)
        if args.skip_city or not ensure_city():
            return 0
        from gridman.gui.qt import QSettings

        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
        from gridman.gui.app import make_app

        app = make_app()
        bench_register(app)
        bench_map(app, args.frames)
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Map (地图) of the selected area with pyqtgraph: grid boundaries coloured by a chosen figure,
labels, buildings as points, open incidents as markers; pan/zoom; click selects a grid in the
tree; hover shows a tooltip.

Smooth with a whole city (3,262 grids): all boundaries of one colour class are ONE combined
QPainterPath (one QGraphicsPathItem per class — a handful of items instead of thousands), built
with numpy through ``pg.arrayToQPath``; hit-testing uses a shapely STRtree instead of Qt's
per-item shape tests. Geometry is decoded off the GUI thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
import shapely

from gridman.core.services import dashboard
from gridman.core.services.permissions import Actor
from gridman.gui.i18n import pick, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QBrush,
    QColor,
    QComboBox,
    QCursor,
    QGraphicsPathItem,
    QHBoxLayout,
    QLabel,
    QPainterPath,
    QPen,
    Qt,
    QToolTip,
    QVBoxLayout,
    QWidget,
    Signal,
)
from gridman.gui.views.stale import ReloadWhenVisible

# light → dark (ColorBrewer YlOrRd-ish), plus grey for "no figure"
CLASS_COLOURS = ["#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026"]
NO_DATA = "#e0e0e0"
LABEL_LIMIT = 250  # label grids only when this few are shown (a city map would be a blur of text)


@dataclass
class MapData:
    ids: list[int]
    names: list[str]
    geoms: np.ndarray  # shapely geometries (object array)
    figures: dashboard.GridFigures
    points: dict[str, list[tuple[int, float, float]]]
    centers: list[tuple[float, float]]


def load_map_data(session: Any, actor: Actor, area_id: int | None) -> MapData:
    """Worker-thread part: read grids, decode WKB, compute figures."""
    grids = [g for g in dashboard.map_grids(session, actor, area_id=area_id) if g.boundary]
    geoms = shapely.from_wkb([g.boundary for g in grids]) if grids else np.array([], dtype=object)
    centers = []
    for g, geom in zip(grids, geoms, strict=True):
        if g.center is not None:
            centers.append(g.center)
        else:
            c = geom.centroid
            centers.append((c.x, c.y))
    return MapData([g.id for g in grids], [g.name for g in grids], np.asarray(geoms, dtype=object),
                   dashboard.grid_figures(session, actor, area_id=area_id),
                   dashboard.map_points(session, actor, area_id=area_id), centers)


def rings_path(geoms: list[Any] | np.ndarray) -> QPainterPath:
    """One QPainterPath with every exterior ring of ``geoms`` (numpy → arrayToQPath)."""
    if len(geoms) == 0:
        return QPainterPath()
    rings = shapely.get_exterior_ring(shapely.get_parts(np.asarray(geoms, dtype=object)))
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    connect = np.ones(len(coords), dtype=np.int32)
    ends = np.flatnonzero(np.diff(idx)) if len(idx) else np.array([], dtype=int)
    connect[ends] = 0
    if len(connect):
        connect[-1] = 0
    return pg.arrayToQPath(coords[:, 0], coords[:, 1], connect=connect)


def classify(values: list[float], k: int = 5) -> list[int]:
    """Quantile classes 0..k-1 (equal-count bins; identical values share a class)."""
    if not values:
        return []
    arr = np.asarray(values, dtype=float)
    if np.nanmax(arr) == np.nanmin(arr):
        return [0] * len(values)
    qs = np.quantile(arr, np.linspace(0, 1, k + 1)[1:-1])
    return [int(c) for c in np.searchsorted(qs, arr, side="right")]


class GridLayer:
    """The grids of the map as a few combined path items (one per colour class)."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.items: list[QGraphicsPathItem] = []
        self.highlight = QGraphicsPathItem()
        pen = QPen(QColor("#1565c0"))
        pen.setWidthF(3)
        pen.setCosmetic(True)
        self.highlight.setPen(pen)
        self.highlight.setZValue(20)
        plot.addItem(self.highlight)

    def clear(self) -> None:
        for it in self.items:
            self.plot.removeItem(it)
        self.items = []

    def set_classes(self, geoms: np.ndarray, classes: list[int]) -> None:
        self.clear()
        pen = QPen(QColor("#5f6b7a"))
        pen.setWidthF(1)
        pen.setCosmetic(True)
        cls = np.asarray(classes, dtype=int)
        for c, colour in enumerate(CLASS_COLOURS):
            sel = geoms[cls == c] if len(cls) else []
            if len(sel) == 0:
                continue
            item = QGraphicsPathItem(rings_path(sel))
            item.setPen(pen)
            item.setBrush(QBrush(QColor(colour)))  # opaque: no alpha blending per frame
            item.setZValue(1)
            self.plot.addItem(item)
            self.items.append(item)

    def set_highlight(self, geom: Any | None) -> None:
        self.highlight.setPath(rings_path([geom]) if geom is not None else QPainterPath())


class MapView(ReloadWhenVisible, QWidget):
    grid_clicked = Signal(int)
    point_clicked = Signal(float, float)  # lon, lat of any click (the report form picks a place)
    loaded = Signal()

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.area_id: int | None = None
        self.data: MapData | None = None
        self.tree: shapely.STRtree | None = None
        self._dirty = True
        self._hover: int | None = None
        self.selected: int | None = None
        self._gen = 0
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        bar.addWidget(QLabel(tr("着色依据：")))
        self.figure = QComboBox()
        self.figure.setObjectName("figure")
        for key in dashboard.FIGURES:
            zh, en = dashboard.FIGURE_LABELS[key]
            self.figure.addItem(pick(zh, en), key)
        self.figure.currentIndexChanged.connect(lambda _i: self.recolour())
        bar.addWidget(self.figure)
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        bar.addWidget(self.legend, 1)
        self.info = QLabel()
        bar.addWidget(self.info)
        lay.addLayout(bar)
        pg.setConfigOptions(antialias=False)
        self.plot_widget = pg.PlotWidget(background="w")
        self.plot = self.plot_widget.getPlotItem()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.layer = GridLayer(self.plot)
        self.buildings = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush("#455a64"))
        self.buildings.setZValue(5)
        self.incidents = pg.ScatterPlotItem(size=9, symbol="t", pen=pg.mkPen("#b71c1c"), brush=pg.mkBrush("#ff5252"))
        self.incidents.setZValue(6)
        self.plot.addItem(self.buildings)
        self.plot.addItem(self.incidents)
        self.labels: list[pg.TextItem] = []
        lay.addWidget(self.plot_widget)
        scene = self.plot_widget.scene()
        scene.sigMouseClicked.connect(self._clicked)
        scene.sigMouseMoved.connect(self._moved)

    # --- data ------------------------------------------------------------------------------
    def set_area(self, area_id: int | None) -> None:
        if area_id == self.area_id and not self._dirty:
            return
        super().set_area(area_id)

    def refresh(self) -> None:
        self._dirty = False
        self._gen += 1
        gen, actor, area = self._gen, self.actor, self.area_id
        self.runner.run(lambda s, _t: load_map_data(s, actor, area), on_done=lambda d: self._show(gen, d),
                        label="map")

    def _show(self, gen: int, d: MapData) -> None:
        if gen != self._gen:
            return
        self.data = d
        self.tree = shapely.STRtree(d.geoms) if len(d.geoms) else None
        for t in self.labels:
            self.plot.removeItem(t)
        self.labels = []
        if len(d.ids) <= LABEL_LIMIT:
            for name, (x, y) in zip(d.names, d.centers, strict=True):
                t = pg.TextItem(name, color="#263238", anchor=(0.5, 0.5))
                t.setPos(x, y)
                t.setZValue(10)
                self.plot.addItem(t)
                self.labels.append(t)
        b = d.points.get("buildings", [])
        self.buildings.setData([p[1] for p in b], [p[2] for p in b])
        i = d.points.get("incidents", [])
        self.incidents.setData([p[1] for p in i], [p[2] for p in i])
        self.recolour()
        self.select_grid(self.selected)
        if len(d.geoms):
            x0, y0, x1, y1 = shapely.total_bounds(d.geoms)
            lat = (y0 + y1) / 2
            self.plot.getViewBox().setAspectLocked(True, ratio=1 / max(math.cos(math.radians(lat)), 0.1))
            self.plot.getViewBox().setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.03)
        self.info.setText(tr("网格 {g} 个　楼栋 {b} 栋　未办结事件 {i} 件").format(g=len(d.ids), b=len(b), i=len(i)))
        self.loaded.emit()

    def values(self) -> list[float]:
        if self.data is None:
            return []
        key = self.figure.currentData()
        return [dashboard.figure_value(self.data.figures, key, g) for g in self.data.ids]

    def recolour(self) -> None:
        if self.data is None:
            return
        vals = self.values()
        classes = classify(vals)
        self.layer.set_classes(self.data.geoms, classes)
        if len(self.labels) == len(classes):
            for t, c in zip(self.labels, classes, strict=True):
                t.setColor("#ffffff" if c >= 3 else "#263238")  # readable on the dark classes
        if vals:
            arr = np.asarray(vals)
            parts = []
            for c, colour in enumerate(CLASS_COLOURS):
                sel = arr[np.asarray(classes) == c]
                if len(sel):
                    parts.append(f"<span style='background:{colour}'>&nbsp;&nbsp;&nbsp;&nbsp;</span> "
                                 f"{sel.min():.0f}–{sel.max():.0f}")
            self.legend.setText("　".join(parts))

    # --- interaction -----------------------------------------------------------------------
    def grid_at(self, x: float, y: float) -> int | None:
        """The grid containing the map point (lon, lat), via the STRtree."""
        if self.tree is None or self.data is None:
            return None
        hits = self.tree.query(shapely.Point(x, y), predicate="intersects")
        return self.data.ids[int(hits[0])] if len(hits) else None

    def set_selected(self, grid_id: int | None) -> None:
        self.selected = grid_id
        self.select_grid(grid_id)

    def select_grid(self, grid_id: int | None) -> None:
        if self.data is None or grid_id not in self.data.ids:
            self.layer.set_highlight(None)
            return
        self.layer.set_highlight(self.data.geoms[self.data.ids.index(grid_id)])

    def _clicked(self, ev) -> None:  # type: ignore[no-untyped-def]
        vb = self.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        p = vb.mapSceneToView(ev.scenePos())
        self.point_clicked.emit(float(p.x()), float(p.y()))
        gid = self.grid_at(p.x(), p.y())
        if gid is not None:
            self.set_selected(gid)
            self.grid_clicked.emit(gid)

    def _moved(self, pos) -> None:  # type: ignore[no-untyped-def]
        vb = self.plot.getViewBox()
        if self.data is None or not vb.sceneBoundingRect().contains(pos):
            return
        p = vb.mapSceneToView(pos)
        gid = self.grid_at(p.x(), p.y())
        if gid == self._hover:
            return
        self._hover = gid
        if gid is None:
            QToolTip.hideText()
            return
        self.plot_widget.setToolTip(self.tooltip(gid))
        QToolTip.showText(QCursor.pos(), self.tooltip(gid), self.plot_widget)

    def tooltip(self, gid: int) -> str:
        assert self.data is not None
        f = self.data.figures
        name = self.data.names[self.data.ids.index(gid)]
        return tr("{name}\n户数 {hh}　人数 {res}\n未办结事件 {open}　超期 {over}\n老年人占比 {old:.0f}%").format(
            name=name, hh=f.households.get(gid, 0), res=f.residents.get(gid, 0), open=f.open_incidents.get(gid, 0),
            over=f.overdue.get(gid, 0), old=f.elderly_share(gid))

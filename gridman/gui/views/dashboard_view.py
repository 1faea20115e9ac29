"""统计看板 for the selected area (pyqtgraph): incidents per month by level, closure / on-time /
satisfaction rates (as defined once in gridman.core.services.mediation.figures: each month's
reports as they stood at the month's end; the chart's tooltip says so), incidents by category, population pyramid, tag counts, warden workload.
Clicking a bar opens the matching list (``open_list``). Figures come from the Qt-free
gridman.core.services.dashboard, computed off the GUI thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg

from gridman.core import enums
from gridman.core.services import dashboard
from gridman.core.services.mediation import figures as mf
from gridman.core.services.permissions import Actor
from gridman.gui.i18n import language, pick, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import QFont, QFontMetrics, QLabel, QVBoxLayout, QWidget, Signal
from gridman.gui.views.stale import ReloadWhenVisible

LEVEL_COLOURS = {"grid": "#4e79a7", "community": "#f28e2b", "street": "#e15759"}
RATE_COLOURS = {"closure": "#4e79a7", "on_time": "#59a14f", "satisfaction": "#edc948"}
RATE_KEYS = {"closure": "closure_rate", "on_time": "on_time_rate", "satisfaction": "satisfaction_rate"}


@dataclass
class DashboardData:
    per_month: dashboard.MonthSeries
    rates: dashboard.MonthSeries
    categories: list[tuple[str, int]]
    pyramid: dashboard.Pyramid
    tags: list[tuple[str, str, str, int]]
    workload: list[dashboard.Workload]


def load_dashboard(session: Any, actor: Actor, area_id: int | None) -> DashboardData:
    return DashboardData(
        dashboard.incidents_per_month(session, actor, area_id=area_id),
        dashboard.rates_per_month(session, actor, area_id=area_id),
        dashboard.incidents_by_category(session, actor, area_id=area_id),
        dashboard.population_pyramid(session, actor, area_id=area_id),
        dashboard.tag_counts(session, actor, area_id=area_id),
        dashboard.warden_workload(session, actor, area_id=area_id, limit=12),
    )


class DashboardView(ReloadWhenVisible, QWidget):
    open_list = Signal(str, object)  # kind, dict of filters ({"category": …} / {"tag": …} / {"age": (lo, hi)})
    loaded = Signal()

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.area_id: int | None = None
        self.data: DashboardData | None = None
        self._dirty = True
        self._gen = 0
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.hint = QLabel(tr("点击柱形可打开对应的名单。"))
        self.hint.setStyleSheet("color: #666;")
        lay.addWidget(self.hint)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("w")
        lay.addWidget(self.glw)
        rates = [mf.LABELS[k] for k in RATE_KEYS.values()]
        rates_title = pick("、".join(zh for zh, _ in rates) + "（%）", ", ".join(en for _, en in rates) + " (%)")
        titles = [tr("每月事件数（按层级）"), rates_title, tr("事件类别"),
                  tr("人口金字塔（男 | 女）"), tr("人员标签"), tr("网格员工作量（未办结事件）")]
        self.plots: list[pg.PlotItem] = []
        for i, t in enumerate(titles):
            p = self.glw.addPlot(row=i // 3, col=i % 3)
            p.setTitle(t, size="11pt", color="#263238")
            p.setMenuEnabled(False)
            p.hideButtons()
            p.setMouseEnabled(x=False, y=False)
            self.plots.append(p)
        self.plots[1].setToolTip(pick(*mf.RULES["cohort"]))  # the rates' cohort rule, in words
        self._cats: list[str] = []
        self._tags: list[str] = []
        self._bands: list[str] = []
        self.glw.scene().sigMouseClicked.connect(self._clicked)

    def refresh(self) -> None:
        self._dirty = False
        self._gen += 1
        gen, actor, area = self._gen, self.actor, self.area_id
        self.runner.run(lambda s, _t: load_dashboard(s, actor, area), on_done=lambda d: self._show(gen, d),
                        label="dashboard")

    # --- drawing ---------------------------------------------------------------------------
    @staticmethod
    def _font() -> QFont:
        f = QFont()
        f.setPointSize(8)
        return f

    def _show(self, gen: int, d: DashboardData) -> None:
        if gen != self._gen:
            return
        self.data = d
        lang = language()
        for p in self.plots:
            p.clear()
            if p.legend is not None:
                p.legend.scene().removeItem(p.legend) if p.legend.scene() else None
                p.legend = None
        # 1 incidents per month by level (stacked bars)
        p = self.plots[0]
        p.addLegend(offset=(5, 5), colCount=3, labelTextSize="8pt", labelTextColor="#263238", brush=pg.mkBrush(255, 255, 255, 220))
        x = np.arange(len(d.per_month.months))
        base = np.zeros(len(x))
        for lv in ("grid", "community", "street"):
            ys = np.asarray(d.per_month.series.get(lv, [0] * len(x)))
            p.addItem(pg.BarGraphItem(x=x, height=ys, y0=base, width=0.7, brush=LEVEL_COLOURS[lv],
                                      name=enums.label(lv, lang, enums.MediationLevel)))
            base = base + ys
        p.setYRange(0, max(float(base.max()) if len(base) else 1.0, 1.0) * 1.25)
        self._month_ticks(p, d.per_month.months)
        # 2 rates
        p = self.plots[1]
        p.addLegend(offset=(5, -5), labelTextSize="8pt", labelTextColor="#263238", brush=pg.mkBrush(255, 255, 255, 220))
        names = {key: pick(*mf.LABELS[attr]) for key, attr in RATE_KEYS.items()}
        for key, ys in d.rates.series.items():
            p.plot(x, ys, pen=pg.mkPen(RATE_COLOURS[key], width=2), symbol="o", symbolSize=5,
                   symbolBrush=RATE_COLOURS[key], name=names[key])
        p.setYRange(0, 105)
        self._month_ticks(p, d.rates.months)
        # 3 categories (horizontal bars)
        self._cats = [c for c, _n in d.categories]
        self._hbars(self.plots[2], [enums.label(c, lang, enums.IncidentCategory) for c, _ in d.categories],
                    [n for _c, n in d.categories], "#76b7b2")
        # 4 pyramid
        p = self.plots[3]
        self._bands = d.pyramid.bands
        y = np.arange(len(d.pyramid.bands))
        p.addItem(pg.BarGraphItem(x0=-np.asarray(d.pyramid.male), x1=np.zeros(len(y)), y=y, height=0.8,
                                  brush="#4e79a7"))
        p.addItem(pg.BarGraphItem(x0=np.zeros(len(y)), x1=np.asarray(d.pyramid.female), y=y, height=0.8,
                                  brush="#e15759"))
        ax = p.getAxis("left")
        ax.setTicks([[(i, b if i % 2 == 0 else "") for i, b in enumerate(d.pyramid.bands)]])
        ax.setStyle(tickFont=self._font())
        m = max([*d.pyramid.male, *d.pyramid.female, 1])
        p.setXRange(-m * 1.05, m * 1.05)
        bx = p.getAxis("bottom")
        step = _nice_step(m)
        bx.setTicks([[(v, str(abs(int(v)))) for v in np.arange(-step * (m // step), m + 1, step)]])
        bx.setStyle(tickFont=self._font())
        # 5 tags
        self._tags = [c for c, *_r in d.tags]
        self._hbars(self.plots[4], [pick(zh, en) for _c, zh, en, _n in d.tags], [n for *_r, n in d.tags], "#b07aa1")
        # 6 warden workload
        wl = d.workload[:10]
        self._hbars(self.plots[5], [w.name for w in wl], [w.open_incidents for w in wl], "#ff9da7")
        self.loaded.emit()

    def _month_ticks(self, p: pg.PlotItem, months: list[str]) -> None:
        ax = p.getAxis("bottom")
        ax.setTicks([[(i, m[2:].replace("-", "/") if i % 2 == 0 else "") for i, m in enumerate(months)]])
        ax.setStyle(tickFont=self._font())
        p.getAxis("left").setStyle(tickFont=self._font())

    def _hbars(self, p: pg.PlotItem, labels: list[str], values: list[int], colour: str) -> None:
        y = np.arange(len(values))
        if len(values):
            p.addItem(pg.BarGraphItem(x0=np.zeros(len(y)), x1=np.asarray(values, dtype=float), y=y, height=0.7,
                                      brush=colour))
        ax = p.getAxis("left")
        ax.setTicks([[(i, t) for i, t in enumerate(labels)]])
        ax.setStyle(tickFont=self._font(), textFillLimits=[(0, 1.0)], autoExpandTextSpace=True)
        fm = QFontMetrics(self._font())
        ax.setWidth(min(max([fm.horizontalAdvance(t) for t in labels] + [40]) + 16, 170))
        p.getAxis("bottom").setStyle(tickFont=self._font())
        p.setYRange(-0.6, max(len(values), 1) - 0.4)
        p.setXRange(0, max([*values, 1]) * 1.08)
        p.invertY(True)

    # --- click a bar → open the list --------------------------------------------------------
    def bar_at(self, plot_index: int, x: float, y: float) -> tuple[str, dict[str, Any]] | None:
        i = int(round(y))
        if plot_index == 2 and 0 <= i < len(self._cats):
            return "incidents", {"category": self._cats[i]}
        if plot_index == 4 and 0 <= i < len(self._tags):
            return "residents", {"tag": self._tags[i]}
        if plot_index == 3 and 0 <= i < len(self._bands):
            band = self._bands[i]
            lo, _, hi = band.partition("-")
            return "residents", {"age": (int(lo.rstrip("+")), int(hi) if hi else None)}
        return None

    def _clicked(self, ev) -> None:  # type: ignore[no-untyped-def]
        for i, p in enumerate(self.plots):
            vb = p.getViewBox()
            if vb.sceneBoundingRect().contains(ev.scenePos()):
                pt = vb.mapSceneToView(ev.scenePos())
                hit = self.bar_at(i, pt.x(), pt.y())
                if hit is not None:
                    self.open_list.emit(*hit)
                return


def _nice_step(m: float) -> int:
    for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000):
        if m / s <= 4:
            return s
    return 200_000

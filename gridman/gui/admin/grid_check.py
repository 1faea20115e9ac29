"""网格检查: the grid check page over ``geometry.check_subtree`` — the problems of the selected
area's subtree, one row per problem — and the button that opens the boundary import."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gridman.core import enums
from gridman.core.services.permissions import Actor
from gridman.gui.admin.boundary_import import BoundaryImportDialog
from gridman.gui.admin.tables import plain_table as _table
from gridman.gui.errors import describe
from gridman.gui.i18n import N_, language, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:  # geometry pulls in numpy, shapely and pyproj: imported when first used
    from gridman.core.services import geometry

ISSUE_NAMES = {"invalid": N_("边界无效"), "overlap": N_("相互重叠"), "gap": N_("覆盖缺口"),
               "outside_parent": N_("超出上级范围"), "sliver": N_("细碎面"), "no_boundary": N_("无边界"),
               "no_warden": N_("无网格员"), "over_limit": N_("户数超标")}


class GridCheckView(QWidget):
    """网格检查: the problems of the selected area's subtree (overlaps, gaps, invalid boundaries,
    grids without a warden or over the household limit), one row per problem."""

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.area_id: int | None = None
        self.setObjectName("gridCheck")
        lay = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.run_button = QPushButton(tr("检查所选区域"))
        self.run_button.setObjectName("runGridCheck")
        self.run_button.clicked.connect(self.run_check)
        self.import_button = QPushButton(tr("导入边界…"))
        self.import_button.clicked.connect(self.open_import)
        self.import_button.setEnabled(actor.is_admin)
        self.summary = QLabel(tr("选择左侧区域后点击“检查所选区域”。"))
        self.summary.setWordWrap(True)
        bar.addWidget(self.run_button)
        bar.addWidget(self.import_button)
        bar.addWidget(self.summary, 1)
        lay.addLayout(bar)
        self.table = _table([tr("问题"), tr("区划"), tr("编码"), tr("层级"), tr("说明")], "checkTable")
        lay.addWidget(self.table, 1)
        self.report: geometry.CheckReport | None = None

    def set_area(self, area_id: int | None) -> None:
        self.area_id = area_id

    def mark_dirty(self) -> None:
        pass

    def open_import(self) -> BoundaryImportDialog:
        d = BoundaryImportDialog(self.runner, self.actor, self)
        self.import_dialog = d
        d.open()
        return d

    def run_check(self) -> None:
        actor, aid = self.actor, self.area_id or self.actor.area_id

        def job(s, _t):  # type: ignore[no-untyped-def]
            from gridman.core.services import geometry

            return geometry.check_subtree(s, actor, area_id=aid or geometry.first_root_area_id(s))

        self.run_button.setEnabled(False)
        self.summary.setText(tr("正在检查…"))
        self.runner.run(job, on_done=self._done, on_error=self._failed, label="grid-check")

    def _failed(self, exc: BaseException) -> None:
        self.run_button.setEnabled(True)
        self.summary.setText(describe(exc)[0])

    def _done(self, r: geometry.CheckReport) -> None:
        self.run_button.setEnabled(True)
        self.report = r
        lang = language()
        counts = "　".join(f"{tr(ISSUE_NAMES.get(k, k))} {n}" for k, n in r.counts.items() if n)
        self.summary.setText(tr("检查了 {a} 个区划（{g} 个网格），发现 {n} 个问题。").format(
            a=r.areas_checked, g=r.grids_checked, n=len(r.issues)) + ("　" + counts if counts else ""))
        self.table.setRowCount(len(r.issues))
        for i, iss in enumerate(r.issues):
            cells = (tr(ISSUE_NAMES.get(iss.kind, iss.kind)), iss.name, iss.code,
                     enums.label(iss.level, lang, enums.AreaLevel), iss.detail_en if lang == "en" else iss.detail)
            for j, t in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(t))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)


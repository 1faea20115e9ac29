"""边界导入: the boundary import dialog over ``geometry.import_geojson`` — a GeoJSON file, the
level of its features, the parent area and the coordinate system; a preview (dry run) first
shows what would change. The import runs on the op runner with its task: a progress bar, and
Cancel (beside it, while the job runs) stops it with nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gridman.core import enums
from gridman.core.services import areas
from gridman.core.services.areas import AreaChoice
from gridman.core.services.permissions import Actor
from gridman.gui.errors import describe
from gridman.gui.i18n import N_, language, tr
from gridman.gui.job_progress import JobMessage, JobProgress
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
    Signal,
)

if TYPE_CHECKING:  # geometry pulls in numpy, shapely and pyproj: imported when first used
    from gridman.core.services import geometry

CRS_NAMES = {"wgs84": N_("WGS84（GPS）"), "cgcs2000": N_("CGCS2000（国家大地坐标系）"), "gcj02": N_("GCJ-02（国测局/高德/腾讯）")}


class BoundaryImportDialog(QDialog):
    """边界导入: a GeoJSON file, the level of its features, the parent area and the coordinate
    system; a dry run first shows what would change."""

    imported = Signal(object)

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.setObjectName("boundaryImport")
        self.setWindowTitle(tr("导入边界"))
        self.setMinimumWidth(600)
        form = QFormLayout(self)
        self.file = QLineEdit()
        browse = QPushButton(tr("浏览…"))
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.file, 1)
        row.addWidget(browse)
        self.level = QComboBox()
        self.level.addItem(tr("按文件中的 level 属性"), None)
        for lv in enums.AreaLevel:
            self.level.addItem(enums.label(lv, language()), lv.value)
        self.parent_area = QComboBox()
        self.parent_area.addItem(tr("按编码自动确定"), None)
        self.crs = QComboBox()
        self.crs.setEditable(True)  # any EPSG code can be typed (EPSG:4548: CGCS2000 Gauss–Krüger 117°E)
        self.crs.addItem(tr("按文件声明（如 .prj），否则 WGS-84"), None)
        for c in CRS_NAMES:  # the keys of geometry.CRS_CHOICES (a test checks)
            self.crs.addItem(tr(CRS_NAMES[c]), c)
        self.crs.setToolTip(tr("也可输入 EPSG 代码，如 EPSG:4548"))
        form.addRow(tr("边界文件"), row)
        form.addRow(tr("区划层级"), self.level)
        form.addRow(tr("上级区划"), self.parent_area)
        form.addRow(tr("坐标系"), self.crs)
        self.message = JobMessage()
        self.message.setObjectName("boundaryMessage")
        self.import_job = JobProgress("cancelBoundaryImport", tr("取消导入"), label=self.message, messages=True)
        form.addRow(self.import_job)
        form.addRow(self.message)
        bb = QDialogButtonBox()
        self.check_button = bb.addButton(tr("预览"), QDialogButtonBox.ButtonRole.ActionRole)
        self.import_button = bb.addButton(tr("导入"), QDialogButtonBox.ButtonRole.AcceptRole)
        close = bb.addButton(tr("关闭"), QDialogButtonBox.ButtonRole.RejectRole)
        self.check_button.clicked.connect(lambda: self.run(dry_run=True))
        self.import_button.clicked.connect(lambda: self.run(dry_run=False))
        close.clicked.connect(self.reject)
        form.addRow(bb)

        runner.run(lambda s, _t: areas.choices(s, actor, levels=("city", "district", "street", "community")),
                   on_done=self._areas, label="boundary-areas")

    def _areas(self, choices: list[AreaChoice]) -> None:
        for a in choices:
            self.parent_area.addItem(a.label(language()), a.id)

    def _browse(self) -> None:
        from gridman.core.services.geometry.boundary_files import FILE_FILTER

        fn, _ = QFileDialog.getOpenFileName(self, tr("选择边界文件"), "",
                                            tr("边界文件") + f" ({FILE_FILTER})")
        if fn:
            self.file.setText(fn)

    def _running(self, on: bool) -> None:
        self.check_button.setEnabled(not on)
        self.import_button.setEnabled(not on)
        if not on:
            self.import_job.stop()

    def run(self, *, dry_run: bool) -> None:
        actor, path = self.actor, Path(self.file.text().strip())
        level, parent_id = self.level.currentData(), self.parent_area.currentData()
        idx, typed = self.crs.currentIndex(), self.crs.currentText().strip()
        crs = self.crs.itemData(idx) if idx >= 0 and self.crs.itemText(idx) == typed else typed

        def job(s, task):  # type: ignore[no-untyped-def]
            from gridman.core.services import geometry

            f = geometry.read_boundaries(path)
            return geometry.import_geojson(s, actor, data=f.data, level=level, parent_id=parent_id,
                                           crs=crs or f.crs or "wgs84", source=path.name, dry_run=dry_run, task=task)

        self.message.setText(tr("正在处理…"))
        self._running(True)
        # cancelled (the job stops at its next feature, nothing written): said like an error
        self.import_job.start(self.runner.run(job, mode="write", on_done=self._done, on_error=self._failed,
                                              on_cancelled=self._failed, on_progress=self.import_job.progressed,
                                              label="boundary-import"))

    def _failed(self, exc: BaseException) -> None:
        self._running(False)
        self.message.setText(describe(exc)[0])

    def _done(self, r: geometry.ImportResult) -> None:
        self._running(False)
        self.import_result = r
        head = tr("预览（未写入）：") if r.dry_run else tr("已导入：")
        text = head + tr("要素 {n} 个，新建 {c}，更新 {u}，无变化 {s}，跳过 {k}，问题 {p} 个。").format(
            n=r.features, c=len(r.created), u=len(r.updated), s=len(r.unchanged), k=len(r.skipped), p=len(r.problems))
        lang = language()
        for p in r.problems[:10]:
            text += "\n" + tr("第 {i} 个要素 {code}：{reason}").format(i=p.index, code=p.code or "",
                                                                   reason=p.reason_en if lang == "en" else p.reason)
        self.message.setText(text)
        if not r.dry_run:
            self.imported.emit(r)

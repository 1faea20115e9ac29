"""Administration pages over the mediation and geometry services: the time-limit policy editor
(办理时限) with the holiday calendar, boundary import (GeoJSON) and the grid check report
(网格检查). Each edit goes through the service (``time_limits.set_policy``/``set_holiday``,
``geometry.import_geojson``, ``geometry.check_subtree``) on the op runner.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridman.core import enums
from gridman.core.services import time_limits
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.errors import describe
from gridman.gui.i18n import N_, language, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    Signal,
)

if TYPE_CHECKING:  # geometry pulls in numpy, shapely and pyproj: imported when first used
    from gridman.core.services import geometry

LEVEL_NAMES = {"grid": N_("网格"), "community": N_("社区"), "street": N_("街道"), "case": N_("全案")}
ISSUE_NAMES = {"invalid": N_("边界无效"), "overlap": N_("相互重叠"), "gap": N_("覆盖缺口"),
               "outside_parent": N_("超出上级范围"), "sliver": N_("细碎面"), "no_boundary": N_("无边界"),
               "no_warden": N_("无网格员"), "over_limit": N_("户数超标")}
CRS_NAMES = {"wgs84": N_("WGS84（GPS）"), "cgcs2000": N_("CGCS2000（国家大地坐标系）"), "gcj02": N_("GCJ-02（国测局/高德/腾讯）")}


def _table(headers: list[str], name: str) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setObjectName(name)
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.horizontalHeader().setStretchLastSection(True)
    return t


class PolicyEditor(QWidget):
    """办理时限: the limit per level and category (days, calendar or working days); holidays."""

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.setObjectName("policyEditor")
        lay = QHBoxLayout(self)
        left = QVBoxLayout()
        self.policies = _table([tr("层级"), tr("事件类别"), tr("时限（天）"), tr("计算方式")], "policyTable")
        self.policies.itemSelectionChanged.connect(self._picked)
        left.addWidget(self.policies, 1)
        form = QFormLayout()
        self.level = QComboBox()
        for lv in time_limits.POLICY_LEVELS:
            self.level.addItem(tr(LEVEL_NAMES[lv]), lv)
        self.category = QComboBox()
        self.category.addItem(tr("所有类别（默认）"), None)
        for c in enums.IncidentCategory:
            self.category.addItem(enums.label(c, language()), c.value)
        self.days = QSpinBox()
        self.days.setRange(1, 365)
        self.days.setSuffix(tr(" 天"))
        self.working = QCheckBox(tr("按工作日计算（跳过周末和法定节假日）"))
        save = QPushButton(tr("保存时限"))
        save.setObjectName("savePolicy")
        save.clicked.connect(self.save_policy)
        form.addRow(tr("层级"), self.level)
        form.addRow(tr("事件类别"), self.category)
        form.addRow(tr("时限"), self.days)
        form.addRow("", self.working)
        form.addRow("", save)
        left.addLayout(form)
        lay.addLayout(left, 3)
        right = QVBoxLayout()
        self.holidays = _table([tr("日期"), tr("类型"), tr("名称")], "holidayTable")
        right.addWidget(self.holidays, 1)
        hform = QFormLayout()
        self.h_day = QLineEdit()
        self.h_day.setPlaceholderText(tr("例如 2026-10-01"))
        self.h_workday = QCheckBox(tr("调休上班日"))
        self.h_name = QLineEdit()
        hsave = QPushButton(tr("保存节假日"))
        hsave.setObjectName("saveHoliday")
        hsave.clicked.connect(self.save_holiday)
        hform.addRow(tr("日期"), self.h_day)
        hform.addRow("", self.h_workday)
        hform.addRow(tr("名称"), self.h_name)
        hform.addRow("", hsave)
        right.addLayout(hform)
        lay.addLayout(right, 2)
        self.message = QLabel()
        self.message.setWordWrap(True)
        left.addWidget(self.message)
        enabled = actor.can(Perm.MANAGE_POLICY)
        for w in (save, hsave):
            w.setEnabled(enabled)
        self.rows: list[time_limits.Limit] = []
        self.refresh()

    def refresh(self) -> None:
        self.runner.run(lambda s, _t: (time_limits.list_policies(s), time_limits.list_holidays(s)),
                        on_done=self._loaded, label="policies")

    def mark_dirty(self) -> None:
        self.refresh()

    def _loaded(self, result: tuple[list[time_limits.Limit], list[tuple[date, bool, str | None]]]) -> None:
        rows, hols = result
        self.rows = rows
        lang = language()
        self.policies.setRowCount(len(rows))
        for i, r in enumerate(rows):
            cells = (tr(LEVEL_NAMES.get(r.level, r.level)),
                     enums.label(r.category, lang, enums.IncidentCategory) if r.category else tr("所有类别（默认）"),
                     str(r.days), tr("工作日") if r.working_days else tr("自然日"))
            for j, t in enumerate(cells):
                self.policies.setItem(i, j, QTableWidgetItem(t))
        self.policies.resizeColumnsToContents()
        if rows and not self.policies.selectionModel().hasSelection():
            self.policies.selectRow(0)
        self.holidays.setRowCount(len(hols))
        for i, (d, wd, n) in enumerate(hols):
            for j, t in enumerate((d.isoformat(), tr("调休上班") if wd else tr("放假"), n or "")):
                self.holidays.setItem(i, j, QTableWidgetItem(t))
        self.holidays.resizeColumnsToContents()

    def _picked(self) -> None:
        rows = self.policies.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.rows):
            return
        r = self.rows[rows[0].row()]
        self.level.setCurrentIndex(max(self.level.findData(r.level), 0))
        self.category.setCurrentIndex(max(self.category.findData(r.category), 0))
        self.days.setValue(r.days)
        self.working.setChecked(r.working_days)

    def save_policy(self) -> None:
        actor = self.actor
        kw = {"level": self.level.currentData(), "category": self.category.currentData(), "days": self.days.value(),
              "working_days": self.working.isChecked()}
        self.runner.run(lambda s, _t: time_limits.set_policy(s, actor, **kw), mode="write", on_done=self._saved,
                        on_error=lambda e: self.message.setText(describe(e)[0]), label="set-policy")

    def save_holiday(self) -> None:
        actor = self.actor
        try:
            day = date.fromisoformat(self.h_day.text().strip())
        except ValueError:
            self.message.setText(tr("日期格式应为 年-月-日，例如 2026-10-01"))
            return
        kw = {"day": day, "is_workday": self.h_workday.isChecked(), "name": self.h_name.text().strip() or None}
        self.runner.run(lambda s, _t: time_limits.set_holiday(s, actor, **kw), mode="write", on_done=self._saved,
                        on_error=lambda e: self.message.setText(describe(e)[0]), label="set-holiday")

    def _saved(self, _r: Any) -> None:
        self.message.setText(tr("已保存。新的时限从案件下一次进入该层级时起适用。"))
        self.runner.changed.emit("policies", None)
        self.refresh()


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
        for c in CRS_NAMES:  # the keys of geometry.CRS_CHOICES (a test checks)
            self.crs.addItem(tr(CRS_NAMES[c]), c)
        form.addRow(tr("GeoJSON 文件"), row)
        form.addRow(tr("区划层级"), self.level)
        form.addRow(tr("上级区划"), self.parent_area)
        form.addRow(tr("坐标系"), self.crs)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("boundaryMessage")
        form.addRow(self.message)
        bb = QDialogButtonBox()
        self.check_button = bb.addButton(tr("预览"), QDialogButtonBox.ButtonRole.ActionRole)
        self.import_button = bb.addButton(tr("导入"), QDialogButtonBox.ButtonRole.AcceptRole)
        close = bb.addButton(tr("关闭"), QDialogButtonBox.ButtonRole.RejectRole)
        self.check_button.clicked.connect(lambda: self.run(dry_run=True))
        self.import_button.clicked.connect(lambda: self.run(dry_run=False))
        close.clicked.connect(self.reject)
        form.addRow(bb)

        def job(s, _t):  # type: ignore[no-untyped-def]
            from gridman.core.services.registers import area_choices

            return area_choices(s, levels=("city", "district", "street", "community"))

        runner.run(job, on_done=self._areas, label="boundary-areas")

    def _areas(self, areas: list[tuple[int, str, str]]) -> None:
        for i, n, lv in areas:
            self.parent_area.addItem(f"{n}（{enums.label(lv, language(), enums.AreaLevel)}）", i)

    def _browse(self) -> None:
        fn, _ = QFileDialog.getOpenFileName(self, tr("选择 GeoJSON 文件"), "", tr("GeoJSON (*.geojson *.json)"))
        if fn:
            self.file.setText(fn)

    def run(self, *, dry_run: bool) -> None:
        actor, path = self.actor, Path(self.file.text().strip())
        level, parent_id, crs = self.level.currentData(), self.parent_area.currentData(), self.crs.currentData()

        def job(s, _t):  # type: ignore[no-untyped-def]
            from gridman.core.models import Area
            from gridman.core.services import geometry

            data = geometry.read_geojson(path)
            parent = s.get(Area, parent_id) if parent_id else None
            return geometry.import_geojson(s, actor, data=data, level=level, parent=parent, crs=crs,
                                           source=path.name, dry_run=dry_run)

        self.message.setText(tr("正在处理…"))
        self.runner.run(job, mode="write", on_done=self._done, on_error=lambda e: self.message.setText(describe(e)[0]),
                        label="boundary-import")

    def _done(self, r: geometry.ImportResult) -> None:
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
            self.runner.changed.emit("areas", None)
            self.imported.emit(r)


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
            from sqlalchemy import select

            from gridman.core.models import Area
            from gridman.core.services import geometry

            area = s.get(Area, aid) if aid else s.scalar(select(Area).where(Area.parent_id.is_(None)))
            return geometry.check_subtree(s, actor, area=area)

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


def admin_tabs(runner: OpRunner, actor: Actor) -> tuple[QTabWidget, PolicyEditor | None, GridCheckView]:
    """The extra administration tabs (the admin view shows them under its users and backup)."""
    tabs = QTabWidget()
    policy = None
    if actor.can(Perm.MANAGE_POLICY):
        policy = PolicyEditor(runner, actor)
        tabs.addTab(policy, tr("办理时限与节假日"))
    check = GridCheckView(runner, actor)
    tabs.addTab(check, tr("网格边界检查"))
    return tabs, policy, check

"""Export dialogs of the 导入导出 page: a list of the selected area with the filters the user set,
and the monthly report (月报) of an area. The work runs on the op runner.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from gridman.core import enums, fields
from gridman.core.services import areas, export, registers
from gridman.core.services.monthly_report import REPORT_LEVELS, monthly_report
from gridman.core.services.permissions import Actor
from gridman.gui.errors import describe
from gridman.gui.i18n import N_, language, pick, tr
from gridman.gui.job_progress import JobMessage, JobProgress
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
    Signal,
)


def list_kinds() -> list[str]:
    """The exportable lists (the catalogue's registers with an export view), importable ones first."""
    return sorted(export.LISTS, key=lambda k: not fields.get(k).importable)


def list_title(kind: str) -> str:
    r = fields.get(kind)
    return pick(r.ledger, r.en)


FILTER_NAMES = {"population_type": N_("人口类型"), "status": N_("状态"), "tag": N_("标签"), "category": N_("类别"),
                "level": N_("层级")}
FILTER_ENUMS: dict[str, Any] = {"population_type": "PopulationType", "category": "IncidentCategory", "level": "MediationLevel"}


def export_filters(kind: str, f: registers.Filters) -> dict[str, Any]:
    """The register view's filters in the terms of ``export.export_list`` (those it supports)."""
    out: dict[str, Any] = {}
    if kind == "residents":
        if f.population_type:
            out["population_type"] = f.population_type
        if f.status:
            out["status"] = f.status
        if f.tags:
            out["tag"] = f.tags[0]
    elif kind == "incidents":
        for k in ("category", "level"):
            if getattr(f, k):
                out[k] = getattr(f, k)
        if f.status and f.status != "open":
            out["status"] = f.status
    return out


class ExportDialog(QDialog):
    """导出 a list of the selected area with the filters shown, to an .xlsx the user names."""

    exported = Signal(object)

    def __init__(self, runner: OpRunner, actor: Actor, *, kind: str, area_id: int | None,
                 filters: dict[str, Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.area_id = runner, actor, area_id
        self.filters = dict(filters or {})
        self.setObjectName("exportDialog")
        self.setWindowTitle(tr("导出列表"))
        self.setMinimumWidth(560)
        form = QFormLayout(self)
        self.kind = QComboBox()
        for k in list_kinds():
            self.kind.addItem(list_title(k), k)
        self.kind.setCurrentIndex(max(self.kind.findData(kind), 0))
        self.area_label = QLabel()
        self._kind0 = kind
        ftxt = "；".join(f"{tr(FILTER_NAMES.get(k, k))}：{self._value_text(k, v)}" for k, v in self.filters.items())
        self.filter_label = QLabel(ftxt or tr("无"))
        self.filter_label.setWordWrap(True)
        self.out = QLineEdit()
        browse = QPushButton(tr("另存为…"))
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.out, 1)
        row.addWidget(browse)
        form.addRow(tr("列表"), self.kind)
        form.addRow(tr("区域"), self.area_label)
        form.addRow(tr("筛选条件"), self.filter_label)
        form.addRow(tr("保存到"), row)
        self.message = JobMessage()
        form.addRow(self.message)
        self.export_job = JobProgress("cancelExport", label=self.message)
        form.addRow(self.export_job)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Close)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(tr("导出"))
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setText(tr("关闭"))
        self.buttons.accepted.connect(self.run_export)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.kind.currentIndexChanged.connect(lambda _i: self._default_name())
        self.area_code: str | None = None
        aid = area_id

        runner.run(lambda s, _t: areas.choice(s, aid), on_done=self._area, label="export-area")
        self._default_name()

    @staticmethod
    def _value_text(key: str, value: Any) -> str:
        names = FILTER_ENUMS.get(key, ("ResidentStatus", "IncidentStatus") if key == "status" else ())
        for name in (names,) if isinstance(names, str) else names:
            text = enums.label(value, language(), getattr(enums, name))
            if text != str(value):
                return text
        return str(value)

    def _area(self, a: areas.AreaChoice | None) -> None:
        self.area_code = a.code if a is not None else None
        self.area_label.setText(a.name if a is not None else tr("全部（本人管辖范围）"))

    def _default_name(self) -> None:
        name = f"{list_title(self.kind.currentData())}-{date.today():%Y%m%d}.xlsx"
        self.out.setText(str(Path.home() / name))

    def _browse(self) -> None:
        fn, _ = QFileDialog.getSaveFileName(self, tr("导出到"), self.out.text(), tr("Excel 工作簿 (*.xlsx)"))
        if fn:
            self.out.setText(fn)

    def run_export(self) -> None:
        actor, kind, out, code = self.actor, self.kind.currentData(), self.out.text().strip(), self.area_code
        filt = dict(self.filters) if kind == self._kind0 else {}
        self.message.setText(tr("正在导出…"))
        self.export_job.start(self.runner.run(
            lambda s, t: export.export_list(s, actor, list_name=kind, out=out, area_code=code, filters=filt, task=t),
            mode="write", on_done=self._done, on_error=self._ended, on_cancelled=self._ended,
            on_progress=self.export_job.progressed, label="export"))

    def _ended(self, exc: BaseException) -> None:
        """A failed or cancelled export: the reason (a cancel wrote nothing: no file, no log entry)."""
        self.export_job.stop()
        self.message.setText(describe(exc)[0])

    def _done(self, r: export.ExportResult) -> None:
        self.export_job.stop()
        self.export_result = r
        self.message.setText(tr("已导出 {n} 行到 {path}").format(n=r.rows, path=r.path))
        self.exported.emit(r)


class MonthlyReportDialog(QDialog):
    """月报: an area (street/community) and a month → the report workbook."""

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.setObjectName("monthlyReport")
        self.setWindowTitle(tr("月度报表"))
        self.setMinimumWidth(520)
        form = QFormLayout(self)
        self.area = QComboBox()
        self.month = QComboBox()
        today = date.today()
        y, m = today.year, today.month
        for _ in range(12):
            self.month.addItem(f"{y}-{m:02d}", f"{y}-{m:02d}")
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        self.out = QLineEdit(str(Path.home() / f"gridman-monthly-{today:%Y%m}.xlsx"))
        form.addRow(tr("区域"), self.area)
        form.addRow(tr("月份"), self.month)
        form.addRow(tr("保存到"), self.out)
        self.message = JobMessage()
        form.addRow(self.message)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Close)
        bb.button(QDialogButtonBox.StandardButton.Ok).setText(tr("生成"))
        bb.button(QDialogButtonBox.StandardButton.Close).setText(tr("关闭"))
        bb.accepted.connect(self.run_report)
        bb.rejected.connect(self.reject)
        form.addRow(bb)

        runner.run(lambda s, _t: areas.choices(s, actor, levels=REPORT_LEVELS), on_done=self._areas,
                   label="report-areas")

    def _areas(self, rows: list[areas.AreaChoice]) -> None:
        for a in rows:
            self.area.addItem(a.label(language()), a.code)

    def run_report(self) -> None:
        actor, code, month, out = self.actor, self.area.currentData(), self.month.currentData(), self.out.text()
        self.message.setText(tr("正在生成…"))
        self.runner.run(lambda s, t: monthly_report(s, actor, area_code=code, month=month, out=out, task=t),
                        mode="write", on_done=self._done, on_error=lambda e: self.message.setText(describe(e)[0]),
                        label="monthly")

    def _done(self, r: Any) -> None:
        self.report_result = r
        self.message.setText(tr("已生成：{path}").format(path=self.out.text()))

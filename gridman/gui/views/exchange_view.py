"""导入导出: the census import wizard, export of any list (with the filters the user set), the
monthly report, blank templates, and the slot where the offline exchange (离线交换) page goes.

The wizard walks the stages of ``services.census_import``: choose a file → a sheet → the header
mapping (each column with sample values and the field it maps to, editable) → the validation
preview (the service's dry run) → the import on a background thread with a progress bar and
Cancel (``census_import.Progress``, Qt-free) → the result, with the error workbook to open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from gridman.core import config, enums, fields
from gridman.core.services import census_import, cleaning, export, registers
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.errors import describe, show_error, show_info
from gridman.gui.i18n import N_, language, pick, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QAbstractItemView,
    QComboBox,
    QDesktopServices,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QUrl,
    QVBoxLayout,
    QWidget,
    Signal,
)

FILTER_NAMES = {"population_type": N_("人口类型"), "status": N_("状态"), "tag": N_("标签"), "category": N_("类别"),
                "level": N_("层级")}
FILTER_ENUMS: dict[str, Any] = {"population_type": "PopulationType", "category": "IncidentCategory", "level": "MediationLevel"}
PAGES = (N_("1 选择文件"), N_("2 选择工作表"), N_("3 表头对应"), N_("4 校验预览"), N_("5 导入"), N_("6 结果"))
PREVIEW_ROWS = 4


def list_kinds() -> list[str]:
    """The exportable lists (the catalogue's registers with an export view), importable ones first."""
    return sorted(export.LISTS, key=lambda k: not fields.get(k).importable)


def list_title(kind: str) -> str:
    r = fields.get(kind)
    return pick(r.ledger, r.en)


def field_label(f: str) -> str:
    zh, en = cleaning.FIELD_LABELS.get(f, (f, f))
    return pick(zh, en)


@dataclass
class SheetPreview:
    sheets: list[str]
    sheet: str
    header_row: int
    headers: list[str]
    mapping: dict[str, str]  # header → field ("" = ignored)
    samples: list[list[str]]  # per header: the first values under it


def _preview(path: Path, sheet: str | None, s: Any) -> SheetPreview:
    names, load = census_import.read_workbook(path)
    chosen = sheet if sheet in names else names[0]
    sd = load(chosen)
    table = census_import.find_table(sd, remembered=census_import._remembered_loader(s))  # noqa: SLF001
    if table is None:
        raise census_import.ImportFileError(f"工作表“{chosen}”中找不到表头行", en=f"No header row in sheet {chosen!r}")  # i18n-exempt: the error carries both languages
    mapping = {h: "" for h in table.headers if h}
    for idx, f in table.columns.items():
        if idx < len(table.headers) and table.headers[idx]:
            mapping[table.headers[idx]] = f
    samples = []
    for i, h in enumerate(table.headers):
        if not h:
            continue
        vals = []
        for _rn, row in table.rows[:PREVIEW_ROWS]:
            v = row[i] if i < len(row) else None
            vals.append("" if v is None else str(v))
        samples.append(vals)
    return SheetPreview(names, chosen, table.header_row, [h for h in table.headers if h], mapping, samples)


class ImportWizard(QDialog):
    """The census import, page by page; every database step runs on the op runner."""

    imported = Signal(object)  # the ImportResult

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.setObjectName("importWizard")
        self.setWindowTitle(tr("人口数据导入向导"))
        self.resize(980, 620)
        self.path: Path | None = None
        self.preview: SheetPreview | None = None
        self.check: census_import.ImportResult | None = None
        self.import_result: census_import.ImportResult | None = None
        self.error_report: Path | None = None
        self.progress_obj: census_import.Progress | None = None
        lay = QVBoxLayout(self)
        self.steps = QLabel()
        self.steps.setObjectName("wizardSteps")
        lay.addWidget(self.steps)
        self.stack = QStackedWidget()
        lay.addWidget(self.stack, 1)
        # 1 file
        p1 = QWidget()
        f1 = QFormLayout(p1)
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText(tr("选择 Excel（.xlsx/.xls）或 CSV 文件"))
        browse = QPushButton(tr("浏览…"))
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.file_edit, 1)
        row.addWidget(browse)
        f1.addRow(tr("文件"), row)
        self.policy = QComboBox()
        self.policy.addItem(tr("有错误时整批不导入"), "reject")
        self.policy.addItem(tr("导入正确的行，错误行另行处理"), "quarantine")
        f1.addRow(tr("处理方式"), self.policy)
        self.stack.addWidget(p1)
        # 2 sheet
        p2 = QWidget()
        l2 = QVBoxLayout(p2)
        l2.addWidget(QLabel(tr("选择要导入的工作表：")))
        self.sheets = QListWidget()
        self.sheets.setObjectName("sheetList")
        l2.addWidget(self.sheets)
        self.stack.addWidget(p2)
        # 3 mapping
        p3 = QWidget()
        l3 = QVBoxLayout(p3)
        self.map_label = QLabel()
        self.map_label.setWordWrap(True)
        l3.addWidget(self.map_label)
        self.map_table = QTableWidget(0, 2 + PREVIEW_ROWS)
        self.map_table.setObjectName("mappingTable")
        self.map_table.setHorizontalHeaderLabels([tr("表格列"), tr("对应字段")] +
                                                 [tr("第 {n} 行示例").format(n=i + 1) for i in range(PREVIEW_ROWS)])
        self.map_table.verticalHeader().setVisible(False)
        self.map_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.map_table.horizontalHeader().setStretchLastSection(True)
        l3.addWidget(self.map_table)
        self.stack.addWidget(p3)
        # 4 validation preview
        p4 = QWidget()
        l4 = QVBoxLayout(p4)
        self.check_label = QLabel()
        self.check_label.setObjectName("checkSummary")
        self.check_label.setWordWrap(True)
        l4.addWidget(self.check_label)
        self.issues = QTableWidget(0, 3)
        self.issues.setObjectName("issueTable")
        self.issues.setHorizontalHeaderLabels([tr("行"), tr("列"), tr("问题")])
        self.issues.verticalHeader().setVisible(False)
        self.issues.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.issues.horizontalHeader().setStretchLastSection(True)
        l4.addWidget(self.issues)
        self.stack.addWidget(p4)
        # 5 import
        p5 = QWidget()
        l5 = QVBoxLayout(p5)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress_label = QLabel(tr("准备导入…"))
        self.cancel_button = QPushButton(tr("取消导入"))
        self.cancel_button.setObjectName("cancelImport")
        self.cancel_button.clicked.connect(self.cancel_import)
        l5.addStretch(1)
        l5.addWidget(self.progress_label)
        l5.addWidget(self.progress)
        l5.addWidget(self.cancel_button)
        l5.addStretch(1)
        self.stack.addWidget(p5)
        # 6 result
        p6 = QWidget()
        l6 = QVBoxLayout(p6)
        self.result_label = QLabel()
        self.result_label.setObjectName("resultSummary")
        self.result_label.setWordWrap(True)
        l6.addWidget(self.result_label)
        self.result_label.setStyleSheet("font-size: 12pt;")
        row6 = QHBoxLayout()
        self.open_report = QPushButton(tr("打开错误报告"))
        self.open_report.setObjectName("openErrorReport")
        self.open_report.clicked.connect(self.open_error_report)
        self.report_path = QLabel()
        self.report_path.setWordWrap(True)
        row6.addWidget(self.open_report)
        row6.addWidget(self.report_path, 1)
        l6.addLayout(row6)
        self.result_issues = QTableWidget(0, 3)
        self.result_issues.setHorizontalHeaderLabels([tr("行"), tr("列"), tr("问题")])
        self.result_issues.verticalHeader().setVisible(False)
        self.result_issues.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.result_issues.horizontalHeader().setStretchLastSection(True)
        l6.addWidget(self.result_issues, 1)
        self.stack.addWidget(p6)
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00020;")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        bb = QDialogButtonBox()
        self.back_button = bb.addButton(tr("上一步"), QDialogButtonBox.ButtonRole.ActionRole)
        self.next_button = bb.addButton(tr("下一步"), QDialogButtonBox.ButtonRole.ActionRole)
        self.next_button.setObjectName("wizardNext")
        self.close_button = bb.addButton(tr("关闭"), QDialogButtonBox.ButtonRole.RejectRole)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.close_button.clicked.connect(self.reject)
        lay.addWidget(bb)
        self.go(0)

    # --- navigation -----------------------------------------------------------------------
    @property
    def page(self) -> int:
        return self.stack.currentIndex()

    def go(self, i: int) -> None:
        self.stack.setCurrentIndex(i)
        self.message.setText("")
        self.steps.setText("　›　".join(f"<b>{tr(t)}</b>" if j == i else tr(t) for j, t in enumerate(PAGES)))
        self.back_button.setEnabled(0 < i < 4)
        self.next_button.setVisible(i < 4)
        self.next_button.setText(tr("开始导入") if i == 3 else tr("下一步"))
        self.close_button.setEnabled(i != 4)

    def back(self) -> None:
        if 0 < self.page < 4:
            self.go(self.page - 1)

    def next(self) -> None:
        if self.page == 0:
            self.set_file(self.file_edit.text().strip())
        elif self.page == 1:
            item = self.sheets.currentItem()
            self.load_sheet(item.text() if item else None)
        elif self.page == 2:
            self.validate()
        elif self.page == 3:
            self.start_import()

    def _busy(self, on: bool) -> None:
        self.next_button.setEnabled(not on)
        if on:
            self.message.setText(tr("正在处理…"))

    def _failed(self, exc: BaseException) -> None:
        self._busy(False)
        self.message.setText(describe(exc)[0])

    def _browse(self) -> None:
        fn, _ = QFileDialog.getOpenFileName(self, tr("选择人口数据文件"), "", tr("表格文件 (*.xlsx *.xls *.csv)"))
        if fn:
            self.file_edit.setText(fn)

    # --- stages ---------------------------------------------------------------------------
    def set_file(self, path: str) -> None:
        if not path:
            self.message.setText(tr("请选择文件"))
            return
        self.path = Path(path)
        self.file_edit.setText(path)
        self._busy(True)
        p = self.path
        self.runner.run(lambda _s, _t: census_import.read_workbook(p)[0], mode="none", on_done=self._file_read,
                        on_error=self._failed, label="import-read")

    def _file_read(self, names: list[str]) -> None:
        self._busy(False)
        self.sheets.clear()
        self.sheets.addItems(names)
        # the sheet that looks most like a census table is pre-selected: the last one named like it, else the first
        pick_row = next((i for i, n in enumerate(names) if any(k in n for k in ("人口", "户", "居民", "census"))), 0)  # i18n-exempt: sheet names to match
        self.sheets.setCurrentRow(pick_row)
        if len(names) == 1:  # nothing to choose
            self.load_sheet(names[0])
        else:
            self.go(1)

    def load_sheet(self, sheet: str | None) -> None:
        p = self.path
        self._busy(True)
        self.runner.run(lambda s, _t: _preview(p, sheet, s), on_done=self._show_mapping, on_error=self._failed,
                        label="import-sheet")

    def _show_mapping(self, pv: SheetPreview) -> None:
        self._busy(False)
        self.preview = pv
        self.map_label.setText(tr("工作表“{sheet}”，表头在第 {row} 行。请核对每一列对应的字段（可修改）：").format(
            sheet=pv.sheet, row=pv.header_row))
        self.map_table.setRowCount(len(pv.headers))
        self.field_boxes: dict[str, QComboBox] = {}
        for i, h in enumerate(pv.headers):
            self.map_table.setItem(i, 0, QTableWidgetItem(h))
            cb = QComboBox()
            cb.addItem(tr("（不导入）"), "")
            for f in census_import.ALL_FIELDS:
                cb.addItem(field_label(f), f)
            cb.setCurrentIndex(max(cb.findData(pv.mapping.get(h, "")), 0))
            self.map_table.setCellWidget(i, 1, cb)
            self.field_boxes[h] = cb
            for j, v in enumerate(pv.samples[i][:PREVIEW_ROWS]):
                self.map_table.setItem(i, 2 + j, QTableWidgetItem(v))
        self.map_table.resizeColumnsToContents()
        self.map_table.setColumnWidth(1, max(self.map_table.columnWidth(1), 150))
        self.map_table.horizontalHeader().setStretchLastSection(True)
        self.go(2)

    def mapping(self) -> dict[str, str]:
        return {h: cb.currentData() for h, cb in getattr(self, "field_boxes", {}).items() if cb.currentData()}

    def set_field(self, header: str, field: str) -> None:
        cb = self.field_boxes[header]
        cb.setCurrentIndex(max(cb.findData(field), 0))

    def _kwargs(self) -> dict[str, Any]:
        assert self.path is not None and self.preview is not None
        return {"path": self.path, "sheet": self.preview.sheet, "mapping": self.mapping(),
                "policy": self.policy.currentData()}

    def validate(self) -> None:
        kw, actor = self._kwargs(), self.actor
        self._busy(True)
        self.runner.run(lambda s, _t: census_import.import_census(s, actor, dry_run=True, **kw),
                        on_done=self._checked, on_error=self._failed, label="import-check")

    def _checked(self, r: census_import.ImportResult) -> None:
        self._busy(False)
        self.check = r
        errors = [i for i in r.issues if i.severity == "error"]
        self.check_label.setText(tr(
            "共读取 {rows} 行：新增 {ins}，更新 {upd}，无变化 {same}，有错误 {bad} 行，警告 {warn} 条。").format(
            rows=r.rows_read, ins=r.inserted, upd=r.updated, same=r.unchanged, bad=r.rejected, warn=r.warnings)
            + ("" if not errors else "<br>" + tr("下面是前 {n} 个问题；导入后可打开完整的错误报告。").format(
                n=min(len(r.issues), 50))))
        self._fill_issues(self.issues, r.issues[:50])
        self.go(3)

    @staticmethod
    def _fill_issues(table: QTableWidget, issues: list[census_import.RowIssue]) -> None:
        lang = language()
        table.setRowCount(len(issues))
        for i, iss in enumerate(issues):
            for j, t in enumerate((str(iss.row), iss.column or "", iss.en if lang == "en" else iss.message)):
                table.setItem(i, j, QTableWidgetItem(t))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)

    def start_import(self) -> None:
        kw, actor = self._kwargs(), self.actor
        self.go(4)
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        progress = census_import.Progress(interval=0.1)
        self.progress_obj = progress

        def job(s, task):  # type: ignore[no-untyped-def]
            progress.callback = lambda f, m: task.progress(f, m, force=True)
            return census_import.import_census(s, actor, progress=progress, **kw)

        self.import_op = self.runner.run(job, mode="write", on_done=self._imported, on_error=self._import_failed,
                                         on_progress=self._progress, label="import")

    def _progress(self, f: float, msg: str) -> None:
        self.progress.setValue(int(f * 1000))
        self.progress_label.setText(msg)

    def cancel_import(self) -> None:
        if self.progress_obj is not None:
            self.progress_obj.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText(tr("正在取消…"))

    def _import_failed(self, exc: BaseException) -> None:
        self.import_result = None
        self.error_report = None
        self.open_report.setVisible(False)
        self.report_path.setText("")
        self.result_issues.setVisible(False)
        self.result_label.setText(describe(exc)[0])
        self.go(5)

    def _imported(self, r: census_import.ImportResult) -> None:
        self.import_result = r
        self.runner.changed.emit("residents", None)
        self.runner.changed.emit("households", None)
        errors = sum(1 for i in r.issues if i.severity == "error")
        status = {"imported": tr("已导入"), "rejected": tr("有错误，整批未导入")}.get(r.status, r.status)
        self.result_label.setText(tr(
            "{status}：新增 {ins} 人，更新 {upd} 人，新建 {hh} 户；错误 {err} 个，未导入 {bad} 行。").format(
            status=status, ins=r.inserted, upd=r.updated, hh=r.households_created, err=errors, bad=r.rejected))
        self.error_report = None
        if r.issues:
            out = config.data_dir() / "import-reports"
            out.mkdir(parents=True, exist_ok=True)
            stem = Path(r.file_name).stem
            self.error_report = census_import.write_error_report(r, out / f"{stem}-{tr('错误报告')}-{r.batch_id or 'x'}.xlsx")
        self.open_report.setVisible(self.error_report is not None)
        self.report_path.setText(tr("错误报告已保存：{path}").format(path=self.error_report) if self.error_report else "")
        self._fill_issues(self.result_issues, r.issues)
        self.result_issues.setVisible(bool(r.issues))
        self.imported.emit(r)
        self.go(5)

    def error_report_url(self) -> QUrl | None:
        return QUrl.fromLocalFile(str(self.error_report)) if self.error_report else None

    def open_error_report(self) -> None:
        url = self.error_report_url()
        if url is not None:
            QDesktopServices.openUrl(url)


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
        self.message = QLabel()
        self.message.setWordWrap(True)
        form.addRow(self.message)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Close)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(tr("导出"))
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setText(tr("关闭"))
        self.buttons.accepted.connect(self.run_export)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.kind.currentIndexChanged.connect(lambda _i: self._default_name())
        self.area_code: str | None = None
        aid = area_id

        def job(s, _t):  # type: ignore[no-untyped-def]
            from gridman.core.models import Area

            a = s.get(Area, aid) if aid else None
            return (a.code, a.name) if a is not None else (None, None)

        runner.run(job, on_done=self._area, label="export-area")
        self._default_name()

    @staticmethod
    def _value_text(key: str, value: Any) -> str:
        names = FILTER_ENUMS.get(key, ("ResidentStatus", "IncidentStatus") if key == "status" else ())
        for name in (names,) if isinstance(names, str) else names:
            text = enums.label(value, language(), getattr(enums, name))
            if text != str(value):
                return text
        return str(value)

    def _area(self, ca: tuple[str | None, str | None]) -> None:
        self.area_code = ca[0]
        self.area_label.setText(ca[1] or tr("全部（本人管辖范围）"))

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
        self.runner.run(lambda s, _t: export.export_list(s, actor, list_name=kind, out=out, area_code=code,
                                                        filters=filt),
                        mode="write", on_done=self._done, on_error=lambda e: self.message.setText(describe(e)[0]),
                        label="export")

    def _done(self, r: export.ExportResult) -> None:
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
        self.message = QLabel()
        self.message.setWordWrap(True)
        form.addRow(self.message)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Close)
        bb.button(QDialogButtonBox.StandardButton.Ok).setText(tr("生成"))
        bb.button(QDialogButtonBox.StandardButton.Close).setText(tr("关闭"))
        bb.accepted.connect(self.run_report)
        bb.rejected.connect(self.reject)
        form.addRow(bb)

        def job(s, _t):  # type: ignore[no-untyped-def]
            from sqlalchemy import select

            from gridman.core.models import Area

            rows = s.execute(select(Area.code, Area.name, Area.level, Area.path)
                             .where(Area.level.in_(("district", "street", "community"))).order_by(Area.code)).all()
            return [(c, n, lv) for c, n, lv, p in rows if actor.area_path is None or p.startswith(actor.area_path)]

        runner.run(job, on_done=self._areas, label="report-areas")

    def _areas(self, rows: list[tuple[str, str, str]]) -> None:
        for c, n, lv in rows:
            self.area.addItem(f"{n}（{enums.label(lv, language(), enums.AreaLevel)}）", c)

    def run_report(self) -> None:
        actor, code, month, out = self.actor, self.area.currentData(), self.month.currentData(), self.out.text()
        self.message.setText(tr("正在生成…"))
        self.runner.run(lambda s, _t: export.monthly_report(s, actor, area_code=code, month=month, out=out),
                        mode="write", on_done=self._done, on_error=lambda e: self.message.setText(describe(e)[0]),
                        label="monthly")

    def _done(self, r: Any) -> None:
        self.report_result = r
        self.message.setText(tr("已生成：{path}").format(path=self.out.text()))


class ExchangeView(QWidget):
    """The 导入导出 page. ``exchange_slot`` is where the offline exchange (离线交换) page goes:
    ``set_exchange_widget(widget)`` puts it there."""

    def __init__(self, runner: OpRunner, actor: Actor, window: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.window_ = runner, actor, window
        lay = QVBoxLayout(self)
        box = QGroupBox(tr("人口数据导入"))
        bl = QHBoxLayout(box)
        self.import_button = QPushButton(tr("打开导入向导…"))
        self.import_button.setObjectName("openImportWizard")
        self.import_button.clicked.connect(self.open_wizard)
        self.import_button.setEnabled(actor.can(Perm.IMPORT))
        bl.addWidget(self.import_button)
        bl.addWidget(QLabel(tr("从 Excel 或 CSV 批量导入户籍与人口；先校验预览，再导入，可撤销。")), 1)
        lay.addWidget(box)
        box = QGroupBox(tr("导出与报表"))
        bl = QHBoxLayout(box)
        self.export_button = QPushButton(tr("导出列表…"))
        self.export_button.clicked.connect(lambda: self.open_export("residents"))
        self.monthly_button = QPushButton(tr("月度报表…"))
        self.monthly_button.clicked.connect(self.open_monthly)
        self.template_kind = QComboBox()
        for k in list_kinds():
            self.template_kind.addItem(list_title(k), k)
        self.template_button = QPushButton(tr("保存空白模板…"))
        self.template_button.clicked.connect(self.save_template)
        for b in (self.export_button, self.monthly_button):
            b.setEnabled(actor.can(Perm.EXPORT))
        for w in (self.export_button, self.monthly_button, self.template_kind, self.template_button):
            bl.addWidget(w)
        bl.addStretch(1)
        lay.addWidget(box)
        self.exchange_box = QGroupBox(tr("离线交换"))
        self.exchange_box.setObjectName("exchangeSlot")
        self.exchange_layout = QVBoxLayout(self.exchange_box)
        self.exchange_placeholder = QLabel(tr("在网格与社区、街道之间交换离线数据包（导出、导入、冲突处理）。"))
        self.exchange_placeholder.setWordWrap(True)
        self.exchange_layout.addWidget(self.exchange_placeholder)
        lay.addWidget(self.exchange_box)
        lay.addStretch(1)  # until the exchange page arrives, the boxes stay at the top
        self._layout = lay
        self.dialogs: list[QDialog] = []

    def set_exchange_widget(self, w: QWidget) -> None:
        """Put the offline exchange page (issue 7) into its box; it takes the remaining height."""
        self.exchange_placeholder.hide()
        self.exchange_widget = w
        self.exchange_layout.addWidget(w)
        last = self._layout.itemAt(self._layout.count() - 1)
        if last is not None and last.spacerItem() is not None:
            self._layout.takeAt(self._layout.count() - 1)
        self._layout.setStretchFactor(self.exchange_box, 1)

    # the view protocol (forwarded to the exchange page: its check-out follows the tree)
    def set_area(self, area_id: int | None) -> None:
        page = getattr(self, "exchange_widget", None)
        if page is not None and hasattr(page, "set_area"):
            page.set_area(area_id)

    def mark_dirty(self) -> None:
        pass

    def refresh(self) -> None:
        page = getattr(self, "exchange_widget", None)
        if page is not None and hasattr(page, "refresh"):
            page.refresh()

    def _keep(self, d: QDialog) -> QDialog:
        self.dialogs = [x for x in self.dialogs if x.isVisible()] + [d]
        d.open()
        return d

    def open_wizard(self) -> ImportWizard:
        return self._keep(ImportWizard(self.runner, self.actor, self))  # type: ignore[return-value]

    def open_export(self, kind: str, filters: dict[str, Any] | None = None) -> ExportDialog:
        area = getattr(self.window_, "area_id", None)
        return self._keep(ExportDialog(self.runner, self.actor, kind=kind, area_id=area, filters=filters,
                                       parent=self))  # type: ignore[return-value]

    def open_monthly(self) -> MonthlyReportDialog:
        return self._keep(MonthlyReportDialog(self.runner, self.actor, self))  # type: ignore[return-value]

    def save_template(self) -> None:
        kind = self.template_kind.currentData()
        fn, _ = QFileDialog.getSaveFileName(self, tr("保存模板"), str(Path.home() / f"{kind}_template.xlsx"),
                                            tr("Excel 工作簿 (*.xlsx)"))
        if fn:
            self.runner.run(lambda _s, _t: export.write_template(kind, fn), mode="none",
                            on_done=lambda p: show_info(self, tr("模板已保存：{path}").format(path=p)),
                            on_error=lambda e: show_error(self, e), label="template")


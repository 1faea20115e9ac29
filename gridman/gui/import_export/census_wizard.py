"""The census import wizard (人口数据导入向导): it walks the stages of ``services.census`` — choose a
file → a sheet → the header mapping (each column with sample values and the field it maps to,
editable) → the validation preview (the service's dry run) → the import on a background job with
a progress bar and Cancel (the job's ``tasks.TaskState``) → the result, with the error workbook
(written by another job) to open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gridman.core import config
from gridman.core.services import census, cleaning
from gridman.core.services.permissions import Actor
from gridman.gui.errors import describe
from gridman.gui.i18n import N_, language, pick, tr
from gridman.gui.job_progress import JobProgress
from gridman.gui.ops import Op, OpRunner
from gridman.gui.qt import (
    QAbstractItemView,
    QComboBox,
    QDesktopServices,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QUrl,
    QVBoxLayout,
    QWidget,
    Signal,
)

PAGES = (N_("1 选择文件"), N_("2 选择工作表"), N_("3 表头对应"), N_("4 校验预览"), N_("5 导入"), N_("6 结果"))
PREVIEW_ROWS = 4
RESULT_ISSUES = 1000  # problems listed on the result page; all of them are in the error workbook


def field_label(f: str) -> str:
    zh, en = cleaning.FIELD_LABELS.get(f, (f, f))
    return pick(zh, en)


def _issue_table() -> QTableWidget:
    t = QTableWidget(0, 3)
    t.setHorizontalHeaderLabels([tr("行"), tr("列"), tr("问题")])
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.horizontalHeader().setStretchLastSection(True)
    return t


class ImportWizard(QDialog):
    """The census import, page by page; every database step runs on the op runner, and so does
    the error workbook (a large file takes seconds to write)."""

    imported = Signal(object)  # the ImportResult

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.setObjectName("importWizard")
        self.setWindowTitle(tr("人口数据导入向导"))
        self.resize(980, 620)
        self.path: Path | None = None
        self.preview: census.SheetPreview | None = None
        self.check: census.ImportResult | None = None
        self.import_result: census.ImportResult | None = None
        self.error_report: Path | None = None
        self.report_op: Op | None = None
        lay = QVBoxLayout(self)
        self.steps = QLabel()
        self.steps.setObjectName("wizardSteps")
        lay.addWidget(self.steps)
        self.stack = QStackedWidget()
        lay.addWidget(self.stack, 1)
        for build in (self._file_page, self._sheet_page, self._mapping_page, self._check_page, self._import_page,
                      self._result_page):
            self.stack.addWidget(build())
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

    # --- the pages ------------------------------------------------------------------------
    def _file_page(self) -> QWidget:
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
        return p1

    def _sheet_page(self) -> QWidget:
        p2 = QWidget()
        l2 = QVBoxLayout(p2)
        l2.addWidget(QLabel(tr("选择要导入的工作表：")))
        self.sheets = QListWidget()
        self.sheets.setObjectName("sheetList")
        l2.addWidget(self.sheets)
        return p2

    def _mapping_page(self) -> QWidget:
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
        return p3

    def _check_page(self) -> QWidget:
        p4 = QWidget()
        l4 = QVBoxLayout(p4)
        self.check_label = QLabel()
        self.check_label.setObjectName("checkSummary")
        self.check_label.setWordWrap(True)
        l4.addWidget(self.check_label)
        self.issues = _issue_table()
        self.issues.setObjectName("issueTable")
        l4.addWidget(self.issues)
        return p4

    def _import_page(self) -> QWidget:
        p5 = QWidget()
        l5 = QVBoxLayout(p5)
        self.progress_label = QLabel(tr("准备导入…"))
        self.import_job = JobProgress("cancelImport", tr("取消导入"), label=self.progress_label, messages=True)
        l5.addStretch(1)
        l5.addWidget(self.progress_label)
        l5.addWidget(self.import_job)
        l5.addStretch(1)
        return p5

    def _result_page(self) -> QWidget:
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
        self.result_issues = _issue_table()
        l6.addWidget(self.result_issues, 1)
        return p6

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
        self.runner.run(lambda _s, t: census.read_workbook(p, task=t)[0], mode="none", on_done=self._file_read,
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
        self.runner.run(lambda s, _t: census.preview_sheet(s, p, sheet, sample_rows=PREVIEW_ROWS),
                        on_done=self._show_mapping, on_error=self._failed, label="import-sheet")

    def _show_mapping(self, pv: census.SheetPreview) -> None:
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
            for f in census.ALL_FIELDS:
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
        self.runner.run(lambda s, t: census.import_census(s, actor, dry_run=True, task=t, **kw), mode="write",
                        on_done=self._checked, on_error=self._failed, label="import-check")  # audited check

    def _checked(self, r: census.ImportResult) -> None:
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
    def _fill_issues(table: QTableWidget, issues: list[census.RowIssue]) -> None:
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
        self.import_job.start(self.runner.run(lambda s, t: census.import_census(s, actor, task=t, **kw), mode="write",
                                              on_done=self._imported, on_error=self._import_failed,
                                              on_cancelled=self._import_cancelled,
                                              on_progress=self.import_job.progressed, label="import"))

    def _import_failed(self, exc: BaseException) -> None:
        self._show_failure(describe(exc)[0])

    def _import_cancelled(self, _exc: BaseException) -> None:
        self._show_failure(tr("导入已取消，未写入任何数据。"))

    def _show_failure(self, text: str) -> None:
        self.import_job.stop()
        self.import_result = None
        self.error_report = None
        self.open_report.setVisible(False)
        self.report_path.setText("")
        self.result_issues.setVisible(False)
        self.result_label.setText(text)
        self.go(5)

    def _imported(self, r: census.ImportResult) -> None:
        self.import_job.stop()
        self.import_result = r
        errors = sum(1 for i in r.issues if i.severity == "error")
        status = {"imported": tr("已导入"), "rejected": tr("有错误，整批未导入")}.get(r.status, r.status)
        self.result_label.setText(tr(
            "{status}：新增 {ins} 人，更新 {upd} 人，新建 {hh} 户；错误 {err} 个，未导入 {bad} 行。").format(
            status=status, ins=r.inserted, upd=r.updated, hh=r.households_created, err=errors, bad=r.rejected))
        self.error_report = None
        self.open_report.setVisible(False)
        self.report_path.setText("")
        if r.issues:
            self._write_error_workbook(r)
        self._fill_issues(self.result_issues, r.issues[:RESULT_ISSUES])
        self.result_issues.setVisible(bool(r.issues))
        self.imported.emit(r)
        self.go(5)

    def _write_error_workbook(self, r: census.ImportResult) -> None:
        """The rows to fix, written by a job (a large file takes seconds: never on the GUI thread)."""
        out = config.data_dir() / "import-reports" / f"{Path(r.file_name).stem}-{tr('错误报告')}-{r.batch_id or 'x'}.xlsx"
        self.report_path.setText(tr("正在生成错误报告…"))
        self.report_op = self.runner.run(lambda _s, t: census.write_error_workbook(r, out, task=t), mode="none",
                                         on_done=self._error_workbook_written, on_error=self._error_workbook_failed,
                                         label="import-error-workbook")

    def _error_workbook_written(self, path: Path) -> None:
        self.error_report = path
        self.open_report.setVisible(True)
        self.report_path.setText(tr("错误报告已保存：{path}").format(path=path))

    def _error_workbook_failed(self, exc: BaseException) -> None:
        self.report_path.setText(describe(exc)[0])

    def error_report_url(self) -> QUrl | None:
        return QUrl.fromLocalFile(str(self.error_report)) if self.error_report else None

    def open_error_report(self) -> None:
        url = self.error_report_url()
        if url is not None:
            QDesktopServices.openUrl(url)

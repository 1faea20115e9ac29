"""The error workbook (错误报告) of a census import: the rows to fix, with the offending cells marked.

Threading: any thread but the GUI's (a large file takes seconds): the GUI writes it in a job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gridman.core import tasks
from gridman.core.services.census.records import ImportResult, RowIssue
from gridman.core.tasks import TaskState
from gridman.core.xlsxstream import save_workbook

# the 说明 sheet's labels of the result's counts and status
COUNT_LABELS = {"rows_read": "读取行数", "inserted": "新增", "updated": "更新", "unchanged": "未变",
                "rejected": "未导入（有错误）", "warnings": "警告"}
STATUS_LABELS = {"imported": "已导入", "rejected": "有错误，整个文件未导入", "dry_run": "试运行（未写入）"}


def write_error_workbook(result: ImportResult, out: str | Path, *, task: TaskState | None = None,
                         bind: Any = None) -> Path:
    """The rows to fix as a workbook: the original header and values, offending cells filled red
    with a comment each, and a 错误原因 column. With policy "reject" every row is included (fix and
    import the whole file again); with "quarantine" the rows that were not imported and those
    imported with a warning (a secondary value left out: fix it there and import the row again).
    Cancelled (``task``): nothing is written."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill

    task = tasks.ensure(task)
    out = Path(out)
    by_row: dict[int, list[RowIssue]] = {}
    for i in result.issues:
        by_row.setdefault(i.row, []).append(i)
    wb = Workbook()
    ws = wb.active
    ws.title = "导入问题"
    headers = list(result.headers)
    while headers and not headers[-1]:
        headers.pop()
    ncol = len(headers)
    ws.append([*headers, "错误原因", "原行号"])
    bold = Font(bold=True)
    for c in ws[1]:
        c.font = bold
    red = PatternFill("solid", fgColor="FFC7CE")
    amber = PatternFill("solid", fgColor="FFEB9C")
    col_idx = {h: j for j, h in enumerate(headers)}
    n_rows = len(result.raw_rows)
    for k, (rownum, raw) in enumerate(result.raw_rows):
        if k % 2000 == 0:
            task.step(k, n_rows, "写入错误报告")
        issues = by_row.get(rownum, [])
        if result.policy == "quarantine" and not issues:
            continue
        reasons = "；".join(f"{i.column + '：' if i.column else ''}{i.message}" for i in issues)
        values = [("" if v is None else v) for v in raw[:ncol]]
        ws.append([*values, reasons, rownum])
        r = ws.max_row
        for j, v in enumerate(values):
            if isinstance(v, str):
                ws.cell(r, j + 1).number_format = "@"
        per_col: dict[int, list[RowIssue]] = {}
        for i in issues:
            if i.column is not None and i.column in col_idx:
                per_col.setdefault(col_idx[i.column], []).append(i)
        for j, lst in per_col.items():
            cell = ws.cell(r, j + 1)
            cell.fill = red if any(i.severity == "error" for i in lst) else amber
            cell.comment = Comment("\n".join(f"{i.message} / {i.en}" for i in lst), "gridman")
        ws.cell(r, ncol + 1).alignment = Alignment(wrap_text=True)
    ws.freeze_panes = "A2"
    for j, h in enumerate(headers):
        ws.column_dimensions[_col_letter(j + 1)].width = max(10, min(40, len(h) * 2 + 4))
    ws.column_dimensions[_col_letter(ncol + 1)].width = 60
    info = wb.create_sheet("说明")
    info.append(["文件", result.file_name])
    info.append(["工作表", result.sheet])
    info.append(["SHA-256", result.file_sha256])
    info.append(["结果", STATUS_LABELS.get(result.status, result.status)])
    for key, label in COUNT_LABELS.items():
        info.append([label, getattr(result, key)])
    if result.unknown_columns:
        info.append(["未导入的列", "、".join(result.unknown_columns)])
    info.append(["用法", "在“导入问题”表中按批注修改标红的单元格，删除“错误原因”“原行号”两列（或保留，导入时会忽略），再重新导入。"])
    task.check()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_workbook(wb, out, bind)  # formula-like text stays text; never the database; a failed save leaves nothing
    task.progress(1.0, "错误报告已写入")
    return out


def _col_letter(n: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(n)

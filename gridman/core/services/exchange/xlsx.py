"""A fast .xlsx writer and a values-only reader (the exchange workbook's file layer).

Writing: openpyxl builds the skeleton of each sheet (headers, styles, hidden key columns, sheet
protection that leaves the data cells editable, drop-down lists) with one template data row; the
rows themselves are then streamed into the sheet XML with the template row's styles. openpyxl's
own cell writer manages ~60,000 cells/s here, a street's package has ~7 million cells. The file is
written next to its target (``.part``) and moved into place only when complete: a failed or
cancelled write leaves no file behind.
Reading: python-calamine (Rust) — values only, which is all a check-in needs.

Nothing here knows registers or databases (see :mod:`.workbook` for the format).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from gridman.core.tasks import TaskState
from gridman.core.xlsxstream import col_letter, formula_like, neutralise, replaced_when_done

LIST_SHEET = "_列表"
SHEET_PASSWORD = "gridman"  # protection against slips, not against intent: the checksum guards the keys
EXCEL_EPOCH = datetime(1899, 12, 30)

_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _esc(s: str) -> str:
    if "&" in s or "<" in s or ">" in s:
        s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if not s.isprintable():  # control characters are not allowed in XML 1.0; CR would be normalised away
        s = _ILLEGAL.sub("", s).replace("\r", "&#13;")
    return s


@dataclass
class SheetRows:
    """Rows for one sheet: a header list and an iterator of row lists of *display* values."""

    title: str
    headers: list[str]
    rows: Iterable[list[Any]]
    kinds: list[str] = field(default_factory=list)  # per column: text/int/float/date/datetime
    hidden: list[bool] = field(default_factory=list)
    locked: list[bool] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    lists: dict[int, list[str]] = field(default_factory=dict)  # column index -> drop-down values
    state: str = "visible"
    protect: bool = True


def write_workbook(path: str | Path, sheets: list[SheetRows], *, task: TaskState | None = None) -> None:
    """Write an .xlsx: openpyxl for the skeleton, then rows streamed in with the template styles.

    The rows' iterators may report progress and raise :class:`gridman.core.tasks.Cancelled`; the
    file appears at ``path`` only when it is complete and ``task`` was not cancelled."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill, Protection
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    wb.remove(wb.active)
    lists_ws = None
    list_col = 0
    bold = Font(bold=True)
    key_fill = PatternFill("solid", fgColor="DDDDDD")
    for sh in sheets:
        ws = wb.create_sheet(sh.title)
        n = len(sh.headers)
        kinds = sh.kinds or ["text"] * n
        locked = sh.locked or [False] * n
        for i, h in enumerate(sh.headers):
            c = ws.cell(row=1, column=i + 1, value=h)
            c.font = bold
            c.alignment = Alignment(wrap_text=True, vertical="center")
            c.protection = Protection(locked=True)
            if locked[i]:
                c.fill = key_fill
            letter = col_letter(i)
            dim = ws.column_dimensions[letter]
            dim.width = (sh.widths[i] if sh.widths else 14)
            if sh.hidden and sh.hidden[i]:
                dim.hidden = True
            if not locked[i]:
                dim.protection = Protection(locked=False)
            # the template cell: its style index is reused for every streamed cell of the column
            t = ws.cell(row=2, column=i + 1, value={"int": 1, "float": 1.5, "date": date(2000, 1, 1),
                                                     "datetime": datetime(2000, 1, 1, 1, 1, 1)}.get(kinds[i], "x"))
            t.protection = Protection(locked=locked[i])
            # the template of a formula-like text cell: the same, with Excel's quote prefix (stays
            # text when a user edits it)
            q = ws.cell(row=3, column=i + 1, value="x")
            q.protection = Protection(locked=locked[i])
            q.quotePrefix = True
            if kinds[i] == "date":
                t.number_format = "yyyy-mm-dd"
            elif kinds[i] == "datetime":
                t.number_format = "yyyy-mm-dd hh:mm:ss"
        for i, values in sh.lists.items():
            if lists_ws is None:
                lists_ws = wb.create_sheet(LIST_SHEET)
                lists_ws.sheet_state = "hidden"
            list_col += 1
            for r, v in enumerate(values, 1):
                lists_ws.cell(row=r, column=list_col, value=v)
            letter = col_letter(list_col - 1)
            dv = DataValidation(type="list", formula1=f"'{LIST_SHEET}'!${letter}$1:${letter}${len(values)}",
                                allow_blank=True, showErrorMessage=True, errorTitle="取值无效",
                                error="请从下拉列表中选择")
            dv.add(f"{col_letter(i)}2:{col_letter(i)}1048576")
            ws.add_data_validation(dv)
        ws.freeze_panes = "A2"
        if sh.protect:
            p = ws.protection
            p.sheet = True
            p.password = SHEET_PASSWORD
            p.insertRows = False
            p.deleteRows = False
            p.sort = False
            p.autoFilter = False
            p.formatCells = False
            p.formatRows = False
        ws.sheet_state = sh.state
    if lists_ws is not None:
        lists_ws.protection.sheet = True
    skeleton = io.BytesIO()
    neutralise(wb).save(skeleton)
    skeleton.seek(0)
    _stream_rows(skeleton, Path(path), sheets, [ws.title for ws in wb.worksheets], task)


_SHEETDATA = re.compile(rb"<sheetData>.*?</sheetData>|<sheetData\s*/>", re.S)
_ROW2 = re.compile(rb'<row r="2".*?</row>', re.S)
_ROW3 = re.compile(rb'<row r="3".*?</row>', re.S)
_CELL_S = re.compile(rb'<c r="([A-Z]+)2"[^>]*?s="(\d+)"')
_CELL_S3 = re.compile(rb'<c r="([A-Z]+)3"[^>]*?s="(\d+)"')


def _stream_rows(skeleton: io.BytesIO, out: Path, sheets: list[SheetRows], titles: list[str],
                 task: TaskState | None) -> None:
    zin = zipfile.ZipFile(skeleton)
    try:
        with replaced_when_done(out) as tmp:
            _stream_zip(zin, tmp, sheets, titles)
            if task is not None:
                task.check()
    finally:
        zin.close()


def _stream_zip(zin: zipfile.ZipFile, tmp: Path, sheets: list[SheetRows], titles: list[str]) -> None:
    by_title = {s.title: s for s in sheets}
    # sheet XML file per title (openpyxl names them sheet1.xml… in creation order)
    files = {f"xl/worksheets/sheet{i}.xml": t for i, t in enumerate(titles, 1)}
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            title = files.get(item.filename)
            if title is None or title not in by_title:
                zout.writestr(item, data)
                continue
            sh = by_title[title]
            m = _SHEETDATA.search(data)
            assert m is not None
            inner = m.group(0)
            row1 = re.search(rb'<row r="1".*?</row>', inner, re.S)
            row2 = _ROW2.search(inner)
            styles, quoted = {}, {}
            if row2:
                for letter, st in _CELL_S.findall(row2.group(0)):
                    styles[letter.decode()] = st.decode()
            row3 = _ROW3.search(inner)
            if row3:
                for letter, st in _CELL_S3.findall(row3.group(0)):
                    quoted[letter.decode()] = st.decode()
            with zout.open(item.filename, "w", force_zip64=True) as fh:
                head = data[: m.start()]
                head = re.sub(rb'<dimension ref="[^"]*"\s*/>', b"", head)
                fh.write(head)
                fh.write(b"<sheetData>")
                if row1:
                    fh.write(row1.group(0))
                _write_rows(fh, sh, styles, quoted)
                fh.write(b"</sheetData>")
                fh.write(data[m.end():])


def _cell_writer(letter: str, sattr: str, kind: str, qattr: str = "") -> Callable[[Any, str], str]:
    epoch, epoch_d = EXCEL_EPOCH, EXCEL_EPOCH.date()

    def text(v: Any, rs: str) -> str:
        if v.__class__ is not str:
            if isinstance(v, bool | int | float) and not isinstance(v, bool):
                return f'<c r="{letter}{rs}"{sattr}><v>{v!r}</v></c>'
            v = str(v)
        sa = qattr if qattr and formula_like(v) else sattr
        return f'<c r="{letter}{rs}" t="inlineStr"{sa}><is><t>{_esc(v)}</t></is></c>'

    def number(v: Any, rs: str) -> str:
        if v.__class__ is str:
            return text(v, rs)
        return f'<c r="{letter}{rs}"{sattr}><v>{v!r}</v></c>'

    def when(v: Any, rs: str) -> str:
        if v.__class__ is datetime:
            d = v - epoch
            return f'<c r="{letter}{rs}"{sattr}><v>{d.days + d.seconds / 86400!r}</v></c>'
        if v.__class__ is date:
            return f'<c r="{letter}{rs}"{sattr}><v>{(v - epoch_d).days}</v></c>'
        return text(v, rs)

    return {"int": number, "float": number, "date": when, "datetime": when}.get(kind, text)


def _write_rows(fh: Any, sh: SheetRows, styles: dict[str, str], quoted: dict[str, str]) -> None:
    n = len(sh.headers)
    letters = [col_letter(i) for i in range(n)]
    kinds = sh.kinds or ["text"] * n
    writers = [_cell_writer(x, f' s="{styles[x]}"' if x in styles else "", k, f' s="{quoted[x]}"' if x in quoted else "")
               for x, k in zip(letters, kinds, strict=True)]
    buf: list[str] = []
    r = 1
    for row in sh.rows:
        r += 1
        rs = str(r)
        parts = [f'<row r="{rs}">']
        parts += [writers[i](v, rs) for i, v in enumerate(row) if v is not None and v != ""]
        parts.append("</row>")
        buf.append("".join(parts))
        if len(buf) >= 2000:
            fh.write("".join(buf).encode())
            buf.clear()
    if buf:
        fh.write("".join(buf).encode())


# --- reading ---------------------------------------------------------------------------------


class Book:
    """A workbook opened for reading (values only)."""

    def __init__(self, path: str | Path) -> None:
        from python_calamine import CalamineWorkbook

        self.path = Path(path)
        self._wb = CalamineWorkbook.from_path(str(path))
        self.sheet_names: list[str] = list(self._wb.sheet_names)

    def rows(self, title: str) -> list[list[Any]]:
        if title not in self.sheet_names:
            return []
        return self._wb.get_sheet_by_name(title).to_python(skip_empty_area=False)

    def close(self) -> None:
        close = getattr(self._wb, "close", None)
        if close:
            close()


def iter_chunks(seq: list[Any], n: int = 5000) -> Iterator[list[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


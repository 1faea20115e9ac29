"""The exchange workbook (离线交换工作簿): which registers and columns it carries, how a database value
becomes a cell and a cell becomes a value again, and fast .xlsx writing and reading.

Why a module of its own: :mod:`gridman.core.services.exchange` decides *what* to merge; this module
only knows the file format, so the format can be read and tested without a database.

Values travel in a **canonical form** — ``str | int | float | None``, dates as ``YYYY-MM-DD``,
date-times as ``YYYY-MM-DD HH:MM:SS`` (rounded to the second), enumerations as their codes,
areas as their codes, rows as their ``uuid`` and users as their user names. The export-time
canonical values of every row are kept in the package (hidden sheet ``_原始值``), so a check-in
compares a cell with what was exported through the same cleaner, never with a float that went
through Excel.

Writing: openpyxl builds the skeleton of each sheet (headers, styles, hidden key columns, sheet
protection that leaves the data cells editable, drop-down lists) with one template data row; the
rows themselves are then streamed into the sheet XML with the template row's styles. openpyxl's
own cell writer manages ~60,000 cells/s here, a street's package has ~7 million cells.
Reading: python-calamine (Rust) — values only, which is all a check-in needs.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from gridman.core import enums, fields, idcard
from gridman.core.services import cleaning

FORMAT = "gridman-exchange/1"
META_SHEET = "_元数据"
ORIG_SHEET = "_原始值"
LIST_SHEET = "_列表"
HELP_SHEET = "说明"
UUID_HEADER = "UUID"
VERSION_HEADER = "版本"
DELETE_HEADER = "删除（填“是”）"
SHEET_PASSWORD = "gridman"  # protection against slips, not against intent: the checksum guards the keys

HOUSEHOLD_KINDS = fields.HOUSEHOLD_KINDS
STEP_ACTIONS = fields.STEP_ACTIONS


def enum_label(enum: type[StrEnum], value: str) -> str:
    """Chinese label of a member of ``enum`` (:func:`gridman.core.enums.label`)."""
    return enums.label(value, enum=enum)


# The census import's enumeration cleaners (the same table as enums.parse, with a cache).
_CENSUS_ENUM_CLEANERS = {
    enums.Sex: cleaning.clean_sex,
    enums.PopulationType: cleaning.clean_population_type,
    enums.Relation: cleaning.clean_relation,
    enums.ResidentStatus: cleaning.clean_status,
}
_enum_lookup = enums.lookup  # text_key(code / label / synonym) → code
parse_enum = enums.parse  # a code, label or synonym of ``enum`` → the member (ValueError otherwise)


class CellError(ValueError):
    """Why one cell cannot be read (Chinese reason)."""


@dataclass(frozen=True)
class Col:
    """One column of a register sheet.

    kind: text | int | float | date | datetime | enum | choice | idno | area | ref | refkey | user | info.
    ``ref``/``refkey`` columns name the referenced register in ``ref``; a ``refkey`` column is the
    visible natural key (户号, 楼栋编码) of the ``ref`` column with the same ``field``.
    ``readonly`` columns are shown but a check-in ignores offline edits of them.
    """

    field: str
    header: str
    kind: str = "text"
    enum: type[StrEnum] | None = None
    choices: dict[str, str] | None = None
    ref: str | None = None
    required: bool = False
    hidden: bool = False
    readonly: bool = False
    width: int = 14


@dataclass(frozen=True)
class Register:
    key: str  # table name
    sheet: str  # Chinese sheet title
    cols: tuple[Col, ...]
    natkey: str | None = None  # natural key field shown in other sheets (户号, 楼栋编码)
    versioned: bool = True

    @property
    def fields(self) -> list[str]:
        """The canonical fields, in order (one per exchanged column; refkey columns fold into refs)."""
        return [c.field for c in self.cols if c.kind not in ("refkey", "info")]

    @property
    def field_cols(self) -> dict[str, Col]:
        return {c.field: c for c in self.cols if c.kind not in ("refkey", "info")}

    def all_headers(self) -> list[str]:
        hs = [UUID_HEADER] + ([VERSION_HEADER] if self.versioned else [])
        return hs + [c.header for c in self.cols] + [DELETE_HEADER]


_EXCHANGE_KIND = {"code": "text", "tags": "text", "bool": "int"}  # catalogue kind → workbook kind


def _col(fd: fields.Field) -> Col:
    """The workbook column of a catalogue field: named by its model column, headed by its
    exchange header."""
    return Col(fd.attr or fd.key, fd.exchange_header, _EXCHANGE_KIND.get(fd.kind, fd.kind), enum=fd.enum,
               choices=dict(fd.choices) if fd.choices is not None else None,
               ref=fields.get(fd.ref).table if fd.ref else None, required=fd.not_blank, hidden=fd.hidden,
               readonly=fd.readonly, width=fd.width)


# Every register of the field catalogue with an "exchange" view, in the catalogue's (dependency) order.
REGISTERS: tuple[Register, ...] = tuple(
    Register(r.table, r.zh, tuple(_col(fd) for fd in r.view("exchange")), natkey=r.natkey, versioned=r.versioned)
    for r in fields.with_view("exchange"))
BY_KEY: dict[str, Register] = {r.key: r for r in REGISTERS}
# Package-only rows kept in the originals sheet (not merged back): the area subtree and the users
# the rows refer to, so `exchange open` can build a complete local database.
AREA_FIELDS = ["code", "name", "level", "parent_code", "center_lon", "center_lat", "household_limit", "boundary_hex"]
USER_FIELDS = ["display_name", "role"]


# --- canonical values ------------------------------------------------------------------------

_EXCEL_EPOCH = datetime(1899, 12, 30)


def canon_datetime(v: datetime) -> str:
    if v.microsecond:
        v = (v + timedelta(microseconds=500_000)).replace(microsecond=0)
    return v.strftime("%Y-%m-%d %H:%M:%S")


def canon_db(col: Col, v: Any, *, mask_ids: bool = False) -> Any:
    """A database value (already mapped for areas/refs/users) in canonical form."""
    if v is None:
        return None
    k = col.kind
    if k in ("text", "choice", "enum", "area", "ref", "user"):
        s = str(v).strip()
        return s or None
    if k == "idno":
        s = str(v).strip()
        return (idcard.mask(s) if mask_ids else s) or None
    if k == "int":
        return int(v)
    if k == "float":
        return float(v)
    if k == "date":
        return v.isoformat() if isinstance(v, date) else str(v)[:10]
    if k == "datetime":
        return canon_datetime(v) if isinstance(v, datetime) else str(v)
    return v


def canon_fn(col: Col, *, mask_ids: bool = False) -> Callable[[Any], Any]:
    """:func:`canon_db` specialised for one column (the hot path of a checkout: millions of cells)."""
    k = col.kind
    if k in ("text", "choice", "enum", "area", "ref", "user"):
        def text(v: Any) -> Any:
            if v is None:
                return None
            if v.__class__ is not str:
                v = str(v)
            return v.strip() or None
        return text
    if k == "idno" and not mask_ids:
        return canon_fn(Col(col.field, col.header, "text"))
    if k == "datetime":
        def dt(v: Any) -> Any:
            if v is None:
                return None
            if v.__class__ is datetime:
                if v.microsecond:
                    v = (v + timedelta(microseconds=500_000)).replace(microsecond=0)
                return v.strftime("%Y-%m-%d %H:%M:%S")
            return canon_db(col, v)
        return dt
    if k == "date":
        def d(v: Any) -> Any:
            return None if v is None else v.isoformat() if isinstance(v, date) else canon_db(col, v)
        return d
    return lambda v: canon_db(col, v, mask_ids=mask_ids)


def display_fn(col: Col) -> Callable[[Any], Any] | None:
    """:func:`display` specialised for one column; None when the canonical value is shown as is."""
    if col.kind == "enum":
        assert col.enum is not None
        labels = {m.value: enum_label(col.enum, m) for m in col.enum}
        return lambda v: labels.get(v, v)
    if col.kind == "choice":
        ch = col.choices or {}
        return lambda v: ch.get(v, v)
    if col.kind == "date":
        return date.fromisoformat
    if col.kind == "datetime":
        return datetime.fromisoformat
    return None


def _num_to_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


def _parse_date_text(s: str) -> date:
    s = s.strip().replace("/", "-").replace(".", "-").replace("年", "-").replace("月", "-").replace("日", "")
    if len(s) == 8 and s.isdigit():
        return date(int(s[:4]), int(s[4:6]), int(s[6:]))
    return date.fromisoformat("-".join(p.zfill(2) for p in s.split("-")[:3])) if s.count("-") >= 2 else date.fromisoformat(s)


def clean_cell(col: Col, raw: Any) -> Any:
    """THE cell cleaner of the exchange: a raw cell value (from calamine or openpyxl) → canonical value.

    Raises :class:`CellError` with a Chinese reason. The census import's cleaners (dates in every
    form, phones, enumerations with synonyms) can replace the bodies here one kind at a time.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "":
            return None
    k = col.kind
    if k in ("text", "user", "area", "ref", "refkey"):
        if isinstance(raw, float):
            return _num_to_text(raw)
        if isinstance(raw, datetime | date):
            return raw.isoformat()
        return str(raw)
    if k == "idno":
        if isinstance(raw, str) and "*" in raw:
            return idcard.normalize(raw) or None  # a masked ID from a clerk's package: kept as text
        c = cleaning.clean_citizen_id(raw)
        if not c.ok:
            raise CellError(c.issue.message if c.issue else "身份证号无效")
        return c.value.number if c.value is not None else None
    if k == "int":
        try:
            f = float(raw)
        except (TypeError, ValueError):
            raise CellError(f"“{raw}”不是整数") from None
        if not f.is_integer():
            raise CellError(f"“{raw}”不是整数")
        return int(f)
    if k == "float":
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise CellError(f"“{raw}”不是数字") from None
    if k == "date":
        c = cleaning.clean_date(raw)
        if not c.ok:
            raise CellError(c.issue.message if c.issue else f"“{raw}”不是有效日期（如 2024-05-01）")
        return c.value.isoformat() if c.value is not None else None
    if k == "datetime":
        if isinstance(raw, datetime):
            return canon_datetime(raw)
        if isinstance(raw, date):
            return f"{raw.isoformat()} 00:00:00"
        if isinstance(raw, float | int):
            return canon_datetime(_EXCEL_EPOCH + timedelta(days=float(raw)))
        try:
            return canon_datetime(datetime.fromisoformat(str(raw).replace("/", "-")))
        except ValueError:
            try:
                return f"{_parse_date_text(str(raw)).isoformat()} 00:00:00"
            except ValueError:
                raise CellError(f"“{raw}”不是有效时间（如 2024-05-01 09:30）") from None
    if k == "enum":
        assert col.enum is not None
        census = _CENSUS_ENUM_CLEANERS.get(col.enum)
        if census is not None:
            c = census(raw)
            if c.ok and c.value is not None:
                return c.value
        try:
            return parse_enum(col.enum, str(raw)).value
        except ValueError:
            allowed = "、".join(enum_label(col.enum, m) for m in col.enum)
            raise CellError(f"“{raw}”不是有效取值（可选：{allowed}）") from None
    if k == "choice":
        assert col.choices is not None
        t = str(raw).strip()
        for code, lab in col.choices.items():
            if t in (code, lab):
                return code
        raise CellError(f"“{raw}”不是有效取值（可选：{'、'.join(col.choices.values())}）")
    return raw


def cleaner_for(col: Col) -> Callable[[Any], Any]:
    """THE entry point for reading a column's cells: a function raw cell → canonical value that
    raises :class:`CellError`. It takes the common shapes (text, labels, real dates) directly and
    hands everything else to :func:`clean_cell` — point this at the census cleaners to share them."""
    k = col.kind
    slow = clean_cell

    if k in ("text", "user", "area", "ref", "refkey"):
        def text(v: Any) -> Any:
            if v.__class__ is str:
                return v.strip() or None
            return None if v is None else slow(col, v)
        return text
    if k in ("enum", "choice"):
        table = dict(_enum_lookup(col.enum)) if col.enum else {}
        for code, lab in (col.choices or {}).items():
            table[code] = table[lab] = code
        exact = {**{c: c for c in table.values()}, **{lab: c for lab, c in table.items()}}

        def choice(v: Any) -> Any:
            if v.__class__ is str:
                hit = exact.get(v)
                if hit is not None:
                    return hit
            return None if v is None or v == "" else slow(col, v)
        return choice
    if k == "datetime":
        def dt(v: Any) -> Any:
            if v.__class__ is datetime:
                if v.microsecond:
                    v = (v + timedelta(microseconds=500_000)).replace(microsecond=0)
                return v.strftime("%Y-%m-%d %H:%M:%S")
            return None if v is None or v == "" else slow(col, v)
        return dt
    if k == "date":
        def d(v: Any) -> Any:
            if v.__class__ is date:
                return v.isoformat()
            return None if v is None or v == "" else slow(col, v)
        return d
    if k == "int":
        def i(v: Any) -> Any:
            if v.__class__ is float and v.is_integer():
                return int(v)
            return None if v is None or v == "" else slow(col, v)
        return i
    return lambda v: None if v is None or v == "" else slow(col, v)


def display(col: Col, v: Any) -> Any:
    """Canonical value → what the cell shows (labels for enumerations, real dates)."""
    if v is None:
        return None
    k = col.kind
    if k == "enum":
        assert col.enum is not None
        return enum_label(col.enum, v)
    if k == "choice":
        return (col.choices or {}).get(v, v)
    if k == "date":
        return date.fromisoformat(v)
    if k == "datetime":
        return datetime.fromisoformat(v)
    return v


def to_db(col: Col, v: Any) -> Any:
    """Canonical → Python value for a plain column (areas/refs/users are mapped by the caller)."""
    if v is None:
        return None
    if col.kind == "date":
        return date.fromisoformat(v)
    if col.kind == "datetime":
        return datetime.fromisoformat(v)
    return v


def checksum(meta: dict[str, Any], originals: Iterable[tuple[str, str, int, str]]) -> str:
    """sha256 over the checksummed metadata and every export-time row (register, uuid, version, values)."""
    h = hashlib.sha256()
    h.update(json.dumps(meta, ensure_ascii=False, sort_keys=True).encode())
    for reg, uuid, ver, vals in originals:
        h.update(f"\n{reg}\t{uuid}\t{ver}\t{vals}".encode())
    return h.hexdigest()


# --- writing ---------------------------------------------------------------------------------

META_LABELS = {
    "format": "格式", "package_id": "交换包编号", "area_code": "区划编码", "area_name": "区划名称",
    "area_level": "区划层级", "grid_codes": "网格（指定网格时）", "source_database_id": "来源数据库标识",
    "exported_at": "导出时间", "exported_by": "导出人", "ids_masked": "身份证号已脱敏", "columns": "各表字段",
    "counts": "各表行数", "checksum": "校验值", "kind": "文件类型", "returned_at": "回传导出时间",
    "returned_by": "回传导出人", "returned_from_database_id": "回传数据库标识",
}
CHECKSUMMED_META = ("format", "package_id", "area_code", "area_name", "area_level", "grid_codes",
                    "source_database_id", "exported_at", "exported_by", "ids_masked", "columns", "counts")

_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _esc(s: str) -> str:
    if "&" in s or "<" in s or ">" in s:
        s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if not s.isprintable():  # control characters are not allowed in XML 1.0; CR would be normalised away
        s = _ILLEGAL.sub("", s).replace("\r", "&#13;")
    return s


def _col_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
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


def write_workbook(path: str | Path, sheets: list[SheetRows]) -> None:
    """Write an .xlsx: openpyxl for the skeleton, then rows streamed in with the template styles."""
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
            letter = _col_letter(i)
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
            letter = _col_letter(list_col - 1)
            dv = DataValidation(type="list", formula1=f"'{LIST_SHEET}'!${letter}$1:${letter}${len(values)}",
                                allow_blank=True, showErrorMessage=True, errorTitle="取值无效",
                                error="请从下拉列表中选择")
            dv.add(f"{_col_letter(i)}2:{_col_letter(i)}1048576")
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
    wb.save(skeleton)
    skeleton.seek(0)
    _stream_rows(skeleton, Path(path), sheets, [ws.title for ws in wb.worksheets])


_SHEETDATA = re.compile(rb"<sheetData>.*?</sheetData>|<sheetData\s*/>", re.S)
_ROW2 = re.compile(rb'<row r="2".*?</row>', re.S)
_CELL_S = re.compile(rb'<c r="([A-Z]+)2"[^>]*?s="(\d+)"')


def _stream_rows(skeleton: io.BytesIO, out: Path, sheets: list[SheetRows], titles: list[str]) -> None:
    by_title = {s.title: s for s in sheets}
    zin = zipfile.ZipFile(skeleton)
    # sheet XML file per title (openpyxl names them sheet1.xml… in creation order)
    files = {t: f"xl/worksheets/sheet{i}.xml" for i, t in enumerate(titles, 1)}
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            title = next((t for t, f in files.items() if f == item.filename), None)
            if title is None or title not in by_title:
                zout.writestr(item, data)
                continue
            sh = by_title[title]
            m = _SHEETDATA.search(data)
            assert m is not None
            inner = m.group(0)
            row1 = re.search(rb'<row r="1".*?</row>', inner, re.S)
            row2 = _ROW2.search(inner)
            styles = {}
            if row2:
                for letter, s in _CELL_S.findall(row2.group(0)):
                    styles[letter.decode()] = s.decode()
            with zout.open(item.filename, "w", force_zip64=True) as fh:
                head = data[: m.start()]
                head = re.sub(rb'<dimension ref="[^"]*"\s*/>', b"", head)
                fh.write(head)
                fh.write(b"<sheetData>")
                if row1:
                    fh.write(row1.group(0))
                _write_rows(fh, sh, styles)
                fh.write(b"</sheetData>")
                fh.write(data[m.end():])
    zin.close()
    tmp.replace(out)


def _cell_writer(letter: str, sattr: str, kind: str) -> Callable[[Any, str], str]:
    epoch, epoch_d = _EXCEL_EPOCH, _EXCEL_EPOCH.date()

    def text(v: Any, rs: str) -> str:
        if v.__class__ is not str:
            if isinstance(v, bool | int | float) and not isinstance(v, bool):
                return f'<c r="{letter}{rs}"{sattr}><v>{v!r}</v></c>'
            v = str(v)
        return f'<c r="{letter}{rs}" t="inlineStr"{sattr}><is><t>{_esc(v)}</t></is></c>'

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


def _write_rows(fh: Any, sh: SheetRows, styles: dict[str, str]) -> None:
    n = len(sh.headers)
    letters = [_col_letter(i) for i in range(n)]
    kinds = sh.kinds or ["text"] * n
    writers = [_cell_writer(x, f' s="{styles[x]}"' if x in styles else "", k) for x, k in zip(letters, kinds, strict=True)]
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


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


ConvFn = Callable[[Any], Any]

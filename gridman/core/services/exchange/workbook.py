"""The exchange workbook (离线交换工作簿): which registers and columns it carries, and how a database
value becomes a cell and a cell becomes a value again.

Why a module of its own: the other modules of :mod:`gridman.core.services.exchange` decide *what*
to merge; this module only knows the format, so it can be read and tested without a database
(the file layer, streamed writing and calamine reading, is :mod:`.xlsx`).

Values travel in a **canonical form** — ``str | int | float | None``, dates as ``YYYY-MM-DD``,
date-times as ``YYYY-MM-DD HH:MM:SS`` (rounded to the second), enumerations as their codes,
areas as their codes, rows as their ``uuid`` and users as their user names. The export-time
canonical values of every row are kept in the package (hidden sheet ``_原始值``), so a check-in
compares a cell with what was exported through the same cleaner, never with a float that went
through Excel.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from gridman.core import enums, fields, idcard
from gridman.core.services import cleaning
from gridman.core.services.exchange.xlsx import EXCEL_EPOCH

FORMAT = "gridman-exchange/1"
META_SHEET = "_元数据"
ORIG_SHEET = "_原始值"
HELP_SHEET = "说明"
UUID_HEADER = "UUID"
VERSION_HEADER = "版本"
DELETE_HEADER = "删除（填“是”）"

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


# --- canonical values ------------------------------------------------------------------------


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
            return canon_datetime(EXCEL_EPOCH + timedelta(days=float(raw)))
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


# --- the metadata sheet ------------------------------------------------------------------------

META_LABELS = {
    "format": "格式", "package_id": "交换包编号", "area_code": "区划编码", "area_name": "区划名称",
    "area_level": "区划层级", "grid_codes": "网格（指定网格时）", "source_database_id": "来源数据库标识",
    "exported_at": "导出时间", "exported_by": "导出人", "ids_masked": "身份证号已脱敏", "columns": "各表字段",
    "counts": "各表行数", "checksum": "校验值", "kind": "文件类型", "returned_at": "回传导出时间",
    "returned_by": "回传导出人", "returned_from_database_id": "回传数据库标识",
}
CHECKSUMMED_META = ("format", "package_id", "area_code", "area_name", "area_level", "grid_codes",
                    "source_database_id", "exported_at", "exported_by", "ids_masked", "columns", "counts")

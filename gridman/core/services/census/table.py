"""Stage 2 of the census import, finding the table: the header row is the row (among the first
30) whose cells name the most known fields (title rows and merged cells above are skipped), a
notes row under it (必填/可选/格式说明) is skipped, blank and totals rows (合计/总计) are skipped;
columns are mapped by :data:`cleaning.HEADER_SYNONYMS`, an explicit ``{header: field}`` mapping,
or the mapping remembered (a ``Setting`` row) the last time this header set was imported.

Threading: the caller's thread and session.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from gridman.core.models import Setting, utcnow
from gridman.core.services import cleaning
from gridman.core.services.census.records import ALL_FIELDS, HEADER_SCAN_ROWS, file_error
from gridman.core.services.census.workbook import SheetData, read_workbook

_NOTE = re.compile(r"必填|选填|可选|非必填|格式|说明|示例|例：|例如|yyyy|填写|下拉|请选择|optional|required|format")
_TOTAL = re.compile(r"^(合计|总计|小计|共计|累计|total|sum)\b", re.IGNORECASE)
# a second column of a field maps to this one (联系电话 + 电话, two 电话 columns: the second is the landline)
SECOND_COLUMN = {"phone": "landline"}


@dataclass
class Table:
    sheet: str
    header_row: int  # Excel row number
    headers: list[str]
    columns: dict[int, str]  # column index → field
    unknown: list[str]
    rows: list[tuple[int, list[Any]]]
    skipped: list[tuple[int, str]]
    formulas: dict[int, set[int]] = field(default_factory=dict)  # column index → Excel rows of formula cells


def _cell_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _header_score(row: Sequence[Any], explicit: dict[str, str]) -> int:
    n = 0
    for v in row:
        t = _cell_text(v)
        if t and (cleaning.field_for_header(t) or cleaning.header_key(t) in explicit):
            n += 1
    return n


def header_set_key(headers: Iterable[str]) -> str:
    keys = sorted(cleaning.header_key(h) for h in headers if _cell_text(h))
    return "census_import.mapping." + hashlib.sha1("\x1f".join(keys).encode()).hexdigest()[:20]


def find_table(sd: SheetData, *, mapping: dict[str, str] | None = None,
               remembered: Callable[[list[str]], dict[str, str] | None] | None = None) -> Table | None:
    """The table in a sheet, or None when no row looks like a header."""
    explicit = {cleaning.header_key(k): v for k, v in (mapping or {}).items()}
    best, best_score = -1, 0
    for i, row in enumerate(sd.rows[:HEADER_SCAN_ROWS]):
        sc = _header_score(row, explicit)
        if sc > best_score:
            best, best_score = i, sc
    if best < 0 or best_score < 2:
        return None
    header_cells = sd.rows[best]
    headers = [_cell_text(v) for v in header_cells]
    nonblank = [h for h in headers if h]
    mem = remembered(nonblank) if remembered and not mapping else None
    mem_keys = {cleaning.header_key(k): v for k, v in (mem or {}).items()}
    columns: dict[int, str] = {}
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for j, h in enumerate(headers):
        if not h:
            continue
        k = cleaning.header_key(h)
        f = explicit.get(k) if k in explicit else mem_keys.get(k) if k in mem_keys else cleaning.field_for_header(h)
        if f in ("", "-", None):
            if f is None and not cleaning.is_ignored_header(h):
                unknown.append(h)
            continue
        if f not in ALL_FIELDS:
            raise file_error(f"列“{h}”映射到未知字段“{f}”（可用字段：{', '.join(ALL_FIELDS)}）",
                              f"Column {h!r} is mapped to unknown field {f!r}")
        if f in seen and SECOND_COLUMN.get(f) not in (None, *seen):
            f = SECOND_COLUMN[f]
        if f in seen:
            raise file_error(
                f"工作表“{sd.name}”中“{seen[f]}”和“{h}”两列都对应“{cleaning.FIELD_LABELS[f][0]}”，请删除一列或用 --map 指定",
                f"Columns {seen[f]!r} and {h!r} both map to {f}; remove one or give --map")
        seen[f] = h
        columns[j] = f
    rows: list[tuple[int, list[Any]]] = []
    skipped: list[tuple[int, str]] = []
    width = len(header_cells)
    first_data = True
    for i in range(best + 1, len(sd.rows)):
        row = sd.rows[i]
        first = row[0] if row and width else None
        if first is None or first == "" or (first.__class__ is str and not first.strip()):
            first = None  # the first cell is blank (rare): the first non-blank one, if any
            for v in row[:width]:
                if v != "" and v is not None and (type(v) is not str or v.strip()):
                    first = v
                    break
        if first is None:
            continue
        if first_data and i <= best + 2:
            filled = [t for t in (_cell_text(v) for v in row[:width]) if t]
            if sum(1 for t in filled if _NOTE.search(t.lower())) * 2 >= len(filled):
                skipped.append((i + 1, "说明行 / notes row"))
                continue
        if type(first) is str and _TOTAL.match(first.strip()):
            skipped.append((i + 1, "合计行 / totals row"))
            continue
        first_data = False
        if len(row) < width:
            row = list(row) + [""] * (width - len(row))
        elif len(row) > width:
            row = row[:width]
        rows.append((i + 1, row))
    return Table(sd.name, best + 1, headers, columns, unknown, rows, skipped, sd.formulas)


Remembered = Callable[[list[str]], dict[str, str] | None]


def remembered_loader(session: Session) -> Remembered:
    """The mapping remembered for a header set (``find_table``'s ``remembered``), read in ``session``."""
    def load(headers: list[str]) -> dict[str, str] | None:
        st = session.get(Setting, header_set_key(headers))
        return st.value if st is not None and isinstance(st.value, dict) else None
    return load


def remember_mapping(session: Session, table: Table) -> None:
    """Keep the table's mapping for the next import of the same header set."""
    key = header_set_key([h for h in table.headers if h])
    twice = {h for h in table.headers if table.headers.count(h) > 1}  # mapped by position: not remembered
    value = {table.headers[j]: f for j, f in table.columns.items() if table.headers[j] not in twice}
    for h in table.unknown:
        value[h] = ""
    conn = session.connection()
    conn.execute(delete(Setting).where(Setting.key == key))
    conn.execute(insert(Setting), [{"key": key, "value": value, "updated_at": utcnow()}])


def pick_table(file_name: str, names: list[str], load: Callable[[str], SheetData], *, sheet: str | None,
               mapping: dict[str, str] | None, remembered: Remembered) -> Table:
    """The census table of the workbook: in ``sheet`` if named, else in the one sheet that holds one."""
    if sheet is not None:
        if sheet not in names:
            raise file_error(f"工作簿中没有名为“{sheet}”的工作表（现有：{'、'.join(names)}）",
                             f"No sheet named {sheet!r} (sheets: {', '.join(names)})")
        table = find_table(load(sheet), mapping=mapping, remembered=remembered)
        if table is None:
            raise file_error(f"工作表“{sheet}”中找不到表头（应有“姓名”“公民身份号码”等列）",
                             f"No header row found in sheet {sheet!r} (expected columns like 姓名, 公民身份号码)")
        return table
    found = []
    for n in names:
        t = find_table(load(n), mapping=mapping, remembered=remembered)
        if t is not None:
            found.append(t)
    if not found:
        raise file_error(f"在“{file_name}”的工作表（{'、'.join(names) or '无'}）中找不到人口表的表头",
                         f"No census table found in {file_name} (sheets: {', '.join(names) or 'none'})")
    if len(found) > 1:
        raise file_error(
            f"“{file_name}”有多个工作表含有人口数据（{'、'.join(t.sheet for t in found)}），请用 --sheet 选择一个",
            f"Several sheets hold census data ({', '.join(t.sheet for t in found)}); choose one with --sheet")
    return found[0]


@dataclass
class SheetPreview:
    """One sheet as the import wizard shows it before the dry run."""

    sheets: list[str]
    sheet: str
    header_row: int
    headers: list[str]
    mapping: dict[str, str]  # header → field ("" = ignored)
    samples: list[list[str]]  # per header: the first values under it


def preview_sheet(session: Session, path: Path, sheet: str | None, *, sample_rows: int = 4) -> SheetPreview:
    """The sheet (``sheet``, or the first) of the workbook at ``path``: its header row, the
    mapping the import would use and the first values of each column (the wizard's mapping page)."""
    names, load = read_workbook(path)
    chosen = sheet if sheet in names else names[0]
    table = find_table(load(chosen), remembered=remembered_loader(session))
    if table is None:
        raise file_error(f"工作表“{chosen}”中找不到表头行", f"No header row in sheet {chosen!r}")
    mapping = {h: "" for h in table.headers if h}
    for idx, f in table.columns.items():
        if idx < len(table.headers) and table.headers[idx]:
            mapping[table.headers[idx]] = f
    samples = []
    for i, h in enumerate(table.headers):
        if not h:
            continue
        vals = []
        for _rn, row in table.rows[:sample_rows]:
            v = row[i] if i < len(row) else None
            vals.append("" if v is None else str(v))
        samples.append(vals)
    return SheetPreview(names, chosen, table.header_row, [h for h in table.headers if h], mapping, samples)

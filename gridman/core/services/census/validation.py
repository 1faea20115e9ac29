"""Stage 3 of the census import, validation of the cells: every cell through :mod:`cleaning`
(column by column, each distinct value once), then the checks within a row (citizen ID against
birth date and sex, sensitive tags) and across the file (duplicates). What the database says
(grids, households, registered residents) is :mod:`census.matching`.

Severities: a bad cell of an identity field (the catalogue's ``Field.identity``: name, citizen
ID, household) refuses the person; a bad cell of any other field is a warning — the person is
imported without that value. Identical duplicate rows collapse to the first, with a warning.

Threading: the caller's thread.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core import fields, idcard
from gridman.core.models import Tag
from gridman.core.services import cleaning
from gridman.core.services.census.table import Table
from gridman.core.services.cleaning import Clean, Issue
from gridman.core.services.permissions import Actor, Perm
from gridman.core.tasks import TaskState

_TEXT_LIMITS = {"name": 60, "registered_address": 200, "current_address": 200, "residence_permit_no": 40,
                "education": 20, "marital_status": 20, "political_status": 20, "employer": 100, "note": 500,
                "household_address": 200, "building": 100, "grid": 100}


def cleaners(tags: cleaning.TagIndex, today: date) -> dict[str, Callable[[Any], Clean]]:
    c: dict[str, Callable[[Any], Clean]] = {
        f: functools.partial(cleaning.clean_text, max_len=n) for f, n in _TEXT_LIMITS.items()
    }
    c.update({
        "name": lambda raw: cleaning.clean_required_text(raw, max_len=60, label_zh="姓名", label_en="name"),
        "household_no": lambda raw: cleaning.clean_code(raw, max_len=40),
        "citizen_id": cleaning.clean_citizen_id,
        "sex": cleaning.clean_sex,
        "ethnicity": cleaning.clean_ethnicity,
        "birth_date": cleaning.with_many(lambda raw: cleaning.clean_date(raw, not_future=True, today=today),
                                         lambda vs: cleaning.clean_dates(vs, not_future=True, today=today)),
        "residence_permit_expiry": cleaning.clean_date,
        "phone": cleaning.clean_phone,
        "landline": cleaning.clean_phone,
        "relation_to_head": cleaning.clean_relation,
        "population_type": cleaning.clean_population_type,
        "status": cleaning.clean_status,
        "tags": tags.clean,
    })
    return c


_UNAMBIGUOUS_TYPES = frozenset({str, type(None), date, datetime})
# the fields whose bad cell refuses the person (declared in the catalogue, Field.identity)
IDENTITY = frozenset(fd.key for fd in fields.get("residents").view("census") if fd.identity)


def secondary(f: str | None, iss: Issue) -> Issue:
    """An issue as it counts for field ``f``: an error of a secondary field becomes a warning
    (the person is imported without that value)."""
    if iss.severity != "error" or f is None or f in IDENTITY:
        return iss
    return Issue(iss.code, f"{iss.message}；该项未导入，其余信息已导入",
                 f"{iss.en}; this field was not imported, the rest of the row was", "warning")


def clean_columns(table_rows: Sequence[tuple[int, Sequence[Any]]],
                   col_items: Sequence[tuple[int, str, Callable[[Any], Clean], bool]], task: TaskState,
                   ) -> tuple[list[str], list[list[Any]], dict[int, list[tuple[str | None, Issue]]]]:
    """Clean the table column by column: each distinct cell value of a column goes through its
    cleaner once (sex, ethnicity, relation, dates, addresses… repeat a lot), then the results are
    mapped back onto the rows at C speed. Returns the fields, one list of cleaned values per field
    (None: blank or refused) and the issues by row index, in column order within a row — exactly
    what cleaning cell by cell gives, with the errors of secondary fields made warnings (:func:`secondary`).

    Cell values are keyed by ``(type, value)`` unless they are ``str`` (the common case), so that
    ``1``, ``1.0`` and ``True`` — equal in Python — are still cleaned separately."""
    fields: list[str] = []
    columns: list[list[Any]] = []
    issues: dict[int, list[tuple[str | None, Issue]]] = {}
    if not table_rows:
        return [f for _, f, _, _ in col_items], [[] for _ in col_items], {}
    n_cols = max(len(col_items), 1)
    cells = list(zip(*(raw for _, raw in table_rows), strict=True))  # the table by column, at C speed
    for c, (j, f, fn, required) in enumerate(col_items):
        task.progress(0.15 + 0.2 * c / n_cols, f"校验“{cleaning.FIELD_LABELS.get(f, (f,))[0]}”列")
        keys: Sequence[Any] = cells[j]
        distinct = dict.fromkeys(keys)
        blank: list[Any] = []
        if not required:  # blank cells of an optional column: no value, no issue, no cleaner call
            blank = [b for b in ("", None) if b in distinct]
            for b in blank:
                del distinct[b]
        if _UNAMBIGUOUS_TYPES.issuperset(map(type, distinct)):  # the common case: str, dates and blanks only
            many = getattr(fn, "many", None)
            results = many(list(distinct)) if many is not None else list(map(fn, distinct))
        else:  # numbers: 1 == 1.0 == True, yet each is cleaned as what it is
            keys = [x if x.__class__ is str else (x.__class__, x) for x in keys]
            distinct = dict.fromkeys(keys)
            blank = [b for b in ("", (type(None), None)) if b in distinct] if not required else []
            for b in blank:
                del distinct[b]
            results = [fn(key[1] if key.__class__ is tuple else key) for key in distinct]
        value_of: dict[Any, Any] = dict(zip(distinct, map(operator.itemgetter(0), results), strict=True))
        found = list(map(operator.itemgetter(1), results))
        bad: dict[Any, Issue] = {}
        if any(found):
            for key, iss in zip(distinct, found, strict=True):
                if iss is not None:
                    if iss.severity == "error":  # a refused cell has no value (whatever came with its issue)
                        value_of[key] = None
                    bad[key] = secondary(f, iss)
        for b in blank:
            value_of[b] = None
        fields.append(f)
        columns.append(list(map(value_of.__getitem__, keys)))
        if bad:
            for k, key in enumerate(keys):
                iss = bad.get(key)
                if iss is not None:
                    issues.setdefault(k, []).append((f, iss))
    return fields, columns, issues


@dataclass(slots=True)
class Row:
    """One data row of the table on its way through validation: its cleaned values and issues."""

    row: int
    values: dict[str, Any]
    issues: list[tuple[str | None, Issue]] = field(default_factory=list)
    grid_id: int | None = None
    hh_key: str | None = None  # household_no
    existing: dict[str, Any] | None = None  # the matched resident row

    @property
    def bad(self) -> bool:
        return bool(self.issues) and any(i.severity == "error" for _, i in self.issues)

    def err(self, f: str | None, code: str, zh: str, en: str, severity: str = "error") -> None:
        self.issues.append((f, Issue(code, zh, en, severity)))


def clean_table(session: Session, actor: Actor, table: Table, today: date, task: TaskState) -> list[Row]:
    """Every data row of ``table``, cleaned and checked within itself (not yet against the database)."""
    tag_index = cleaning.TagIndex(session.execute(select(Tag)).scalars())
    by_field = cleaners(tag_index, today)
    col_items = [(j, f, by_field[f], f == "name") for j, f in table.columns.items() if f in by_field]
    fields, columns, col_issues = clean_columns(table.rows, col_items, task)
    rows = _rows(table.rows, fields, columns, col_issues, actor.can(Perm.VIEW_SENSITIVE_TAGS), task)
    if table.formulas:
        _warn_formulas(table, rows)
    return rows


def _warn_formulas(table: Table, rows: list[Row]) -> None:
    """Formula cells were read as the values saved with them (never evaluated): a warning on each
    such cell of an imported column, one for a column that is not imported (序号 = ROW()-1)."""
    for j, at in sorted(table.formulas.items()):
        f = table.columns.get(j)
        hit = [r for r in rows if r.row in at]
        if not hit:
            continue
        if f is not None:
            for r in hit:
                r.err(f, "formula", "公式单元格：已使用文件中保存的计算结果（未重新计算）",
                      "A formula cell: the result saved in the file was used (not recalculated)", severity="warning")
        else:
            h = table.headers[j] if j < len(table.headers) else ""
            hit[0].err(None, "formula", f"“{h}”列有 {len(hit)} 个公式单元格，该列不导入",
                       f"Column {h!r} has {len(hit)} formula cells; the column is not imported", severity="warning")


def _rows(table_rows: Sequence[tuple[int, Sequence[Any]]], fields: list[str], columns: list[list[Any]],
          col_issues: dict[int, list[tuple[str | None, Issue]]], may_sensitive: bool, task: TaskState) -> list[Row]:
    """The cleaned columns back as rows; the citizen ID gives a blank birth date and sex and must
    agree with them when given; sensitive tags need the permission."""
    n_rows = len(table_rows)
    rows: list[Row] = []
    for k, ((rownum, _raw), tup) in enumerate(zip(table_rows, zip(*columns, strict=True) if columns else ((),) * n_rows,
                                                  strict=True)):
        if k % 5000 == 0:
            task.progress(0.35 + 0.15 * k / max(n_rows, 1), f"校验第 {k + 1:,}/{n_rows:,} 行")
        vals = {f: v for f, v in zip(fields, tup, strict=True) if v is not None}
        r = Row(rownum, vals, col_issues.pop(k, []))
        info = vals.get("citizen_id")
        if isinstance(info, idcard.IdInfo):
            vals["citizen_id"] = info.number
            bd = vals.get("birth_date")
            if bd is None:
                if not r.issues or not any(f == "birth_date" for f, _ in r.issues):
                    vals["birth_date"] = info.birth_date
            elif bd != info.birth_date:
                r.err("birth_date", "birth_mismatch", f"出生日期 {bd} 与身份证号中的 {info.birth_date} 不一致",
                      f"Birth date {bd} does not match the citizen ID ({info.birth_date})")
            sx = vals.get("sex")
            if sx is None:
                if not r.issues or not any(f == "sex" for f, _ in r.issues):
                    vals["sex"] = info.sex
            elif sx != info.sex:
                r.err("sex", "sex_mismatch", "性别与身份证号不一致（第 17 位奇数为男、偶数为女）",
                      "Sex does not match the citizen ID (17th digit odd = male)")
        if not may_sensitive:
            for t in vals.get("tags", ()):
                if t.sensitive:
                    r.err("tags", "tag_sensitive", f"您无权登记敏感标签“{t.name}”", f"You may not set the sensitive tag {t.code}")
        rows.append(r)
    return rows


def _identical(a: Row, b: Row) -> bool:
    """Two rows saying exactly the same (every cleaned value, household and grid)."""
    return a.values == b.values and a.hh_key == b.hh_key and a.grid_id == b.grid_id


def _collapse(first: Row, r: Row) -> None:
    first.err("citizen_id" if r.values.get("citizen_id") else "name", "duplicate_identical",
              f"第 {r.row} 行与本行完全相同，已合并（只导入一次）",
              f"Row {r.row} is identical to this one; merged (imported once)", severity="warning")


def mark_duplicates(rows: list[Row]) -> None:
    """Rows of the file naming the same person: the same citizen ID, or (both without an ID) the
    same household and name. A row identical to an earlier one is dropped from ``rows`` (a
    warning on the earlier row names it); different rows naming one person are both errors."""
    by_id: dict[str, Row] = {}
    by_hn: dict[tuple[str, str], Row] = {}
    dropped: set[int] = set()
    for r in rows:
        cid = r.values.get("citizen_id")
        if cid:
            first = by_id.setdefault(cid, r)
            if first is not r and _identical(first, r):
                _collapse(first, r)
                dropped.add(id(r))
            elif first is not r:
                r.err("citizen_id", "duplicate_in_file", f"身份证号与第 {first.row} 行重复",
                      f"Same citizen ID as row {first.row}")
                if not any(i.code == "duplicate_in_file" for _, i in first.issues):
                    first.err("citizen_id", "duplicate_in_file", f"身份证号与第 {r.row} 行重复",
                              f"Same citizen ID as row {r.row}")
        elif r.hh_key and r.values.get("name"):
            key = (r.hh_key, r.values["name"])
            first = by_hn.setdefault(key, r)
            if first is not r and _identical(first, r):
                _collapse(first, r)
                dropped.add(id(r))
            elif first is not r:
                r.err("name", "duplicate_in_file", f"同一户（{r.hh_key}）中姓名与第 {first.row} 行重复且都无身份证号",
                      f"Same household and name as row {first.row}, both without ID")
    if dropped:
        rows[:] = [r for r in rows if id(r) not in dropped]

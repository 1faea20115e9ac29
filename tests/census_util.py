"""Builders shared by the census import/export tests: real workbooks and DB snapshots."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import func, select

from gridman.core import idcard
from gridman.core.db import Database
from gridman.core.models import Area, AuditEntry, Household, ImportBatch, Resident, ResidentTag, Tag


def make_id(born: date, sex: str, seq: int = 1, area: str = "340104", want_x: bool = False) -> str:
    for s in range(seq, 500):
        n = idcard.make(area, born, s, sex)
        if n.endswith("X") == want_x:
            return n
    raise AssertionError("no such ID")


def write_xlsx(path: Path, rows: list[list[Any]], *, sheet: str = "人口", merge: str | None = None,
               extra: dict[str, list[list[Any]]] | None = None, text_cols: tuple[int, ...] = (),
               literal: bool = False) -> Path:
    """``literal``: strings starting with '=' are stored as text, not formulas (as Excel does for
    a cell formatted as text)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    for r in rows:
        ws.append(r)
    if literal:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    c.data_type = "s"
    if merge:
        ws.merge_cells(merge)
    for col in text_cols:
        for row in ws.iter_rows(min_col=col, max_col=col):
            for c in row:
                c.number_format = "@"
    for name, data in (extra or {}).items():
        w2 = wb.create_sheet(name)
        for r in data:
            w2.append(r)
    wb.save(path)
    return path


def residents(db: Database) -> list[tuple]:
    """The residents table as comparable tuples (sorted by name)."""
    with db.session() as s:
        tags: dict[int, list[str]] = {}
        for rid, code in s.execute(select(ResidentTag.resident_id, Tag.code).join(Tag, Tag.id == ResidentTag.tag_id)
                                   .order_by(Tag.code)):
            tags.setdefault(rid, []).append(code)
        q = (select(Resident.id, Household.household_no, Area.code, Resident.name, Resident.sex, Resident.citizen_id,
                    Resident.birth_date, Resident.relation_to_head, Resident.population_type, Resident.phone,
                    Resident.ethnicity, Resident.status)
             .join(Area, Area.id == Resident.grid_id).outerjoin(Household, Household.id == Resident.household_id)
             .order_by(Resident.name))
        return [(*r[1:], tuple(tags.get(r[0], ()))) for r in s.execute(q)]


def counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                for m in (Resident, Household, ResidentTag, ImportBatch, AuditEntry)}

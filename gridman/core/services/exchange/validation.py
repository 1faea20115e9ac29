"""The checks on the rows a check-in is about to write: residents by the same rules as registering
one, natural keys unique in the workbook and against the database, steps naming an incident."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gridman.core import idcard
from gridman.core.services.errors import ValidationError
from gridman.core.services.exchange.canonical import TABLES
from gridman.core.services.exchange.conflicts import MergePlan
from gridman.core.services.exchange.context import MergeContext
from gridman.core.services.exchange.package import WbRow
from gridman.core.services.exchange.results import CellIssue
from gridman.core.services.exchange.workbook import BY_KEY, canon_db, to_db
from gridman.core.services.exchange.xlsx import iter_chunks

UNIQUE_KEYS = (("households", "household_no", "户号"), ("residents", "citizen_id", "身份证号"),
               ("buildings", "code", "楼栋编码"))


def validate(ctx: MergeContext, plan: MergePlan) -> None:
    """Append to ``plan.issues`` every problem of the rows to insert or update."""
    touched: dict[str, list[WbRow]] = {k: plan.inserts[k] + [w for w, _ in plan.updates[k]] for k in TABLES}
    _validate_residents(ctx, plan, touched["residents"])
    live = {k: [w for w in rows if not w.deleted] for k, rows in ctx.pkg.rows.items()}
    for key, f, what in UNIQUE_KEYS:
        _validate_unique(ctx, plan, key, f, what, live[key], touched[key])
    for w in plan.inserts["incident_steps"]:  # new incidents of this workbook included
        if not w.vals.get("incident_id"):
            plan.issues.append(CellIssue("处置记录", w.row, "事件标识", "不能为空"))


def _validate_residents(ctx: MergeContext, plan: MergePlan, rows: list[WbRow]) -> None:
    """The same rules as registering a resident (citizen ID, sex and birth date agree, enumerations);
    a new resident's sex and birth date are taken from the ID when left empty."""
    from gridman.core.services.people import EDITABLE_FIELDS, validate_resident_fields

    pkg = ctx.pkg
    reg = BY_KEY["residents"]
    res_orig = pkg.originals.get("residents", {})
    for w in rows:
        fields = {k: to_db(reg.field_cols[k], v) for k, v in w.vals.items() if k in EDITABLE_FIELDS}
        if w.uuid in res_orig:
            o = pkg.orig_dict("residents", w.uuid)
            if ctx.mask and w.vals.get("citizen_id") == o.get("citizen_id"):
                fields.pop("citizen_id", None)
        if fields.get("citizen_id") and "*" in str(fields["citizen_id"]):
            plan.issues.append(CellIssue(reg.sheet, w.row, reg.field_cols["citizen_id"].header,
                                         "身份证号被脱敏，不能作为新值"))
            continue
        try:
            out = validate_resident_fields(fields)
        except ValidationError as exc:
            hdr = next((c.header for c in reg.cols if c.field == exc.field), exc.field or "")
            plan.issues.append(CellIssue(reg.sheet, w.row, hdr, exc.message))
            continue
        if w.new:
            for k in ("sex", "birth_date"):
                if w.vals.get(k) is None and out.get(k) is not None:
                    w.vals[k] = canon_db(reg.field_cols[k], out[k])


def _validate_unique(ctx: MergeContext, plan: MergePlan, key: str, f: str, what: str, live: list[WbRow],
                     touched: list[WbRow]) -> None:
    """A natural key (户号, 身份证号, 楼栋编码) once in the workbook, and not another row's in the database."""
    reg = BY_KEY[key]
    hdr = reg.field_cols[f].header

    def shown(v: Any) -> Any:
        return idcard.mask(v) if f == "citizen_id" else v

    def masked(v: Any) -> bool:
        return ctx.mask and "*" in str(v)

    by_val: dict[Any, WbRow] = {}
    for w in live:
        v = w.vals.get(f)
        if v is None or masked(v):
            continue
        if v in by_val:
            plan.issues.append(CellIssue(reg.sheet, w.row, hdr, f"{what} {shown(v)} 与第 {by_val[v].row} 行重复"))
        by_val[v] = w
    check = {w.vals[f]: w for w in touched if w.vals.get(f) is not None and not masked(w.vals[f])}
    t = TABLES[key]
    wb_uuids = {w.uuid for w in ctx.pkg.rows[key]}
    for chunk in iter_chunks(sorted(check)):
        for r in ctx.s.execute(select(t.c.uuid, t.c[f]).where(t.c[f].in_(chunk))):
            w = check[r[1]]
            if r.uuid != w.uuid and r.uuid not in wb_uuids:
                plan.issues.append(CellIssue(reg.sheet, w.row, hdr, f"{what} {shown(r[1])} 已被其他记录使用"))

"""Ledgers (台账) out: any list of an area to .xlsx, blank import templates (the monthly report is
:mod:`gridman.core.services.monthly_report`).

Lists are streamed row by row with :mod:`gridman.core.xlsxstream` (constant memory; xlsxwriter's
``constant_memory`` mode measured ~22 s for 100,000 × 20 on this class of machine, over the 15 s
target, and openpyxl's write-only mode is slower still). Strings are always written as text cells,
so a value like ``=1+1``, ``+86…`` or ``-5`` never becomes a formula (formula injection). Templates
(data validation) are small and use openpyxl.

Sensitive fields (the catalogue's ``Field.sensitive``) are shown as the role may see them
(:func:`permissions.shown`): citizen IDs become ``3401**************`` without
``Perm.VIEW_ID_NUMBER``; sensitive tags are left out without ``Perm.VIEW_SENSITIVE_TAGS``; and a
filter on what the role may not see is refused (:func:`permissions.require_use`), since the rows
it selects would tell the hidden value back. Every export is recorded in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, aliased

from gridman.core import enums, fields, tasks
from gridman.core import xlsxstream as xs
from gridman.core.models import (
    Area,
    Building,
    Household,
    Incident,
    Organisation,
    Premise,
    Resident,
    ResidentTag,
    Tag,
    User,
    VisitLog,
)
from gridman.core.services import audit, cleaning, permissions, scope
from gridman.core.services.errors import NotFound, ValidationError
from gridman.core.services.permissions import Actor, Perm, require
from gridman.core.tasks import TaskState

# how an export writes each kind of catalogue field
_EXPORT_KIND = {"idno": "id", "area": "code", "refkey": "code", "ref": "code", "user": "text", "choice": "enum"}


@dataclass(frozen=True)
class Col:
    """One column of an export and its import template, made from a catalogue field
    (:mod:`gridman.core.fields`): ``key`` is the field key and the query's column label."""

    key: str
    header: str  # Chinese header (the import recognises these)
    kind: str = "text"  # text / code / date / datetime / int / float / enum / bool / tags / id
    enum: type[StrEnum] | None = None
    width: int = 12
    required: bool = False  # for templates
    note: str = ""  # for templates
    labels: dict[str, str] | None = None  # code → Chinese label (enum and choice fields)

    @classmethod
    def of(cls, fd: fields.Field) -> Col:
        labels = ({m.value: enums.label(m) for m in fd.enum} if fd.enum is not None
                  else dict(fd.choices) if fd.choices is not None else None)
        return cls(fd.key, fd.zh, _EXPORT_KIND.get(fd.kind, fd.kind), fd.enum, fd.width, fd.required, fd.note, labels)


def _cols(register: str) -> tuple[Col, ...]:
    """The export's columns of a register: the catalogue's "export" view."""
    return tuple(Col.of(fd) for fd in fields.get(register).view("export"))


@dataclass(frozen=True)
class ListSpec:
    name: str
    title: str  # Chinese name of the ledger
    cols: tuple[Col, ...]
    query: Callable[[Actor, Area | None, dict[str, Any]], Any]
    filters: dict[str, tuple[Any, type[StrEnum] | None]] = field(default_factory=dict)
    importable: bool = False


G = aliased(Area, name="g")


def _area_cond(actor: Actor, area: Area | None, col: ColumnElement) -> ColumnElement[bool]:
    """The rows (by grid or area column ``col``) the actor may export, within ``area``: :func:`scope.rows`."""
    return scope.rows(actor, col, area)


def _apply_filters(q: Any, spec_filters: dict[str, tuple[Any, type[StrEnum] | None]], filters: dict[str, Any]) -> Any:
    for k, raw in filters.items():
        if k == "tag":
            continue
        col, enum = spec_filters[k]
        if enum is not None:
            try:
                raw = enums.parse(enum, raw).value
            except ValueError:
                raise ValidationError(f"筛选条件 {k}={raw} 的取值无效", field=k, en=f"Invalid filter value {k}={raw}") from None
        q = q.where(col == raw)
    return q


# --- the lists ------------------------------------------------------------------------------------

RESIDENT_COLS = _cols("residents")


def _residents_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    r, h, b = Resident.__table__, Household.__table__, Building.__table__
    q = (select(r.c.id.label("_id"), h.c.household_no, G.code.label("grid_code"),
                func.coalesce(b.c.code, b.c.name).label("building"), r.c.name, r.c.sex, r.c.ethnicity,
                r.c.citizen_id, r.c.birth_date, r.c.phone, r.c.landline, r.c.registered_address, r.c.current_address,
                r.c.relation_to_head, r.c.population_type, r.c.residence_permit_no, r.c.residence_permit_expiry,
                r.c.education, r.c.marital_status, r.c.political_status, r.c.employer, r.c.status, r.c.note)
         .select_from(r).join(G, G.id == r.c.grid_id).outerjoin(h, h.c.id == r.c.household_id)
         .outerjoin(b, b.c.id == h.c.building_id)
         .where(_area_cond(actor, area, r.c.grid_id)).order_by(r.c.id))
    if "tag" in filters:
        t = filters["tag"]
        tag_ids = select(Tag.id).where((Tag.code == t) | (Tag.name == t))  # checked: _check_filters
        q = q.where(r.c.id.in_(select(ResidentTag.resident_id).where(ResidentTag.tag_id.in_(tag_ids))))
    return q


def _filters(register: str, cols: dict[str, Any]) -> dict[str, tuple[Any, type[StrEnum] | None]]:
    """Filter name → (column, the enumeration its value is parsed with: the catalogue field's)."""
    by_key = fields.get(register).by_key
    return {k: (col, by_key[k].enum if k in by_key else None) for k, col in cols.items()}


RESIDENT_FILTERS = _filters("residents", {
    "population_type": Resident.population_type, "sex": Resident.sex, "status": Resident.status,
    "relation_to_head": Resident.relation_to_head, "grid": G.code, "household_no": Household.household_no,
    "ethnicity": Resident.ethnicity, "tag": None,
})

HOUSEHOLD_COLS = _cols("households")


def _households_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    h, b, r = Household.__table__, Building.__table__, Resident.__table__
    members = (select(func.count()).where(r.c.household_id == h.c.id, r.c.status == "active")
               .correlate(h).scalar_subquery())
    head = (select(r.c.name).where(r.c.household_id == h.c.id, r.c.relation_to_head == "head",
                                   r.c.status == "active").correlate(h).limit(1).scalar_subquery())
    return (select(h.c.household_no, G.code.label("grid_code"), G.name.label("grid"),
                   func.coalesce(b.c.code, b.c.name).label("building"), h.c.address,
                   h.c.kind, h.c.phone, members.label("members"), head.label("head"), h.c.note)
            .select_from(h).join(G, G.id == h.c.grid_id).outerjoin(b, b.c.id == h.c.building_id)
            .where(_area_cond(actor, area, h.c.grid_id)).order_by(h.c.id))


BUILDING_COLS = _cols("buildings")


def _buildings_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    b = Building.__table__
    return (select(b.c.code, b.c.name, G.code.label("grid_code"), b.c.address, b.c.floors, b.c.units, b.c.lon,
                   b.c.lat, b.c.built_year, b.c.note)
            .select_from(b).join(G, G.id == b.c.grid_id)
            .where(_area_cond(actor, area, b.c.grid_id)).order_by(b.c.id))


PREMISE_COLS = _cols("premises")


def _premises_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    p = Premise.__table__
    return (select(p.c.name, p.c.kind, G.code.label("grid_code"), p.c.address, p.c.contact_name, p.c.contact_phone,
                   p.c.license_no, p.c.last_inspected, p.c.lon, p.c.lat, p.c.note)
            .select_from(p).join(G, G.id == p.c.grid_id)
            .where(_area_cond(actor, area, p.c.grid_id)).order_by(p.c.id))


ORG_COLS = _cols("organisations")


def _orgs_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    o = Organisation.__table__
    a = aliased(Area, name="oa")
    return (select(o.c.name, o.c.kind, a.code.label("area_code"), a.name.label("area"), o.c.registration, o.c.field,
                   o.c.credit_code, o.c.address, o.c.contact_name, o.c.contact_phone, o.c.founded_on,
                   o.c.member_count, o.c.note)
            .select_from(o).join(a, a.id == o.c.area_id).where(_area_cond(actor, area, o.c.area_id)).order_by(o.c.id))


INCIDENT_COLS = _cols("incidents")


def _incidents_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    i = Incident.__table__
    return (select(i.c.id, i.c.title, i.c.category, i.c.subcategory, G.code.label("grid_code"), G.name.label("grid"),
                   i.c.level, i.c.status, i.c.priority, i.c.reported_at, i.c.due_at, i.c.closed_at,
                   i.c.closed_on_time, i.c.satisfaction, i.c.location_text)
            .select_from(i).join(G, G.id == i.c.grid_id)
            .where(_area_cond(actor, area, i.c.grid_id)).order_by(i.c.id))


VISIT_COLS = _cols("visits")


def _visits_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    v, h, r, u = VisitLog.__table__, Household.__table__, Resident.__table__, User.__table__
    return (select(v.c.visited_at, G.code.label("grid_code"), h.c.household_no, r.c.name.label("resident"),
                   u.c.display_name.label("visitor"), v.c.kind, v.c.findings, v.c.follow_up)
            .select_from(v).join(G, G.id == v.c.grid_id).outerjoin(h, h.c.id == v.c.household_id)
            .outerjoin(r, r.c.id == v.c.resident_id).outerjoin(u, u.c.id == v.c.visitor_id)
            .where(_area_cond(actor, area, v.c.grid_id)).order_by(v.c.visited_at))


_QUERIES: dict[str, Callable[[Actor, Area | None, dict[str, Any]], Any]] = {
    "residents": _residents_query, "households": _households_query, "buildings": _buildings_query,
    "premises": _premises_query, "organisations": _orgs_query, "incidents": _incidents_query, "visits": _visits_query,
}
_FILTERS: dict[str, dict[str, tuple[Any, type[StrEnum] | None]]] = {
    "residents": RESIDENT_FILTERS,
    "households": _filters("households", {"grid": G.code, "kind": Household.kind}),
    "buildings": _filters("buildings", {"grid": G.code}),
    "premises": _filters("premises", {"grid": G.code, "kind": Premise.kind}),
    "organisations": _filters("organisations", {"kind": Organisation.kind}),
    "incidents": _filters("incidents", {"grid": G.code, "category": Incident.category, "status": Incident.status,
                                        "level": Incident.level, "priority": Incident.priority}),
    "visits": _filters("visits", {"grid": G.code, "kind": VisitLog.kind}),
}
# Every register of the catalogue with an "export" view is a list; its title is the register's ledger name.
LISTS: dict[str, ListSpec] = {
    r.key: ListSpec(r.key, r.ledger, _cols(r.key), _QUERIES[r.key], _FILTERS.get(r.key, {}), importable=r.importable)
    for r in fields.with_view("export")
}
LIST_ALIASES = {a: k for a, k in fields.ALIASES.items() if k in LISTS}


def list_spec(name: str) -> ListSpec:
    spec = LISTS.get(fields.resolve(name) or name)
    if spec is None:
        raise ValidationError(f"未知的列表“{name}”（可选：{'、'.join(LISTS)}）", field="list",
                              en=f"Unknown list {name!r} (one of {', '.join(LISTS)})")
    return spec


# --- writing -----------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    list: str
    path: str
    rows: int
    area_code: str | None
    masked_ids: bool
    hidden_sensitive_tags: bool


def _resolve_area(session: Session, area_code: str | None, actor: Actor) -> Area | None:
    if area_code:
        area = session.scalar(select(Area).where(Area.code == area_code))
        if area is None:
            raise NotFound(f"找不到编码为 {area_code} 的区划或网格", en=f"No area with code {area_code}")
        return area
    if actor.area_id:
        return session.get(Area, actor.area_id)
    return None


def _check_filters(session: Session, actor: Actor, spec: ListSpec, filters: dict[str, Any]) -> None:
    """Refuse a filter on a field (or a tag) the actor may not see: the rows it selects, and
    their count, would tell the hidden value back."""
    for k, raw in filters.items():
        if k == "tag":
            permissions.require_tags(session, actor, [str(raw)], "filter")
        else:
            permissions.require_use(actor, spec.name, k, "filter", value=str(raw))


def _tags_by_resident(session: Session, q: Any, show_sensitive: bool) -> dict[int, list[str]]:
    ids = q.with_only_columns(Resident.__table__.c.id).order_by(None).scalar_subquery()
    rt, t = ResidentTag.__table__, Tag.__table__
    tq = (select(rt.c.resident_id, t.c.name).join(t, t.c.id == rt.c.tag_id).where(rt.c.resident_id.in_(ids))
          .order_by(rt.c.resident_id, t.c.id))
    if not show_sensitive:
        tq = tq.where(t.c.sensitive.is_(False))
    out: dict[int, list[str]] = {}
    for rid, name in session.execute(tq):
        out.setdefault(rid, []).append(name)
    return out


PROGRESS_ROWS = 2000  # rows between progress reports (and cancel checks) of an export


def export_list(session: Session, actor: Actor, *, list_name: str, out: str | Path, area_code: str | None = None,
                filters: dict[str, Any] | None = None, task: TaskState | None = None) -> ExportResult:
    """Write one list of ``area_code`` (default: the actor's scope) to ``out`` (.xlsx), streaming.
    ``task`` gets the progress every :data:`PROGRESS_ROWS` rows; a cancel leaves no file (an older
    file of that name stays) and no audit entry."""
    task = tasks.ensure(task)
    spec = list_spec(list_name)
    filters = dict(filters or {})
    unknown = set(filters) - set(spec.filters)
    if unknown:
        raise ValidationError(f"不支持的筛选条件：{'、'.join(sorted(unknown))}（可用：{'、'.join(spec.filters) or '无'}）",
                              field="filter", en=f"Unsupported filters {sorted(unknown)} (allowed: {sorted(spec.filters)})")
    area = _resolve_area(session, area_code, actor)
    require(actor, Perm.EXPORT, area)
    _check_filters(session, actor, spec, filters)
    register = fields.get(spec.name)
    show_id = all(permissions.sees(actor, fd) for fd in register.fields if fd.kind == "idno")
    show_sensitive = permissions.sees_tag(actor, True)
    q = _apply_filters(spec.query(actor, area, filters), spec.filters, filters)
    tags = _tags_by_resident(session, q, show_sensitive) if spec.name == "residents" else {}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = spec.cols
    styles = [xs.TEXT if c.kind in ("id", "code") else xs.DATE if c.kind == "date"
              else xs.DATETIME if c.kind == "datetime" else xs.DEFAULT for c in cols]
    getters = _getters(actor, register, cols, tags)
    n = 0
    total = session.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
    task.progress(0.0, f"导出{spec.title}")
    with xs.StreamWriter(out, sheet_name=spec.title, widths=[c.width for c in cols], col_styles=styles,
                         bind=session) as w:
        w.write_row([c.header for c in cols], [xs.HEADER] * len(cols))
        for n, rec in enumerate(session.execute(q.execution_options(yield_per=5000)), start=1):  # noqa: B007
            w.write_row([g(rec) for g in getters], styles)
            if n % PROGRESS_ROWS == 0:
                task.step(n, total, f"导出{spec.title}：{n}/{total}")
        task.check()  # the last chance to stop: the file is moved into place when the block ends
    audit.record(session, actor, "export", table=spec.name,
                 note=f"导出{spec.title} {n} 行（{area.code if area else '全部'}）→ {out.name}",
                 changes={"filters": filters, "rows": n, "masked_ids": not show_id})
    return ExportResult(spec.name, str(out), n, area.code if area else None, not show_id,
                        spec.name == "residents" and not show_sensitive)


def _getter(actor: Actor, fd: fields.Field, c: Col, tags: dict[int, list[str]]) -> Callable[[Any], Any]:
    """record → the cell value of column ``c`` (str/number/date; labels for enumerations), as the
    actor may see field ``fd`` (:func:`permissions.shown`)."""
    key = c.key

    def raw(rec: Any) -> Any:
        return getattr(rec, key)

    if c.kind == "tags":  # the sensitive tags were left out of ``tags`` already
        return lambda rec: "、".join(tags.get(rec._id, ())) or None
    if not permissions.sees(actor, fd):
        return lambda rec: permissions.shown(actor, fd, raw(rec))
    if c.kind == "enum":
        lab = c.labels or {}

        def enum_label(rec: Any) -> Any:
            v = raw(rec)
            return lab.get(v, v) if v is not None else None
        return enum_label
    if c.kind == "bool":
        def yes_no(rec: Any) -> str | None:
            v = raw(rec)
            return None if v is None else ("是" if v else "否")
        return yes_no
    if c.kind in ("code", "text"):
        def as_text(rec: Any) -> Any:
            v = raw(rec)
            return v if v is None or isinstance(v, str) else str(v)
        return as_text
    return raw


def _getters(actor: Actor, register: fields.RegisterFields, cols: Iterable[Col],
             tags: dict[int, list[str]]) -> list[Callable[[Any], Any]]:
    """One function per column: record → cell value (str/number/date), labels for enumerations."""
    return [_getter(actor, register.field(c.key), c, tags) for c in cols]


# --- blank import templates ----------------------------------------------------------------------

TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "resources" / "templates"
TEMPLATE_ROWS = 1000  # rows prepared with validation and text formats


def template_path(list_name: str) -> Path:
    spec = list_spec(list_name)
    return TEMPLATE_DIR / f"{spec.name}_template.xlsx"


def write_template(list_name: str, out: str | Path, *, bind: Any = None) -> Path:
    """A blank template: header row, a notes row (必填/可选/格式), drop-down lists for enumerations
    (from a hidden 选项 sheet: the 56 民族 are too long for an inline list), text format for IDs
    and codes, a 填写说明 sheet. Document dates are fixed so the committed copies stay stable.
    ``bind`` names the open database, which ``out`` may not be (:mod:`gridman.core.outputs`)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    spec = list_spec(list_name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    wb.properties.creator = "gridman"
    wb.properties.title = spec.title + "导入模板"
    wb.properties.created = wb.properties.modified = datetime(2026, 1, 1)
    ws = wb.active
    ws.title = spec.title[:31]
    opts = wb.create_sheet("选项")
    notes = wb.create_sheet("填写说明")
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    req_fill = PatternFill("solid", fgColor="F8CBAD")
    grey = Font(italic=True, color="7F7F7F")
    last = TEMPLATE_ROWS + 2
    opt_col = 0
    for j, c in enumerate(spec.cols, start=1):
        h = ws.cell(1, j, c.header)
        h.font, h.fill = bold, (req_fill if c.required else fill)
        n = ws.cell(2, j, c.note or ("必填" if c.required else "可选"))
        n.font, n.alignment = grey, Alignment(wrap_text=True, vertical="top")
        letter = get_column_letter(j)
        ws.column_dimensions[letter].width = max(c.width, len(c.header) * 2 + 2)
        if c.kind in ("id", "code"):
            for r in range(3, last + 1):
                ws.cell(r, j).number_format = "@"
        elif c.kind == "date":
            for r in range(3, last + 1):
                ws.cell(r, j).number_format = "yyyy-mm-dd"
        choices: list[str] | None = None
        if c.labels:
            choices = list(c.labels.values())
        elif c.key == "ethnicity":
            choices = list(cleaning.ETHNICITIES)
        dv = None
        if choices:
            opt_col += 1
            ol = get_column_letter(opt_col)
            opts.cell(1, opt_col, c.header)
            for n, v in enumerate(choices, start=2):
                opts.cell(n, opt_col, v)
            dv = DataValidation(type="list", formula1=f"=选项!${ol}$2:${ol}${len(choices) + 1}", allow_blank=True,
                                showErrorMessage=True, errorTitle=c.header, error=f"请从下拉列表中选择{c.header}")
        elif c.kind == "date":
            dv = DataValidation(type="date", operator="between", formula1="DATE(1880,1,1)",
                                formula2="DATE(2100,12,31)", allow_blank=True, showErrorMessage=True,
                                errorStyle="warning", error="请填写日期，如 1990-01-01")
        elif c.kind == "id":
            dv = DataValidation(type="textLength", operator="equal", formula1="18", allow_blank=True,
                                showErrorMessage=True, errorStyle="warning", error="公民身份号码应为 18 位")
        if dv is not None:
            dv.add(f"{letter}3:{letter}{last}")
            ws.add_data_validation(dv)
    ws.freeze_panes = "A3"
    ws.row_dimensions[2].height = 30
    opts.sheet_state = "hidden"
    notes.column_dimensions["A"].width = 16
    notes.column_dimensions["B"].width = 90
    lines = [
        ("模板", f"{spec.title}导入模板（gridman）"),
        ("填写", "从第 3 行开始每行填写一条记录；第 2 行为说明，导入时自动跳过；标题行可以保留在表头上方。"),
        ("身份证号", "请保持“文本”格式：粘贴成数字后 Excel 只保留 15 位有效数字，末几位会丢失，导入会拒绝这样的号码。"),
        ("日期", "支持 1990-01-01、1990/1/1、19900101、1990年1月1日、1990.1.1 和 Excel 日期。"),
        ("下拉选项", "带下拉箭头的列请从列表中选择；导入也接受常见同义词（如 妻、夫 → 配偶）。"),
        ("户", "同一户的成员填写相同的户号，每户只能有一位“户主”。"),
        ("公式", "请不要使用公式；如需复制数据，请“选择性粘贴 → 数值”。"),
        ("导入", "命令行：gridman import census 文件.xlsx --dry-run 先试运行，确认无误后去掉 --dry-run。"),
    ]
    if not spec.importable:
        lines.append(("说明", "此列表目前只能导出；导入功能暂只支持实有人口。"))
    lines.append(("", ""))
    lines.append(("列", "说明"))
    lines += [(c.header, ("必填。" if c.required else "") + (c.note or "")) for c in spec.cols]
    for k, v in lines:
        notes.append([k, v])
        if k in ("列",) or k in dict(lines[:9]):
            notes.cell(notes.max_row, 1).font = bold
    xs.save_workbook(wb, out, bind)
    return Path(out)


def write_all_templates(directory: str | Path = TEMPLATE_DIR) -> list[Path]:
    d = Path(directory)
    return [write_template(name, d / f"{name}_template.xlsx") for name in LISTS]

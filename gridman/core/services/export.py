"""Ledgers (台账) out: any list of an area to .xlsx, blank import templates (the monthly report is
:mod:`gridman.core.services.monthly_report`).

Lists are streamed row by row with :mod:`gridman.core.xlsxstream` (constant memory; xlsxwriter's
``constant_memory`` mode measured ~22 s for 100,000 × 20 on this class of machine, over the 15 s
target, and openpyxl's write-only mode is slower still). Strings are always written as text cells,
so a value like ``=1+1``, ``+86…`` or ``-5`` never becomes a formula (formula injection). Templates
(data validation) are small and use openpyxl.

Sensitive fields are masked for roles without the right to see them: citizen IDs become
``3401**********1234`` without ``Perm.VIEW_ID_NUMBER``; sensitive tags are left out without
``Perm.VIEW_SENSITIVE_TAGS``. Every export is recorded in the audit log (who exported what).
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

from gridman.core import enums, idcard
from gridman.core import xlsxstream as xs
from gridman.core.enums import (
    IncidentCategory,
    IncidentStatus,
    MediationLevel,
    OrgKind,
    PopulationType,
    PremiseKind,
    Priority,
    Relation,
    ResidentStatus,
    Satisfaction,
    Sex,
    SocialOrgField,
    SocialOrgRegistration,
    VisitKind,
)
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
from gridman.core.services import audit, cleaning, scope
from gridman.core.services.errors import NotFound, ValidationError
from gridman.core.services.permissions import Actor, Perm, require


@dataclass(frozen=True)
class Col:
    key: str
    header: str  # Chinese header (the import recognises these)
    kind: str = "text"  # text / code / date / datetime / int / float / enum / bool / tags / id
    enum: type[StrEnum] | None = None
    width: int = 12
    required: bool = False  # for templates
    note: str = ""  # for templates


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
                raw = cleaning.parse_enum(enum, raw).value
            except ValueError:
                raise ValidationError(f"筛选条件 {k}={raw} 的取值无效", field=k, en=f"Invalid filter value {k}={raw}") from None
        q = q.where(col == raw)
    return q


# --- the lists ------------------------------------------------------------------------------------

RESIDENT_COLS = (
    Col("household_no", "户号", "code", width=14, required=True, note="必填，同一户填同一户号"),
    Col("grid_code", "网格编码", "code", width=18, note="新户必填：网格编码或名称"),
    Col("building", "楼栋", width=10, note="可选：楼栋编码或名称"),
    Col("name", "姓名", width=10, required=True, note="必填"),
    Col("sex", "性别", "enum", Sex, width=6, note="可选，可由身份证号推出"),
    Col("ethnicity", "民族", width=8, note="可选，如 汉族"),
    Col("citizen_id", "公民身份号码", "id", width=21, note="18 位，文本格式"),
    Col("birth_date", "出生日期", "date", width=12, note="可选，yyyy-mm-dd"),
    Col("phone", "联系电话", "code", width=14, note="可选，手机 11 位或带区号固话"),
    Col("registered_address", "户籍地址", width=24, note="可选"),
    Col("current_address", "现住址", width=24, note="可选"),
    Col("relation_to_head", "与户主关系", "enum", Relation, width=10, note="必填，一户一位户主"),
    Col("population_type", "人口类型", "enum", PopulationType, width=10, note="可选，默认户籍人口"),
    Col("residence_permit_no", "居住证号", "code", width=16, note="流动人口可填"),
    Col("residence_permit_expiry", "居住证有效期", "date", width=12, note="yyyy-mm-dd"),
    Col("education", "文化程度", width=10, note="可选"),
    Col("marital_status", "婚姻状况", width=10, note="可选"),
    Col("political_status", "政治面貌", width=10, note="可选"),
    Col("employer", "工作单位", width=20, note="可选"),
    Col("status", "人员状态", "enum", ResidentStatus, width=8, note="可选，默认在住"),
    Col("tags", "标签", "tags", width=16, note="可选，多个用、分隔"),
    Col("note", "备注", width=20, note="可选"),
)


def _residents_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    r, h, b = Resident.__table__, Household.__table__, Building.__table__
    q = (select(r.c.id.label("_id"), h.c.household_no, G.code.label("grid_code"),
                func.coalesce(b.c.code, b.c.name).label("building"), r.c.name, r.c.sex, r.c.ethnicity,
                r.c.citizen_id, r.c.birth_date, r.c.phone, r.c.registered_address, r.c.current_address,
                r.c.relation_to_head, r.c.population_type, r.c.residence_permit_no, r.c.residence_permit_expiry,
                r.c.education, r.c.marital_status, r.c.political_status, r.c.employer, r.c.status, r.c.note)
         .select_from(r).join(G, G.id == r.c.grid_id).outerjoin(h, h.c.id == r.c.household_id)
         .outerjoin(b, b.c.id == h.c.building_id)
         .where(_area_cond(actor, area, r.c.grid_id)).order_by(r.c.id))
    if "tag" in filters:
        t = filters["tag"]
        tag_ids = select(Tag.id).where((Tag.code == t) | (Tag.name == t))
        q = q.where(r.c.id.in_(select(ResidentTag.resident_id).where(ResidentTag.tag_id.in_(tag_ids))))
    return q


RESIDENT_FILTERS = {
    "population_type": (Resident.population_type, PopulationType), "sex": (Resident.sex, Sex),
    "status": (Resident.status, ResidentStatus), "relation_to_head": (Resident.relation_to_head, Relation),
    "grid": (G.code, None), "household_no": (Household.household_no, None), "ethnicity": (Resident.ethnicity, None),
    "tag": (None, None),
}

HOUSEHOLD_COLS = (
    Col("household_no", "户号", "code", width=14, required=True), Col("grid_code", "网格编码", "code", width=18),
    Col("grid_name", "网格名称", width=12), Col("building", "楼栋", width=10), Col("address", "地址", width=30),
    Col("kind", "户类型", width=8), Col("phone", "联系电话", "code", width=14), Col("members", "人数", "int", width=6),
    Col("head", "户主", width=10), Col("note", "备注", width=20),
)


def _households_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    h, b, r = Household.__table__, Building.__table__, Resident.__table__
    members = (select(func.count()).where(r.c.household_id == h.c.id, r.c.status == "active")
               .correlate(h).scalar_subquery())
    head = (select(r.c.name).where(r.c.household_id == h.c.id, r.c.relation_to_head == "head",
                                   r.c.status == "active").correlate(h).limit(1).scalar_subquery())
    return (select(h.c.household_no, G.code.label("grid_code"), G.name.label("grid_name"),
                   func.coalesce(b.c.code, b.c.name).label("building"), h.c.address,
                   h.c.kind, h.c.phone, members.label("members"), head.label("head"), h.c.note)
            .select_from(h).join(G, G.id == h.c.grid_id).outerjoin(b, b.c.id == h.c.building_id)
            .where(_area_cond(actor, area, h.c.grid_id)).order_by(h.c.id))


BUILDING_COLS = (
    Col("code", "楼栋编码", "code", width=16), Col("name", "楼栋名称", width=12, required=True),
    Col("grid_code", "网格编码", "code", width=18), Col("address", "地址", width=30), Col("floors", "层数", "int", width=6),
    Col("units", "单元数", "int", width=6), Col("lon", "经度", "float", width=11), Col("lat", "纬度", "float", width=11),
    Col("built_year", "建成年份", "int", width=8), Col("note", "备注", width=20),
)


def _buildings_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    b = Building.__table__
    return (select(b.c.code, b.c.name, G.code.label("grid_code"), b.c.address, b.c.floors, b.c.units, b.c.lon,
                   b.c.lat, b.c.built_year, b.c.note)
            .select_from(b).join(G, G.id == b.c.grid_id)
            .where(_area_cond(actor, area, b.c.grid_id)).order_by(b.c.id))


PREMISE_COLS = (
    Col("name", "场所名称", width=24, required=True), Col("kind", "场所类型", "enum", PremiseKind, width=10, required=True),
    Col("grid_code", "网格编码", "code", width=18), Col("address", "地址", width=30), Col("contact_name", "联系人", width=10),
    Col("contact_phone", "联系电话", "code", width=14), Col("license_no", "证照号", "code", width=20),
    Col("last_inspected", "最近检查日期", "date", width=12), Col("lon", "经度", "float", width=11),
    Col("lat", "纬度", "float", width=11), Col("note", "备注", width=20),
)


def _premises_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    p = Premise.__table__
    return (select(p.c.name, p.c.kind, G.code.label("grid_code"), p.c.address, p.c.contact_name, p.c.contact_phone,
                   p.c.license_no, p.c.last_inspected, p.c.lon, p.c.lat, p.c.note)
            .select_from(p).join(G, G.id == p.c.grid_id)
            .where(_area_cond(actor, area, p.c.grid_id)).order_by(p.c.id))


ORG_COLS = (
    Col("name", "组织名称", width=24, required=True), Col("kind", "组织类型", "enum", OrgKind, width=12, required=True),
    Col("area_code", "所属区划编码", "code", width=18), Col("area_name", "所属区划", width=12),
    Col("registration", "登记/备案", "enum", SocialOrgRegistration, width=8),
    Col("field", "领域", "enum", SocialOrgField, width=10), Col("credit_code", "统一社会信用代码", "code", width=20),
    Col("address", "地址", width=30), Col("contact_name", "联系人", width=10),
    Col("contact_phone", "联系电话", "code", width=14), Col("founded_on", "成立日期", "date", width=12),
    Col("member_count", "成员数", "int", width=6), Col("note", "备注", width=20),
)


def _orgs_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    o = Organisation.__table__
    a = aliased(Area, name="oa")
    return (select(o.c.name, o.c.kind, a.code.label("area_code"), a.name.label("area_name"), o.c.registration, o.c.field,
                   o.c.credit_code, o.c.address, o.c.contact_name, o.c.contact_phone, o.c.founded_on,
                   o.c.member_count, o.c.note)
            .select_from(o).join(a, a.id == o.c.area_id).where(_area_cond(actor, area, o.c.area_id)).order_by(o.c.id))


INCIDENT_COLS = (
    Col("id", "事件编号", "int", width=8), Col("title", "标题", width=30),
    Col("category", "类别", "enum", IncidentCategory, width=10), Col("subcategory", "纠纷类型", "enum", enums.DisputeKind, width=12),
    Col("grid_code", "网格编码", "code", width=18), Col("grid_name", "网格", width=10),
    Col("level", "当前层级", "enum", MediationLevel, width=8), Col("status", "状态", "enum", IncidentStatus, width=12),
    Col("priority", "优先级", "enum", Priority, width=6), Col("reported_at", "上报时间", "datetime", width=17),
    Col("due_at", "本级期限", "datetime", width=17), Col("closed_at", "结案时间", "datetime", width=17),
    Col("closed_on_time", "按时办结", "bool", width=8), Col("satisfaction", "满意度", "enum", Satisfaction, width=8),
    Col("location_text", "地点", width=24),
)


def _incidents_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    i = Incident.__table__
    return (select(i.c.id, i.c.title, i.c.category, i.c.subcategory, G.code.label("grid_code"), G.name.label("grid_name"),
                   i.c.level, i.c.status, i.c.priority, i.c.reported_at, i.c.due_at, i.c.closed_at,
                   i.c.closed_on_time, i.c.satisfaction, i.c.location_text)
            .select_from(i).join(G, G.id == i.c.grid_id)
            .where(_area_cond(actor, area, i.c.grid_id)).order_by(i.c.id))


VISIT_COLS = (
    Col("visited_at", "走访时间", "datetime", width=17), Col("grid_code", "网格编码", "code", width=18),
    Col("household_no", "户号", "code", width=14), Col("resident", "走访对象", width=10),
    Col("visitor", "走访人", width=10), Col("kind", "走访类型", "enum", VisitKind, width=10),
    Col("findings", "发现情况", width=40), Col("follow_up", "后续跟进", width=30),
)


def _visits_query(actor: Actor, area: Area | None, filters: dict[str, Any]) -> Any:
    v, h, r, u = VisitLog.__table__, Household.__table__, Resident.__table__, User.__table__
    return (select(v.c.visited_at, G.code.label("grid_code"), h.c.household_no, r.c.name.label("resident"),
                   u.c.display_name.label("visitor"), v.c.kind, v.c.findings, v.c.follow_up)
            .select_from(v).join(G, G.id == v.c.grid_id).outerjoin(h, h.c.id == v.c.household_id)
            .outerjoin(r, r.c.id == v.c.resident_id).outerjoin(u, u.c.id == v.c.visitor_id)
            .where(_area_cond(actor, area, v.c.grid_id)).order_by(v.c.visited_at))


LISTS: dict[str, ListSpec] = {
    "residents": ListSpec("residents", "实有人口台账", RESIDENT_COLS, _residents_query, RESIDENT_FILTERS, importable=True),
    "households": ListSpec("households", "户籍台账", HOUSEHOLD_COLS, _households_query,
                           {"grid": (G.code, None), "kind": (Household.kind, None)}),
    "buildings": ListSpec("buildings", "楼栋台账", BUILDING_COLS, _buildings_query, {"grid": (G.code, None)}),
    "premises": ListSpec("premises", "场所台账", PREMISE_COLS, _premises_query,
                         {"grid": (G.code, None), "kind": (Premise.kind, PremiseKind)}),
    "organisations": ListSpec("organisations", "组织台账", ORG_COLS, _orgs_query,
                              {"kind": (Organisation.kind, OrgKind)}),
    "incidents": ListSpec("incidents", "事件台账", INCIDENT_COLS, _incidents_query, {
        "grid": (G.code, None), "category": (Incident.category, IncidentCategory),
        "status": (Incident.status, IncidentStatus), "level": (Incident.level, MediationLevel),
        "priority": (Incident.priority, Priority)}),
    "visits": ListSpec("visits", "走访台账", VISIT_COLS, _visits_query,
                       {"grid": (G.code, None), "kind": (VisitLog.kind, VisitKind)}),
}
LIST_ALIASES = {"visit_logs": "visits", "orgs": "organisations", "people": "residents"}


def list_spec(name: str) -> ListSpec:
    spec = LISTS.get(LIST_ALIASES.get(name, name))
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


def export_list(session: Session, actor: Actor, *, list_name: str, out: str | Path, area_code: str | None = None,
                filters: dict[str, Any] | None = None) -> ExportResult:
    """Write one list of ``area_code`` (default: the actor's scope) to ``out`` (.xlsx), streaming."""
    spec = list_spec(list_name)
    filters = dict(filters or {})
    unknown = set(filters) - set(spec.filters)
    if unknown:
        raise ValidationError(f"不支持的筛选条件：{'、'.join(sorted(unknown))}（可用：{'、'.join(spec.filters) or '无'}）",
                              field="filter", en=f"Unsupported filters {sorted(unknown)} (allowed: {sorted(spec.filters)})")
    area = _resolve_area(session, area_code, actor)
    require(actor, Perm.EXPORT, area)
    show_id = actor.can(Perm.VIEW_ID_NUMBER)
    show_sensitive = actor.can(Perm.VIEW_SENSITIVE_TAGS)
    q = _apply_filters(spec.query(actor, area, filters), spec.filters, filters)
    tags = _tags_by_resident(session, q, show_sensitive) if spec.name == "residents" else {}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = spec.cols
    styles = [xs.TEXT if c.kind in ("id", "code") else xs.DATE if c.kind == "date"
              else xs.DATETIME if c.kind == "datetime" else xs.DEFAULT for c in cols]
    getters = _getters(cols, show_id, tags)
    n = 0
    with xs.StreamWriter(out, sheet_name=spec.title, widths=[c.width for c in cols], col_styles=styles) as w:
        w.write_row([c.header for c in cols], [xs.HEADER] * len(cols))
        for n, rec in enumerate(session.execute(q.execution_options(yield_per=5000)), start=1):  # noqa: B007
            w.write_row([g(rec) for g in getters], styles)
    audit.record(session, actor, "export", table=spec.name,
                 note=f"导出{spec.title} {n} 行（{area.code if area else '全部'}）→ {out.name}",
                 changes={"filters": filters, "rows": n, "masked_ids": not show_id})
    return ExportResult(spec.name, str(out), n, area.code if area else None, not show_id,
                        spec.name == "residents" and not show_sensitive)


def _getters(cols: Iterable[Col], show_id: bool, tags: dict[int, list[str]]) -> list[Callable[[Any], Any]]:
    """One function per column: record → cell value (str/number/date), labels for enumerations."""
    out: list[Callable[[Any], Any]] = []
    for c in cols:
        key = c.key
        if c.kind == "tags":
            out.append(lambda rec: "、".join(tags.get(rec._id, ())) or None)
        elif c.kind == "id":
            if show_id:
                out.append(lambda rec, key=key: getattr(rec, key))
            else:
                out.append(lambda rec, key=key: idcard.mask(getattr(rec, key)))
        elif c.kind == "enum":
            assert c.enum is not None
            lab = {m.value: cleaning.enum_label(m) for m in c.enum}
            out.append(lambda rec, key=key, lab=lab: (lambda v: lab.get(v, v) if v is not None else None)(getattr(rec, key)))
        elif c.kind == "bool":
            out.append(lambda rec, key=key: None if getattr(rec, key) is None else ("是" if getattr(rec, key) else "否"))
        elif c.kind in ("code", "text"):
            out.append(lambda rec, key=key: (lambda v: v if v is None or isinstance(v, str) else str(v))(getattr(rec, key)))
        else:
            out.append(lambda rec, key=key: getattr(rec, key))
    return out


# --- blank import templates ----------------------------------------------------------------------

TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "resources" / "templates"
TEMPLATE_ROWS = 1000  # rows prepared with validation and text formats


def template_path(list_name: str) -> Path:
    spec = list_spec(list_name)
    return TEMPLATE_DIR / f"{spec.name}_template.xlsx"


def write_template(list_name: str, out: str | Path) -> Path:
    """A blank template: header row, a notes row (必填/可选/格式), drop-down lists for enumerations
    (from a hidden 选项 sheet: the 56 民族 are too long for an inline list), text format for IDs
    and codes, a 填写说明 sheet. Document dates are fixed so the committed copies stay stable."""
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
        if c.enum is not None:
            choices = [cleaning.enum_label(m) for m in c.enum]
        elif c.key == "ethnicity":
            choices = list(cleaning.ETHNICITIES)
        dv = None
        if choices:
            opt_col += 1
            ol = get_column_letter(opt_col)
            opts.cell(1, opt_col, c.header)
            for k, v in enumerate(choices, start=2):
                opts.cell(k, opt_col, v)
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
    wb.save(out)
    return out


def write_all_templates(directory: str | Path = TEMPLATE_DIR) -> list[Path]:
    d = Path(directory)
    return [write_template(name, d / f"{name}_template.xlsx") for name in LISTS]

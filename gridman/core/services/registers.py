"""Registers (台账) of 人 地 情 事 组织 as pages of plain rows: filtering and sorting in SQL.

The GUI's table models (and any other front) ask for one page at a time — ``page(...)`` with an
offset and a limit — so a list never loads a whole city. Everything here is Qt-free and takes the
acting user: rows outside the actor's scope are never selected (:func:`scope.rows`), sensitive
fields are shown as the role may see them (:func:`permissions.shown`: citizen IDs masked without
``Perm.VIEW_ID_NUMBER``, sensitive tags dropped without ``Perm.VIEW_SENSITIVE_TAGS``), and
filtering, sorting or searching by what the role may not see is refused
(:func:`permissions.require_use`, :func:`permissions.require_tags`) — the rows selected, their
order or their count would tell the hidden value back.

Threading: plain functions over a ``Session``; call them from a worker thread with a session of
its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select, true
from sqlalchemy.orm import Session

from gridman.core import fields
from gridman.core.enums import OPEN_STATUSES
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
    utcnow,
)
from gridman.core.services import audit, permissions, scope
from gridman.core.services.permissions import Actor, Perm, require

PAGE_SIZE = 200


@dataclass(frozen=True)
class Column:
    """One column of a register page: ``key`` (stable, used for sorting and settings), the Chinese
    and English header, and the enum the stored code is shown through (for labels), if any. Made
    from the field catalogue's "list" view (:mod:`gridman.core.fields`)."""

    key: str
    zh: str
    en: str
    enum: str | None = None  # name of the enum in gridman.core.enums whose label is shown

    @classmethod
    def of(cls, fd: fields.Field) -> Column:
        return cls(fd.key, fd.zh, fd.en, fd.enum.__name__ if fd.enum is not None else None)


@dataclass(frozen=True)
class Filters:
    """What the user narrowed a register to. ``area_id`` is any area (its subtree's grids);
    ``text`` searches names, numbers and addresses; ``tags`` are tag codes (any of them);
    ``age_min``/``age_max`` in whole years (residents)."""

    area_id: int | None = None
    text: str = ""
    tags: tuple[str, ...] = ()
    population_type: str | None = None
    age_min: int | None = None
    age_max: int | None = None
    status: str | None = None  # residents: active/moved_out…; incidents: "open" or a status code
    category: str | None = None  # incidents
    level: str | None = None  # incidents: mediation level
    overdue_only: bool = False


@dataclass(frozen=True)
class Page:
    """One page of a register: ``ids`` and display ``rows`` (tuples in column order)."""

    kind: str
    offset: int
    ids: list[int]
    rows: list[tuple[Any, ...]]
    extra: list[dict[str, Any]] = field(default_factory=list)  # per-row extras (tags, colours)

    @property
    def full(self) -> bool:
        return len(self.ids) > 0


# --- column definitions: the field catalogue's "list" view of each register ------------------------

COLUMNS: dict[str, list[Column]] = {r.key: [Column.of(fd) for fd in r.view("list")] for r in fields.with_view("list")}
KINDS = tuple(COLUMNS)
RESIDENT_ID = fields.get("residents").field("citizen_id")


def sortable(actor: Actor, kind: str, key: str) -> bool:
    """May ``actor`` sort register ``kind`` by column ``key``? Not by a field the role may not
    see (the order would tell it back); the GUI leaves such a header unsorted."""
    fd = fields.get(kind).by_key.get(key)
    return fd is None or permissions.sees(actor, fd)


def _age_bounds(age_min: int | None, age_max: int | None, today: date) -> list[ColumnElement[bool]]:
    """Ages as birth-date ranges (portable SQL, uses the birth-date index)."""
    out: list[ColumnElement[bool]] = []
    if age_min is not None:
        out.append(Resident.birth_date <= _years_before(today, age_min))
    if age_max is not None:
        out.append(Resident.birth_date > _years_before(today, age_max + 1))
    return out


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February
        return d.replace(year=d.year - years, day=28)


def _like(text: str) -> str:
    esc = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{esc}%"


def _search(cols: list[Any], text: str) -> ColumnElement[bool]:
    text = text.strip()
    if not text:
        return true()
    pat = _like(text)
    return or_(*[c.like(pat, escape="\\") for c in cols])


# (select of id + display columns, sort-key map, default order) of one register
_Query = tuple[Select, dict[str, Any], Any]


def _residents(session: Session, actor: Actor, f: Filters, today: date) -> _Query:
    g = Area.name.label("grid")
    head = select(Household.household_no).where(Household.id == Resident.household_id).scalar_subquery()
    q = (select(Resident.id, Resident.name, Resident.sex, Resident.citizen_id, Resident.birth_date,
                Resident.population_type, Resident.relation_to_head, head.label("household_no"), g,
                Resident.phone)
         .join(Area, Area.id == Resident.grid_id))
    conds = [scope.rows_by_id(session, actor, Resident.grid_id, f.area_id)]
    # a role shown masked IDs may not search by the ID at all (a prefix, or a whole ID tried per
    # candidate, would read the hidden digits back); its digits search the phone only
    show_id = permissions.sees(actor, RESIDENT_ID)
    text = f.text.strip()
    if text:
        if text.isdigit() or (len(text) >= 6 and text[:-1].isdigit()):
            if len(text) >= 15:  # an ID, not a phone number
                permissions.require_use(actor, "residents", "citizen_id", "search")
            by_phone = Resident.phone.like(text + "%")
            conds.append(or_(Resident.citizen_id.like(text.upper() + "%"), by_phone) if show_id else by_phone)
        else:
            conds.append(_search([Resident.name, Resident.current_address], text))
    if f.population_type:
        conds.append(Resident.population_type == f.population_type)
    if f.status:
        conds.append(Resident.status == f.status)
    conds += _age_bounds(f.age_min, f.age_max, today)
    if f.tags:
        permissions.require_tags(session, actor, list(f.tags), "filter")
        tag_q = select(ResidentTag.id).join(Tag, Tag.id == ResidentTag.tag_id).where(
            ResidentTag.resident_id == Resident.id, Tag.code.in_(list(f.tags)))
        conds.append(exists(tag_q))
    sort = {"name": Resident.name, "sex": Resident.sex, "citizen_id": Resident.citizen_id,
            "birth_date": Resident.birth_date, "population_type": Resident.population_type,
            "relation_to_head": Resident.relation_to_head, "household_no": Resident.household_id,
            "grid": Resident.grid_id, "phone": Resident.phone}
    return q.where(and_(*conds)), sort, Resident.id


def _households(session: Session, actor: Actor, f: Filters, today: date) -> _Query:
    g = Area.name.label("grid")
    members = (select(func.count()).select_from(Resident)
               .where(Resident.household_id == Household.id, Resident.status == "active").scalar_subquery())
    head = (select(Resident.name).where(Resident.household_id == Household.id, Resident.relation_to_head == "head")
            .limit(1).scalar_subquery())
    q = (select(Household.id, Household.household_no, Household.address, members.label("members"),
                head.label("head"), Household.phone, g)
         .join(Area, Area.id == Household.grid_id))
    conds = [scope.rows_by_id(session, actor, Household.grid_id, f.area_id),
             _search([Household.household_no, Household.address], f.text)]
    sort = {"household_no": Household.household_no, "address": Household.address, "members": members,
            "head": head, "phone": Household.phone, "grid": Household.grid_id}
    return q.where(and_(*conds)), sort, Household.id


def _buildings(session: Session, actor: Actor, f: Filters, today: date) -> _Query:
    g = Area.name.label("grid")
    hh = select(func.count()).select_from(Household).where(Household.building_id == Building.id).scalar_subquery()
    q = (select(Building.id, Building.name, Building.code, Building.address, Building.floors, Building.units,
                hh.label("households"), g)
         .join(Area, Area.id == Building.grid_id))
    conds = [scope.rows_by_id(session, actor, Building.grid_id, f.area_id),
             _search([Building.name, Building.code, Building.address], f.text)]
    sort = {"name": Building.name, "code": Building.code, "address": Building.address, "floors": Building.floors,
            "units": Building.units, "households": hh, "grid": Building.grid_id}
    return q.where(and_(*conds)), sort, Building.id


def _premises(session: Session, actor: Actor, f: Filters, today: date) -> _Query:
    g = Area.name.label("grid")
    q = (select(Premise.id, Premise.name, Premise.kind, Premise.address, Premise.contact_name,
                Premise.contact_phone, Premise.last_inspected, g)
         .join(Area, Area.id == Premise.grid_id))
    conds = [scope.rows_by_id(session, actor, Premise.grid_id, f.area_id),
             _search([Premise.name, Premise.address, Premise.license_no], f.text)]
    sort = {"name": Premise.name, "kind": Premise.kind, "address": Premise.address,
            "contact_name": Premise.contact_name, "contact_phone": Premise.contact_phone,
            "last_inspected": Premise.last_inspected, "grid": Premise.grid_id}
    return q.where(and_(*conds)), sort, Premise.id


def _organisations(session: Session, actor: Actor, f: Filters, today: date) -> _Query:
    q = (select(Organisation.id, Organisation.name, Organisation.kind, Organisation.contact_name,
                Organisation.contact_phone, Organisation.member_count, Area.name.label("area"))
         .join(Area, Area.id == Organisation.area_id))
    # organisations sit on a grid or a community: the same rule as every other row
    conds = [scope.rows_by_id(session, actor, Organisation.area_id, f.area_id),
             _search([Organisation.name, Organisation.credit_code], f.text)]
    sort = {"name": Organisation.name, "kind": Organisation.kind, "contact_name": Organisation.contact_name,
            "contact_phone": Organisation.contact_phone, "member_count": Organisation.member_count,
            "area": Organisation.area_id}
    return q.where(and_(*conds)), sort, Organisation.id


def _visits(session: Session, actor: Actor, f: Filters, today: date) -> _Query:
    g = Area.name.label("grid")
    hh_no = select(Household.household_no).where(Household.id == VisitLog.household_id).scalar_subquery()
    res = select(Resident.name).where(Resident.id == VisitLog.resident_id).scalar_subquery()
    who = select(User.display_name).where(User.id == VisitLog.visitor_id).scalar_subquery()
    q = (select(VisitLog.id, VisitLog.visited_at, VisitLog.kind, hh_no.label("household_no"), res.label("resident"),
                who.label("visitor"), VisitLog.findings, g)
         .join(Area, Area.id == VisitLog.grid_id))
    conds = [scope.rows_by_id(session, actor, VisitLog.grid_id, f.area_id),
             _search([VisitLog.findings, VisitLog.follow_up], f.text)]
    sort = {"visited_at": VisitLog.visited_at, "kind": VisitLog.kind, "household_no": VisitLog.household_id,
            "resident": VisitLog.resident_id, "visitor": VisitLog.visitor_id, "findings": VisitLog.findings,
            "grid": VisitLog.grid_id}
    return q.where(and_(*conds)), sort, VisitLog.visited_at.desc()


def _incidents(session: Session, actor: Actor, f: Filters, today: date) -> _Query:
    g = Area.name.label("grid")
    now = datetime.now()
    is_open = Incident.status.in_([s.value for s in OPEN_STATUSES])
    overdue = and_(is_open, Incident.due_at.isnot(None), Incident.due_at < now)
    q = (select(Incident.id, Incident.id.label("no"), Incident.title, Incident.category, Incident.level,
                Incident.status, Incident.reported_at, Incident.due_at, Incident.due_at.label("time_left"), g)
         .join(Area, Area.id == Incident.grid_id))
    conds = [scope.rows_by_id(session, actor, Incident.grid_id, f.area_id),
             _search([Incident.title, Incident.description, Incident.location_text], f.text)]
    if f.status == "open":
        conds.append(is_open)
    elif f.status:
        conds.append(Incident.status == f.status)
    if f.category:
        conds.append(Incident.category == f.category)
    if f.level:
        conds.append(Incident.level == f.level)
    if f.overdue_only:
        conds.append(overdue)
    # overdue first, then open ones by deadline, then the rest newest first
    rank = case((overdue, 0), (is_open, 1), else_=2)
    sort = {"id": Incident.id, "title": Incident.title, "category": Incident.category, "level": Incident.level,
            "status": Incident.status, "reported_at": Incident.reported_at, "due_at": Incident.due_at,
            "time_left": Incident.due_at, "grid": Incident.grid_id}
    return q.where(and_(*conds)), sort, (rank, Incident.due_at, Incident.reported_at.desc(), Incident.id)


def _users(session: Session, actor: Actor, f: Filters, today: date) -> _Query:
    require(actor, Perm.MANAGE_USERS)
    q = (select(User.id, User.username, User.display_name, User.role, Area.name.label("area"),
                User.id.label("grids"), User.active, User.locked_until)
         .outerjoin(Area, Area.id == User.area_id).where(User.is_system.is_(False)))
    conds = [_search([User.username, User.display_name], f.text)]
    sort = {"username": User.username, "display_name": User.display_name, "role": User.role,
            "area": User.area_id, "active": User.active, "locked_until": User.locked_until}
    return q.where(and_(*conds)), sort, User.id


_QUERIES: dict[str, Callable[[Session, Actor, Filters, date], _Query]] = {
    "residents": _residents,
    "households": _households,
    "buildings": _buildings,
    "premises": _premises,
    "organisations": _organisations,
    "visits": _visits,
    "incidents": _incidents,
    "users": _users,
}


def _query(session: Session, actor: Actor, kind: str, f: Filters, today: date) -> _Query:
    """(select of id + display columns, sort-key map, default order) for a register kind."""
    build = _QUERIES.get(kind)
    if build is None:
        raise ValueError(f"unknown register {kind!r}")
    return build(session, actor, f, today)


def page(session: Session, actor: Actor, kind: str, *, filters: Filters | None = None, sort: str | None = None,
         descending: bool = False, offset: int = 0, limit: int = PAGE_SIZE, today: date | None = None) -> Page:
    """One page of register ``kind`` for ``actor``: filtered, sorted (then by id, so pages are
    stable) and limited in SQL."""
    require(actor, Perm.READ)
    f = filters or Filters()
    today = today or date.today()
    q, sort_map, default = _query(session, actor, kind, f, today)
    id_col = q.selected_columns[0]
    if sort:
        permissions.require_use(actor, kind, sort, "sort")
    if sort and sort in sort_map:
        key = sort_map[sort]
        q = q.order_by(key.desc() if descending else key.asc(), id_col)
    elif isinstance(default, tuple):
        q = q.order_by(*default)
    else:
        q = q.order_by(default)
    return _finish(session, actor, kind, offset, session.execute(q.offset(offset).limit(limit)).all())


def rows_by_id(session: Session, actor: Actor, kind: str, ids: list[int], *, filters: Filters | None = None,
               today: date | None = None) -> Page:
    """The rows ``ids`` of register ``kind`` as a page would show them — those that the filters
    (and the actor's scope) still select; a register refreshes changed rows in place with it."""
    require(actor, Perm.READ)
    q, _s, _d = _query(session, actor, kind, filters or Filters(), today or date.today())
    return _finish(session, actor, kind, 0, session.execute(q.where(q.selected_columns[0].in_(ids))).all())


def _finish(session: Session, actor: Actor, kind: str, offset: int, rows: Sequence[Any]) -> Page:
    ids = [r[0] for r in rows]
    out = [tuple(r[1:]) for r in rows]
    extra: list[dict[str, Any]] = [{} for _ in rows]
    if kind == "residents":
        out = _finish_residents(session, actor, ids, out, extra)
    elif kind == "incidents":
        out = _finish_incidents(out, extra)
    elif kind == "users":
        out = _finish_users(session, ids, out)
    return Page(kind, offset, ids, out, extra)


def count(session: Session, actor: Actor, kind: str, *, filters: Filters | None = None,
          today: date | None = None) -> int:
    """How many rows the filters select (shown in the status line; may be slower than a page)."""
    require(actor, Perm.READ)
    q, _s, _d = _query(session, actor, kind, filters or Filters(), today or date.today())
    return int(session.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0)


def _finish_residents(session: Session, actor: Actor, ids: list[int], rows: list[tuple[Any, ...]],
                      extra: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    tags: dict[int, list[tuple[str, str]]] = {}
    if ids:
        q = (select(ResidentTag.resident_id, Tag.name, Tag.name_en, Tag.sensitive)
             .join(Tag, Tag.id == ResidentTag.tag_id).where(ResidentTag.resident_id.in_(ids)).order_by(Tag.id))
        for rid, name, name_en, sensitive in session.execute(q):
            if not permissions.sees_tag(actor, sensitive):
                continue
            tags.setdefault(rid, []).append((name, name_en))
    out = []
    for rid, row, ex in zip(ids, rows, extra, strict=True):
        r = list(row)
        r[2] = permissions.shown(actor, RESIDENT_ID, r[2])
        ex["tags"] = tags.get(rid, [])  # (Chinese, English) names
        out.append((*r, "、".join(zh for zh, _en in tags.get(rid, []))))
    return out


def _finish_incidents(rows: list[tuple[Any, ...]], extra: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    now = datetime.now()
    open_codes = {s.value for s in OPEN_STATUSES}
    out = []
    for row, ex in zip(rows, extra, strict=True):
        r = list(row)
        due = r[6]
        left = None
        if due is not None and r[4] in open_codes:
            left = (due - now).total_seconds() / 3600.0
        r[7] = left  # hours left (negative = overdue); None = not running
        ex["hours_left"] = left
        out.append(tuple(r))
    return out


def _finish_users(session: Session, ids: list[int], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    from gridman.core.models import WardenAssignment

    grids: dict[int, list[str]] = {}
    if ids:
        q = (select(WardenAssignment.user_id, Area.name).join(Area, Area.id == WardenAssignment.grid_id)
             .where(WardenAssignment.user_id.in_(ids), scope.current_assignment(date.today()))
             .order_by(Area.code))
        for uid, name in session.execute(q):
            grids.setdefault(uid, []).append(name)
    out = []
    now = utcnow()
    for uid, row in zip(ids, rows, strict=True):
        r = list(row)
        r[4] = "、".join(grids.get(uid, []))
        r[6] = r[6] if r[6] is not None and r[6] > now else None  # a lock that has run out is no lock
        out.append(tuple(r))
    return out


# --- single records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    username: str | None
    action: str
    changes: dict[str, Any] | None
    note: str | None


def resident_history(session: Session, actor: Actor, resident_id: int, *, limit: int = 200) -> list[HistoryEntry]:
    """The audit rows of one resident, newest first (the resident must be in the actor's scope)."""
    from gridman.core.models import AuditEntry
    from gridman.core.services.people import get_resident

    get_resident(session, actor, resident_id)
    q = (select(AuditEntry).where(AuditEntry.table_name == "residents", AuditEntry.row_id == resident_id)
         .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit))
    # an import's insert entry lists the resident's tag codes: those the actor may not see go
    hidden_tags = (set() if permissions.sees_tag(actor, True)
                   else set(session.scalars(select(Tag.code).where(Tag.sensitive.is_(True)))))
    out = []
    fields: dict[int | None, list[str] | None] = {}
    for e in session.scalars(q):
        changes = e.changes
        if isinstance(changes, list):  # a compact insert entry of a bulk import
            if e.batch_id not in fields:
                fields[e.batch_id] = audit.batch_fields(session, e.batch_id, "residents")
            changes = audit.expand(changes, fields[e.batch_id])
        ch = dict(changes) if isinstance(changes, dict) else None
        if ch and "citizen_id" in ch:
            v = ch["citizen_id"]
            ch["citizen_id"] = [permissions.shown(actor, RESIDENT_ID, x) for x in v] if isinstance(v, list) \
                else permissions.shown(actor, RESIDENT_ID, v)
        if ch and hidden_tags and isinstance(ch.get("tags"), list):
            ch["tags"] = [[c for c in v if c not in hidden_tags] if isinstance(v, list) else v for v in ch["tags"]]
        out.append(HistoryEntry(e.at, e.username, e.action, ch, e.note))
    return out


@dataclass(frozen=True)
class MemberRow:
    id: int
    name: str
    sex: str | None
    citizen_id: str | None
    birth_date: date | None
    relation_to_head: str | None
    population_type: str
    status: str


@dataclass(frozen=True)
class HouseholdView:
    id: int
    household_no: str
    address: str | None
    phone: str | None
    grid_id: int
    grid_name: str
    members: list[MemberRow]


def household_view(session: Session, actor: Actor, household_id: int) -> HouseholdView:
    """A household with its members, as the actor may see it."""
    from gridman.core.services.errors import NotFound

    hh = session.get(Household, household_id)
    if hh is None:
        raise NotFound(f"户 {household_id} 不存在", en=f"No household {household_id}")
    grid = session.get(Area, hh.grid_id)
    permissions.require_row(actor, Perm.READ, grid, f"户 {household_id} ", f"Household {household_id}")
    members = [
        MemberRow(r.id, r.name, r.sex, permissions.shown(actor, RESIDENT_ID, r.citizen_id), r.birth_date,
                  r.relation_to_head, r.population_type, r.status)
        for r in session.scalars(select(Resident).where(Resident.household_id == hh.id)
                                 .order_by(case((Resident.relation_to_head == "head", 0), else_=1), Resident.id))
    ]
    return HouseholdView(hh.id, hh.household_no, hh.address, hh.phone, hh.grid_id, grid.name if grid else "", members)


def tag_choices(session: Session, actor: Actor) -> list[tuple[str, str, str]]:
    """(code, Chinese name, English name) of the tags the actor may filter by."""
    q = select(Tag.code, Tag.name, Tag.name_en, Tag.sensitive).order_by(Tag.id)
    return [(c, n, e) for c, n, e, s in session.execute(q) if permissions.sees_tag(actor, s)]


def grid_choices(session: Session, actor: Actor) -> list[tuple[int, str]]:
    """(id, "community / grid") of the grids the actor may register people in."""
    from sqlalchemy.orm import aliased

    parent = aliased(Area)
    q = (select(Area.id, parent.name, Area.name).join(parent, parent.id == Area.parent_id)
         .where(Area.level == "grid", scope.rows(actor, Area.id)).order_by(Area.code))
    return [(i, f"{p} / {n}") for i, p, n in session.execute(q)]


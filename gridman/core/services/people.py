"""人: register and edit households and residents, with validation, permissions and audit.

Every function takes the acting user and an open session (``Database.work(actor)``), does one
use case and returns plain data or the ORM row for the caller in the same session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core import fields, idcard
from gridman.core.enums import AreaLevel, PopulationType, Relation, ResidentStatus, Sex
from gridman.core.models import Area, Household, Resident, ResidentTag, Tag
from gridman.core.services import permissions
from gridman.core.services.errors import ConflictError, NotFound, ValidationError
from gridman.core.services.permissions import Actor, Perm, require

EDITABLE_FIELDS = {
    "name", "sex", "ethnicity", "citizen_id", "birth_date", "phone", "landline", "registered_address", "current_address",
    "relation_to_head", "population_type", "residence_permit_no", "residence_permit_expiry", "education",
    "marital_status", "political_status", "employer", "status", "note",
}


def _grid(session: Session, grid_id: int) -> Area:
    grid = session.get(Area, grid_id)
    if grid is None or grid.level != AreaLevel.GRID:
        raise NotFound(f"网格 {grid_id} 不存在", en=f"No grid {grid_id}")
    return grid


def validate_resident_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Normalise and check resident fields; raises ValidationError naming the field."""
    out = dict(fields)
    unknown = set(out) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(f"未知字段：{', '.join(sorted(unknown))}", en=f"Unknown fields: {sorted(unknown)}")
    if "name" in out:
        name = (out["name"] or "").strip()
        if not name:
            raise ValidationError("姓名不能为空", field="name", en="Name is required")
        out["name"] = name
    cid = out.get("citizen_id")
    if cid not in (None, ""):
        try:
            info = idcard.parse(cid)
        except idcard.IdCardError as exc:
            raise ValidationError(exc.zh, field="citizen_id", en=exc.en) from None
        out["citizen_id"] = info.number
        if out.get("birth_date") is None:
            out["birth_date"] = info.birth_date
        elif out["birth_date"] != info.birth_date:
            raise ValidationError(
                f"出生日期 {out['birth_date']} 与身份证号中的 {info.birth_date} 不一致", field="birth_date",
                en="Birth date does not match the citizen ID",
            )
        if out.get("sex") is None:
            out["sex"] = info.sex
        elif out["sex"] != info.sex:
            raise ValidationError("性别与身份证号不一致", field="sex", en="Sex does not match the citizen ID")
    elif "citizen_id" in out:
        out["citizen_id"] = None
    checks = (("sex", Sex), ("population_type", PopulationType), ("relation_to_head", Relation),
              ("status", ResidentStatus))
    for key, enum in checks:
        v = out.get(key)
        if v is not None:
            try:
                out[key] = enum(v).value
            except ValueError:
                raise ValidationError(f"{key} 的取值 {v!r} 无效", field=key, en=f"Invalid {key}: {v!r}") from None
    bd = out.get("birth_date")
    if bd is not None and (not isinstance(bd, date) or bd > date.today()):
        raise ValidationError("出生日期无效", field="birth_date", en="Invalid birth date")
    return out


def _check_unique_id(session: Session, actor: Actor, citizen_id: str | None, exclude_id: int | None = None) -> None:
    """Refuse an ID some resident already has — naming that resident only when the actor may see
    them and their ID (:func:`permissions.names_holder`: the ID is unique city-wide, the names
    are not the actor's to read, and a name next to a masked ID would unmask it)."""
    if not citizen_id:
        return
    q = select(Resident.id, Resident.name, Resident.grid_id).where(Resident.citizen_id == citizen_id)
    if exclude_id is not None:
        q = q.where(Resident.id != exclude_id)
    row = session.execute(q).first()
    if row:
        grid = session.get(Area, row.grid_id)
        holder = f"（{row.name}）" if permissions.names_holder(actor, grid) else ""
        raise ValidationError(
            f"身份证号 {idcard.mask(citizen_id)} 已登记{holder}", field="citizen_id",
            en="This citizen ID is already registered",
        )


def register_household(session: Session, actor: Actor, *, grid_id: int, household_no: str,
                       address: str | None = None, building_id: int | None = None, phone: str | None = None,
                       members: list[dict[str, Any]] | None = None) -> Household:
    """Register a household (户) with its members; exactly one member must be the head."""
    grid = _grid(session, grid_id)
    require(actor, Perm.WRITE, grid)
    household_no = (household_no or "").strip()
    if not household_no:
        raise ValidationError("户号不能为空", field="household_no", en="Household number is required")
    if session.scalar(select(Household.id).where(Household.household_no == household_no)):
        raise ValidationError(f"户号 {household_no} 已存在", field="household_no",
                              en=f"Household {household_no} already exists")
    members = members or []
    heads = [m for m in members if m.get("relation_to_head") in (Relation.HEAD, "head")]
    if members and len(heads) != 1:
        raise ValidationError(f"一户应有且只有一位户主（现有 {len(heads)} 位）", field="relation_to_head",
                              en=f"A household needs exactly one head (got {len(heads)})")
    hh = Household(household_no=household_no, grid_id=grid.id, address=address, building_id=building_id, phone=phone)
    session.add(hh)
    session.flush()
    seen: set[str] = set()
    for m in members:
        fields = validate_resident_fields(m)
        cid = fields.get("citizen_id")
        if cid:
            if cid in seen:
                raise ValidationError("同一户中身份证号重复", field="citizen_id", en="Duplicate citizen ID in household")
            seen.add(cid)
        _check_unique_id(session, actor, cid)
        fields.setdefault("current_address", address)
        session.add(Resident(household_id=hh.id, grid_id=grid.id, **fields))
    session.flush()
    return hh


def add_resident(session: Session, actor: Actor, *, grid_id: int, household_id: int | None = None,
                 tags: list[str] | None = None, **fields: Any) -> Resident:
    grid = _grid(session, grid_id)
    require(actor, Perm.WRITE, grid)
    fields = validate_resident_fields(fields)
    if "name" not in fields:
        raise ValidationError("姓名不能为空", field="name", en="Name is required")
    _check_unique_id(session, actor, fields.get("citizen_id"))
    if household_id is not None:
        hh = session.get(Household, household_id)
        if hh is None:
            raise NotFound(f"户 {household_id} 不存在", en=f"No household {household_id}")
        if fields.get("relation_to_head") == Relation.HEAD and session.scalar(
            select(Resident.id).where(Resident.household_id == hh.id, Resident.relation_to_head == "head",
                                      Resident.status == "active")
        ):
            raise ValidationError("该户已有户主", field="relation_to_head", en="This household already has a head")
    r = Resident(grid_id=grid.id, household_id=household_id, **fields)
    session.add(r)
    session.flush()
    for code in tags or []:
        set_tag(session, actor, r.id, code, on=True)
    return r


def get_resident(session: Session, actor: Actor, resident_id: int) -> Resident:
    r = session.get(Resident, resident_id)
    if r is None:
        raise NotFound(f"人员 {resident_id} 不存在", en=f"No resident {resident_id}")
    permissions.require_row(actor, Perm.READ, session.get(Area, r.grid_id), f"人员 {resident_id} ",
                            f"Resident {resident_id}")
    return r


def update_resident(session: Session, actor: Actor, resident_id: int, *, expected_version: int,
                    **changes: Any) -> Resident:
    """Change fields of a resident read at ``expected_version``; a newer version means someone
    else saved meanwhile → :class:`ConflictError` (nothing written)."""
    r = get_resident(session, actor, resident_id)
    require(actor, Perm.WRITE, session.get(Area, r.grid_id))
    if r.version != expected_version:
        raise ConflictError(
            f"{r.name} 的信息已被其他人修改（版本 {expected_version} → {r.version}），请重新加载。",
            en=f"{r.name} was changed by someone else (version {expected_version} → {r.version}); reload.",
        )
    check = dict(changes)
    if r.citizen_id and "citizen_id" not in changes and {"birth_date", "sex"} & changes.keys():
        check["citizen_id"] = r.citizen_id  # keep birth date and sex consistent with the ID
    fields = validate_resident_fields(check)
    if "citizen_id" in changes:
        _check_unique_id(session, actor, fields.get("citizen_id"), exclude_id=r.id)
    for k, v in fields.items():
        if getattr(r, k) != v:
            setattr(r, k, v)
    session.flush()
    return r


def set_tag(session: Session, actor: Actor, resident_id: int, tag_code: str, *, on: bool = True) -> None:
    resident = get_resident(session, actor, resident_id)
    tag = session.scalar(select(Tag).where(Tag.code == tag_code))
    if tag is None:
        raise ValidationError(f"标签 {tag_code} 不存在", field="tags", en=f"Unknown tag {tag_code}")
    grid = session.get(Area, resident.grid_id)
    require(actor, Perm.WRITE, grid)
    if tag.sensitive:
        require(actor, Perm.VIEW_SENSITIVE_TAGS, grid)
    existing = session.scalar(
        select(ResidentTag).where(ResidentTag.resident_id == resident.id, ResidentTag.tag_id == tag.id)
    )
    if on and existing is None:
        session.add(ResidentTag(resident_id=resident.id, tag_id=tag.id, since=date.today()))
    elif not on and existing is not None:
        session.delete(existing)
    session.flush()


@dataclass(frozen=True)
class ResidentView:
    """A resident as a given actor may see it (ID masked, sensitive tags dropped if not allowed)."""

    id: int
    version: int
    name: str
    sex: str | None
    citizen_id: str | None
    birth_date: date | None
    grid_id: int
    household_id: int | None
    population_type: str
    relation_to_head: str | None
    phone: str | None
    tags: tuple[str, ...]


def view_resident(session: Session, actor: Actor, resident_id: int) -> ResidentView:
    r = get_resident(session, actor, resident_id)
    tags = tuple(
        t.code for t in session.scalars(
            select(Tag).join(ResidentTag, ResidentTag.tag_id == Tag.id).where(ResidentTag.resident_id == r.id)
            .order_by(Tag.id)
        ) if permissions.sees_tag(actor, t.sensitive)
    )
    cid = permissions.shown(actor, fields.get("residents").field("citizen_id"), r.citizen_id)
    return ResidentView(r.id, r.version, r.name, r.sex, cid,
                        r.birth_date, r.grid_id, r.household_id, r.population_type, r.relation_to_head, r.phone, tags)

"""Who may do what, where — checked in this one place.

An :class:`Actor` is the signed-in user as plain data (safe to hand across threads). Scope:
a warden acts on the grids assigned to them (current assignments); community staff on their
community's subtree; a street supervisor on their street's subtree; a clerk reads, imports and
exports within their area (everywhere if none); an administrator everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core import fields, idcard
from gridman.core.enums import Role, label
from gridman.core.models import Area, Tag, User, WardenAssignment
from gridman.core.services import scope
from gridman.core.services.errors import NotFound, PermissionDenied
from gridman.core.services.scope import AreaLike


class Perm(StrEnum):
    READ = "read"  # see registers and cases
    WRITE = "write"  # register/edit people, places, conditions, organisations
    REPORT_INCIDENT = "report_incident"
    HANDLE_INCIDENT = "handle_incident"  # accept, escalate, resolve… (level rules in mediation)
    VIEW_ID_NUMBER = "view_id_number"  # full citizen IDs (else masked)
    VIEW_SENSITIVE_TAGS = "view_sensitive_tags"  # 重点人群 tags
    IMPORT = "import"
    EXPORT = "export"
    VIEW_AUDIT = "view_audit"
    MANAGE_USERS = "manage_users"
    MANAGE_AREAS = "manage_areas"  # areas, boundaries, warden assignments
    MANAGE_POLICY = "manage_policy"  # time limits
    BACKUP = "backup"


ROLE_PERMS: dict[Role, frozenset[Perm]] = {
    Role.WARDEN: frozenset(
        {Perm.READ, Perm.WRITE, Perm.REPORT_INCIDENT, Perm.HANDLE_INCIDENT, Perm.VIEW_ID_NUMBER}
    ),
    Role.COMMUNITY_STAFF: frozenset(
        {Perm.READ, Perm.WRITE, Perm.REPORT_INCIDENT, Perm.HANDLE_INCIDENT, Perm.VIEW_ID_NUMBER,
         Perm.VIEW_SENSITIVE_TAGS, Perm.EXPORT, Perm.VIEW_AUDIT}
    ),
    Role.STREET_SUPERVISOR: frozenset(
        {Perm.READ, Perm.WRITE, Perm.REPORT_INCIDENT, Perm.HANDLE_INCIDENT, Perm.VIEW_ID_NUMBER,
         Perm.VIEW_SENSITIVE_TAGS, Perm.EXPORT, Perm.VIEW_AUDIT}
    ),
    Role.CLERK: frozenset({Perm.READ, Perm.WRITE, Perm.REPORT_INCIDENT, Perm.IMPORT, Perm.EXPORT}),
    Role.ADMIN: frozenset(Perm),
}

PERM_LABELS: dict[Perm, tuple[str, str]] = {
    Perm.READ: ("查看", "view"),
    Perm.WRITE: ("登记和修改", "register and edit"),
    Perm.REPORT_INCIDENT: ("上报事件", "report incidents"),
    Perm.HANDLE_INCIDENT: ("办理事件", "handle incidents"),
    Perm.VIEW_ID_NUMBER: ("查看完整身份证号", "see full ID numbers"),
    Perm.VIEW_SENSITIVE_TAGS: ("查看重点人群标签", "see sensitive tags"),
    Perm.IMPORT: ("导入数据", "import data"),
    Perm.EXPORT: ("导出数据", "export data"),
    Perm.VIEW_AUDIT: ("查看操作日志", "view the audit log"),
    Perm.MANAGE_USERS: ("管理用户", "manage users"),
    Perm.MANAGE_AREAS: ("管理区划和网格", "manage areas and grids"),
    Perm.MANAGE_POLICY: ("设置办理时限", "set time limits"),
    Perm.BACKUP: ("备份和恢复", "back up and restore"),
}


@dataclass(frozen=True)
class Actor:
    """The acting user, as plain data. ``area_path`` is the scope's materialised path (None =
    everywhere); ``grid_ids`` are a warden's current grids."""

    user_id: int | None
    username: str
    display_name: str
    role: Role
    area_id: int | None = None
    area_path: str | None = None
    area_name: str | None = None
    area_level: str | None = None
    grid_ids: frozenset[int] = field(default_factory=frozenset)

    def can(self, perm: Perm) -> bool:
        return perm in ROLE_PERMS[self.role]

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def covers(self, area: AreaLike) -> bool:
        """Is ``area`` (any level) inside this actor's scope? (:func:`scope.covers`)"""
        return scope.covers(self, area)


def actor_for(session: Session, user: User, *, today: date | None = None) -> Actor:
    area = session.get(Area, user.area_id) if user.area_id else None
    grids: frozenset[int] = frozenset()
    if user.role == Role.WARDEN:
        grids = frozenset(current_grid_ids(session, user.id, today=today))
    return Actor(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        area_id=user.area_id,
        area_path=area.path if area else None,
        area_name=area.name if area else None,
        area_level=area.level if area else None,
        grid_ids=grids,
    )


def current_grid_ids(session: Session, user_id: int, *, today: date | None = None) -> list[int]:
    today = today or date.today()
    q = select(WardenAssignment.grid_id).where(WardenAssignment.user_id == user_id, scope.current_assignment(today))
    return list(session.scalars(q))


def _deny(actor: Actor, perm: Perm, where: str | None = None) -> PermissionDenied:
    zh, en = PERM_LABELS[perm]
    role_zh, role_en = label(actor.role), label(actor.role, "en")
    if where:
        return PermissionDenied(
            f"{actor.display_name}（{role_zh}）无权在“{where}”{zh}。",
            en=f"{actor.display_name} ({role_en}) may not {en} in {where}.",
        )
    return PermissionDenied(
        f"{actor.display_name}（{role_zh}）无权{zh}。", en=f"{actor.display_name} ({role_en}) may not {en}."
    )


def require(actor: Actor, perm: Perm, area: Area | None = None) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` has ``perm`` (in ``area`` if given)."""
    if not actor.can(perm):
        raise _deny(actor, perm)
    if area is not None and not actor.covers(area):
        raise _deny(actor, perm, area.name)


def require_row(actor: Actor, perm: Perm, area: AreaLike | None, what_zh: str, what_en: str) -> None:
    """:func:`require` for one row (a resident, a household, a case) that lies in ``area``: the
    refusal names the row as the caller asked for it, never the area it lies in — a probe by id
    must not learn where an out-of-scope resident or case is."""
    if not actor.can(perm):
        raise _deny(actor, perm)
    if area is None or not actor.covers(area):
        zh, en = PERM_LABELS[perm]
        raise PermissionDenied(f"{what_zh}不在您的管辖范围内，{actor.display_name}无权{zh}。",
                               en=f"{what_en} is outside your scope; {actor.display_name} may not {en} it.")


def require_area(session: Session, actor: Actor, perm: Perm, area_id: int) -> Area:
    """The area with id ``area_id``, once ``actor`` is known to have ``perm`` there (else
    :class:`NotFound` or :class:`PermissionDenied`)."""
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound(f"区划 {area_id} 不存在", en=f"Area {area_id} does not exist")
    require(actor, perm, area)
    return area


# --- sensitive fields: who sees them, and what a role that may not see one may do with it ------------


def sees(actor: Actor, fd: fields.Field) -> bool:
    """May ``actor`` see field ``fd`` in full? The catalogue's ``Field.sensitive`` names the
    permission it needs (None: everyone who may read the register)."""
    return fd.sensitive is None or actor.can(Perm(fd.sensitive))


def shown(actor: Actor, fd: fields.Field, value: Any) -> Any:
    """``value`` of field ``fd`` as ``actor`` may see it: itself, a masked citizen ID
    (:func:`idcard.mask`), or None. (A ``tags`` field is the exception: only its sensitive *tags*
    are hidden — :func:`sees_tag`.)"""
    if value is None or sees(actor, fd):
        return value
    return idcard.mask(value) if fd.kind == "idno" else None


def sees_ids(actor: Actor) -> bool:
    """May ``actor`` see residents' citizen IDs in full (else :func:`idcard.mask`)?"""
    return sees(actor, fields.get("residents").field("citizen_id"))


def sees_tag(actor: Actor, tag_sensitive: bool) -> bool:
    """May ``actor`` see that a resident carries a tag (sensitive 重点人群 tags need the right the
    residents' ``tags`` field names)."""
    return not tag_sensitive or sees(actor, fields.get("residents").field("tags"))


USES: dict[str, tuple[str, str]] = {
    "filter": ("筛选", "filter"), "sort": ("排序", "sort"), "search": ("查找", "search"), "count": ("统计", "count"),
}


def require_use(actor: Actor, register: str, key: str, use: str, *, value: str | None = None) -> None:
    """Refuse (:class:`PermissionDenied`) filtering, sorting, searching or counting register
    ``register``'s field ``key`` by a role that may not see it — a filter on a hidden field tells
    its value back as surely as the column (``value``: what the field is narrowed to, named in
    the refusal). Fields the catalogue does not mark sensitive pass. The one check every front
    (export, the register pages, the CLI, the figures) makes."""
    reg = fields.get(register)
    fd = reg.by_key.get(key)
    if fd is None or sees(actor, fd):
        return
    raise denied_use(actor, fd, use, value)


def denied_use(actor: Actor, fd: fields.Field, use: str, value: str | None = None) -> PermissionDenied:
    """The refusal of using field ``fd`` (``value`` of it) in a ``use`` the actor's role may not."""
    zh, en = USES.get(use, (use, use))
    what_zh = f"{fd.zh}“{value}”" if value else fd.zh
    what_en = f"{fd.en} {value!r}" if value else fd.en
    need_zh, need_en = PERM_LABELS[Perm(fd.sensitive)] if fd.sensitive else ("", "")
    role_zh, role_en = label(actor.role), label(actor.role, "en")
    return PermissionDenied(
        f"{actor.display_name}（{role_zh}）无权{need_zh}，不能按{what_zh}{zh}。",
        en=f"{actor.display_name} ({role_en}) may not {need_en}, so may not {en} by {what_en}.")


def require_tags(session: Session, actor: Actor, tags: list[str], use: str) -> None:
    """Refuse narrowing residents by a sensitive tag (code or name) for a role that may not see
    who carries it (:func:`sees_tag`) — the rows selected would be exactly its carriers."""
    if sees_tag(actor, True) or not tags:
        return
    hidden = session.scalar(select(Tag.name).where(Tag.sensitive.is_(True), Tag.code.in_(tags) | Tag.name.in_(tags))
                            .limit(1))
    if hidden is not None:
        raise denied_use(actor, fields.get("residents").field("tags"), use, hidden)


def names_holder(actor: Actor, area: AreaLike | None) -> bool:
    """May a message name the resident who holds a citizen ID (a duplicate found on registering or
    importing)? Only when the resident is in the actor's scope and the actor sees full IDs: a name
    next to an ID the role sees masked would tell the hidden digits back, one probe at a time."""
    return area is not None and actor.covers(area) and sees_ids(actor)


SYSTEM_USERNAME = "system"


def system_actor(session: Session) -> Actor:
    """The built-in administrator the CLI acts as without ``--as`` (created by migration 0002)."""
    # columns, not the ORM entity: this also works on a database of an older revision (upgrades, tests)
    row = session.execute(select(User.id, User.display_name).where(User.username == SYSTEM_USERNAME)).first()
    if row is None:
        return Actor(user_id=None, username=SYSTEM_USERNAME, display_name="系统管理员", role=Role.ADMIN)
    return Actor(user_id=row.id, username=SYSTEM_USERNAME, display_name=row.display_name, role=Role.ADMIN)

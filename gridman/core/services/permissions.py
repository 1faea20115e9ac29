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

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core.enums import Role, label
from gridman.core.models import Area, User, WardenAssignment
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


def require_area(session: Session, actor: Actor, perm: Perm, area_id: int) -> Area:
    """The area with id ``area_id``, once ``actor`` is known to have ``perm`` there (else
    :class:`NotFound` or :class:`PermissionDenied`)."""
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound(f"区划 {area_id} 不存在", en=f"Area {area_id} does not exist")
    require(actor, perm, area)
    return area


SYSTEM_USERNAME = "system"


def system_actor(session: Session) -> Actor:
    """The built-in administrator the CLI acts as without ``--as`` (created by migration 0002)."""
    # columns, not the ORM entity: this also works on a database of an older revision (upgrades, tests)
    row = session.execute(select(User.id, User.display_name).where(User.username == SYSTEM_USERNAME)).first()
    if row is None:
        return Actor(user_id=None, username=SYSTEM_USERNAME, display_name="系统管理员", role=Role.ADMIN)
    return Actor(user_id=row.id, username=SYSTEM_USERNAME, display_name=row.display_name, role=Role.ADMIN)

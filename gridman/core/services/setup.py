"""First run (首次使用): a new database has only the built-in system account, which cannot sign
in. Until an enabled account exists (:func:`auth.needs_first_account`), the first administrator
may be created without signing in — by the GUI's setup wizard (:func:`first_run`: the office's
name, the administrator, the root area) or by ``gridman users add`` (:func:`first_account`).
Both refuse once any account can sign in, checked inside the caller's write transaction.

The office name (单位名称) is a setting of the database, for printed documents.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core.enums import AreaLevel, Role
from gridman.core.models import Area, User
from gridman.core.services import areas, audit, auth, settings
from gridman.core.services.errors import PermissionDenied, ValidationError
from gridman.core.services.permissions import Actor, Perm, require, system_actor

OFFICE_SETTING = "office_name"
ROOT_LEVELS = (AreaLevel.CITY, AreaLevel.DISTRICT)  # what an office starts from


def office_name(session: Session) -> str | None:
    value = settings.get(session, OFFICE_SETTING)
    return value if isinstance(value, str) and value else None


def set_office_name(session: Session, actor: Actor, name: str) -> None:
    require(actor, Perm.MANAGE_POLICY)
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise ValidationError("请填写单位名称（不超过 100 字）", field=OFFICE_SETTING,
                              en="Enter the office's name (at most 100 characters)")
    settings.put(session, OFFICE_SETTING, name)


def first_account(session: Session, *, username: str, display_name: str, password: str) -> User:
    """The first administrator, created by the system account while nobody can sign in. The
    session must act as :func:`system_actor` (``Database.work``)."""
    if not auth.needs_first_account(session):
        raise PermissionDenied("已有可以登录的账号：请登录后由管理员创建用户。",
                               en="An account that can sign in exists already: sign in as an administrator "
                                  "to create users.")
    actor = system_actor(session)
    return auth.create_user(session, actor, username=username, display_name=display_name or username,
                            password=password, role=Role.ADMIN)


@dataclass(frozen=True)
class FirstRun:
    """What the setup wizard asks."""

    office_name: str
    username: str
    display_name: str
    password: str
    area_code: str
    area_name: str
    area_level: str = AreaLevel.CITY.value


def first_run(session: Session, form: FirstRun) -> int:
    """Set up a new database: office name, first administrator, root area (kept when an area
    of that code exists). Returns the administrator's user id. Audited as the system account."""
    actor = system_actor(session)
    set_office_name(session, actor, form.office_name)
    user = first_account(session, username=form.username.strip(), display_name=form.display_name.strip(),
                         password=form.password)
    code, name = form.area_code.strip(), form.area_name.strip()
    if not name:
        raise ValidationError("请填写区划名称", field="area_name", en="Enter the area's name")
    if AreaLevel(form.area_level) not in ROOT_LEVELS:
        raise ValidationError("起始区划应为市或区县", field="area_level", en="The root area is a city or a district")
    if session.scalar(select(Area.id).where(Area.code == code)) is None:
        areas.create_area(session, actor, code=code, name=name, level=form.area_level)
    audit.record(session, actor, "first_run", table="users", row_id=user.id,
                 note=f"{form.office_name} / {code} {name}")
    return user.id

"""Accounts: sign in, create and change users, assign wardens to grids. Services take ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core.enums import AreaLevel, Role
from gridman.core.models import Area, User, WardenAssignment, utcnow
from gridman.core.services import audit, lockout, password_policy
from gridman.core.services.errors import NotFound, PermissionDenied, ValidationError
from gridman.core.services.permissions import Actor, Perm, actor_for, require, require_area
from gridman.core.services.security import hash_password, needs_rehash, spend_verify_time, verify_password

# Which area level a role's scope must be.
ROLE_AREA_LEVEL: dict[Role, AreaLevel | None] = {
    Role.WARDEN: None,
    Role.COMMUNITY_STAFF: AreaLevel.COMMUNITY,
    Role.STREET_SUPERVISOR: AreaLevel.STREET,
    Role.CLERK: None,
    Role.ADMIN: None,
}


SIGN_IN_REFUSED = ("用户名或密码不正确，或账号已停用或暂时锁定。",
                   "Wrong user name or password, or the account is disabled or locked for now.")


def authenticate(session: Session, username: str, password: str, *, now: datetime | None = None) -> Actor:
    """Check a user name and password; returns the :class:`Actor`.

    Every refusal — unknown name, wrong password, disabled, locked, the built-in system account —
    gives the same message after the same work (a password check against a hash of the current
    cost), so neither the answer nor its time tells which it was. A refusal is counted towards the
    lockout (:mod:`~gridman.core.services.lockout`), audited and logged, and **committed** before
    the error is raised: the caller's unit of work rolls back on the error, the record must not.
    A good sign-in forgets earlier failures and re-hashes a password stored with a weaker KDF."""
    now = now or utcnow()
    user = session.scalar(select(User).where(User.username == username).with_for_update())
    reason = None
    if user is None:
        reason = "unknown"
    elif not user.active or user.is_system:
        reason = "disabled"
    elif lockout.is_locked(user, now):
        reason = "locked"
    if reason is not None:
        spend_verify_time(password)
    elif not verify_password(password, user.password_hash):  # type: ignore[union-attr]
        reason = "wrong_password"
    if reason is not None or user is None:
        lockout.record_failure(session, user, username, reason or "unknown", now=now)
        session.commit()
        raise PermissionDenied(SIGN_IN_REFUSED[0], en=SIGN_IN_REFUSED[1])
    values: dict[str, object] = {"last_login_at": now}
    if needs_rehash(user.password_hash):
        values["password_hash"] = hash_password(password)
    lockout.clear(session, user.id, **values)
    actor = actor_for(session, user)
    session.info.setdefault("actor", actor)
    audit.record(session, actor, "login", table="users", row_id=user.id,
                 note="password re-hashed" if "password_hash" in values else None)
    return actor


def needs_first_account(session: Session) -> bool:
    """True while no enabled account but the built-in system account exists: nobody can sign in,
    so the first administrator may be created without signing in (first-run wizard, ``users add``)."""
    return session.scalar(select(User.id).where(User.active.is_(True), User.is_system.is_(False)).limit(1)) is None


def actor_by_username(session: Session, username: str) -> Actor:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise NotFound(f"用户 {username} 不存在或已停用", en=f"No active user {username}")
    return actor_for(session, user)


def _area(session: Session, area_id: int | None) -> Area | None:
    area = session.get(Area, area_id) if area_id is not None else None
    if area_id is not None and area is None:
        raise NotFound(f"区划 {area_id} 不存在", en=f"Area {area_id} does not exist")
    return area


def _check_role_area(role: Role, area: Area | None) -> None:
    """Refused unless ``area`` is of the level ``role`` needs (:data:`ROLE_AREA_LEVEL`)."""
    need = ROLE_AREA_LEVEL[role]
    if need is not None and (area is None or area.level != need):
        raise ValidationError(f"该角色需要指定一个{'社区' if need == AreaLevel.COMMUNITY else '街道'}",
                              field="area", en=f"This role needs a {need.value} as its area")


def create_user(session: Session, actor: Actor, *, username: str, display_name: str, password: str,
                role: Role | str, area_id: int | None = None, phone: str | None = None,
                password_hash: str | None = None) -> User:
    """A new account; staff roles need an area of their level (``area_id``)."""
    require(actor, Perm.MANAGE_USERS)
    area = _area(session, area_id)
    role = Role(role)
    if not username or not username.isascii() or " " in username:
        raise ValidationError("用户名只能使用英文字母、数字和符号，不能有空格", field="username",
                              en="User names use ASCII letters/digits, no spaces")
    if password_hash is None:
        password_policy.check(password, username)
    _check_role_area(role, area)
    if session.scalar(select(User.id).where(User.username == username)):
        raise ValidationError(f"用户名 {username} 已存在", field="username", en=f"User {username} already exists")
    user = User(username=username, display_name=display_name, role=role.value,
                password_hash=password_hash or hash_password(password), area_id=area.id if area else None,
                phone=phone)
    session.add(user)
    session.flush()
    return user


def update_user(session: Session, actor: Actor, user_id: int, *, expected_version: int | None = None,
                display_name: str | None = None, role: Role | str | None = None, area_id: int | None = None,
                active: bool | None = None, new_password: str | None = None) -> User:
    """Change an account: name, role and scope area (checked together as in :func:`create_user`),
    enabled or disabled, a new password. The built-in system account and one's own role/activity
    are not changed here (an administrator cannot lock themselves out)."""
    require(actor, Perm.MANAGE_USERS)
    user = session.get(User, user_id)
    if user is None or user.is_system:
        raise NotFound(f"用户 {user_id} 不存在", en=f"No user {user_id}")
    if expected_version is not None and user.version != expected_version:
        from gridman.core.services.errors import ConflictError

        raise ConflictError(f"用户 {user.username} 已被其他人修改，请重新加载。",
                            en=f"User {user.username} was changed meanwhile; reload.")
    if user.id == actor.user_id and ((role is not None and Role(role) != Role(user.role)) or active is False):
        raise ValidationError("不能修改自己的角色或停用自己的账号", field="role",
                              en="You cannot change your own role or disable your own account")
    new_role = Role(role) if role is not None else Role(user.role)
    area = _area(session, area_id if area_id is not None else user.area_id)
    _check_role_area(new_role, area)
    if display_name is not None:
        if not display_name.strip():
            raise ValidationError("姓名不能为空", field="display_name", en="Name is required")
        user.display_name = display_name.strip()
    user.role = new_role.value
    if area_id is not None:
        user.area_id = area_id
    if active is not None:
        user.active = active
    if new_password:
        password_policy.check(new_password, user.username)
        user.password_hash = hash_password(new_password)
    session.flush()
    return user


def change_password(session: Session, actor: Actor, *, old_password: str, new_password: str) -> None:
    """A signed-in user changes their own password: the current one must be given (a session left
    open is not enough), the new one must meet the policy (:mod:`password_policy`)."""
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    if user is None or user.is_system or not user.active:
        raise NotFound("没有可修改密码的账号", en="There is no account whose password could be changed")
    if not verify_password(old_password, user.password_hash):
        raise PermissionDenied("当前密码不正确", en="The current password is wrong")
    if new_password == old_password:
        raise ValidationError("新密码不能与当前密码相同", field="password",
                              en="The new password must differ from the current one")
    password_policy.check(new_password, user.username)
    user.password_hash = hash_password(new_password)
    session.flush()


@dataclass(frozen=True)
class UserDetails:
    """An account as plain data, for the edit form."""

    id: int
    username: str
    display_name: str
    role: str
    area_id: int | None
    active: bool
    version: int


def find_user(session: Session, actor: Actor, username: str) -> UserDetails:
    """An account by its user name (administrators; the system account is not one)."""
    require(actor, Perm.MANAGE_USERS)
    uid = session.scalar(select(User.id).where(User.username == username, User.is_system.is_(False)))
    if uid is None:
        raise NotFound(f"用户 {username} 不存在", en=f"No user {username}")
    return user_details(session, actor, uid)


def user_details(session: Session, actor: Actor, user_id: int) -> UserDetails:
    require(actor, Perm.MANAGE_USERS)
    u = session.get(User, user_id)
    if u is None or u.is_system:
        raise NotFound(f"用户 {user_id} 不存在", en=f"No user {user_id}")
    return UserDetails(u.id, u.username, u.display_name, u.role, u.area_id, bool(u.active), u.version)


def assign_warden(session: Session, actor: Actor, *, user_id: int, grid_id: int, start: date | None = None,
                  primary: bool = True) -> WardenAssignment:
    """Give warden ``user_id`` grid ``grid_id`` from ``start`` (today)."""
    grid = require_area(session, actor, Perm.MANAGE_AREAS, grid_id)
    user = session.get(User, user_id)
    if user is None or user.is_system:
        raise NotFound(f"用户 {user_id} 不存在", en=f"No user {user_id}")
    if user.role != Role.WARDEN:
        raise ValidationError(f"{user.display_name} 不是网格员", en=f"{user.display_name} is not a warden")
    if grid.level != AreaLevel.GRID:
        raise ValidationError(f"{grid.name} 不是网格", en=f"{grid.name} is not a grid")
    a = WardenAssignment(user_id=user.id, grid_id=grid.id, start_date=start or date.today(), is_primary=primary)
    session.add(a)
    session.flush()
    return a


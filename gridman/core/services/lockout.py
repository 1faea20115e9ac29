"""Sign-in lockout (登录锁定): after repeated failed sign-ins an account refuses every sign-in for a
while, or until an administrator unlocks it; and every failed sign-in leaves an audit row and a log
line (the name that was tried, never the password).

The policy is a setting of the database (:data:`SETTING`, :class:`LockoutPolicy`): by default 5
failures within 15 minutes lock the account for 15 minutes (``lock_minutes`` 0 = until an
administrator unlocks it). The counters live on the account (``users.failed_logins``,
``first_failed_at``, ``locked_until``) and are written by plain UPDATEs, not through the ORM:
they must not bump the account's version (an administrator editing it would get a conflict) nor
write a row change for every attempt (the ``login_failed`` row says it all).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from gridman.core.models import User, utcnow
from gridman.core.services import audit, settings
from gridman.core.services.errors import NotFound, ValidationError
from gridman.core.services.permissions import Actor, Perm, require

log = logging.getLogger("gridman.auth")

SETTING = "signin_lockout"
FOREVER = datetime(9999, 12, 31)  # locked until an administrator unlocks


@dataclass(frozen=True)
class LockoutPolicy:
    """``max_failures`` failed sign-ins within ``window_minutes`` lock the account for
    ``lock_minutes`` (0: until an administrator unlocks it). ``max_failures`` 0 turns lockout off."""

    max_failures: int = 5
    window_minutes: int = 15
    lock_minutes: int = 15


def policy(session: Session) -> LockoutPolicy:
    """The database's lockout policy (the defaults where it has none or a broken one)."""
    value = settings.get(session, SETTING)
    if isinstance(value, dict):
        try:
            return _checked(LockoutPolicy(**{k: int(v) for k, v in value.items() if k in asdict(LockoutPolicy())}))
        except (TypeError, ValueError):
            log.warning("ignoring an invalid %s setting", SETTING)
    return LockoutPolicy()


def _checked(p: LockoutPolicy) -> LockoutPolicy:
    if p.max_failures < 0 or p.window_minutes < 1 or p.lock_minutes < 0 or max(asdict(p).values()) > 100_000:
        raise ValueError("lockout policy out of range")
    return p


def set_policy(session: Session, actor: Actor, new: LockoutPolicy) -> LockoutPolicy:
    """Store ``new`` as the database's lockout policy (administrators)."""
    require(actor, Perm.MANAGE_USERS)
    try:
        _checked(new)
    except ValueError:
        raise ValidationError("锁定设置无效：失败次数和锁定分钟数不能为负，时间窗口至少 1 分钟。", field=SETTING,
                              en="Invalid lockout setting: counts and lock minutes ≥ 0, the window at least "
                                 "1 minute.") from None
    settings.put(session, SETTING, asdict(new))
    return new


def is_locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


@dataclass(frozen=True)
class _Attempt:
    """Who an audit row of a failed sign-in is written for: nobody signed in (no user id), with
    the name that was tried."""

    user_id: int | None
    username: str


def clean_name(username: str) -> str:
    """The tried user name as it may be logged: printable characters only, at most 40."""
    return "".join(c for c in username if c.isprintable())[:40]


def record_failure(session: Session, user: User | None, username: str, reason: str, *,
                   now: datetime | None = None) -> None:
    """Count a failed sign-in on ``user`` (None: no such account), lock it when the policy says
    so, and write the audit row and the log line. ``reason`` is for administrators only
    (unknown / disabled / locked / wrong_password); the user hears the same answer for all."""
    now = now or utcnow()
    name = clean_name(username)
    if user is not None and reason == "wrong_password":
        reason = _count(session, user, policy(session), now)
    audit.record(session, _Attempt(None, name), "login_failed", table="users",
                 row_id=user.id if user is not None else None, note=reason)
    log.warning("failed sign-in as %r: %s", name, reason)


def _count(session: Session, user: User, p: LockoutPolicy, now: datetime) -> str:
    window_start = user.first_failed_at
    expired_lock = user.locked_until is not None and user.locked_until <= now
    if expired_lock or window_start is None or now - window_start > timedelta(minutes=p.window_minutes):
        failed, window_start = 1, now
    else:
        failed = user.failed_logins + 1
    locked_until = user.locked_until if not expired_lock else None
    reason = "wrong_password"
    if p.max_failures and failed >= p.max_failures:
        locked_until = now + timedelta(minutes=p.lock_minutes) if p.lock_minutes else FOREVER
        reason = "wrong_password; locked"
        log.warning("account %r locked after %d failed sign-ins", user.username, failed)
    session.execute(update(User).where(User.id == user.id)
                    .values(failed_logins=failed, first_failed_at=window_start, locked_until=locked_until))
    return reason


def clear(session: Session, user_id: int, **values: object) -> None:
    """A good sign-in: forget the failures (and set ``values``, e.g. ``last_login_at``)."""
    session.execute(update(User).where(User.id == user_id)
                    .values(failed_logins=0, first_failed_at=None, locked_until=None, **values))


def unlock(session: Session, actor: Actor, user_id: int) -> None:
    """An administrator lifts a lock (and forgets the failures); audited as an update of the
    account noted ``unlock`` (so that views showing users refresh)."""
    require(actor, Perm.MANAGE_USERS)
    user = session.get(User, user_id)
    if user is None or user.is_system:
        raise NotFound(f"用户 {user_id} 不存在", en=f"No user {user_id}")
    was = user.locked_until
    clear(session, user.id)
    audit.record(session, actor, "update", table="users", row_id=user.id, row_uuid=user.uuid, note="unlock",
                 changes={"locked_until": [was.isoformat() if was else None, None],
                          "failed_logins": [user.failed_logins, 0]})
    log.info("account %r unlocked by %r", user.username, actor.username)

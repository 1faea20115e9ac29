"""Command-line sessions (``gridman login`` / ``logout`` / ``whoami``): one identity for the CLI.

``gridman login USER`` checks the password with :func:`auth.authenticate` (the one password check,
shared with the GUI) and starts a session: a random token, written to a session file only its
owner may read (0600), whose SHA-256 alone is kept in ``cli_sessions``. Later commands present the
token (:func:`resume`); the account is looked up again each time, so an administrator's disabling
of it ends its sessions at once. Sessions expire (:data:`DEFAULT_HOURS`) and end at logout; both
login and logout leave an audit row.

The session file lives in the data directory, one per database (:func:`default_file`), unless a
command names another (``--session FILE`` or ``$GRIDMAN_SESSION``).

Threading: plain functions on a session passed in; no state of their own.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from gridman.core import config
from gridman.core.models import CliSession, User, utcnow
from gridman.core.services import audit, auth
from gridman.core.services.errors import PermissionDenied, ValidationError
from gridman.core.services.permissions import Actor, actor_for

DEFAULT_HOURS = 8.0
MAX_HOURS = 24.0 * 30
SESSION_ENV = "GRIDMAN_SESSION"


def not_signed_in() -> PermissionDenied:
    """The one answer to a command that needs an account and has none that is valid."""
    return PermissionDenied("请先登录：gridman login 用户名（或 --as 用户名 --password-file 文件）",
                            en="Sign in first: gridman login USER (or --as USER --password-file FILE)")


def check_hours(hours: float) -> None:
    if not 0 < hours <= MAX_HOURS:
        raise ValidationError(f"会话时长须在 0 到 {MAX_HOURS:g} 小时之间", field="hours",
                              en=f"Session length must be between 0 and {MAX_HOURS:g} hours")


@dataclass(frozen=True)
class SessionInfo:
    """A session as plain data (never the token)."""

    id: int
    user_id: int
    username: str
    display_name: str
    role: str
    created_at: datetime
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(session: Session, actor: Actor, *, hours: float = DEFAULT_HOURS, token: str | None = None,
          now: datetime | None = None) -> tuple[str, SessionInfo]:
    """A new session for ``actor``, who has just proved who they are (:func:`login`). Returns the
    token (to go into the session file, nowhere else) and the session. ``token`` is for tests that
    reuse one token across copies of a database; by default a fresh random one."""
    if actor.user_id is None:
        raise not_signed_in()
    check_hours(hours)
    token = token or secrets.token_urlsafe(32)
    at = now or utcnow()
    session.execute(insert(CliSession), [{"user_id": actor.user_id, "token_hash": token_hash(token),
                                          "created_at": at, "expires_at": at + timedelta(hours=hours)}])
    return token, info(session, token)


def login(session: Session, username: str, password: str, *, hours: float = DEFAULT_HOURS) -> tuple[str, SessionInfo]:
    """Check the password (:func:`auth.authenticate`, which audits the login) and start a session."""
    check_hours(hours)  # before the password check: a bad option costs no attempt
    actor = auth.authenticate(session, username, password)
    return start(session, actor, hours=hours)


def _valid(session: Session, token: str) -> tuple[CliSession, User]:
    row = session.execute(
        select(CliSession, User).join(User, User.id == CliSession.user_id)
        .where(CliSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        raise not_signed_in()
    cs, user = row
    if cs.ended_at is not None or not user.active or user.is_system:
        raise not_signed_in()
    if cs.expires_at <= utcnow():
        raise PermissionDenied("登录已过期，请重新登录：gridman login 用户名",
                               en="Your sign-in has expired; sign in again: gridman login USER")
    return cs, user


def resume(session: Session, token: str) -> Actor:
    """The account of a valid session (not ended, not expired, account enabled); else refused.
    Reads only: using a session writes nothing."""
    _cs, user = _valid(session, token)
    return actor_for(session, user)


def info(session: Session, token: str) -> SessionInfo:
    cs, user = _valid(session, token)
    return SessionInfo(cs.id, user.id, user.username, user.display_name, user.role, cs.created_at, cs.expires_at)


def logout(session: Session, token: str) -> SessionInfo | None:
    """End the session of ``token`` (audited). None if it was not a valid session."""
    try:
        cs, user = _valid(session, token)
    except PermissionDenied:
        return None
    session.execute(update(CliSession).where(CliSession.id == cs.id).values(ended_at=utcnow()))
    actor = actor_for(session, user)
    session.info.setdefault("actor", actor)
    audit.record(session, actor, "logout", table="users", row_id=user.id)
    return SessionInfo(cs.id, user.id, user.username, user.display_name, user.role, cs.created_at, cs.expires_at)


def set_expiry(session: Session, token: str, expires_at: datetime) -> None:
    """Move the expiry of the session of ``token`` (shorten a session; tests expire one this way)."""
    session.execute(update(CliSession).where(CliSession.token_hash == token_hash(token))
                    .values(expires_at=expires_at))


# --- the session file -----------------------------------------------------------------------


def default_file(url: str) -> Path:
    """The session file of database ``url`` in the data directory (one per database)."""
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return config.data_dir() / "sessions" / f"{key}.session"


def write_token(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, created 0600 (its directory 0700) and replaced atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode("ascii"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_token(path: Path) -> str | None:
    """The token in session file ``path``; None if there is none."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None

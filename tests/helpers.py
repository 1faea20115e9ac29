"""Small builders for tests: an area tree and users, through the real services."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from gridman.core.db import Database
from gridman.core.enums import Role
from gridman.core.services import areas, auth, sessions
from gridman.core.services.permissions import Actor, system_actor

PASSWORD = "secret123"


@dataclass
class Tree:
    city: int
    district: int
    street: int
    street2: int
    community: int
    community2: int
    grid1: int
    grid2: int
    grid3: int  # in community2 (another street)


def build_tree(db: Database) -> Tree:
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        city = areas.create_area(s, admin, code="340100", name="合肥市", level="city")
        dist = areas.create_area(s, admin, code="340104", name="蜀山区", level="district", parent=city)
        st = areas.create_area(s, admin, code="340104001", name="笔架山街道", level="street", parent=dist)
        st2 = areas.create_area(s, admin, code="340104002", name="琥珀街道", level="street", parent=dist)
        com = areas.create_area(s, admin, code="340104001001", name="西园社区", level="community", parent=st)
        com2 = areas.create_area(s, admin, code="340104002001", name="琥珀社区", level="community", parent=st2)
        g1 = areas.create_area(s, admin, code="340104001001001", name="第1网格", level="grid", parent=com)
        g2 = areas.create_area(s, admin, code="340104001001002", name="第2网格", level="grid", parent=com)
        g3 = areas.create_area(s, admin, code="340104002001001", name="第1网格", level="grid", parent=com2)
        return Tree(city.id, dist.id, st.id, st2.id, com.id, com2.id, g1.id, g2.id, g3.id)


def make_user(db: Database, username: str, role: Role, *, area_id: int | None = None,
              grids: list[int] | None = None) -> Actor:
    from gridman.core.models import User
    from gridman.core.services.permissions import actor_for

    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        user = auth.create_user(s, admin, username=username, display_name=username, password=PASSWORD,
                                role=role, area_id=area_id)
        for g in grids or []:
            auth.assign_warden(s, admin, user_id=user.id, grid_id=g, start=date(2020, 1, 1))
        uid = user.id
    with db.session() as s:
        return actor_for(s, s.get(User, uid))


def signed_in(db: object, user: str = "admin", password: str | None = None) -> list[str]:
    """The global CLI arguments that open DB (a path, URL or :class:`Database`) and sign in as USER.

    Every CLI call in a test starts with these, so that how the CLI signs in is decided here once.

    Without ``password``: a session, with no password check per call. Each USER has one token for
    the whole test run, in a 0600 session file; the first call for a (database, USER) stores the
    token's hash in that database through :func:`sessions.start` (as ``gridman login`` does after
    the password check, which ``tests/test_cli_identity.py`` covers). A copy of a database keeps
    the sessions it had, and a database at a new path or URL gets one on its first call. A test that
    swaps a database's file for an older one (a restore) calls ``signed_in`` again afterwards. An
    unknown or disabled USER gets a session file the CLI refuses.

    With ``password``: ``--as USER --password-file FILE`` — a real password check on every call.
    """
    url = str(db.url) if isinstance(db, Database) else str(db)
    if password is not None:
        return ["--db", url, "--as", user, "--password-file", str(_password_file(password))]
    path = _SESSION_DIR / f"{user}.session"
    if not path.exists():
        sessions.write_token(path, _TOKEN_PREFIX + user)
    key = (url, user, _file_identity(url))
    if key not in _SESSIONS_MADE and _store_session(url, user):
        _SESSIONS_MADE.add(key)
    return ["--db", url, "--session", str(path)]


_SESSION_DIR = Path(tempfile.mkdtemp(prefix="gridman-test-sessions-"))
_TOKEN_PREFIX = secrets.token_urlsafe(24) + "-"
_SESSIONS_MADE: set[tuple[str, str, int | None]] = set()


def _file_identity(url: str) -> int | None:
    """The inode of a database file: a file replaced at the same path is another database."""
    if "://" in url:
        return None
    try:
        return os.stat(url).st_ino
    except OSError:
        return None


def _store_session(url: str, user: str) -> bool:
    """Put USER's test token into the database at ``url`` (if it is not there already)."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from gridman.core.db import open_database
    from gridman.core.models import CliSession, User
    from gridman.core.services.permissions import actor_for

    if "://" not in url and not os.path.exists(url):
        return False  # not made yet (e.g. by `gridman sample`): the next call stores it
    token = _TOKEN_PREFIX + user
    database = open_database(url, upgrade=False)  # never upgrade here: a test may be about upgrading
    try:
        with database.begin() as s:
            if s.scalar(select(CliSession.id).where(CliSession.token_hash == sessions.token_hash(token))):
                return True
            account = s.scalar(select(User).where(User.username == user, User.active.is_(True),
                                                  User.is_system.is_(False)))
            if account is None:
                return False
            sessions.start(s, actor_for(s, account), hours=24 * 30, token=token)
        return True
    except SQLAlchemyError:  # not a gridman database, or one without sessions yet: the CLI answers
        return False
    finally:
        database.dispose()


def _password_file(password: str) -> Path:
    """A 0600 file holding ``password`` (for ``--password-file``)."""
    path = _SESSION_DIR / f"pw-{hashlib.sha256(password.encode()).hexdigest()[:12]}.txt"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(password + "\n")
    return path

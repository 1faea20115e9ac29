"""Small builders for tests: an area tree and users, through the real services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from gridman.core.db import Database
from gridman.core.enums import Role
from gridman.core.services import areas, auth
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
    """The global CLI arguments that open DB (a path or URL) and sign in as USER.

    Every CLI call in a test starts with these, so that how the CLI signs in is decided here once.
    ``password`` defaults to the sample's password for the sample's accounts and to ``PASSWORD`` for
    accounts made by :func:`make_user`.
    """
    return ["--db", str(db), "--as", user]

"""A small world for the mediation tests: the area tree of ``tests.helpers`` and one user per
role and level, created through the real services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from gridman.core.db import Database
from gridman.core.enums import Role
from gridman.core.models import AuditEntry, Incident, IncidentStep
from gridman.core.services import mediation as m
from gridman.core.services.permissions import Actor, system_actor
from tests.helpers import Tree, build_tree, make_user

# A Monday morning in Hefei (naive UTC: 01:00 UTC = 09:00 CST).
MON = datetime(2026, 11, 2, 1, 0)


@dataclass
class World:
    db: Database
    tree: Tree
    admin: Actor
    warden: Actor  # grid1 and grid2
    warden3: Actor  # grid3 (other street)
    staff: Actor  # community (grid1, grid2)
    staff2: Actor  # community2 (grid3)
    street: Actor  # street (grid1, grid2)
    street2: Actor
    clerk: Actor


def build_world(db: Database) -> World:
    t = build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    return World(
        db=db, tree=t, admin=admin,
        warden=make_user(db, "w1", Role.WARDEN, grids=[t.grid1, t.grid2]),
        warden3=make_user(db, "w3", Role.WARDEN, grids=[t.grid3]),
        staff=make_user(db, "c1", Role.COMMUNITY_STAFF, area_id=t.community),
        staff2=make_user(db, "c2", Role.COMMUNITY_STAFF, area_id=t.community2),
        street=make_user(db, "s1", Role.STREET_SUPERVISOR, area_id=t.street),
        street2=make_user(db, "s2", Role.STREET_SUPERVISOR, area_id=t.street2),
        clerk=make_user(db, "k1", Role.CLERK, area_id=None),
    )


def report(w: World, actor: Actor | None = None, *, grid: int | None = None, now: datetime = MON,
           category: str = "dispute", title: str = "楼上漏水影响楼下住户", **kw) -> m.ActionResult:
    actor = actor or w.warden
    with w.db.work(actor) as s:
        return m.report(s, actor, grid_id=grid or w.tree.grid1, category=category, title=title, now=now, **kw)


def act(w: World, actor: Actor, res: m.ActionResult | int, action: str, *, version: int | None = None,
        now: datetime = MON, **kw) -> m.ActionResult:
    iid = res if isinstance(res, int) else res.incident_id
    if version is None and not isinstance(res, int):
        version = res.version
    with w.db.work(actor) as s:
        return m.act(s, actor, iid, action, expected_version=version, now=now, **kw)


def state(w: World, iid: int) -> tuple[int, str, str, int]:
    """(version, level, status, number of steps) straight from the database."""
    with w.db.session() as s:
        inc = s.get(Incident, iid)
        n = s.scalar(select(func.count()).select_from(IncidentStep).where(IncidentStep.incident_id == iid))
        return inc.version, inc.level, inc.status, n


def audit_count(w: World) -> int:
    with w.db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry))


# --- fixtures: the world is built once per backend, then copied per test (file copy / PG template) ---

import dataclasses  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402

from gridman.core.db import open_database  # noqa: E402

_n = itertools.count()


@pytest.fixture(scope="session")
def world_templates(tmp_path_factory, empty_templates, pg_admin):  # type: ignore[no-untyped-def]
    out: dict[str, tuple[str, World]] = {}
    d = tmp_path_factory.mktemp("tpl-world")
    path = d / "world.sqlite"
    shutil.copyfile(empty_templates["sqlite"], path)
    database = open_database(path)
    out["sqlite"] = (str(path), build_world(database))
    database.dispose()
    if pg_admin is not None:
        url = pg_admin.create("tpl_mediation_world", template=empty_templates["postgresql"])
        database = open_database(url)
        out["postgresql"] = ("tpl_mediation_world", build_world(database))
        database.dispose()
    return out


@pytest.fixture(name="w", params=["sqlite", "postgresql"])
def world_fixture(request, world_templates, pg_admin, tmp_path):  # type: ignore[no-untyped-def]
    """A fresh copy of the mediation world on each backend."""
    backend = request.param
    if backend not in world_templates:
        pytest.skip("PostgreSQL not available")
    src, tpl = world_templates[backend]
    if backend == "sqlite":
        path = tmp_path / "gridman.sqlite"
        shutil.copyfile(src, path)
        database = open_database(path)
        yield dataclasses.replace(tpl, db=database)
        database.dispose()
        return
    name = f"t_mw_{os.getpid()}_{next(_n)}"
    database = open_database(pg_admin.create(name, template=src))
    try:
        yield dataclasses.replace(tpl, db=database)
    finally:
        database.dispose()
        pg_admin.drop(name)

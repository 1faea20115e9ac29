"""The scope matrix: for every role and every area of the demo an actor of that role could be given,
every register, export list, the mediation queue, the dashboard figures, the area tree and the
exchange package list return exactly the rows the scope rules allow — on SQLite and PostgreSQL.

The expectation is computed here, in plain Python, from the areas' parent links (not their paths
and not by calling ``services/scope.py``): an area-scoped actor sees its area's subtree, a warden
the grids currently assigned to them, an administrator and a clerk without an area everything, a
scoped role without an area nothing; a chosen area narrows that to its own subtree. Rows hang on a
grid (``grid_id``) or, for organisations and packages, on an area of any level (``area_id``).

One copy of the demo per backend serves the whole module (read-only apart from a few packages and
assignments set up once at the start); the probes take one area per level on each side of the
tree, so every role × level is crossed without running every register for all 50 areas.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
import shutil
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from gridman.core.db import Database, open_database
from gridman.core.enums import OPEN_STATUSES, Role
from gridman.core.models import User, WardenAssignment
from gridman.core.services import areas, dashboard, exchange, export, registers
from gridman.core.services.errors import PermissionDenied
from gridman.core.services.mediation import ACTIVE_STATUSES
from gridman.core.services.mediation import queue as mediation_queue
from gridman.core.services.permissions import Actor, Perm, actor_for, system_actor
from gridman.core.services.registers import Filters

REGISTER_KINDS = ("residents", "households", "buildings", "premises", "organisations", "visits", "incidents")
# register kind → (table, column the row hangs on)
TABLES = {"residents": ("residents", "grid_id"), "households": ("households", "grid_id"),
          "buildings": ("buildings", "grid_id"), "premises": ("premises", "grid_id"),
          "organisations": ("organisations", "area_id"), "visits": ("visit_logs", "grid_id"),
          "incidents": ("incidents", "grid_id")}
EXPORT_AREA_HEADERS = ("网格编码", "所属区划编码")
OPEN_CODES = {s.value for s in OPEN_STATUSES}
TODAY = date.today()


# --- the independent model of the rules --------------------------------------------------------------


@dataclass
class Tree:
    """The demo's areas from their parent links."""

    level: dict[int, str]
    code: dict[int, str]
    parent: dict[int, int | None]
    children: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))

    def subtree(self, root: int) -> set[int]:
        out, todo = set(), [root]
        while todo:
            a = todo.pop()
            out.add(a)
            todo.extend(self.children.get(a, ()))
        return out

    def ancestors(self, a: int) -> set[int]:
        out = set()
        p = self.parent[a]
        while p is not None:
            out.add(p)
            p = self.parent[p]
        return out

    def of_level(self, level: str) -> list[int]:
        return sorted((a for a, lv in self.level.items() if lv == level), key=lambda a: self.code[a])


@dataclass
class Case:
    """An actor and the areas its scope is made of (computed here, independently)."""

    name: str
    actor: Actor
    allowed: set[int]  # areas (any level) whose rows the actor sees
    tree_ids: set[int]  # what its area tree shows
    probes: list[int | None] = field(default_factory=list)  # the area filters tried (None: no filter)


@dataclass
class World:
    backend: str
    db: Database
    tree: Tree
    rows: dict[str, list[tuple[Any, ...]]]  # table → (id, area/grid id, …)
    cases: list[Case]
    probes: list[int]  # areas chosen as filters
    packages: list[tuple[str, int]]  # (package id, area id)
    out_dir: Path

    def visible(self, case: Case, probe: int | None) -> set[int]:
        return case.allowed if probe is None else case.allowed & self.tree.subtree(probe)


def _q(db: Database, sql: str, **kw: Any) -> list[Any]:
    with db.session() as s:
        return list(s.execute(text(sql), kw).all())


def _load_tree(db: Database) -> Tree:
    rows = _q(db, "SELECT id, parent_id, level, code FROM areas")
    t = Tree({r.id: r.level for r in rows}, {r.id: r.code for r in rows}, {r.id: r.parent_id for r in rows})
    for r in rows:
        if r.parent_id is not None:
            t.children[r.parent_id].append(r.id)
    return t


def _load_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    rows = {}
    for table, col in TABLES.values():
        extra = {"residents": ", status", "incidents": ", status, due_at"}.get(table, "")
        rows[table] = [tuple(r) for r in _q(db, f"SELECT id, {col}{extra} FROM {table}")]
    rows["resident_tags"] = [tuple(r) for r in _q(
        db, "SELECT r.grid_id, r.status, t.sensitive FROM resident_tags rt JOIN residents r ON r.id = rt.resident_id "
            "JOIN tags t ON t.id = rt.tag_id")]
    return rows


def _current_grids(db: Database, user_id: int) -> set[int]:
    return {r.grid_id for r in _q(db, "SELECT grid_id, start_date, end_date FROM warden_assignments WHERE user_id = :u",
                                  u=user_id)
            if _as_date(r.start_date) <= TODAY and (r.end_date is None or _as_date(r.end_date) >= TODAY)}


def _as_date(v: Any) -> date:
    return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])


def _case(db: Database, tree: Tree, name: str, actor: Actor) -> Case:
    everything = set(tree.level)
    if actor.role == Role.ADMIN or (actor.role == Role.CLERK and actor.area_id is None):
        return Case(name, actor, everything, everything)
    if actor.role == Role.WARDEN:
        grids = _current_grids(db, actor.user_id) if actor.user_id else set()
        assert actor.grid_ids == grids, name
        return Case(name, actor, grids, grids | {a for g in grids for a in tree.ancestors(g)})
    if actor.area_id is None:
        return Case(name, actor, set(), set())
    sub = tree.subtree(actor.area_id)
    return Case(name, actor, sub, sub | tree.ancestors(actor.area_id))


# --- the world: one demo copy per backend ---------------------------------------------------------


def _open_copy(backend: str, templates: dict[str, str], pg_admin: Any, tmp: Path) -> tuple[Database, str | None]:
    if backend == "sqlite":
        path = tmp / "matrix.sqlite"
        shutil.copyfile(templates["sqlite"], path)
        return open_database(path), None
    if pg_admin is None:
        pytest.skip("PostgreSQL not available")
    name = f"scope_matrix_{os.getpid()}"
    return open_database(pg_admin.create(name, template=templates["postgresql"])), name


def _prepare(db: Database, tree: Tree, out_dir: Path) -> None:
    """Make the demo cover every kind of warden and package: one warden with grids in two
    communities, one whose assignment ended, one whose account names a community; packages of a
    grid, a community and a street on each side of the tree."""
    streets = tree.of_level("street")
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        wardens = list(s.scalars(text("SELECT id FROM users WHERE role = 'warden' ORDER BY username")))
        grid_of = {u: _current_grids(db, u) for u in wardens}
        two, ended, named = wardens[1], wardens[2], wardens[3]
        other = next(g for g in tree.of_level("grid") if tree.parent[g] != tree.parent[next(iter(grid_of[two]))])
        s.add(WardenAssignment(user_id=two, grid_id=other, start_date=TODAY - timedelta(days=30)))
        for wa in s.query(WardenAssignment).filter(WardenAssignment.user_id == ended):
            wa.end_date = TODAY - timedelta(days=1)
        user = s.get(User, named)
        assert user is not None
        user.area_id = tree.parent[next(iter(grid_of[named]))]  # the community of their grid
    for street in streets:
        community = next(c for c in tree.of_level("community") if tree.parent[c] == street)
        grid = next(g for g in tree.of_level("grid") if tree.parent[g] == community)
        for area in (grid, community) + ((street,) if street == streets[-1] else ()):
            with db.work(admin) as s:
                exchange.checkout(s, admin, out=out_dir / f"pkg-{tree.code[area]}.xlsx", area_code=tree.code[area])


def _cases(db: Database, tree: Tree) -> list[Case]:
    out: list[Case] = []
    with db.session() as s:
        users = {u.username: u for u in s.query(User).filter(User.is_system.is_(False)).order_by(User.username)}
        for uname, u in users.items():
            if u.role in (Role.ADMIN, Role.CLERK, Role.STREET_SUPERVISOR, Role.COMMUNITY_STAFF):
                out.append(_case(db, tree, uname, actor_for(s, u)))
        # wardens: every kind — one per street, two grids, none current, an account naming a community
        seen: set[int | None] = set()
        for uname, u in users.items():
            if u.role != Role.WARDEN:
                continue
            a = actor_for(s, u)
            streets = {tree.parent[tree.parent[g] or 0] for g in a.grid_ids}
            if len(a.grid_ids) != 1 or u.area_id is not None or not streets <= seen:
                out.append(_case(db, tree, uname, a))
                seen |= streets
        base = next(c.actor for c in out if c.actor.role == Role.CLERK)
        com = next(c.actor for c in out if c.actor.role == Role.COMMUNITY_STAFF)
        street = next(c.actor for c in out if c.actor.role == Role.STREET_SUPERVISOR)
        grid = tree.of_level("grid")[0]
        for area in (tree.of_level("city")[0], tree.of_level("district")[0], street.area_id, com.area_id, grid):
            assert area is not None
            ref = dict(area_id=area, area_path=_q(db, "SELECT path FROM areas WHERE id = :i", i=area)[0][0],
                       area_name=tree.code[area], area_level=tree.level[area])
            out.append(_case(db, tree, f"clerk@{tree.level[area]}", dataclasses.replace(base, **ref)))
        for a in (com, street):
            out.append(_case(db, tree, f"{a.role}-without-area", dataclasses.replace(
                a, area_id=None, area_path=None, area_name=None, area_level=None)))
    roles = {c.actor.role for c in out}
    assert roles == set(Role), roles
    return out


def _probes(tree: Tree) -> list[int]:
    """One area per level on each side of the tree (the city and the district once)."""
    out = tree.of_level("city") + tree.of_level("district")
    for street in tree.of_level("street"):
        out.append(street)
        community = [c for c in tree.of_level("community") if tree.parent[c] == street][-1]
        out.append(community)
        out.append([g for g in tree.of_level("grid") if tree.parent[g] == community][0])
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, demo_templates: dict[str, str], pg_admin: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"scope-matrix-{request.param}")
    db, pg_name = _open_copy(request.param, demo_templates, pg_admin, tmp)
    try:
        tree = _load_tree(db)
        _prepare(db, tree, tmp)
        cases = _cases(db, tree)
        probes = _probes(tree)
        _assign_probes(cases, probes)
        packages = [(r.package_id, r.area_id) for r in _q(db, "SELECT package_id, area_id FROM exchange_packages")]
        yield World(request.param, db, tree, _load_rows(db), cases, probes, packages, tmp)
    finally:
        db.dispose()
        if pg_name:
            pg_admin.drop(pg_name)


def _assign_probes(cases: list[Case], probes: list[int]) -> None:
    """The area filters each actor is tried with: none, its own grid/area, and one area per level.
    A role with one actor gets every probe; the actors of a role with several take turns between
    the two sides of the tree (so every role meets every level on both sides, in and out of scope).
    A clerk given the city or the district (the whole demo) is tried below the district only."""
    city, district, s1, c1, g1, s2, c2, g2 = probes
    by_role: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        by_role[c.actor.role].append(c)
    for group in by_role.values():
        for j, case in enumerate(group):
            own = sorted(case.actor.grid_ids)[:1] + ([case.actor.area_id] if case.actor.area_id else [])
            if len(group) == 1:
                chosen = list(probes)
            else:
                chosen = [city, s1, c2, g1] if j % 2 == 0 else [district, s2, c1, g2]
            if case.actor.area_id in (city, district):  # the whole demo again: its lower levels only
                chosen, own = chosen[1:], []
            case.probes = [None, *chosen, *[a for a in own if a not in chosen]]


class Mismatches:
    """Collects every disagreement so one run shows them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, what: str, got: Any, want: Any) -> None:
        if got != want:
            g, x = (sorted(got)[:8], sorted(want)[:8]) if isinstance(got, set) and isinstance(want, set) else (got, want)
            self.items.append(f"{what}: got {g} … want {x}")

    def done(self) -> None:
        assert not self.items, f"{len(self.items)} mismatches:\n" + "\n".join(self.items[:40])


def _ids(rows: list[tuple[Any, ...]], areas_: set[int]) -> set[int]:
    return {r[0] for r in rows if r[1] in areas_}


# --- the checks ---------------------------------------------------------------------------------


def test_registers_show_exactly_the_scope(world: World) -> None:
    m = Mismatches()
    with world.db.session() as s:
        for case in world.cases:
            for probe in case.probes:
                vis = world.visible(case, probe)
                f = Filters(area_id=probe)
                for kind in REGISTER_KINDS:
                    want = _ids(world.rows[TABLES[kind][0]], vis)
                    page = registers.page(s, case.actor, kind, filters=f, limit=len(want) + 10)
                    n = registers.count(s, case.actor, kind, filters=f)
                    where = f"{world.backend} {case.name} {kind} area={probe}"
                    m.check(where + " ids", set(page.ids), want)
                    m.check(where + " count", (n, len(page.ids)), (len(want), len(want)))
            if case.actor.can(Perm.MANAGE_USERS):
                users = _q(world.db, "SELECT count(*) FROM users WHERE is_system = :f", f=False)[0][0]
                m.check(f"{world.backend} {case.name} users", registers.count(s, case.actor, "users"), users)
            else:
                with pytest.raises(PermissionDenied):
                    registers.count(s, case.actor, "users")
    m.done()


def _read_export(path: Path) -> tuple[Counter[str], list[int]]:
    """(rows per area code, the incident numbers if the list has them) of a written list — read
    straight from the sheet's XML (a list of 8,000 rows takes openpyxl seconds): the header row
    names the columns, then each wanted column's cells are picked out by their reference."""
    with zipfile.ZipFile(path) as z:
        sheet = sorted(n for n in z.namelist() if n.startswith("xl/worksheets/sheet"))[0]
        xml = z.read(sheet).decode()
    def cells(col: str, row: str = r"\d+") -> Iterator[tuple[str, str, str]]:
        """(column, row, text) of the cells of column(s) ``col`` in row(s) ``row``."""
        pattern = rf'<c r="({col})({row})"[^>]*>(?:<is><t[^>]*>([^<]*)</t></is>|<v>([^<]*)</v>)</c>'
        for m in re.finditer(pattern, xml):
            yield m.group(1), m.group(2), html.unescape(m.group(3) if m.group(3) is not None else m.group(4))

    header = {name: col for col, _r, name in cells("[A-Z]+", "1")}
    values = {name: [v for _c, r, v in cells(header[name]) if r != "1"]
              for name in (*EXPORT_AREA_HEADERS, "事件编号") if name in header}
    area_col = next(values[h] for h in EXPORT_AREA_HEADERS if h in values)
    return Counter(area_col), [int(float(v)) for v in values.get("事件编号", [])]


def test_export_lists_hold_exactly_the_scope(world: World) -> None:
    m = Mismatches()
    code = world.tree.code
    ranks: Counter[str] = Counter()
    for case in world.cases:
        # each actor's own scope (no area given); the administrator also one area per level (but
        # the district: the whole demo again); the first two actors of each role also one area
        # inside their scope below their own area and one outside (refused). A clerk given the
        # city or the district has the clerk's lists.
        rank = ranks[case.actor.role]
        ranks[case.actor.role] += 1
        probes: list[int | None] = [None]
        if case.actor.role == Role.ADMIN:
            by_level = {world.tree.level[p]: p for p in reversed(case.probes) if p is not None}
            probes += [p for lv, p in by_level.items() if lv != "district"]
        elif case.allowed == set(code) and case.actor.area_id is not None:
            continue
        elif rank < 2:
            probes += [a for a in case.probes if a in case.allowed and a != case.actor.area_id][-1:]
            probes += [a for a in case.probes if a is not None and a not in case.allowed][:1]
        for probe in probes:
            vis = world.visible(case, probe)
            for kind in REGISTER_KINDS:
                table, _col = TABLES[kind]
                out = world.out_dir / f"{world.backend}-{case.name}-{kind}-{probe}.xlsx"
                where = f"{world.backend} {case.name} export {kind} area={probe}"
                with world.db.session() as s:
                    if not case.actor.can(Perm.EXPORT) or (probe is not None and probe not in case.allowed):
                        with pytest.raises(PermissionDenied):
                            export.export_list(s, case.actor, list_name=kind, out=out,
                                               area_code=code[probe] if probe else None)
                        continue
                    res = export.export_list(s, case.actor, list_name=kind, out=out,
                                             area_code=code[probe] if probe else None)
                    s.rollback()
                got, numbers = _read_export(Path(res.path))
                want = Counter(code[r[1]] for r in world.rows[table] if r[1] in vis)
                m.check(where, got, want)
                m.check(where + " rows", res.rows, sum(want.values()))
                if kind == "incidents":
                    m.check(where + " ids", set(numbers), _ids(world.rows[table], vis))
    m.done()


def test_mediation_queue_lists_and_counts_exactly_the_scope(world: World) -> None:
    m = Mismatches()
    incidents = world.rows["incidents"]
    with world.db.session() as s:
        for case in world.cases:
            for probe in case.probes:
                where = f"{world.backend} {case.name} queue area={probe}"
                if probe is not None and probe not in case.allowed:
                    with pytest.raises(PermissionDenied):
                        mediation_queue.queue(s, case.actor, probe)
                    continue
                vis = world.visible(case, probe)
                got: set[int] = set()
                offset = 0
                while True:
                    res = mediation_queue.queue(s, case.actor, probe, limit=1000, offset=offset,
                                                with_counts=offset == 0, with_total=offset == 0)
                    if offset == 0:
                        total, counts = res.total, res.counts
                    got |= {r.id for r in res.rows}
                    if len(res.rows) < 1000:
                        break
                    offset += 1000
                active = [r for r in incidents if r[1] in vis and r[2] in ACTIVE_STATUSES]
                m.check(where + " ids", got, {r[0] for r in active if r[3] is not None})
                m.check(where + " total", total, len(active))
                want_counts = {st: 0 for st in ACTIVE_STATUSES} | dict(Counter(r[2] for r in active))
                m.check(where + " counts", counts, want_counts)
    m.done()


def test_dashboard_figures_count_exactly_the_scope(world: World) -> None:
    m = Mismatches()
    rows = world.rows
    grids = set(world.tree.of_level("grid"))
    last = max(_as_date(r[0]) for r in _q(world.db, "SELECT reported_at FROM incidents"))
    with world.db.session() as s:
        for case in world.cases:
            sensitive_ok = case.actor.can(Perm.VIEW_SENSITIVE_TAGS)
            for probe in case.probes:
                vis = world.visible(case, probe)
                where = f"{world.backend} {case.name} dashboard area={probe}"
                fig = dashboard.grid_figures(s, case.actor, area_id=probe)
                m.check(where + " households", fig.households, dict(Counter(r[1] for r in rows["households"]
                                                                            if r[1] in vis)))
                m.check(where + " residents", fig.residents,
                        dict(Counter(r[1] for r in rows["residents"] if r[1] in vis and r[2] == "active")))
                m.check(where + " open incidents", fig.open_incidents,
                        dict(Counter(r[1] for r in rows["incidents"] if r[1] in vis and r[2] in OPEN_CODES)))
                m.check(where + " map grids", {g.id for g in dashboard.map_grids(s, case.actor, area_id=probe)},
                        vis & grids)
                tags = sum(n for *_t, n in dashboard.tag_counts(s, case.actor, area_id=probe))
                m.check(where + " tags", tags, sum(1 for g, st, sens in rows["resident_tags"]
                                                   if g in vis and st == "active" and (sensitive_ok or not sens)))
                n_inc = len(_ids(rows["incidents"], vis))
                per_month = dashboard.incidents_per_month(s, case.actor, area_id=probe, months=24, end=last)
                m.check(where + " per month", sum(sum(v) for v in per_month.series.values()), float(n_inc))
                by_cat = dashboard.incidents_by_category(s, case.actor, area_id=probe)
                m.check(where + " by category", sum(n for _c, n in by_cat), n_inc)
    m.done()


def test_area_tree_and_choices_show_exactly_the_scope(world: World) -> None:
    m = Mismatches()
    with world.db.session() as s:
        for case in world.cases:
            m.check(f"{world.backend} {case.name} tree", {n.id for n in areas.tree(s, case.actor)}, case.tree_ids)
            levels = ("district", "street", "community")
            m.check(f"{world.backend} {case.name} area choices",
                    {c.id for c in areas.choices(s, case.actor, levels=levels)},
                    {a for a in case.allowed if world.tree.level[a] in levels})
            for street in world.tree.of_level("street"):
                root = s.get(areas.Area, street)
                m.check(f"{world.backend} {case.name} tree under {street}",
                        {n.id for n in areas.tree(s, case.actor, root)}, case.tree_ids & world.tree.subtree(street))
    m.done()


def test_exchange_package_list_shows_exactly_the_scope(world: World) -> None:
    m = Mismatches()
    assert len({a for _p, a in world.packages}) == len(world.packages) == 5
    with world.db.session() as s:
        for case in world.cases:
            got = {p.package_id for p in exchange.list_packages(s, case.actor)}
            m.check(f"{world.backend} {case.name} packages", got,
                    {p for p, a in world.packages if a in case.allowed})
    m.done()


def test_matrix_covers_every_role_and_level(world: World) -> None:
    """The cases above really cross every role with every level (a guard against a thinned matrix)."""
    levels = {world.tree.level[p] for p in world.probes}
    assert levels == {"city", "district", "street", "community", "grid"}
    assert {c.actor.role for c in world.cases} == set(Role)
    wardens = [c for c in world.cases if c.actor.role == Role.WARDEN]
    assert {len(c.allowed) for c in wardens} >= {0, 1, 2}
    assert any(c.actor.area_id is not None for c in wardens)
    streets = {world.tree.parent[world.tree.parent[g] or 0] for c in wardens for g in c.allowed}
    assert streets == set(world.tree.of_level("street"))
    for case in world.cases:  # every actor meets every level below the district
        assert {world.tree.level[p] for p in case.probes if p is not None} >= {"street", "community", "grid"}, case.name
    for role in Role:
        met = {world.tree.level[p] for c in world.cases if c.actor.role == role for p in c.probes if p is not None}
        assert met == levels, role
    # and the demo has rows of every kind on both sides of the tree
    for table, _col in TABLES.values():
        sides = {next(iter(world.tree.ancestors(r[1]) & set(world.tree.of_level("street"))), None)
                 for r in world.rows[table]}
        assert len(sides - {None}) == 2, table


def test_a_warden_sees_the_same_organisations_in_the_register_and_the_export(world: World) -> None:
    """The warden rule (own grids only) holds for organisations in the export query too: a warden
    whose account names a community used to get the whole community's organisations there."""
    case = next(c for c in world.cases if c.actor.role == Role.WARDEN and c.actor.area_id is not None)
    want = _ids(world.rows["organisations"], case.allowed)
    community_orgs = _ids(world.rows["organisations"], world.tree.subtree(case.actor.area_id or 0))
    assert want < community_orgs  # the old export query gave these
    with world.db.session() as s:
        in_register = set(registers.page(s, case.actor, "organisations", limit=1000).ids)
        spec = export.list_spec("organisations")
        area = s.get(areas.Area, case.actor.area_id)
        q = spec.query(case.actor, area, {}).order_by(None).subquery()
        in_export = s.execute(select(func.count()).select_from(q)).scalar()
    assert in_register == want
    assert in_export == len(want)


def test_a_scoped_role_without_an_area_exports_no_organisations(world: World) -> None:
    case = next(c for c in world.cases if c.name == f"{Role.COMMUNITY_STAFF}-without-area")
    with world.db.session() as s:
        res = export.export_list(s, case.actor, list_name="organisations", out=world.out_dir / "no-area-orgs.xlsx")
        s.rollback()
    assert res.rows == 0
    assert _read_export(Path(res.path))[0] == Counter()

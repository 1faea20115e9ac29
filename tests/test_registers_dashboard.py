"""The Qt-free register pages and dashboard figures, on SQLite and PostgreSQL, checked against
plain SQL written independently here."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from gridman.core.services import dashboard, registers
from gridman.core.services.auth import authenticate
from gridman.core.services.errors import PermissionDenied
from gridman.core.services.registers import Filters


def actors(db):  # type: ignore[no-untyped-def]
    with db.begin() as s:
        return {u: authenticate(s, u, "gridman123") for u in ("admin", "warden", "clerk", "community")}


def q(db, sql: str, **kw):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return s.execute(text(sql), kw).all()


def test_register_pages_scope_filter_sort_and_mask(demo_db):
    a = actors(demo_db)
    grids = sorted(a["warden"].grid_ids)
    with demo_db.session() as s:
        n = registers.count(s, a["warden"], "residents")
        assert n == q(demo_db, f"SELECT count(*) FROM residents WHERE grid_id IN ({','.join(map(str, grids))})")[0][0]
        p = registers.page(s, a["admin"], "residents", sort="name", descending=True, limit=30)
        names = [r[0] for r in p.rows]
        assert names == [r[0] for r in q(demo_db, "SELECT name FROM residents ORDER BY name DESC, id LIMIT 30")]
        # the next page continues where the first stopped
        p2 = registers.page(s, a["admin"], "residents", sort="name", descending=True, offset=30, limit=30)
        assert not set(p.ids) & set(p2.ids)
        # community staff: own community's subtree only
        com = a["community"]
        n = registers.count(s, com, "households")
        assert n == q(demo_db, "SELECT count(*) FROM households h JOIN areas g ON g.id = h.grid_id "
                               "WHERE g.path LIKE :p", p=com.area_path + "%")[0][0]
        # clerk: masked IDs
        p = registers.page(s, a["clerk"], "residents", filters=Filters(population_type="floating"), limit=20)
        assert p.rows and all(r[2] is None or "*" in r[2] for r in p.rows)
        assert all(r[4] == "floating" for r in p.rows)
        # incidents: open filter counts the open statuses
        n = registers.count(s, a["admin"], "incidents", filters=Filters(status="open"))
        assert n == q(demo_db, "SELECT count(*) FROM incidents WHERE status IN "
                               "('reported','accepted','in_progress','failed','referred')")[0][0]


def test_dashboard_figures_add_up(demo_db):
    a = actors(demo_db)["admin"]
    with demo_db.session() as s:
        cats = dashboard.incidents_by_category(s, a)
        assert sum(n for _c, n in cats) == q(demo_db, "SELECT count(*) FROM incidents")[0][0]
        pm = dashboard.incidents_per_month(s, a, months=12)
        first = datetime(int(pm.months[0][:4]), int(pm.months[0][5:]), 1)
        total = q(demo_db, "SELECT count(*) FROM incidents WHERE reported_at >= :d", d=first)[0][0]
        assert sum(sum(v) for v in pm.series.values()) == total > 0
        rates = dashboard.rates_per_month(s, a, months=12)
        assert all(0 <= v <= 100 for vs in rates.series.values() for v in vs)
        pyr = dashboard.population_pyramid(s, a)
        assert sum(pyr.male) + sum(pyr.female) == q(
            demo_db, "SELECT count(*) FROM residents WHERE status='active' AND birth_date IS NOT NULL")[0][0]
        fig = dashboard.grid_figures(s, a)
        hh = dict(q(demo_db, "SELECT grid_id, count(*) FROM households GROUP BY grid_id"))
        assert fig.households == hh
        wl = dashboard.warden_workload(s, a, limit=1000)
        assert wl and wl == sorted(wl, key=lambda w: (-w.open_incidents, w.user_id))
        grids = dashboard.map_grids(s, a)
        assert len(grids) == q(demo_db, "SELECT count(*) FROM areas WHERE level='grid'")[0][0]


def test_sensitive_tags_hidden_from_roles_without_the_permission(demo_db):
    a = actors(demo_db)
    with demo_db.session() as s:
        clerk_tags = {c for c, *_r in dashboard.tag_counts(s, a["clerk"])}
        staff_tags = {c for c, *_r in dashboard.tag_counts(s, a["community"])}
        choices = {c for c, *_r in registers.tag_choices(s, a["clerk"])}
    sensitive = {r[0] for r in q(demo_db, "SELECT code FROM tags WHERE sensitive = :t", t=True)}
    assert sensitive and not clerk_tags & sensitive and not choices & sensitive
    assert staff_tags & sensitive  # the demo data has some in the community's area


def test_a_role_shown_masked_ids_cannot_read_them_back_by_search_or_sort(demo_db):
    """A clerk sees 3401**************; a prefix search (or a sort) on the ID would let them probe
    the hidden digits one at a time. Without the right to see IDs no search finds a resident by
    the ID — since issue 16 not even the whole ID (a probe per candidate), which is refused, as is
    a sort by the ID column (it fell back to the default order before)."""
    a = actors(demo_db)
    clerk, admin = a["clerk"], a["admin"]
    with demo_db.session() as s:
        rid = registers.page(s, clerk, "residents", limit=1).ids[0]
        cid = q(demo_db, "SELECT citizen_id FROM residents WHERE id = :i", i=rid)[0][0]
        assert cid and len(cid) == 18

        def found(actor, text):  # type: ignore[no-untyped-def]
            return rid in registers.page(s, actor, "residents", filters=Filters(text=text), limit=1000).ids

        for text_ in (cid, cid.lower(), cid[:17]):
            with pytest.raises(PermissionDenied):
                found(clerk, text_)
        assert not found(clerk, cid[:10])
        assert found(admin, cid[:10])  # a role that sees IDs still searches by prefix
        with pytest.raises(PermissionDenied):
            registers.page(s, clerk, "residents", sort="citizen_id", limit=50)


def test_the_users_register_lists_only_the_grids_a_warden_holds_today(db):
    """An assignment that starts next week is not yet the warden's: the users register agrees with
    the warden's scope (permissions.current_grid_ids) and the dashboard's warden count."""
    from datetime import date, timedelta

    from gridman.core.enums import Role
    from gridman.core.models import Area
    from gridman.core.services import auth
    from gridman.core.services.permissions import system_actor
    from tests.helpers import build_tree, make_user

    tree = build_tree(db)
    warden = make_user(db, "w1", Role.WARDEN, grids=[tree.grid1])
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        auth.assign_warden(s, admin, user_id=warden.user_id, grid_id=tree.grid2,
                           start=date.today() + timedelta(days=7))
    with db.session() as s:
        names = {i: s.get(Area, i).name for i in (tree.grid1, tree.grid2)}
        p = registers.page(s, admin, "users", filters=Filters(text="w1"))
        grids_col = [c.key for c in registers.COLUMNS["users"]].index("grids")
        assert p.rows[0][grids_col] == names[tree.grid1]
        figs = dashboard.grid_figures(s, admin)
        assert figs.wardens.get(tree.grid1) == 1 and tree.grid2 not in figs.wardens


def test_a_residents_history_drops_the_sensitive_tags_a_role_may_not_see(db, tmp_path):
    """A census import's insert entry lists the new resident's tags; a clerk reading that resident's
    history must not find 社区矫正对象 there when the register and the export hide it."""
    from datetime import date

    from sqlalchemy import select

    from gridman.core.enums import Role
    from gridman.core.models import Resident
    from gridman.core.services import census
    from gridman.core.services.permissions import system_actor
    from tests.census_util import make_id, write_xlsx
    from tests.helpers import build_tree, make_user

    build_tree(db)
    rows = [["户号", "网格", "姓名", "公民身份号码", "与户主关系", "标签"],
            ["X1", "340104001001001", "张三", make_id(date(1980, 1, 2), "M"), "户主", "低保、社区矫正"]]
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        res = census.import_census(s, admin, path=write_xlsx(tmp_path / "seed.xlsx", rows))
    assert res.status == "imported", res.issues
    clerk = make_user(db, "clerk1", Role.CLERK)
    with db.session() as s:
        rid = s.scalar(select(Resident.id).where(Resident.name == "张三"))

        def tags(actor):  # type: ignore[no-untyped-def]
            (entry,) = [e for e in registers.resident_history(s, actor, rid) if e.action == "insert"]
            return (entry.changes or {}).get("tags", [None, []])[1]

        assert tags(admin) == ["low_income", "community_correction"]
        assert tags(clerk) == ["low_income"]

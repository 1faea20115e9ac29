"""The supervisor's queue on the demo database, checked against counts computed independently in
Python from the raw rows (the figures: tests/test_figures.py)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select, text

from gridman.core.models import Area, Incident, IncidentStep
from gridman.core.sample import SAMPLE_AS_OF
from gridman.core.services import mediation as m
from gridman.core.services.auth import actor_by_username
from gridman.core.services.errors import PermissionDenied, ValidationError
from gridman.core.services.mediation import figures as mf
from gridman.core.services.mediation import queue as mq
from gridman.core.services.permissions import system_actor

NOW = SAMPLE_AS_OF
ACTIVE = set(m.ACTIVE_STATUSES)


def _load(db):
    with db.session() as s:
        incs = s.execute(select(Incident.__table__)).mappings().all()
        steps = s.execute(select(IncidentStep.__table__)).mappings().all()
        areas = {a.id: a for a in s.scalars(select(Area))}
        admin = system_actor(s)
    return incs, steps, areas, admin


def _in_area(inc, area) -> bool:
    return area is None or areas_path(inc, area)


def areas_path(inc, area) -> bool:
    return inc["_path"].startswith(area.path)


def _prepare(incs, areas):
    out = []
    for i in incs:
        d = dict(i)
        d["_path"] = areas[i["grid_id"]].path
        out.append(d)
    return out


def test_queue_matches_a_direct_listing(demo_db):
    incs, _steps, areas, admin = _load(demo_db)
    incs = _prepare(incs, areas)
    street = next(a for a in areas.values() if a.level == "street")
    mine = [i for i in incs if i["_path"].startswith(street.path) and i["status"] in ACTIVE]
    expect = sorted(mine, key=lambda i: (i["due_at"], i["id"]))
    with demo_db.session() as s:
        res = mq.queue(s, admin, street.id, now=NOW, limit=1000)
        assert [r.id for r in res.rows] == [i["id"] for i in expect] and res.total == len(expect)
        assert res.counts == {st: sum(1 for i in mine if i["status"] == st) for st in m.ACTIVE_STATUSES}
        assert sum(res.counts.values()) == len(mine) > 50
        # overdue first: every overdue row comes before every other row
        flags = [r.overdue for r in res.rows]
        assert flags == sorted(flags, reverse=True) and any(flags) and not all(flags)
        # pages are slices of the same order
        page = mq.queue(s, admin, street.id, now=NOW, limit=10, offset=10, with_counts=False)
        assert [r.id for r in page.rows] == [i["id"] for i in expect[10:20]] and page.counts is None

        def ids(**kw):
            return {r.id for r in mq.queue(s, admin, street.id, now=NOW, limit=1000, **kw).rows}

        assert ids(level="community") == {i["id"] for i in mine if i["level"] == "community"}
        assert ids(status="in_progress") == {i["id"] for i in mine if i["status"] == "in_progress"}
        assert ids(status=["failed", "referred"]) == {i["id"] for i in mine if i["status"] in ("failed", "referred")}
        assert ids(category="dispute") == {i["id"] for i in mine if i["category"] == "dispute"}
        assert ids(overdue=True) == {i["id"] for i in mine if i["due_at"] < NOW}
        assert ids(overdue=False) == {i["id"] for i in mine if i["due_at"] >= NOW}
        h = Counter(i["handler_id"] for i in mine).most_common(1)[0][0]
        assert ids(handler=h) == {i["id"] for i in mine if i["handler_id"] == h}
        for q in ("漏水影响", "物业费", "纠纷", "噪音", "号：", "燃气管道老化"):  # FTS (≥ 3 chars) and LIKE (< 3)
            want = {i["id"] for i in mine if q in i["title"] or q in (i["description"] or "")}
            assert ids(text=q) == want, q
            assert want or q == "号："
        assert ids(text="100%") == set()
        # city-wide, a frequent term is tested while walking the deadline index: same answer
        whole = [i for i in incs if i["status"] in ACTIVE and "漏水影响" in i["title"] + (i["description"] or "")]
        want = [i["id"] for i in sorted(whole, key=lambda i: (i["due_at"], i["id"]))]
        for drive_max in (0, 10**9):
            old_max, mq.FTS_DRIVE_MAX = mq.FTS_DRIVE_MAX, drive_max
            try:
                assert [r.id for r in mq.queue(s, admin, None, text="漏水影响", now=NOW, limit=1000).rows] == want
            finally:
                mq.FTS_DRIVE_MAX = old_max
        assert ids(text="漏水", level="grid", overdue=True) == {
            i["id"] for i in mine if "漏水" in i["title"] + (i["description"] or "") and i["level"] == "grid"
            and i["due_at"] < NOW}
        # the whole scope of an administrator, and a district through the area paths
        dist = next(a for a in areas.values() if a.level == "district")
        assert mq.queue(s, admin, dist.id, now=NOW, limit=1).total == sum(1 for i in incs if i["status"] in ACTIVE)
        assert mq.queue(s, admin, None, now=NOW, limit=1).total == sum(1 for i in incs if i["status"] in ACTIVE)
        with pytest.raises(ValidationError):
            mq.queue(s, admin, street.id, status="closed")
        with pytest.raises(ValidationError):
            mq.queue(s, admin, street.id, level="city")


def test_queue_scope_of_a_warden(demo_db):
    incs, _steps, areas, _admin = _load(demo_db)
    with demo_db.session() as s:
        warden = actor_by_username(s, "warden")
        assert warden.grid_ids
        res = mq.queue(s, warden, None, now=NOW, limit=1000)
        assert {r.grid_id for r in res.rows} <= set(warden.grid_ids)
        assert res.total == sum(1 for i in incs if i["grid_id"] in warden.grid_ids and i["status"] in ACTIVE)
        other = next(a for a in areas.values() if a.level == "grid" and a.id not in warden.grid_ids)
        with pytest.raises(PermissionDenied):
            mq.queue(s, warden, other.id, now=NOW)
        with pytest.raises(PermissionDenied):
            mf.figures(s, warden, other.id)


def test_text_index_follows_changes(demo_db):
    with demo_db.session() as s:
        admin = system_actor(s)
        grid = s.scalar(select(Area).where(Area.level == "grid").order_by(Area.id))
    with demo_db.work(admin) as s:
        r = m.report(s, admin, grid_id=grid.id, category="other", title="独一无二的测试标题", now=NOW)
    with demo_db.session() as s:
        assert [x.id for x in mq.queue(s, admin, grid.id, text="独一无二", now=NOW).rows] == [r.incident_id]
    with demo_db.work(admin) as s:
        s.get(Incident, r.incident_id).title = "另一个标题"
        s.get(Incident, r.incident_id).description = "描述里有关键词乙丙丁"
    with demo_db.session() as s:
        assert mq.queue(s, admin, grid.id, text="独一无二", now=NOW).rows == []
        assert [x.id for x in mq.queue(s, admin, grid.id, text="关键词乙丙", now=NOW).rows] == [r.incident_id]
        if demo_db.dialect == "sqlite":
            n_fts = s.execute(text("SELECT count(*) FROM incidents_fts WHERE incidents_fts MATCH '\"关键词乙丙\"'")).scalar()
            assert n_fts == 1


def test_indexes_serve_the_queue(demo_db):
    """The plans use the indexes of migration 0003_mediation (not timings: plans)."""
    with demo_db.session() as s:
        admin = system_actor(s)
        street = s.scalar(select(Area).where(Area.level == "street").order_by(Area.id))
        if demo_db.dialect == "sqlite":
            stmt = mq_page_sql(s, admin, street.id)
            plan = " | ".join(r[3] for r in s.execute(text("EXPLAIN QUERY PLAN " + stmt)).all())
            assert "ix_incidents_street_due" in plan and "TEMP B-TREE" not in plan, plan
            plan = " | ".join(r[3] for r in s.execute(text(
                "EXPLAIN QUERY PLAN SELECT rowid FROM incidents_fts WHERE incidents_fts MATCH '\"漏水影响\"'")).all())
            assert "VIRTUAL TABLE INDEX" in plan, plan
        else:
            assert s.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_incidents_text_trgm'")).scalar()
            s.execute(text("SET LOCAL enable_seqscan = off"))
            cond = mq.text_condition(s, "漏水影响")
            stmt = select(Incident.id).where(cond).compile(s.get_bind(), compile_kwargs={"literal_binds": True})
            plan = "\n".join(r[0] for r in s.execute(text(f"EXPLAIN {stmt}")).all())
            assert "ix_incidents_text_trgm" in plan, plan


def mq_page_sql(s, actor, area_id) -> str:
    from sqlalchemy import and_

    from gridman.core.services.mediation.cases import in_scope

    area = s.get(Area, area_id)
    cond = and_(in_scope(actor, area), Incident.due_at.is_not(None),
                Incident.status.not_in(("closed", "merged")))
    stmt = select(Incident.id, Incident.title).where(cond).order_by(Incident.due_at, Incident.id).limit(50)
    return str(stmt.compile(s.get_bind(), compile_kwargs={"literal_binds": True}))


def test_upgrading_an_older_database_fills_the_text_index(tmp_path):
    """Incidents written before migration 0003_mediation are searchable after the upgrade."""
    from gridman.core.db import (
        Database,
        current_revision,
        head_revision,
        make_engine,
        resolve_url,
        upgrade_database,
    )
    from tests.helpers import build_tree

    path = tmp_path / "old.sqlite"
    old = Database(make_engine(path), resolve_url(path))
    upgrade_database(old, target="0002")
    tree = build_tree(old)
    with old.session() as s:
        admin = system_actor(s)
    with old.work(admin) as s:
        iid = m.report(s, admin, grid_id=tree.grid1, category="hazard", title="老数据库里的燃气隐患", now=NOW).incident_id
        assert not s.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'incidents_fts'")).scalar()
    old.dispose()
    from gridman.core.db import open_database

    new = open_database(path)
    try:
        assert current_revision(new) == head_revision()
        with new.session() as s:
            assert [r.id for r in mq.queue(s, admin, None, text="燃气隐患", now=NOW).rows] == [iid]
            assert mq.queue(s, admin, None, text="没有这回事", now=NOW).rows == []
    finally:
        new.dispose()
    assert list(tmp_path.glob("old.backup-v0002-*.sqlite"))

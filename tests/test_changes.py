"""Typed change notices: a unit of work reports what it changed (tables, ids, fields), read back
from its audit rows — ORM edits, a child table reported under its parent, and the census import's
bulk path that bypasses the ORM — on SQLite and PostgreSQL. Nothing is reported for a rolled-back
or read-only session."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gridman.core import changes
from gridman.core.changes import Changes
from gridman.core.models import AuditEntry, Household, Resident
from gridman.core.services import audit, people
from gridman.core.services.census import import_census
from gridman.core.services.permissions import system_actor
from tests.census_util import write_xlsx
from tests.helpers import build_tree
from tests.test_census_import import census_rows


def _admin(db):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return system_actor(s)


def test_an_edit_reports_its_table_ids_and_fields(demo_db):
    admin = _admin(demo_db)
    with demo_db.session() as s:
        r = s.scalars(select(Resident).where(Resident.status == "active").order_by(Resident.id)).first()
        rid, ver, name = r.id, r.version, r.name
    with demo_db.work(admin) as s:
        people.update_resident(s, admin, rid, expected_version=ver, name=name + "改")
    ch = changes.of(s)
    assert ch.ids("residents") == {rid} and not ch.reshaped("residents")
    assert ch.tables["residents"].fields == {"name"}
    assert ch.touches_fields("residents", {"name"}) and not ch.touches_fields("residents", {"grid_id", "status"})
    assert not ch.touches("households", "incidents", "areas")

    # a tag: the resident_tags row inserted, and its resident reported as updated
    with demo_db.work(admin) as s:
        people.set_tag(s, admin, rid, "elderly_alone", on=True)
    ch = changes.of(s)
    assert ch.reshaped("resident_tags") and len(ch.ids("resident_tags") or ()) == 1
    assert ch.ids("residents") == {rid} and ch.touches_fields("residents", {"resident_tags"})

    # rolled back: nothing reported; read-only session: nothing tracked
    with pytest.raises(RuntimeError), demo_db.work(admin) as s:
        s.get(Resident, rid).name = "回滚"
        s.flush()
        raise RuntimeError("stop")
    assert not changes.of(s)
    with demo_db.session() as s:
        assert not changes.of(s)


def test_a_new_household_reports_inserted_rows(demo_db):
    admin = _admin(demo_db)
    with demo_db.session() as s:
        grid = s.scalar(select(Household.grid_id).limit(1))
    with demo_db.work(admin) as s:
        hh = people.register_household(s, admin, grid_id=grid, household_no="CHG-1", members=[
            {"name": "甲", "relation_to_head": "head"}, {"name": "乙", "relation_to_head": "spouse"}])
        hid, rids = hh.id, {r.id for r in hh.residents}
    ch = changes.of(s)
    assert ch.tables["households"].inserted == {hid} and ch.tables["residents"].inserted == rids
    assert ch.reshaped("residents") and ch.touches_fields("residents", {"grid_id"})


def test_a_core_bulk_write_is_reported_and_many_rows_without_ids(demo_db, monkeypatch):
    """A Core executemany + audit.bulk_rows (the geometry moves' and the sweep's path); past
    MAX_IDS rows the ids and fields are unknown but the table is still reported."""
    admin = _admin(demo_db)
    with demo_db.session() as s:
        want = list(s.scalars(select(Resident.id).order_by(Resident.id).limit(10)))
    monkeypatch.setattr(changes, "MAX_IDS", 3)
    with demo_db.work(admin) as s:
        s.execute(Resident.__table__.update().where(Resident.id.in_(want)).values(note="x"))
        s.execute(AuditEntry.__table__.insert(),
                  audit.bulk_rows(admin, "update", "residents", [(i, None, {"note": (None, "x")}) for i in want]))
    ch = changes.of(s)
    assert ch.ids("residents") is None and ch.tables["residents"].fields is None
    assert ch.touches_fields("residents", {"grid_id"}) and not ch.touches("households")


def test_the_census_bulk_path_is_reported(db, tmp_path):
    build_tree(db)
    admin = _admin(db)
    path = write_xlsx(tmp_path / "c.xlsx", census_rows())
    with db.session() as s:
        before = set(s.scalars(select(Resident.id)))
    with db.work(admin) as s:
        import_census(s, admin, path=path)
    ch = changes.of(s)
    with db.session() as s:
        new = set(s.scalars(select(Resident.id))) - before
    assert len(new) == 7 and ch.tables["residents"].inserted == new
    assert ch.reshaped("households")  # the tags travel inside the residents' compact audit entries


def test_merged_and_all():
    a = Changes.of("residents", [1], reshaped=False)
    b = Changes.of("residents", [2])
    m = a.merged(b)
    assert m.ids("residents") == {1, 2} and m.reshaped("residents")
    assert Changes.all().touches("anything") and Changes.all().ids("residents") is None
    assert not Changes() and Changes.all()

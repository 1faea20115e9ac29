"""The data model on both databases: subtree queries, uniqueness, optimistic locking,
permission refusals and the audit log."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from gridman.core import idcard
from gridman.core.enums import Role
from gridman.core.models import Area, AuditEntry, Household, Resident
from gridman.core.services import areas, auth, people, scope
from gridman.core.services.errors import ConflictError, PermissionDenied, ValidationError
from gridman.core.services.permissions import system_actor
from tests.helpers import PASSWORD, build_tree, make_user

ID_A = idcard.make("340104", date(1980, 5, 17), 3, "M")
ID_B = idcard.make("340104", date(1982, 7, 2), 8, "F")


def test_subtree_queries(db):
    t = build_tree(db)
    with db.session() as s:
        street = s.get(Area, t.street)
        ids = set(s.scalars(scope.subtree_ids(street.path)))
        assert ids == {t.street, t.community, t.grid1, t.grid2}
        grids = set(s.scalars(scope.subtree_ids(s.get(Area, t.district).path, level="grid")))
        assert grids == {t.grid1, t.grid2, t.grid3}
        anc = [a.id for a in areas.ancestors(s, s.get(Area, t.grid1))]
        assert anc == [t.city, t.district, t.street, t.community]
        assert areas.ancestor_of_level(s, s.get(Area, t.grid3), "street").id == t.street2


def test_community_directly_under_district_allowed_grid_under_street_refused(db):
    t = build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        c = areas.create_area(s, admin, code="340104900", name="开发区社区", level="community",
                              parent=s.get(Area, t.district))
        assert c.path.startswith(s.get(Area, t.district).path)
    with pytest.raises(ValidationError), db.work(admin) as s:
        areas.create_area(s, admin, code="340104001777", name="错网格", level="grid", parent=s.get(Area, t.street))


def test_citizen_id_unique_when_present(db):
    t = build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        people.add_resident(s, admin, grid_id=t.grid1, name="张三", citizen_id=ID_A)
        people.add_resident(s, admin, grid_id=t.grid1, name="无证甲")  # several residents without an ID
        people.add_resident(s, admin, grid_id=t.grid1, name="无证乙")
    with pytest.raises(ValidationError) as ei, db.work(admin) as s:
        people.add_resident(s, admin, grid_id=t.grid2, name="李四", citizen_id=ID_A)
    assert ei.value.field == "citizen_id"
    # and the database itself refuses a duplicate written around the service
    with pytest.raises(IntegrityError), db.work(admin) as s:
        s.add(Resident(grid_id=t.grid2, name="绕过", citizen_id=ID_A, population_type="registered"))
        s.flush()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Resident)) == 3


def test_household_needs_exactly_one_head_and_nothing_half_written(db):
    t = build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    with pytest.raises(ValidationError), db.work(admin) as s:
        people.register_household(s, admin, grid_id=t.grid1, household_no="H1", members=[
            {"name": "甲", "relation_to_head": "head"}, {"name": "乙", "relation_to_head": "head"}])
    with pytest.raises(ValidationError), db.work(admin) as s:  # second member has a bad ID: whole household refused
        people.register_household(s, admin, grid_id=t.grid1, household_no="H1", members=[
            {"name": "甲", "relation_to_head": "head", "citizen_id": ID_A},
            {"name": "乙", "relation_to_head": "spouse", "citizen_id": ID_B[:-1] + ("0" if ID_B[-1] != "0" else "1")}])
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Household)) == 0
        assert s.scalar(select(func.count()).select_from(Resident)) == 0
    with db.work(admin) as s:
        hh = people.register_household(s, admin, grid_id=t.grid1, household_no="H1", address="西园新村1栋101", members=[
            {"name": "甲", "relation_to_head": "head", "citizen_id": ID_A},
            {"name": "乙", "relation_to_head": "spouse", "citizen_id": ID_B}])
        hid = hh.id
    with db.session() as s:
        rows = s.execute(select(Resident.name, Resident.sex, Resident.birth_date).where(Resident.household_id == hid)
                         .order_by(Resident.name)).all()
        assert [tuple(r) for r in rows] == [("乙", "F", date(1982, 7, 2)), ("甲", "M", date(1980, 5, 17))]


def test_optimistic_locking_conflict_between_two_sessions(db):
    t = build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        rid = people.add_resident(s, admin, grid_id=t.grid1, name="王五", phone="13900000000").id
    with db.session() as s:
        v = s.get(Resident, rid).version
    # two people opened the same form at version v; the first saves …
    with db.work(admin) as s:
        people.update_resident(s, admin, rid, expected_version=v, phone="13911111111")
    # … the second is told, and nothing is overwritten
    with pytest.raises(ConflictError), db.work(admin) as s:
        people.update_resident(s, admin, rid, expected_version=v, phone="13922222222")
    with db.session() as s:
        r = s.get(Resident, rid)
        assert (r.phone, r.version) == ("13911111111", v + 1)


def test_concurrent_flush_raises_conflict_via_version_counter(db):
    """Two sessions hold the row at the same version (read, transaction ended, form open) and both
    save: the second UPDATE matches no row (version changed) and is refused, not applied."""
    t = build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        rid = people.add_resident(s, admin, grid_id=t.grid1, name="赵六").id
    s1, s2 = db.session(), db.session()
    s1.info["actor"] = s2.info["actor"] = admin
    r1, r2 = s1.get(Resident, rid), s2.get(Resident, rid)
    s1.commit()
    s2.commit()  # read transactions end; the objects stay loaded (expire_on_commit=False)
    r1.note, r2.note = "first", "second"
    s1.commit()
    from sqlalchemy.orm.exc import StaleDataError

    with pytest.raises(StaleDataError):
        s2.commit()
    s1.close()
    s2.close()
    with db.session() as s:
        assert s.get(Resident, rid).note == "first"


def test_a_duplicate_id_names_its_holder_only_inside_the_actors_scope(db):
    """The refusal of a citizen ID registered elsewhere must not tell a warden who holds it (a
    warden could type any ID and read the name of a resident of another grid)."""
    t = build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        people.add_resident(s, admin, grid_id=t.grid2, name="张三", citizen_id=ID_A)
    warden = make_user(db, "wg1", Role.WARDEN, grids=[t.grid1])
    staff = make_user(db, "sq1", Role.COMMUNITY_STAFF, area_id=t.community)
    with pytest.raises(ValidationError) as ei, db.work(warden) as s:
        people.add_resident(s, warden, grid_id=t.grid1, name="李四", citizen_id=ID_A)
    assert ei.value.field == "citizen_id" and "张三" not in ei.value.message + ei.value.en
    assert ID_A not in ei.value.message  # masked, as before
    with pytest.raises(ValidationError) as ei, db.work(staff) as s:  # grid2 is in the community
        people.add_resident(s, staff, grid_id=t.grid1, name="李四", citizen_id=ID_A)
    assert "张三" in ei.value.message


def test_an_invalid_id_is_explained_in_english_too(db):
    t = build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    with pytest.raises(ValidationError) as ei, db.work(admin) as s:
        people.add_resident(s, admin, grid_id=t.grid1, name="李四", citizen_id=ID_A[:17])
    assert ei.value.field == "citizen_id" and ei.value.en == "A citizen ID has 18 characters, this one 17"


def test_permission_refusals(db):
    t = build_tree(db)
    warden = make_user(db, "wg1", Role.WARDEN, grids=[t.grid1])
    staff = make_user(db, "sq1", Role.COMMUNITY_STAFF, area_id=t.community)
    clerk = make_user(db, "clerk1", Role.CLERK)
    # a warden writes in their own grid …
    with db.work(warden) as s:
        people.add_resident(s, warden, grid_id=t.grid1, name="本网格")
    # … not in another grid
    with pytest.raises(PermissionDenied) as ei, db.work(warden) as s:
        people.add_resident(s, warden, grid_id=t.grid2, name="别的网格")
    assert "第2网格" in str(ei.value)
    # community staff: their community, not the other street's
    with db.work(staff) as s:
        people.add_resident(s, staff, grid_id=t.grid2, name="社区内")
    with pytest.raises(PermissionDenied), db.work(staff) as s:
        people.add_resident(s, staff, grid_id=t.grid3, name="社区外")
    # only administrators manage users
    with pytest.raises(PermissionDenied), db.work(clerk) as s:
        auth.create_user(s, clerk, username="x", display_name="x", password=PASSWORD, role="warden")
    # scope filter in SQL: the warden sees only grid1's residents
    with db.session() as s:
        names = set(s.scalars(select(Resident.name).where(scope.rows(warden, Resident.grid_id))))
        assert names == {"本网格"}
        names = set(s.scalars(select(Resident.name).where(scope.rows(staff, Resident.grid_id))))
        assert names == {"本网格", "社区内"}


def test_sensitive_data_masked_for_roles_without_the_right(db):
    t = build_tree(db)
    clerk = make_user(db, "clerk1", Role.CLERK)
    staff = make_user(db, "sq1", Role.COMMUNITY_STAFF, area_id=t.community)
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        rid = people.add_resident(s, admin, grid_id=t.grid1, name="钱七", citizen_id=ID_A,
                                  tags=["elderly_alone", "released_prisoner"]).id
    with db.session() as s:
        v_clerk = people.view_resident(s, clerk, rid)
        v_staff = people.view_resident(s, staff, rid)
    assert v_clerk.citizen_id == idcard.mask(ID_A) and v_clerk.citizen_id != ID_A
    assert v_clerk.tags == ("elderly_alone",)
    assert v_staff.citizen_id == ID_A
    assert set(v_staff.tags) == {"elderly_alone", "released_prisoner"}


def test_audit_rows_for_insert_update_delete(db):
    t = build_tree(db)
    staff = make_user(db, "sq1", Role.COMMUNITY_STAFF, area_id=t.community)
    with db.work(staff) as s:
        rid = people.add_resident(s, staff, grid_id=t.grid1, name="孙八", phone="13800000000").id
    with db.session() as s:
        v = s.get(Resident, rid).version
    with db.work(staff) as s:
        people.update_resident(s, staff, rid, expected_version=v, phone="13811111111", name="孙八八")
    with db.session() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.table_name == "residents", AuditEntry.row_id == rid)
                         .order_by(AuditEntry.id)).all()
        assert [r.action for r in rows] == ["insert", "update"]
        assert all(r.username == "sq1" and r.user_id == staff.user_id for r in rows)
        assert rows[0].changes["name"] == [None, "孙八"]
        assert rows[1].changes == {"phone": ["13800000000", "13811111111"], "name": ["孙八", "孙八八"]}


def test_a_change_without_an_actor_is_refused(db):
    t = build_tree(db)
    with pytest.raises(RuntimeError), db.session() as s, s.begin():
        s.add(Resident(grid_id=t.grid1, name="无名", population_type="registered"))
        s.flush()


def test_sign_in(db):
    t = build_tree(db)
    make_user(db, "wg1", Role.WARDEN, grids=[t.grid1])
    with db.session() as s, s.begin():
        a = auth.authenticate(s, "wg1", PASSWORD)
        assert a.grid_ids == frozenset({t.grid1})
    for user, pw in (("wg1", "wrong"), ("nobody", PASSWORD), ("system", "!")):
        with pytest.raises(PermissionDenied) as ei, db.session() as s, s.begin():
            auth.authenticate(s, user, pw)
        assert str(ei.value) == auth.SIGN_IN_REFUSED[0]  # one answer for every refusal (issue #16)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "login")) == 1


def test_sqlite_pragmas(tmp_path):
    from gridman.core.db import open_database

    d = open_database(tmp_path / "p.sqlite")
    with d.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    d.dispose()


def test_one_writer_waits_for_another_instead_of_failing(tmp_path):
    """WAL + busy timeout: a second writer waits for the first rather than 'database is locked'."""
    from gridman.core.db import open_database

    d = open_database(tmp_path / "w.sqlite")
    t = build_tree(d)
    with d.session() as s:
        admin = system_actor(s)
    started = threading.Event()
    errors: list[Exception] = []

    def slow_writer() -> None:
        try:
            with d.work(admin) as s:
                people.add_resident(s, admin, grid_id=t.grid1, name="慢")
                started.set()
                threading.Event().wait(0.5)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    th = threading.Thread(target=slow_writer)
    th.start()
    started.wait(5)
    with d.work(admin) as s:
        people.add_resident(s, admin, grid_id=t.grid1, name="快")
    th.join()
    assert not errors
    with d.session() as s:
        assert s.scalar(select(func.count()).select_from(Resident)) == 2
    d.dispose()


def test_update_user_checks_role_area_and_self_lockout(db):
    t = build_tree(db)
    admin_actor = make_user(db, "boss", Role.ADMIN)
    staff = make_user(db, "sq1", Role.COMMUNITY_STAFF, area_id=t.community)
    with pytest.raises(ValidationError), db.work(admin_actor) as s:  # a supervisor needs a street
        auth.update_user(s, admin_actor, staff.user_id, role="street_supervisor", area_id=t.community)
    with pytest.raises(ValidationError), db.work(admin_actor) as s:  # no locking oneself out
        auth.update_user(s, admin_actor, admin_actor.user_id, active=False)
    with pytest.raises(PermissionDenied), db.work(staff) as s:
        auth.update_user(s, staff, staff.user_id, display_name="x")
    with db.work(admin_actor) as s:
        auth.update_user(s, admin_actor, staff.user_id, role="street_supervisor", area_id=t.street, active=False,
                         new_password="another1")
    with db.session() as s:
        from gridman.core.models import User

        u = s.get(User, staff.user_id)
        assert (u.role, u.area_id, u.active) == ("street_supervisor", t.street, False)
        entry = s.scalars(select(AuditEntry).where(AuditEntry.table_name == "users", AuditEntry.row_id == u.id,
                                                   AuditEntry.action == "update")).one()
        assert entry.changes["password_hash"] == ["***", "***"] and entry.changes["active"] == [True, False]
    with pytest.raises(PermissionDenied), db.session() as s, s.begin():
        auth.authenticate(s, "sq1", "another1")  # disabled

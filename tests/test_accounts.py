"""Account services the administration page calls with ids (services.auth), on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gridman.core.enums import Role
from gridman.core.models import User, WardenAssignment
from gridman.core.services import auth
from gridman.core.services.errors import NotFound, PermissionDenied, ValidationError
from gridman.core.services.permissions import system_actor
from tests.helpers import PASSWORD, build_tree, make_user


def test_create_user_and_assign_a_grid_by_ids(db):
    t = build_tree(db)
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        staff = auth.create_user(s, admin, username="sq", display_name="社区", password=PASSWORD,
                                 role=Role.COMMUNITY_STAFF, area_id=t.community)
        assert staff.area_id == t.community
        with pytest.raises(ValidationError):  # a street is not a community
            auth.create_user(s, admin, username="sq2", display_name="x", password=PASSWORD,
                             role=Role.COMMUNITY_STAFF, area_id=t.street)
        with pytest.raises(NotFound):
            auth.create_user(s, admin, username="sq3", display_name="x", password=PASSWORD,
                             role=Role.COMMUNITY_STAFF, area_id=999_999)
    warden = make_user(db, "wg", Role.WARDEN)
    with db.work(admin) as s:
        auth.assign_warden(s, admin, user_id=warden.user_id, grid_id=t.grid2)
        assert s.scalar(select(WardenAssignment.grid_id).where(WardenAssignment.user_id == warden.user_id)) == t.grid2
        with pytest.raises(ValidationError):  # a community is not a grid
            auth.assign_warden(s, admin, user_id=warden.user_id, grid_id=t.community)
        with pytest.raises(ValidationError):  # community staff are not wardens
            auth.assign_warden(s, admin, user_id=s.scalar(select(User.id).where(User.username == "sq")),
                               grid_id=t.grid1)
        with pytest.raises(NotFound):
            auth.assign_warden(s, admin, user_id=999_999, grid_id=t.grid1)


def test_user_details_for_the_edit_form_only_for_user_managers(db):
    t = build_tree(db)
    staff = make_user(db, "sq", Role.COMMUNITY_STAFF, area_id=t.community)
    with db.session() as s:
        admin = system_actor(s)
        d = auth.user_details(s, admin, staff.user_id)
        assert (d.username, d.role, d.area_id, d.active) == ("sq", "community_staff", t.community, True)
        with pytest.raises(PermissionDenied):
            auth.user_details(s, staff, staff.user_id)
        with pytest.raises(NotFound):  # the built-in system account is not edited here
            auth.user_details(s, admin, s.scalar(select(User.id).where(User.is_system.is_(True))))


def test_update_user_to_a_missing_area_is_refused_not_a_database_error(db):
    t = build_tree(db)
    warden = make_user(db, "wg", Role.WARDEN, area_id=t.grid1)
    with db.session() as s:
        admin = system_actor(s)
    with pytest.raises(NotFound), db.work(admin) as s:  # a warden's area is free, but it must exist
        auth.update_user(s, admin, warden.user_id, area_id=999_999)
    with pytest.raises(NotFound), db.work(admin) as s:
        auth.update_user(s, admin, warden.user_id, role="community_staff", area_id=999_999)
    with db.session() as s:
        assert s.get(User, warden.user_id).area_id == t.grid1

"""allowed_actions: what a front offers is exactly what the actions accept (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from gridman.core.services import mediation as m
from gridman.core.services.errors import GridmanError, NotFound
from tests.mediation_world import act, report, world_fixture, world_templates  # noqa: F401


def allowed(w, actor, iid):  # type: ignore[no-untyped-def]
    with w.db.session() as s:
        return m.allowed_actions(s, actor, iid)


def test_allowed_follow_the_case(w):
    r = report(w)
    iid = r.incident_id
    assert allowed(w, w.warden, iid) == ["accept", "assign", "escalate", "merge", "attach"]
    with pytest.raises(NotFound):  # another grid's warden may not even learn that it exists
        allowed(w, w.warden3, iid)
    assert allowed(w, w.staff, iid) == []  # the case is at grid level
    assert allowed(w, w.clerk, iid) == []  # clerks report, never handle
    r = act(w, w.warden, r, "accept")
    assert set(allowed(w, w.warden, iid)) == {"assign", "handle", "resolve", "fail", "escalate", "refer", "merge",
                                              "attach"}
    r = act(w, w.warden, r, "resolve", agreement_text="赔偿500元")
    # resolved at grid level: the community verifies, the warden may not
    assert "verify" not in allowed(w, w.warden, iid)
    assert allowed(w, w.staff, iid) == ["verify", "verify_fail"]
    r = act(w, w.staff, r, "verify")
    assert allowed(w, w.staff, iid) == ["evaluate", "reopen"]
    assert allowed(w, w.warden, iid) == ["attach"]  # the grid may still add photos to its closed case
    r = act(w, w.staff, r, "evaluate", satisfaction="satisfied")
    assert "evaluate" not in allowed(w, w.staff, iid)  # evaluated once


def test_every_allowed_action_is_accepted_and_others_refused(w):
    """For each action of a fresh escalated case, the service agrees with allowed_actions."""
    r = report(w)
    r = act(w, w.warden, r, "escalate", note="超出网格能力")
    iid = r.incident_id
    ok = allowed(w, w.staff, iid)
    assert "hand_down" in ok and "escalate" in ok and "verify" not in ok
    kwargs = {"escalate": {"note": "x"}, "hand_down": {"note": "x"}, "accept": {}, "merge": {"into_id": iid},
              "verify": {}, "resolve": {"agreement_text": "x"}}
    for action in ("accept", "escalate", "hand_down", "verify", "resolve"):
        with w.db.work(w.staff) as s:
            try:
                m.act(s, w.staff, iid, action, expected_version=r.version, **kwargs[action])
                accepted = True
            except GridmanError:
                accepted = False
            s.rollback()
        assert accepted == (action in ok), action


def test_assign_gives_the_case_to_a_handler_of_its_level(w):
    """分派: only to someone who may act at the case's level; the step names the handler."""
    r = report(w)
    iid = r.incident_id
    with w.db.session() as s:
        cands = m.handler_candidates(s, w.warden, [iid])
    assert w.warden.user_id in [c[0] for c in cands]
    assert all(role == "warden" for _, _, role in cands)
    assert w.warden3.user_id not in [c[0] for c in cands]  # another grid's warden
    with pytest.raises(GridmanError), w.db.work(w.warden) as s:  # not a grid-level handler
        m.assign(s, w.warden, iid, expected_version=r.version, handler_id=w.staff.user_id)
    with w.db.work(w.warden) as s:
        res = m.assign(s, w.warden, iid, expected_version=r.version, handler_id=w.warden.user_id, note="本人办理")
        assert (res.status, res.version) == ("reported", r.version + 1)
    with w.db.session() as s:
        view = m.show(s, w.warden, iid)
        assert view.steps[-1].action == "assign" and view.steps[-1].target == w.warden.username
        from gridman.core.models import Incident

        assert s.get(Incident, iid).handler_id == w.warden.user_id

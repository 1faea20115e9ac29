"""Time limits: policy lookup with fallback, calendar and working days (holidays, 调休), deadlines
recomputed at each level change, and the idempotent overdue sweep."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from gridman.core.models import AuditEntry, Incident, IncidentStep
from gridman.core.services import mediation as m
from gridman.core.services import time_limits as tl
from gridman.core.services.errors import ConflictError, PermissionDenied, ValidationError
from tests.mediation_world import MON, act, report, state, world_fixture, world_templates  # noqa: F401

NATIONAL_DAY = [date(2026, 10, d) for d in range(1, 8)]  # Thu 1 – Wed 7 October
MAKEUP_SAT = date(2026, 10, 10)


def cal() -> tl.Calendar:
    return tl.Calendar(set(NATIONAL_DAY), {MAKEUP_SAT})


def test_calendar_and_working_days():
    c = tl.Calendar()
    fri = datetime(2026, 11, 6, 2, 0)  # Friday 10:00 in Hefei
    assert c.add(fri, 3, working_days=False) == datetime(2026, 11, 9, 2, 0)
    assert c.add(fri, 3, working_days=True) == datetime(2026, 11, 11, 2, 0)  # Mon, Tue, Wed
    assert c.add(fri, 5, working_days=True) == datetime(2026, 11, 13, 2, 0)
    # the day is decided in Hefei: Friday 17:00 UTC is Saturday 01:00 there → Monday 01:00 CST
    assert c.add(datetime(2026, 11, 6, 17, 0), 1, working_days=True) == datetime(2026, 11, 8, 17, 0)
    # Friday 23:59 there is still Friday (→ Monday 23:59); Saturday 00:00 there (→ Monday 00:00)
    assert c.add(datetime(2026, 11, 6, 15, 59), 1, working_days=True) == datetime(2026, 11, 9, 15, 59)
    assert c.add(datetime(2026, 11, 6, 16, 0), 1, working_days=True) == datetime(2026, 11, 8, 16, 0)
    assert c.add(datetime(2026, 11, 5, 15, 59), 1, working_days=True) == datetime(2026, 11, 6, 15, 59)
    # holidays are skipped, a make-up Saturday counts
    h = cal()
    wed = datetime(2026, 9, 30, 1, 0)
    assert h.add(wed, 1, working_days=True) == datetime(2026, 10, 8, 1, 0)
    assert h.add(wed, 3, working_days=True) == datetime(2026, 10, 10, 1, 0)  # Thu 8, Fri 9, Sat 10 (调休)
    assert h.add(wed, 4, working_days=True) == datetime(2026, 10, 12, 1, 0)
    assert h.add(wed, 3, working_days=False) == datetime(2026, 10, 3, 1, 0)
    assert not h.is_working_day(date(2026, 10, 5)) and h.is_working_day(MAKEUP_SAT)
    assert not h.is_working_day(date(2026, 10, 11))


def test_policy_lookup_falls_back_to_level_default():
    p = tl.PolicyTable([tl.Limit("grid", None, 3, False), tl.Limit("grid", "hazard", 1, False),
                        tl.Limit("street", None, 15, True)])
    assert p.limit("grid", "hazard").days == 1
    assert p.limit("grid", "dispute").days == 3 and p.limit("grid", None).days == 3
    assert p.limit("street", "dispute").working_days is True
    assert p.limit("community", "dispute").days == tl.FALLBACK_DAYS["community"]


def test_policy_service(w):
    with w.db.session() as s:
        rows = tl.list_policies(s)
    assert [(r.level, r.category, r.days, r.working_days) for r in rows] == [
        ("grid", None, 3, False), ("community", None, 7, False), ("street", None, 15, False), ("case", None, 30, False)]
    with pytest.raises(PermissionDenied):
        with w.db.work(w.street) as s:
            tl.set_policy(s, w.street, level="grid", days=5)
    for bad in ({"level": "city", "days": 3}, {"level": "grid", "days": 0}, {"level": "grid", "days": 3,
                                                                             "category": "weather"}):
        with pytest.raises(ValidationError):
            with w.db.work(w.admin) as s:
                tl.set_policy(s, w.admin, **bad)
    with w.db.work(w.admin) as s:
        tl.set_policy(s, w.admin, level="grid", days=5, working_days=True)
        tl.set_policy(s, w.admin, level="grid", category="hazard", days=1)
    with w.db.session() as s:
        rows = tl.list_policies(s)
        assert ("grid", None, 5, True) in [(r.level, r.category, r.days, r.working_days) for r in rows]
        assert ("grid", "hazard", 1, False) in [(r.level, r.category, r.days, r.working_days) for r in rows]
        assert s.scalar(select(AuditEntry.id).where(AuditEntry.table_name == "time_limit_policies"))


def test_deadlines_recomputed_at_each_level_change(w):
    with w.db.work(w.admin) as s:
        tl.set_policy(s, w.admin, level="grid", days=2, working_days=True)
        tl.set_policy(s, w.admin, level="street", category="dispute", days=10, working_days=True)
        for d in NATIONAL_DAY:
            tl.set_holiday(s, w.admin, day=d, name="国庆节")
        tl.set_holiday(s, w.admin, day=MAKEUP_SAT, is_workday=True, name="国庆调休")
    wed = datetime(2026, 9, 30, 1, 0)  # Wednesday 09:00 CST, the eve of the holiday
    r = report(w, now=wed)
    assert r.due_at == datetime(2026, 10, 9, 1, 0)  # 2 working days: Thu 8, Fri 9
    assert r.case_due_at == wed + timedelta(days=30)
    t1 = datetime(2026, 10, 9, 2, 0)
    r = act(w, w.warden, r, "escalate", note="上报", now=t1)
    assert (r.level, r.due_at) == ("community", t1 + timedelta(days=7))  # community default, calendar days
    t2 = datetime(2026, 10, 12, 2, 0)  # Monday
    r = act(w, w.staff, r, "escalate", note="上报", now=t2)
    assert (r.level, r.due_at) == ("street", datetime(2026, 10, 26, 2, 0))  # 10 working days (dispute policy)
    t3 = datetime(2026, 10, 13, 3, 0)
    r = act(w, w.street, r, "hand-down", note="社区牵头", now=t3)
    assert (r.level, r.due_at) == ("community", t3 + timedelta(days=7))
    t4 = datetime(2026, 10, 16, 3, 0)  # Friday
    r = act(w, w.staff, r, "hand-down", note="网格跟进", now=t4)
    assert (r.level, r.due_at) == ("grid", datetime(2026, 10, 20, 3, 0))  # Mon 19, Tue 20
    assert r.case_due_at == wed + timedelta(days=30)  # the whole case keeps its deadline
    # a hazard escalated to the street falls back to the street default (15 calendar days)
    h = report(w, category="hazard", title="燃气管道老化", now=t4)
    h = act(w, w.warden, h, "escalate", note="上报", now=t4)
    h = act(w, w.staff, h, "escalate", note="上报", now=t4)
    assert h.due_at == t4 + timedelta(days=15)
    with w.db.session() as s:
        inc = s.get(Incident, r.incident_id)
        assert inc.level_entered_at == t4


def _steps(w, iid):
    with w.db.session() as s:
        return s.scalars(select(IncidentStep).where(IncidentStep.incident_id == iid).order_by(IncidentStep.seq)).all()


def test_escalate_overdue_is_idempotent(w):
    a = report(w)  # grid, due MON+3d
    b = act(w, w.warden, report(w), "accept")
    c = act(w, w.warden, report(w), "escalate", note="上报社区")  # community, due MON+7d
    d = report(w, w.street)  # street, due MON+15d
    e = act(w, w.warden, act(w, w.warden, report(w), "accept"), "refer", target="court")
    f = act(w, w.warden, act(w, w.warden, report(w), "accept"), "resolve", agreement_text="和解")
    g = report(w, w.warden3, grid=w.tree.grid3)
    h = report(w, now=MON + timedelta(days=5))  # due MON+8d
    t4 = MON + timedelta(days=4)

    with w.db.session() as s:  # active and past their deadline, per level (referred/resolved included)
        assert m.overdue_counts(s, w.admin, now=t4) == {"grid": 5}
        assert m.overdue_counts(s, w.warden3, now=t4) == {"grid": 1}
    # community staff sweep only their community: a and b move up; g is another community's
    with w.db.work(w.staff) as s:
        res = m.escalate_overdue(s, w.staff, now=t4)
    assert (sorted(res.escalated_ids), res.flagged) == (sorted([a.incident_id, b.incident_id]), 0)
    with w.db.work(w.admin) as s:
        res = m.escalate_overdue(s, w.admin, now=t4)
    assert (res.escalated_ids, res.flagged) == ([g.incident_id], 0)
    with w.db.work(w.admin) as s:
        res = m.escalate_overdue(s, w.admin, now=t4)
    assert (res.escalated, res.flagged) == (0, 0)  # nothing twice
    st = _steps(w, a.incident_id)[-1]
    assert (st.action, st.from_level, st.to_level, st.from_status, st.to_status) == (
        "escalate", "grid", "community", "reported", "reported")
    assert st.note.startswith("超期") and st.at == t4 and st.actor_name == "c1"
    assert state(w, a.incident_id) == (a.version + 1, "community", "reported", 2)
    assert state(w, b.incident_id) == (b.version + 1, "community", "reported", 3)
    with w.db.session() as s:
        inc = s.get(Incident, b.incident_id)
        assert (inc.due_at, inc.level_entered_at, inc.handler_id) == (t4 + timedelta(days=7), t4, None)
    # someone holding the old version is told so
    with pytest.raises(ConflictError):
        act(w, w.warden, b, "handle", note="x")

    t16 = MON + timedelta(days=16)
    with w.db.work(w.admin) as s:
        res = m.escalate_overdue(s, w.admin, now=t16)
    assert sorted(res.escalated_ids) == sorted([a.incident_id, b.incident_id, c.incident_id, g.incident_id,
                                                h.incident_id])
    assert res.flagged_ids == [d.incident_id]
    assert state(w, c.incident_id)[1:3] == ("street", "reported")
    assert state(w, h.incident_id)[1:3] == ("community", "reported")
    assert state(w, e.incident_id) == (e.version, "grid", "referred", 3)
    assert state(w, f.incident_id) == (f.version, "grid", "resolved", 3)
    assert state(w, d.incident_id) == (d.version + 1, "street", "reported", 2)
    flag = _steps(w, d.incident_id)[-1]
    assert (flag.action, flag.from_level, flag.to_level) == ("overdue", "street", "street")
    assert "超期" in flag.note
    with w.db.session() as s:
        assert s.get(Incident, c.incident_id).due_at == t16 + timedelta(days=15)
        assert s.get(Incident, d.incident_id).due_at == MON + timedelta(days=15)  # flagged, not moved
        notes = s.scalars(select(AuditEntry.note).where(AuditEntry.note == "escalate-overdue")).all()
        assert len(notes) == 2 + 1 + 5 + 1
    for later in (t16, t16 + timedelta(days=1)):
        with w.db.work(w.admin) as s:
            res = m.escalate_overdue(s, w.admin, now=later)
        assert (res.escalated, res.flagged) == (0, 0)
    assert state(w, d.incident_id)[3] == 2
    # the street case handed down and back up becomes flaggable again, once
    d2 = act(w, w.street, d.incident_id, "hand-down", version=d.version + 1, note="社区办理", now=t16)
    d2 = act(w, w.staff, d2, "escalate", note="仍需街道", now=t16)
    with w.db.work(w.admin) as s:
        res = m.escalate_overdue(s, w.admin, now=t16 + timedelta(days=16))
    assert d.incident_id in res.flagged_ids
    with pytest.raises(PermissionDenied):
        with w.db.work(w.clerk) as s:
            m.escalate_overdue(s, w.clerk, now=t16)


def test_list_holidays_in_date_order_by_year(w):
    with w.db.work(w.admin) as s:
        tl.set_holiday(s, w.admin, day=date(2026, 10, 2), name="国庆节")
        tl.set_holiday(s, w.admin, day=date(2026, 10, 1), name="国庆节")
        tl.set_holiday(s, w.admin, day=date(2026, 10, 10), is_workday=True, name="调休")
        tl.set_holiday(s, w.admin, day=date(2027, 1, 1), name="元旦")
    with w.db.session() as s:
        assert tl.list_holidays(s, year=2026) == [(date(2026, 10, 1), False, "国庆节"),
                                                  (date(2026, 10, 2), False, "国庆节"),
                                                  (date(2026, 10, 10), True, "调休")]
        assert [d for d, _w, _n in tl.list_holidays(s)][-1] == date(2027, 1, 1)

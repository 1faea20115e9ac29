"""The mediation state machine: every transition, every refusal, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from gridman.core.models import AuditEntry, Building, Incident, IncidentStep, Resident
from gridman.core.services import mediation as m
from gridman.core.services import people
from gridman.core.services.errors import (
    ConflictError,
    GridmanError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from gridman.core.services.mediation.queue import queue
from tests.mediation_world import MON, act, audit_count, report, state, world_fixture, world_templates  # noqa: F401


def _steps(w, iid):
    with w.db.session() as s:
        return s.scalars(select(IncidentStep).where(IncidentStep.incident_id == iid).order_by(IncidentStep.seq)).all()


def test_walk_grid_community_street_and_back(w):
    """report → accept → handle → fail → escalate → accept → escalate → hand-down → accept →
    resolve → verify → evaluate: each action appends one step and bumps the version by one."""
    r = report(w, description="3栋2单元楼上漏水", parties=[m.PartyInput(name="张三", role="applicant")])
    assert (r.version, r.level, r.status, r.step_seq) == (1, "grid", "reported", 1)
    assert r.due_at == MON + timedelta(days=3) and r.case_due_at == MON + timedelta(days=30)
    t1 = MON + timedelta(hours=2)
    chain = [
        (w.warden, "accept", {}, "grid", "accepted"),
        (w.warden, "handle", {"note": "组织双方调解", "kind": "session"}, "grid", "in_progress"),
        (w.warden, "fail", {"note": "双方分歧较大"}, "grid", "failed"),
        (w.warden, "escalate", {"note": "网格无法调处"}, "community", "reported"),
        (w.staff, "accept", {}, "community", "accepted"),
        (w.staff, "escalate", {"note": "涉及多个社区"}, "street", "reported"),
        (w.street, "hand-down", {"note": "请社区牵头调处"}, "community", "reported"),
        (w.staff, "accept", {}, "community", "accepted"),
        (w.staff, "resolve", {"agreement_text": "楼上业主承担维修费", "agreement_terms": "7日内维修"},
         "community", "resolved"),
        (w.street, "verify", {}, "community", "closed"),
        (w.street, "evaluate", {"satisfaction": "满意"}, "community", "closed"),
    ]
    audits = audit_count(w)
    for i, (actor, action, kw, level, status) in enumerate(chain, start=2):
        before = r
        r = act(w, actor, r, action, now=t1, **kw)
        assert (r.version, r.level, r.status, r.step_seq) == (before.version + 1, level, status, i), action
        assert state(w, r.incident_id) == (r.version, level, status, i)
    assert audit_count(w) > audits  # every change audited
    steps = _steps(w, r.incident_id)
    assert [s.action for s in steps] == ["report", "accept", "handle", "fail", "escalate", "accept", "escalate",
                                         "hand_down", "accept", "resolve", "verify", "evaluate"]
    esc = steps[4]
    assert (esc.from_level, esc.to_level, esc.from_status, esc.to_status, esc.note) == (
        "grid", "community", "failed", "reported", "网格无法调处")
    assert esc.actor_id == w.warden.user_id and esc.actor_name == "w1"
    assert steps[2].target == "session"
    with w.db.session() as s:
        inc = s.get(Incident, r.incident_id)
        assert inc.handled_level == "community" and inc.agreement_terms == "7日内维修"
        assert inc.closed_on_time is True and inc.satisfaction == "satisfied" and inc.due_at is None
        assert inc.handler_id == w.staff.user_id
        v = m.show(s, w.street, r.incident_id)
        assert [p.name for p in v.parties] == ["张三"] and len(v.steps) == 12


def test_report_level_parties_place_attachments(w):
    db = w.db
    with db.work(w.admin) as s:
        hh = people.register_household(s, w.admin, grid_id=w.tree.grid1, household_no="H1", members=[
            {"name": "李四", "relation_to_head": "head", "sex": "M"}])
        rid = s.scalar(select(Resident.id).where(Resident.household_id == hh.id))
        b = Building(grid_id=w.tree.grid1, name="3栋", address="西园路3号")
        s.add(b)
        s.flush()
        bid = b.id
    # community staff report at community level, a street supervisor at street level, a clerk at grid
    r = report(w, w.staff, parties=[m.PartyInput(resident_id=rid, role="applicant"),
                                     m.PartyInput(name="王五", role="respondent", phone="13800000000")],
               building_id=bid, attachments=[m.AttachmentInput("现场.jpg", b"\xff\xd8photo")])
    assert (r.level, r.due_at) == ("community", MON + timedelta(days=7))
    assert report(w, w.street).level == "street"
    assert report(w, w.clerk).level == "grid"
    r2 = report(w, w.warden, lon=117.25, lat=31.85, location_text="西园路口", category="hazard", title="燃气管道老化")
    with db.session() as s:
        v = m.show(s, w.staff, r.incident_id)
        assert [(p.name, p.role, p.resident_id) for p in v.parties] == [("李四", "applicant", rid),
                                                                        ("王五", "respondent", None)]
        assert v.building_id == bid
        (a,) = v.attachments
        path = m.attachment_path(s, a.sha256)
        assert path.read_bytes() == b"\xff\xd8photo" and path.parent.name == a.sha256[:2]
        assert a.mime == "image/jpeg" and a.size == 7
        if db.sqlite_path is not None:
            assert path.parent.parent == db.sqlite_path.parent / "attachments"
        inc = s.get(Incident, r.incident_id)
        assert (inc.community_id, inc.street_id) == (w.tree.community, w.tree.street)
        p = m.show(s, w.warden, r2.incident_id)
        assert (p.lon, p.lat, p.location_text) == (117.25, 31.85, "西园路口")
    # an attachment later is one more step
    with db.work(w.staff) as s:
        res = m.attach(s, w.staff, r.incident_id, expected_version=r.version,
                       files=[m.AttachmentInput("协议.pdf", b"%PDF-1")])
    assert res.step_seq == 2 and res.version == r.version + 1


@pytest.mark.parametrize("bad", [
    {"category": "weather"}, {"title": "  "}, {"subcategory": "family", "category": "hazard"},
    {"priority": "asap"}, {"parties": [m.PartyInput(role="applicant")]}, {"lon": 117.2},
    {"building_id": 999999}, {"parties": [m.PartyInput(resident_id=999999)]},
])
def test_report_validation(w, bad):
    kw = {"category": "dispute", "title": "邻里纠纷"} | bad
    with pytest.raises(ValidationError):
        report(w, **kw)


def test_a_party_from_outside_the_reporters_scope_is_refused(w):
    with w.db.work(w.admin) as s:
        hh = people.register_household(s, w.admin, grid_id=w.tree.grid1, household_no="H9", members=[
            {"name": "赵六", "relation_to_head": "head", "sex": "M"}])
        rid = s.scalar(select(Resident.id).where(Resident.household_id == hh.id))
    audits = audit_count(w)
    with pytest.raises(ValidationError) as ei:  # warden3 sees grid3 only: the name must not leak into a case
        report(w, w.warden3, grid=w.tree.grid3, parties=[m.PartyInput(resident_id=rid)])
    assert "不存在" in ei.value.message and "赵六" not in ei.value.message
    assert audit_count(w) == audits
    r = report(w, w.warden, parties=[m.PartyInput(resident_id=rid)])  # grid1's warden may
    with w.db.session() as s:
        assert [p.name for p in m.show(s, w.warden, r.incident_id).parties] == ["赵六"]


def test_refusals_write_nothing(w):
    r = report(w)
    iid = r.incident_id
    other = report(w, w.warden3, grid=w.tree.grid3)

    def refused(exc: type[GridmanError], actor, action, res=None, **kw):
        res = res or r
        before, audits = state(w, res.incident_id), audit_count(w)
        with pytest.raises(exc) as ei:
            act(w, actor, res, action, **kw)
        assert ei.value.message and ei.value.en  # a message in Chinese and in English
        assert state(w, res.incident_id) == before and audit_count(w) == audits
        return ei.value.message

    # reporting in someone else's grid
    with pytest.raises(PermissionDenied):
        report(w, w.warden3, grid=w.tree.grid1)
    with pytest.raises(PermissionDenied):
        report(w, w.staff2, grid=w.tree.grid1)
    # transitions that do not exist from "reported"
    msg = refused(InvalidTransition, w.warden, "verify")
    assert "尚未调解成功" in msg and "不能核查结案" in msg
    refused(InvalidTransition, w.warden, "resolve", agreement_text="x")
    refused(InvalidTransition, w.warden, "evaluate", satisfaction="满意")
    refused(InvalidTransition, w.warden, "reopen", note="x")
    refused(InvalidTransition, w.warden, "refer", target="labour")
    refused(InvalidTransition, w.warden, "handle", note="x")
    msg = refused(InvalidTransition, w.warden, "hand-down", note="x")
    assert "网格层级" in msg
    # acting on another grid's case as a warden, or at the wrong level
    msg = refused(NotFound, w.warden3, "accept")  # outside the scope: as if it did not exist (no oracle)
    assert "不存在" in msg and "第1网格" not in msg
    msg = refused(PermissionDenied, w.staff, "accept")
    assert "网格层级" in msg and "网格员" in msg
    refused(PermissionDenied, w.street, "accept")
    refused(NotFound, w.staff2, "accept")
    refused(PermissionDenied, w.clerk, "accept")  # clerks report, never handle
    refused(NotFound, w.warden, "accept", res=other)
    # version conflicts and bad input
    refused(ConflictError, w.warden, "accept", version=r.version + 5)
    refused(ValidationError, w.warden, "escalate", note="")
    refused(ValidationError, w.warden, "fly")
    r = act(w, w.warden, r, "accept")
    refused(InvalidTransition, w.warden, "accept")
    refused(ValidationError, w.warden, "refer", target="fire_brigade")
    refused(ValidationError, w.warden, "resolve")  # a dispute needs its agreement
    refused(ValidationError, w.warden, "handle", note="x", kind="telepathy")
    # escalate to the top, then no further
    r = act(w, w.warden, r, "escalate", note="上报社区")
    r = act(w, w.staff, r, "escalate", note="上报街道")
    msg = refused(InvalidTransition, w.street, "escalate", note="再上报")
    assert "街道层级" in msg and "不能再向上提级" in msg
    refused(NotFound, w.street2, "accept")
    refused(PermissionDenied, w.warden, "accept")
    # close: resolved at street → verified by the street itself; a warden cannot
    r = act(w, w.street, r, "accept")
    r = act(w, w.street, r, "resolve", agreement_text="和解")
    refused(PermissionDenied, w.staff, "verify")
    r = act(w, w.street, r, "verify")
    r = act(w, w.street, r, "evaluate", satisfaction="basic")
    msg = refused(InvalidTransition, w.street, "evaluate", satisfaction="满意")
    assert "不能重复评价" in msg
    refused(InvalidTransition, w.street, "merge", into_id=other.incident_id)
    assert state(w, iid)[2] == "closed"


def test_verification_level_is_configurable(w):
    r = report(w)
    for a, kw in (("accept", {}), ("resolve", {"agreement_text": "赔偿"})):
        r = act(w, w.warden, r, a, **kw)
    # default: the level above the one that resolved it (community for a grid resolution)
    with pytest.raises(PermissionDenied):
        act(w, w.warden, r, "verify")
    with w.db.session() as s:
        assert m.verifying_level(s, s.get(Incident, r.incident_id)) == "community"
    with w.db.work(w.admin) as s:
        m.set_verify_by(s, w.admin, "same_level")
    with pytest.raises(PermissionDenied):
        act(w, w.staff, r, "verify")
    r = act(w, w.warden, r, "verify")
    assert r.status == "closed"
    with pytest.raises(PermissionDenied):
        with w.db.work(w.warden) as s:
            m.set_verify_by(s, w.warden, "level_above")
    with pytest.raises(ValidationError):
        with w.db.work(w.admin) as s:
            m.set_verify_by(s, w.admin, "whoever")


def test_verify_fail_and_unsatisfied_reopen_at_handling_level(w):
    r = report(w)
    r = act(w, w.warden, r, "accept")
    r = act(w, w.warden, r, "resolve", agreement_text="赔偿500元")
    later = MON + timedelta(days=1)
    r = act(w, w.staff, r, "verify-fail", note="当事人称未赔偿", now=later)
    assert (r.level, r.status, r.due_at) == ("grid", "in_progress", later + timedelta(days=3))
    r = act(w, w.warden, r, "resolve", agreement_text="已当面赔偿", now=later)
    r = act(w, w.staff, r, "verify", now=later)
    assert r.status == "closed" and r.due_at is None
    later2 = MON + timedelta(days=2)
    r = act(w, w.staff, r, "evaluate", satisfaction="不满意", now=later2)
    assert (r.level, r.status, r.due_at) == ("grid", "in_progress", later2 + timedelta(days=3))
    with w.db.session() as s:
        inc = s.get(Incident, r.incident_id)
        assert inc.satisfaction == "unsatisfied" and inc.closed_at is None and inc.resolved_at is None
    # back in the warden's queue
    with w.db.session() as s:
        assert r.incident_id in [x.id for x in queue(s, w.warden, w.tree.grid1, now=later2).rows]
    r = act(w, w.warden, r, "resolve", agreement_text="重新协商一致", now=later2)
    r = act(w, w.staff, r, "verify", now=later2)
    r = act(w, w.staff, r, "evaluate", satisfaction="基本满意", now=later2)
    assert r.status == "closed"
    # a case escalated to the community and resolved there is reopened at the community
    r = report(w)
    r = act(w, w.warden, r, "escalate", note="上报")
    r = act(w, w.staff, r, "accept")
    r = act(w, w.staff, r, "resolve", agreement_text="协议")
    r = act(w, w.street, r, "verify")
    r = act(w, w.street, r, "reopen", note="纠纷再起", now=later2)
    assert (r.level, r.status, r.due_at) == ("community", "in_progress", later2 + timedelta(days=7))
    with pytest.raises(InvalidTransition):
        act(w, w.street, r, "reopen", note="再次")


def test_referral_tracked_until_outcome(w):
    r = report(w, title="装修工人被拖欠工资", subcategory="labour")
    r = act(w, w.warden, r, "accept")
    r = act(w, w.warden, r, "refer", target="劳动争议调委会")
    assert r.status == "referred"
    with w.db.session() as s:
        assert s.get(Incident, r.incident_id).referral_target == "labour"
        rows = queue(s, w.staff, w.tree.community, status="referred", now=MON).rows
        assert [x.id for x in rows] == [r.incident_id]
    # the sweep leaves referred cases alone even when overdue
    with w.db.work(w.admin) as s:
        assert m.escalate_overdue(s, w.admin, now=MON + timedelta(days=20)).escalated == 0
    with pytest.raises(PermissionDenied):
        act(w, w.staff, r, "referral-outcome", outcome="x", settled=True)
    r = act(w, w.warden, r, "referral-outcome", outcome="劳动仲裁调解，已支付工资", settled=True)
    assert r.status == "resolved"
    r = act(w, w.staff, r, "verify")
    assert r.status == "closed"
    with w.db.session() as s:
        inc = s.get(Incident, r.incident_id)
        assert inc.referral_outcome == "劳动仲裁调解，已支付工资" and inc.handled_level == "grid"
    # an unsettled referral comes back as failed, to be escalated or referred elsewhere
    r = report(w)
    r = act(w, w.warden, r, "accept")
    r = act(w, w.warden, r, "refer", target="police")
    r = act(w, w.warden, r, "referral-outcome", outcome="不属于治安案件", settled=False)
    assert r.status == "failed"
    r = act(w, w.warden, r, "escalate", note="分流未果，上报社区")
    assert (r.level, r.status) == ("community", "reported")


def test_merge_keeps_both_timelines(w):
    a = report(w, title="楼上漏水")
    a = act(w, w.warden, a, "accept")
    b = report(w, title="楼上漏水（重复）", now=MON + timedelta(hours=1))
    with pytest.raises(InvalidTransition):
        act(w, w.warden, b, "merge", into_id=b.incident_id)
    b = act(w, w.warden, b, "merge", into_id=a.incident_id, now=MON + timedelta(hours=2))
    assert b.status == "merged" and b.due_at is None
    with w.db.session() as s:
        v = m.show(s, w.warden, a.incident_id)
        assert v.merged_ids == [b.incident_id]
        assert [(st.incident_id, st.action) for st in v.steps] == [
            (a.incident_id, "report"), (a.incident_id, "accept"), (b.incident_id, "report"),
            (b.incident_id, "merge")]
        vb = m.show(s, w.warden, b.incident_id)
        assert vb.merged_into_id == a.incident_id and [st.action for st in vb.steps] == ["report", "merge"]
        ids = [x.id for x in queue(s, w.warden, w.tree.grid1, now=MON).rows]
        assert a.incident_id in ids and b.incident_id not in ids
    # a merged case is done: nothing more happens to it
    with pytest.raises(InvalidTransition):
        act(w, w.warden, b, "accept")
    # merging into a closed case is refused
    c = report(w)
    a = act(w, w.warden, a, "resolve", agreement_text="修复")
    a = act(w, w.staff, a, "verify")
    with pytest.raises(InvalidTransition) as ei:
        act(w, w.warden, c, "merge", into_id=a.incident_id)
    assert "未办结" in ei.value.message


def test_two_people_on_one_case_second_gets_conflict(w):
    """Two sessions act on the same case at once: the second waits for the first (row lock /
    SQLite write lock), then finds a newer version and gets ConflictError; nothing of it is written."""
    r = report(w)
    got: list[BaseException | m.ActionResult] = []
    started = threading.Event()

    def second() -> None:
        started.set()
        try:
            with w.db.work(w.warden) as s2:
                got.append(m.handle(s2, w.warden, r.incident_id, expected_version=r.version, note="我也在处理"))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            got.append(exc)

    with w.db.work(w.warden) as s1:
        res = m.accept(s1, w.warden, r.incident_id, expected_version=r.version, now=MON)
        th = threading.Thread(target=second)
        th.start()
        started.wait(5)
        th.join(0.3)  # the second is blocked while the first holds the lock
    th.join(30)
    assert len(got) == 1 and isinstance(got[0], ConflictError), got
    assert "已被其他人处理" in got[0].message
    assert state(w, r.incident_id) == (res.version, "grid", "accepted", 2)
    # after reloading, the second person can act
    r2 = act(w, w.warden, r.incident_id, "handle", version=res.version, note="重新加载后处理")
    assert r2.version == res.version + 1


def test_stale_object_in_a_session_is_a_conflict(w):
    """A session that read the case before someone else changed it cannot overwrite it."""
    r = report(w)
    s_old = w.db.session()
    try:
        s_old.info["actor"] = w.warden
        inc = s_old.get(Incident, r.incident_id)
        s_old.commit()  # keeps the loaded (now soon stale) object: expire_on_commit is off
        act(w, w.warden, r, "accept")
        inc.title = "改个标题"
        with pytest.raises(ConflictError):
            m.cases.flush(s_old)
    finally:
        s_old.rollback()
        s_old.close()


def test_every_action_is_audited(w):
    r = report(w)
    act(w, w.warden, r, "accept")
    with w.db.session() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.table_name.in_(["incidents", "incident_steps"]))).all()
    assert {(a.table_name, a.action) for a in rows} == {("incidents", "insert"), ("incident_steps", "insert"),
                                                        ("incidents", "update")}
    upd = [a for a in rows if a.action == "update"][0]
    assert upd.changes["status"] == ["reported", "accepted"] and upd.username == "w1"

"""act_many (bulk actions) and the one declaration of each action's inputs, on SQLite and PostgreSQL."""

from __future__ import annotations

import inspect

import pytest
from sqlalchemy import func, select, text

from gridman.core.models import AuditEntry
from gridman.core.services import mediation as m
from gridman.core.services.errors import ValidationError
from gridman.core.services.mediation import rules
from tests.mediation_world import act, report, state, world_fixture, world_templates  # noqa: F401


def audits_of(w, iid: int) -> int:  # type: ignore[no-untyped-def]
    """Audit rows written for the case itself and for its steps."""
    with w.db.session() as s:
        n = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.table_name == "incidents", AuditEntry.row_id == iid))
        steps = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.table_name == "incident_steps",
            AuditEntry.row_id.in_(text(f"SELECT id FROM incident_steps WHERE incident_id = {int(iid)}"))))
    return int(n) + int(steps)


def test_act_many_does_the_allowed_cases_and_lists_the_others_with_the_reason(w):
    a, b, c = (report(w, title=f"楼道堆物 {i}") for i in range(3))
    b = act(w, w.warden, b, "accept")  # already accepted: accept is refused
    far = report(w, w.warden3, grid=w.tree.grid3)  # another street: not the warden's to act on
    before = {r.incident_id: (state(w, r.incident_id), audits_of(w, r.incident_id)) for r in (a, b, c, far)}
    ids = [a.incident_id, b.incident_id, far.incident_id, 999_999, c.incident_id, a.incident_id]
    with w.db.work(w.warden) as s:
        res = m.act_many(s, w.warden, "accept", ids, note="批量受理")
    assert res.action == "accept"
    assert res.done == [a.incident_id, c.incident_id]  # in the order given, duplicates once
    assert res.skipped_ids == [b.incident_id, far.incident_id, 999_999]
    reasons = {sk.incident_id: sk for sk in res.skipped}
    assert "不能“受理”" in reasons[b.incident_id].reason and "accept" in reasons[b.incident_id].reason_en
    assert reasons[far.incident_id].reason and reasons[far.incident_id].reason_en
    assert "不存在" in reasons[999_999].reason
    assert [r.status for r in res.results] == ["accepted", "accepted"]
    for r in (a, c):
        v, level, status, steps = state(w, r.incident_id)
        assert (v, status, steps) == (r.version + 1, "accepted", 2)
        assert audits_of(w, r.incident_id) == before[r.incident_id][1] + 2  # the update and the step
    for r in (b, far):  # nothing written for the skipped ones, audit included
        assert (state(w, r.incident_id), audits_of(w, r.incident_id)) == before[r.incident_id]


def test_act_many_guards_each_case_with_the_version_seen(w):
    a, b = report(w), report(w)
    with w.db.work(w.warden) as s:
        res = m.act_many(s, w.warden, "escalate", [a.incident_id, b.incident_id], note="超出网格能力",
                         expected_versions={a.incident_id: a.version, b.incident_id: b.version + 3})
    assert res.done == [a.incident_id] and res.skipped_ids == [b.incident_id]
    assert "已被其他人处理" in res.skipped[0].reason
    assert state(w, a.incident_id)[1:3] == ("community", "reported")
    assert state(w, b.incident_id) == (b.version, "grid", "reported", 1)


def test_act_many_checks_inputs_against_the_declaration(w):
    a = report(w)
    with w.db.work(w.warden) as s:
        res = m.act_many(s, w.warden, "escalate", [a.incident_id])  # the reason is required
    assert res.done == [] and res.skipped[0].reason == "请填写上报理由"
    assert state(w, a.incident_id) == (a.version, "grid", "reported", 1)
    with pytest.raises(ValidationError), w.db.work(w.warden) as s:
        m.act_many(s, w.warden, "fly", [a.incident_id])


def _fail_steps_of(w, iid: int) -> None:  # type: ignore[no-untyped-def]
    """A database trigger that refuses any new step of case ``iid`` — a failure inside the
    action's flush, after its UPDATE of the case ran in the savepoint."""
    with w.db.engine.begin() as c:
        if w.db.dialect == "sqlite":
            c.exec_driver_sql(f"CREATE TRIGGER t_refuse BEFORE INSERT ON incident_steps WHEN NEW.incident_id = {iid} "
                              "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
        else:
            c.exec_driver_sql("CREATE FUNCTION t_refuse() RETURNS trigger AS $$ BEGIN "
                              f"IF NEW.incident_id = {iid} THEN RAISE EXCEPTION 'refused by the test'; END IF; "
                              "RETURN NEW; END $$ LANGUAGE plpgsql")
            c.exec_driver_sql("CREATE TRIGGER t_refuse BEFORE INSERT ON incident_steps "
                              "FOR EACH ROW EXECUTE FUNCTION t_refuse()")


def test_a_case_failing_in_the_database_is_rolled_back_alone(w):
    a, b, c = report(w), report(w), report(w)
    _fail_steps_of(w, b.incident_id)
    before_b = (state(w, b.incident_id), audits_of(w, b.incident_id))
    before_a = audits_of(w, a.incident_id)
    with w.db.work(w.warden) as s:
        res = m.act_many(s, w.warden, "accept", [a.incident_id, b.incident_id, c.incident_id])
    assert res.done == [a.incident_id, c.incident_id] and res.skipped_ids == [b.incident_id]
    assert "数据库" in res.skipped[0].reason and "refused by the test" not in res.skipped[0].reason
    assert (state(w, b.incident_id), audits_of(w, b.incident_id)) == before_b  # its UPDATE rolled back too
    assert state(w, a.incident_id)[2:] == ("accepted", 2) and state(w, c.incident_id)[2:] == ("accepted", 2)
    assert audits_of(w, a.incident_id) == before_a + 2


def test_every_action_takes_exactly_its_declared_inputs():
    """The service functions' keyword arguments are the declaration's inputs (no second list)."""
    for action in rules.CASE_ACTIONS:
        fn = m.ACTIONS[action.value]
        params = set(inspect.signature(fn).parameters) - {"session", "actor", "incident_id", "expected_version", "now"}
        assert params == {i.key for i in m.action_spec(action).inputs}, action
        spec = m.action_spec(action.value.replace("_", "-"))
        assert spec.zh and spec.en and all(i.zh and i.en for i in spec.inputs)


def test_inputs_are_checked_with_their_labels():
    resolve = m.action_spec("resolve").input("agreement_text")
    assert resolve.needed("dispute") and not resolve.needed("hazard") and not resolve.needed(None)
    with pytest.raises(ValidationError) as ei:
        rules.clean(resolve, "  ", category="dispute")
    assert ei.value.message == "请填写调解协议内容" and ei.value.field == "agreement_text"
    assert rules.clean(resolve, "  ", category="hazard") is None
    sat = m.action_spec("evaluate").input("satisfaction")
    assert rules.clean(sat, "基本满意") == "basic"
    assert [c.value for c in sat.choices()] == ["satisfied", "basic", "unsatisfied"]
    with pytest.raises(ValidationError):
        rules.clean(sat, "很好")
    kind = m.action_spec("handle").input("kind")
    assert rules.clean(kind, None) == "note" and rules.clean(kind, "走访") == "visit"
    settled = m.action_spec("referral_outcome").input("settled")
    assert rules.clean(settled, False) is False
    with pytest.raises(ValidationError):
        rules.clean(settled, None)

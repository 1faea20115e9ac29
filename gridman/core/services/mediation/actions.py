"""Three-level mediation (三级调处): the state machine's operations, from acceptance to verified closure.

An incident enters at the **grid** (or at the reporter's own level if that is higher; see
:mod:`.report`), is accepted (受理), handled (处理: notes, visits, mediation sessions), and either
resolved (调解成功, with the agreement) or not (调解不成). It can be escalated one level up (grid →
community → street), handed down one level with instructions, or referred (分流) to a professional
mediation committee or a department, where it stays tracked until the outcome is recorded. A
resolved case is verified and closed (核查结案) by the level above the one that resolved it (setting
``mediation.verify_by``), then the resident evaluates it; 不满意 or a failed verification reopens it
at the level that handled it. A duplicate report is merged into an open case; both timelines are kept.

Rules every action obeys:

- its inputs are checked against their declaration (:data:`rules.SPECS`) first;
- it appends exactly one :class:`IncidentStep` (who, when, from/to level and status, note) and
  bumps the incident's ``version``;
- it is refused with :class:`InvalidTransition` if the case's status does not allow it, and with
  :class:`PermissionDenied` if the actor may not act at the case's level (:func:`rules.require_level`,
  the one place those rules live) — in both cases before anything is written;
- it takes ``expected_version`` (the version the user saw): a different current version raises
  :class:`ConflictError`. The row is read ``FOR UPDATE`` (PostgreSQL; SQLite serialises writers
  with ``BEGIN IMMEDIATE``), so of two people acting at once the second waits, then gets the conflict.

``due_at`` is the deadline at the current level and is recomputed at every level change;
``case_due_at`` is the whole case's deadline. Invariant the queue relies on: ``due_at`` is set
exactly while the case is active (not closed, not merged).

Threading: functions take an open session (``with db.work(actor) as s:``); no global state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gridman.core.enums import MediationLevel, ReferralTarget, Role, Satisfaction, label
from gridman.core.models import Incident, User
from gridman.core.services.errors import InvalidTransition, ValidationError
from gridman.core.services.mediation import cases
from gridman.core.services.mediation.attachments import store as store_attachment
from gridman.core.services.mediation.records import ActionResult, AttachmentInput
from gridman.core.services.mediation.rules import (
    ACTIVE_STATUSES,
    SPECS,
    Action,
    S,
    acting_level,
    action_key,
    check,
    may_act,
    move_target,
    offered,
    require_level,
    status_label,
)
from gridman.core.services.permissions import Actor, actor_for
from gridman.core.services.time_limits import Deadlines


def _open(session: Session, actor: Actor, incident_id: int, action: Action, expected_version: int | None,
          **values: Any) -> tuple[Incident, dict[str, Any]]:
    """Check the inputs, load the case (locked), check its version and status. Inputs required
    only for some categories are checked once the case's category is known."""
    conditional = any(i.required_for for i in SPECS[action.value].inputs)
    v = {} if conditional else check(action, values)
    inc = cases.begin(session, actor, incident_id, action, expected_version)
    if conditional:
        v = check(action, values, category=inc.category)
    return inc, v


def _permit(session: Session, actor: Actor, inc: Incident, action: Action) -> tuple[str, str]:
    """Refuse unless the actor may act at the acting level; (level, status) before the change."""
    require_level(session, actor, inc, acting_level(session, inc, action), action)
    return inc.level, inc.status


def allowed_actions(session: Session, actor: Actor, incident: Incident | int) -> list[str]:
    """The actions ``actor`` may take on the case now, in the state machine's order — what a front
    offers as buttons (:func:`rules.offered`). An action listed here can still fail on its inputs
    (a missing reason) or a concurrent change (ConflictError)."""
    inc = incident if isinstance(incident, Incident) else cases.load(session, actor, int(incident), lock=False)
    return offered(session, actor, inc)


def accept(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
           note: str | None = None, now: datetime | None = None) -> ActionResult:
    """受理: the level's staff take the case on; they become its handler."""
    inc, v = _open(session, actor, incident_id, Action.ACCEPT, expected_version, note=note)
    fl, fs = _permit(session, actor, inc, Action.ACCEPT)
    inc.status = S.ACCEPTED.value
    inc.handler_id = actor.user_id
    return cases.append_step(session, actor, inc, Action.ACCEPT, from_level=fl, from_status=fs, now=cases.now_or(now),
                             note=v["note"])


def assign(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
           handler_id: int | None = None, note: str | None = None, now: datetime | None = None) -> ActionResult:
    """分派: staff of the case's level give it to a handler who may act at that level (a warden of
    its grid, staff of its community, a supervisor of its street). The status does not change."""
    inc, v = _open(session, actor, incident_id, Action.ASSIGN, expected_version, handler_id=handler_id, note=note)
    fl, fs = _permit(session, actor, inc, Action.ASSIGN)
    user = session.get(User, v["handler_id"])
    if user is None or not user.active or user.is_system:
        raise ValidationError(f"办理人 {handler_id} 不存在或已停用", field="handler_id",
                              en=f"No active user {handler_id}")
    if not may_act(session, actor_for(session, user), inc, inc.level):
        raise ValidationError(
            f"{user.display_name}（{label(user.role, enum=Role)}）不能办理事件 #{inc.id}"
            f"（{label(MediationLevel(inc.level))}层级，所在网格不在其负责范围内或角色不符）",
            field="handler_id", en=f"{user.display_name} may not handle case #{inc.id} at the {inc.level} level")
    inc.handler_id = user.id
    return cases.append_step(session, actor, inc, Action.ASSIGN, from_level=fl, from_status=fs, now=cases.now_or(now),
                             note=v["note"], target=user.username)


def handle(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
           note: str | None = None, kind: str = "note", now: datetime | None = None) -> ActionResult:
    """处理: a note, a visit or a mediation session on the timeline; the case is in progress."""
    inc, v = _open(session, actor, incident_id, Action.HANDLE, expected_version, note=note, kind=kind)
    fl, fs = _permit(session, actor, inc, Action.HANDLE)
    inc.status = S.IN_PROGRESS.value
    if inc.handler_id is None:
        inc.handler_id = actor.user_id
    return cases.append_step(session, actor, inc, Action.HANDLE, from_level=fl, from_status=fs, now=cases.now_or(now),
                             note=v["note"], target=v["kind"])


def resolve(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
            agreement_text: str | None = None, agreement_terms: str | None = None, note: str | None = None,
            now: datetime | None = None) -> ActionResult:
    """调解成功: settled at this level; a dispute needs the mediation agreement's text."""
    inc, v = _open(session, actor, incident_id, Action.RESOLVE, expected_version, agreement_text=agreement_text,
                   agreement_terms=agreement_terms, note=note)
    fl, fs = _permit(session, actor, inc, Action.RESOLVE)
    now = cases.now_or(now)
    inc.status = S.RESOLVED.value
    inc.handled_level = inc.level
    inc.agreement_text = v["agreement_text"]
    inc.agreement_terms = v["agreement_terms"]
    inc.resolved_at = now
    return cases.append_step(session, actor, inc, Action.RESOLVE, from_level=fl, from_status=fs, now=now,
                             note=v["note"] or v["agreement_text"])


def fail(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None, note: str | None = None,
         now: datetime | None = None) -> ActionResult:
    """调解不成: recorded with the reason; next the case is escalated, referred or handled again."""
    inc, v = _open(session, actor, incident_id, Action.FAIL, expected_version, note=note)
    fl, fs = _permit(session, actor, inc, Action.FAIL)
    inc.status = S.FAILED.value
    inc.handled_level = inc.level
    return cases.append_step(session, actor, inc, Action.FAIL, from_level=fl, from_status=fs, now=cases.now_or(now),
                             note=v["note"])


def _move(session: Session, actor: Actor, incident_id: int, action: Action, expected_version: int | None,
          note: str | None, to_level: str | None, now: datetime | None) -> ActionResult:
    """Escalate or hand down one level: the level must exist, ``to_level`` (if given) must be it."""
    inc, v = _open(session, actor, incident_id, action, expected_version, note=note, to_level=to_level)
    target = move_target(action, inc.level)
    if target is None:
        if action == Action.ESCALATE:
            raise InvalidTransition(
                f"事件 #{inc.id} 已在街道层级，不能再向上提级（街道是最高层级，可分流至专业调委会或相关部门）。",
                en=f"Case #{inc.id} is already at street level, the highest; refer it instead.")
        raise InvalidTransition(f"事件 #{inc.id} 已在网格层级，没有更下一级可以交办。",
                                en=f"Case #{inc.id} is at grid level; there is no level below.")
    if v["to_level"] is not None and v["to_level"] != target:
        up = action == Action.ESCALATE
        raise ValidationError(
            f"事件 #{inc.id} 在{label(MediationLevel(inc.level))}层级，只能{'上报' if up else '交办'}到相邻一级"
            f"（{label(MediationLevel(target))}），不能到 {v['to_level']}",
            field="to_level", en=f"Case #{inc.id} can only move one level ({target}), not to {v['to_level']}")
    fl, fs = _permit(session, actor, inc, action)
    now = cases.now_or(now)
    cases.enter_level(inc, target, now, Deadlines.load(session))
    inc.status = S.REPORTED.value
    inc.handler_id = None
    return cases.append_step(session, actor, inc, action, from_level=fl, from_status=fs, now=now, note=v["note"])


def escalate(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
             note: str | None = None, to_level: str | None = None, now: datetime | None = None) -> ActionResult:
    """上报上级: one level up (grid → community → street) with a reason; a new deadline there."""
    return _move(session, actor, incident_id, Action.ESCALATE, expected_version, note, to_level, now)


def hand_down(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
              note: str | None = None, to_level: str | None = None, now: datetime | None = None) -> ActionResult:
    """交办下级: one level down with instructions; a new deadline there."""
    return _move(session, actor, incident_id, Action.HAND_DOWN, expected_version, note, to_level, now)


def refer(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
          target: str | None = None, note: str | None = None, now: datetime | None = None) -> ActionResult:
    """分流: to a professional mediation committee or a department; tracked until the outcome."""
    inc, v = _open(session, actor, incident_id, Action.REFER, expected_version, target=target, note=note)
    fl, fs = _permit(session, actor, inc, Action.REFER)
    inc.status = S.REFERRED.value
    inc.referral_target = v["target"]
    inc.referral_outcome = None
    return cases.append_step(session, actor, inc, Action.REFER, from_level=fl, from_status=fs, now=cases.now_or(now),
                             note=v["note"] or f"分流至{label(ReferralTarget(v['target']))}", target=v["target"])


def record_referral_outcome(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
                            outcome: str | None = None, settled: bool | None = None,
                            now: datetime | None = None) -> ActionResult:
    """分流结果: settled → resolved (then verified and closed as usual); not settled → failed,
    back with the referring level to escalate, refer elsewhere or handle again."""
    inc, v = _open(session, actor, incident_id, Action.REFERRAL_OUTCOME, expected_version, outcome=outcome,
                   settled=settled)
    fl, fs = _permit(session, actor, inc, Action.REFERRAL_OUTCOME)
    now = cases.now_or(now)
    inc.referral_outcome = v["outcome"]
    inc.handled_level = inc.level
    if v["settled"]:
        inc.status = S.RESOLVED.value
        inc.resolved_at = now
    else:
        inc.status = S.FAILED.value
    return cases.append_step(session, actor, inc, Action.REFERRAL_OUTCOME, from_level=fl, from_status=fs, now=now,
                             note=v["outcome"], target=inc.referral_target)


def verify(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
           note: str | None = None, now: datetime | None = None) -> ActionResult:
    """核查结案: the verifying level confirms the resolution; the case is closed."""
    inc, v = _open(session, actor, incident_id, Action.VERIFY, expected_version, note=note)
    fl, fs = _permit(session, actor, inc, Action.VERIFY)
    now = cases.now_or(now)
    inc.status = S.CLOSED.value
    inc.closed_at = now
    inc.closed_on_time = inc.case_due_at is None or now <= inc.case_due_at
    inc.due_at = None
    inc.satisfaction = None
    return cases.append_step(session, actor, inc, Action.VERIFY, from_level=fl, from_status=fs, now=now,
                             note=v["note"] or "核查属实，予以结案")


def _send_back(session: Session, actor: Actor, incident_id: int, action: Action, expected_version: int | None,
               note: str | None, now: datetime | None) -> ActionResult:
    """Back in progress at the level that handled the case, with a fresh deadline."""
    inc, v = _open(session, actor, incident_id, action, expected_version, note=note)
    fl, fs = _permit(session, actor, inc, action)
    now = cases.now_or(now)
    cases.reopen_at_handled_level(session, inc, now)
    if action == Action.REOPEN:
        inc.satisfaction = None  # a reopened case is evaluated again when it closes again
    return cases.append_step(session, actor, inc, action, from_level=fl, from_status=fs, now=now, note=v["note"])


def verify_fail(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
                note: str | None = None, now: datetime | None = None) -> ActionResult:
    """核查不通过: back in progress at the level that handled it, with a fresh deadline."""
    return _send_back(session, actor, incident_id, Action.VERIFY_FAIL, expected_version, note, now)


def evaluate(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
             satisfaction: str | None = None, note: str | None = None, now: datetime | None = None) -> ActionResult:
    """满意度评价 of a closed case; 不满意 reopens it at the level that handled it."""
    inc, v = _open(session, actor, incident_id, Action.EVALUATE, expected_version, satisfaction=satisfaction,
                   note=note)
    if inc.satisfaction is not None:
        raise InvalidTransition(f"事件 #{inc.id} 已评价为“{label(Satisfaction(inc.satisfaction))}”，不能重复评价。",
                                en=f"Case #{inc.id} was already evaluated ({inc.satisfaction}).")
    fl, fs = _permit(session, actor, inc, Action.EVALUATE)
    now = cases.now_or(now)
    sat = v["satisfaction"]
    inc.satisfaction = sat
    extra = ""
    if sat == Satisfaction.UNSATISFIED:
        cases.reopen_at_handled_level(session, inc, now)
        extra = f"；群众不满意，退回{label(MediationLevel(inc.level))}层级重新办理"
    return cases.append_step(session, actor, inc, Action.EVALUATE, from_level=fl, from_status=fs, now=now,
                             note=(v["note"] or label(Satisfaction(sat))) + extra, target=sat)


def reopen(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
           note: str | None = None, now: datetime | None = None) -> ActionResult:
    """重新办理 a closed case at the level that handled it (e.g. the dispute flared up again)."""
    return _send_back(session, actor, incident_id, Action.REOPEN, expected_version, note, now)


def merge(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
          into_id: int | None = None, note: str | None = None, now: datetime | None = None) -> ActionResult:
    """合并: this report duplicates the open case ``into_id``. It is marked merged (its timeline
    stays), and the target's timeline shows it (:func:`show`)."""
    if into_id is not None and into_id == incident_id:
        raise InvalidTransition(f"事件 #{incident_id} 不能合并到自身。", en="A case cannot be merged into itself.")
    inc, v = _open(session, actor, incident_id, Action.MERGE, expected_version, into_id=into_id, note=note)
    target = cases.load(session, actor, v["into_id"])
    if target.status not in ACTIVE_STATUSES:
        raise InvalidTransition(
            f"只能合并到未办结的事件：事件 #{target.id} 当前为“{status_label(target.status)}”。",
            en=f"Merge only into an open case; #{target.id} is {target.status}.",
        )
    fl, fs = _permit(session, actor, inc, Action.MERGE)
    inc.status = S.MERGED.value
    inc.merged_into_id = target.id
    inc.due_at = None
    return cases.append_step(session, actor, inc, Action.MERGE, from_level=fl, from_status=fs, now=cases.now_or(now),
                             note=v["note"] or f"与事件 #{target.id} 重复，已合并", target=str(target.id))


def attach(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
           files: Sequence[AttachmentInput] = (), note: str | None = None, now: datetime | None = None) -> ActionResult:
    """添加附件 (photos, scanned agreements) to a case at the actor's level."""
    inc, v = _open(session, actor, incident_id, Action.ATTACH, expected_version, files=files, note=note)
    fl, fs = _permit(session, actor, inc, Action.ATTACH)
    now = cases.now_or(now)
    names = []
    for f in v["files"]:
        store_attachment(session, actor, inc, f, now)
        names.append(os.path.basename(f.filename))
    return cases.append_step(session, actor, inc, Action.ATTACH, from_level=fl, from_status=fs, now=now,
                             note=v["note"] or "添加附件：" + "、".join(names))


# One entry point for fronts that name the action as text (the CLI, the GUI's action buttons).
ACTIONS: dict[str, Callable[..., ActionResult]] = {
    Action.ACCEPT: accept, Action.ASSIGN: assign, Action.HANDLE: handle, Action.RESOLVE: resolve, Action.FAIL: fail,
    Action.ESCALATE: escalate, Action.HAND_DOWN: hand_down, Action.REFER: refer,
    Action.REFERRAL_OUTCOME: record_referral_outcome, Action.VERIFY: verify, Action.VERIFY_FAIL: verify_fail,
    Action.EVALUATE: evaluate, Action.REOPEN: reopen, Action.MERGE: merge, Action.ATTACH: attach,
}


def act(session: Session, actor: Actor, incident_id: int, action: str, *, expected_version: int | None,
        **kw: Any) -> ActionResult:
    """Dispatch ``action`` (code like ``hand_down``/``hand-down``) to its function."""
    return ACTIONS[action_key(action)](session, actor, incident_id, expected_version=expected_version, **kw)

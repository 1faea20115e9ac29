"""Loading a case for an action and writing its step: the plumbing every action shares.

An action loads the case locked (``FOR UPDATE`` on PostgreSQL; SQLite serialises writers with
``BEGIN IMMEDIATE``), checks the version the user saw and the status, changes it, and appends
exactly one :class:`IncidentStep` with :func:`append_step` — one flush, one version bump.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gridman.core.enums import IncidentStatus
from gridman.core.models import Area, Incident, IncidentStep, new_uuid, utcnow
from gridman.core.services import scope
from gridman.core.services.errors import ConflictError, InvalidTransition, NotFound
from gridman.core.services.mediation.records import ActionResult
from gridman.core.services.mediation.rules import ALLOWED_FROM, Action, action_label, status_label
from gridman.core.services.permissions import Actor, Perm, require
from gridman.core.services.time_limits import Deadlines


def in_scope(actor: Actor, area: scope.AreaLike | None = None) -> ColumnElement[bool]:
    """Cases of ``area`` (any level; None: everywhere) within the actor's scope
    (:func:`scope.rows`) — for the queue, the sweep and the figures. Communities and streets use
    the cases' denormalised columns (one index range each)."""
    return scope.rows(actor, Incident.grid_id, area, community_col=Incident.community_id,
                      street_col=Incident.street_id)


def now_or(now: datetime | None) -> datetime:
    return now if now is not None else utcnow()


def invalid(inc: Incident, action: Action) -> InvalidTransition:
    """The refusal of ``action`` from the case's current status."""
    if action == Action.VERIFY:
        return InvalidTransition(
            f"事件 #{inc.id} 尚未调解成功（当前“{status_label(inc.status)}”），不能核查结案。",
            en=f"Case #{inc.id} is not resolved ({inc.status}); it cannot be verified and closed.",
        )
    allowed = "、".join(status_label(s) for s in sorted(ALLOWED_FROM.get(action, ())))
    return InvalidTransition(
        f"事件 #{inc.id} 当前状态为“{status_label(inc.status)}”，不能“{action_label(action)}”（只能在{allowed}时进行）。",
        en=f"Case #{inc.id} is {inc.status}; cannot {action_label(action, 'en')} from that status.")


def load(session: Session, actor: Actor, incident_id: int, *, lock: bool = True) -> Incident:
    """The case (locked unless ``lock`` is False), if the actor may read it; a case outside the
    actor's scope is :class:`NotFound`, exactly like a missing one."""
    q = select(Incident).where(Incident.id == incident_id).execution_options(populate_existing=True)
    if lock:
        q = q.with_for_update()
    inc = session.scalar(q)
    if inc is not None and not actor.is_admin:
        require(actor, Perm.READ)
        grid = session.get(Area, inc.grid_id)
        if grid is None or not actor.covers(grid):
            inc = None  # a case outside the actor's scope answers as one that does not exist (no oracle)
    if inc is None:
        raise NotFound(f"事件 #{incident_id} 不存在", en=f"No incident #{incident_id}")
    return inc


def check_version(inc: Incident, expected_version: int | None) -> None:
    if expected_version is not None and inc.version != expected_version:
        raise ConflictError(
            f"事件 #{inc.id} 已被其他人处理（版本 {expected_version} → {inc.version}），请重新加载后再操作。",
            en=f"Case #{inc.id} was changed by someone else (version {expected_version} → {inc.version}); "
               "reload and try again.",
        )


def begin(session: Session, actor: Actor, incident_id: int, action: Action,
          expected_version: int | None) -> Incident:
    """Load (locked), check the version and the transition — nothing written yet."""
    inc = load(session, actor, incident_id)
    check_version(inc, expected_version)
    if inc.status not in ALLOWED_FROM[action]:
        raise invalid(inc, action)
    return inc


def flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise ConflictError("该事件已被其他人修改，请重新加载后再操作。",
                            en="Someone else changed this case meanwhile; reload and try again.") from exc


def append_step(session: Session, actor: Actor, inc: Incident, action: Action, *, from_level: str | None,
                from_status: str | None, now: datetime, note: str | None = None,
                target: str | None = None) -> ActionResult:
    """The one way a step is written: append, bump the version (updated_at is always set, so the
    row is always UPDATEd and SQLAlchemy's version counter always moves), flush."""
    with session.no_autoflush:  # one flush per action: one UPDATE, one version bump
        seq = (session.scalar(select(func.max(IncidentStep.seq)).where(IncidentStep.incident_id == inc.id)) or 0) + 1
    inc.updated_at = now
    session.add(IncidentStep(
        uuid=new_uuid(), incident_id=inc.id, seq=seq, at=now, actor_id=actor.user_id,
        actor_name=actor.display_name, action=action.value, from_level=from_level, to_level=inc.level,
        from_status=from_status, to_status=inc.status, target=target, note=note,
    ))
    flush(session)
    return ActionResult(inc.id, action.value, inc.version, inc.level, inc.status, inc.due_at, inc.case_due_at, seq)


def enter_level(inc: Incident, level: str, now: datetime, deadlines: Deadlines) -> None:
    """A (new) period at ``level`` starts now: fresh deadline, no handler yet."""
    inc.level = level
    inc.level_entered_at = now
    inc.due_at = deadlines.due(level, inc.category, now)


def reopen_at_handled_level(session: Session, inc: Incident, now: datetime) -> None:
    enter_level(inc, inc.handled_level or inc.level, now, Deadlines.load(session))
    inc.status = IncidentStatus.IN_PROGRESS.value
    inc.closed_at = None
    inc.closed_on_time = None
    inc.resolved_at = None

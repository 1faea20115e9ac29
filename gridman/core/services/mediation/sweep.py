"""The overdue sweep (超期上报): every overdue case one level up, street cases flagged; and the
overdue counts a status bar shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, and_, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session

from gridman.core.enums import MediationLevel, label
from gridman.core.models import AuditEntry, Incident, IncidentStep, new_uuid
from gridman.core.services import audit
from gridman.core.services.errors import ConflictError
from gridman.core.services.mediation.cases import in_scope, now_or
from gridman.core.services.mediation.records import SweepResult
from gridman.core.services.mediation.rules import (
    ACTIVE_STATUSES,
    OVERDUE_NOTE,
    SWEEP_STATUSES,
    Action,
    S,
    level_above,
)
from gridman.core.services.permissions import Actor, Perm, require
from gridman.core.services.time_limits import Deadlines

_CASES = cast(Table, Incident.__table__)
_STEPS = cast(Table, IncidentStep.__table__)
_AUDIT = cast(Table, AuditEntry.__table__)


def _candidates(session: Session, actor: Actor, now: datetime) -> tuple[list[Any], list[Any]]:
    """(cases to escalate, street cases to flag): overdue, in the actor's scope, locked on PostgreSQL."""
    t, st = _CASES, _STEPS
    max_seq = select(func.max(st.c.seq)).where(st.c.incident_id == t.c.id).scalar_subquery()
    base = and_(t.c.status.in_(SWEEP_STATUSES), t.c.due_at < now, in_scope(actor))
    q_up = (select(t.c.id, t.c.uuid, t.c.level, t.c.status, t.c.category, t.c.version, t.c.due_at,
                   t.c.handler_id, max_seq.label("max_seq"))
            .where(base, t.c.level.in_(("grid", "community"))).order_by(t.c.id))
    already = exists().where(st.c.incident_id == t.c.id, st.c.action == Action.OVERDUE.value,
                             st.c.at > t.c.level_entered_at)  # a flag comes ≥ 1 day after entry
    q_flag = (select(t.c.id, t.c.uuid, t.c.level, t.c.status, t.c.version, t.c.due_at, max_seq.label("max_seq"))
              .where(base, t.c.level == "street", ~already).order_by(t.c.id))
    if session.get_bind().dialect.name == "postgresql":
        q_up = q_up.with_for_update(of=t)
        q_flag = q_flag.with_for_update(of=t)
    return list(session.execute(q_up).all()), list(session.execute(q_flag).all())


def _step(r: Any, actor: Actor, now: datetime, action: Action, to_level: str, to_status: str,
          note: str) -> dict[str, Any]:
    return {"uuid": new_uuid(), "incident_id": r.id, "seq": (r.max_seq or 0) + 1, "at": now,
            "actor_id": actor.user_id, "actor_name": actor.display_name, "action": action.value,
            "from_level": r.level, "to_level": to_level, "from_status": r.status, "to_status": to_status,
            "target": None, "note": note}


def _guarded_update(session: Session, values: dict[str, Any], rows: list[dict[str, Any]], what: str) -> None:
    """executemany of one UPDATE guarded by each row's version; a lost race is a conflict."""
    if not rows:
        return
    t = _CASES
    guard = and_(t.c.id == bindparam("b_id"), t.c.version == bindparam("b_version"))
    res = cast(CursorResult[Any],
               session.execute(update(t).where(guard).values(version=bindparam("n_version"), **values), rows))
    if session.get_bind().dialect.supports_sane_multi_rowcount and res.rowcount != len(rows):
        raise ConflictError(f"{what}期间有事件被其他人修改，请重试。",
                            en="Cases changed during the overdue sweep; run it again.")


def escalate_overdue(session: Session, actor: Actor, *, now: datetime | None = None) -> SweepResult:
    """Escalate every overdue case (``due_at < now``, status reported/accepted/in progress/failed)
    at grid or community level one level up, with the reason "超期" on its timeline and a fresh
    deadline at the new level; flag overdue street-level cases once per period at that level.

    Idempotent: an escalated case's new deadline lies after ``now``, and a street case carries an
    ``overdue`` step after it entered the level, so a second run with the same ``now`` does nothing.
    Limited to the actor's area (the GUI runs it for whoever is signed in; the scheduled CLI as the
    administrator).

    Set-based for speed (10,000 cases in well under 5 s): one SELECT of the candidates (locked on
    PostgreSQL), then executemany of the UPDATEs (each guarded by the version read), the steps and
    the audit rows. ORM objects the caller holds for these cases are expired afterwards.
    """
    require(actor, Perm.HANDLE_INCIDENT)
    now = now_or(now)
    deadlines = Deadlines.load(session)
    ups, flags = _candidates(session, actor, now)
    due_cache: dict[tuple[str, str], datetime] = {}
    upd_rows: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []
    audit_rows: list[tuple[int, str | None, dict[str, Any]]] = []
    for r in ups:
        new_level = level_above(r.level)
        assert new_level is not None
        key = (new_level, r.category)
        due = due_cache.get(key)
        if due is None:
            due = due_cache[key] = deadlines.due(new_level, r.category, now)
        upd_rows.append({"b_id": r.id, "b_version": r.version, "n_level": new_level, "n_due": due,
                         "n_version": r.version + 1})
        note = (f"{OVERDUE_NOTE}：{label(MediationLevel(r.level))}层级办理时限 {r.due_at:%Y-%m-%d %H:%M} 已过，"
                f"自动上报{label(MediationLevel(new_level))}")
        step_rows.append(_step(r, actor, now, Action.ESCALATE, new_level, S.REPORTED.value, note))
        audit_rows.append((r.id, r.uuid, {"level": (r.level, new_level), "status": (r.status, S.REPORTED.value),
                                          "due_at": (r.due_at, due), "handler_id": (r.handler_id, None),
                                          "level_entered_at": (None, now)}))
    flag_rows = [{"b_id": r.id, "b_version": r.version, "n_version": r.version + 1} for r in flags]
    step_rows += [_step(r, actor, now, Action.OVERDUE, r.level, r.status,
                        f"{OVERDUE_NOTE}：街道层级办理时限 {r.due_at:%Y-%m-%d %H:%M} 已过，已标记督办") for r in flags]
    _guarded_update(session, {"level": bindparam("n_level"), "status": S.REPORTED.value, "handler_id": None,
                              "level_entered_at": now, "due_at": bindparam("n_due"), "updated_at": now},
                    upd_rows, "超期上报")
    _guarded_update(session, {"updated_at": now}, flag_rows, "超期标记")
    if step_rows:
        session.execute(insert(_STEPS), step_rows)
        arows = audit.bulk_rows(actor, "update", Incident.__tablename__, audit_rows, note="escalate-overdue")
        arows += audit.bulk_rows(actor, "update", Incident.__tablename__,
                                 [(r.id, r.uuid, {"overdue_flag": (None, now)}) for r in flags],
                                 note="escalate-overdue")
        session.execute(insert(_AUDIT), arows)
    session.expire_all()
    return SweepResult(now, len(ups), len(flags), [r.id for r in ups], [r.id for r in flags])


def overdue_counts(session: Session, actor: Actor, *, now: datetime | None = None) -> dict[str, int]:
    """Active overdue cases per level in the actor's area (for a status bar)."""
    now = now_or(now)
    rows = session.execute(
        select(Incident.level, func.count())
        .where(Incident.status.in_(ACTIVE_STATUSES), Incident.due_at < now, in_scope(actor))
        .group_by(Incident.level)
    ).all()
    return {lv: n for lv, n in rows}

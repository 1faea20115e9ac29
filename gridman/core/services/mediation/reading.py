"""Reading a case: its facts, parties, attachments and whole timeline as plain records."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core.enums import IncidentCategory, MediationLevel, label
from gridman.core.models import (
    Area,
    Incident,
    IncidentAttachment,
    IncidentParty,
    IncidentStep,
    Resident,
    User,
)
from gridman.core.services import scope
from gridman.core.services.mediation.cases import load, now_or
from gridman.core.services.mediation.records import AttachmentView, IncidentView, PartyView, StepView
from gridman.core.services.mediation.rules import action_label, status_label
from gridman.core.services.permissions import Actor


def _step_view(st: IncidentStep) -> StepView:
    return StepView(st.incident_id, st.seq, st.at, st.action, action_label(st.action), st.actor_id, st.actor_name,
                    st.from_level, st.to_level, st.from_status, st.to_status, st.target, st.note)


def show(session: Session, actor: Actor, incident_id: int, *, now: datetime | None = None) -> IncidentView:
    """One case with its parties, attachments and timeline — merged duplicates' steps included,
    in time order (each step says which case it belongs to)."""
    inc = load(session, actor, incident_id, lock=False)
    now = now_or(now)
    merged_ids = list(session.scalars(select(Incident.id).where(Incident.merged_into_id == inc.id).order_by(Incident.id)))
    steps = session.scalars(
        select(IncidentStep).where(IncidentStep.incident_id.in_([inc.id, *merged_ids]))
        .order_by(IncidentStep.at, IncidentStep.incident_id, IncidentStep.seq)
    ).all()
    grid = session.get(Area, inc.grid_id)
    # steps written without the actor's name (imported or generated histories): the user's name now
    unnamed = {st.actor_id for st in steps if st.actor_name is None and st.actor_id is not None}
    names = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(unnamed))).all()) if unnamed else {}
    parties = session.scalars(select(IncidentParty).where(IncidentParty.incident_id == inc.id)
                              .order_by(IncidentParty.id)).all()
    # a party's link to the register only where the actor may open that resident: the case keeps the
    # name its reporter wrote, the register record of another street stays out of reach
    linked = {p.resident_id for p in parties if p.resident_id is not None}
    seen = set(session.scalars(select(Resident.id).where(Resident.id.in_(linked), scope.rows(actor, Resident.grid_id)))
               ) if linked else set()
    atts = session.scalars(select(IncidentAttachment).where(IncidentAttachment.incident_id == inc.id)
                           .order_by(IncidentAttachment.id)).all()
    return IncidentView(
        id=inc.id, version=inc.version, grid_id=inc.grid_id, grid_name=grid.name if grid else "",
        category=inc.category, category_label=label(inc.category, enum=IncidentCategory), subcategory=inc.subcategory,
        title=inc.title, description=inc.description, level=inc.level,
        level_label=label(inc.level, enum=MediationLevel), status=inc.status, status_label=status_label(inc.status),
        priority=inc.priority, reported_at=inc.reported_at, due_at=inc.due_at, case_due_at=inc.case_due_at,
        overdue=inc.due_at is not None and inc.due_at < now, handler_id=inc.handler_id,
        handled_level=inc.handled_level, agreement_text=inc.agreement_text, agreement_terms=inc.agreement_terms,
        referral_target=inc.referral_target, referral_outcome=inc.referral_outcome, closed_at=inc.closed_at,
        closed_on_time=inc.closed_on_time, satisfaction=inc.satisfaction, merged_into_id=inc.merged_into_id,
        merged_ids=merged_ids, building_id=inc.building_id, lon=inc.lon, lat=inc.lat,
        location_text=inc.location_text,
        parties=[PartyView(p.name, p.role, p.resident_id if p.resident_id in seen else None, p.phone)
                 for p in parties],
        attachments=[AttachmentView(a.id, a.filename, a.sha256, a.size, a.mime) for a in atts],
        steps=[replace(v, actor_name=names.get(v.actor_id)) if v.actor_name is None and v.actor_id else v
               for v in (_step_view(s) for s in steps)],
    )


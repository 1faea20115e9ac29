"""What mediation services return and take: plain records, safe to hand across threads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ActionResult:
    """What an action returns: the case's new state and the step it appended."""

    incident_id: int
    action: str
    version: int
    level: str
    status: str
    due_at: datetime | None
    case_due_at: datetime | None
    step_seq: int


@dataclass(frozen=True)
class StepView:
    incident_id: int
    seq: int
    at: datetime
    action: str
    action_label: str
    actor_id: int | None
    actor_name: str | None
    from_level: str | None
    to_level: str | None
    from_status: str | None
    to_status: str | None
    target: str | None
    note: str | None


@dataclass(frozen=True)
class PartyView:
    name: str
    role: str
    resident_id: int | None
    phone: str | None


@dataclass(frozen=True)
class AttachmentView:
    id: int
    filename: str
    sha256: str
    size: int
    mime: str | None


@dataclass(frozen=True)
class IncidentView:
    """One case with its timeline (``steps`` include those of duplicates merged into it)."""

    id: int
    version: int
    grid_id: int
    grid_name: str
    category: str
    category_label: str
    subcategory: str | None
    title: str
    description: str | None
    level: str
    level_label: str
    status: str
    status_label: str
    priority: str
    reported_at: datetime
    due_at: datetime | None
    case_due_at: datetime | None
    overdue: bool
    handler_id: int | None
    handled_level: str | None
    agreement_text: str | None
    agreement_terms: str | None
    referral_target: str | None
    referral_outcome: str | None
    closed_at: datetime | None
    closed_on_time: bool | None
    satisfaction: str | None
    merged_into_id: int | None
    merged_ids: list[int]
    building_id: int | None
    lon: float | None
    lat: float | None
    location_text: str | None
    parties: list[PartyView] = field(default_factory=list)
    attachments: list[AttachmentView] = field(default_factory=list)
    steps: list[StepView] = field(default_factory=list)


@dataclass(frozen=True)
class PartyInput:
    """A party (当事人): a resident of the register (``resident_id``) or a free-text person (``name``)."""

    name: str | None = None
    resident_id: int | None = None
    role: str = "party"  # applicant / respondent / party
    phone: str | None = None


@dataclass(frozen=True)
class AttachmentInput:
    filename: str
    data: bytes
    mime: str | None = None


@dataclass(frozen=True)
class SweepResult:
    """What :func:`escalate_overdue` did: ``escalated`` cases moved one level up, ``flagged``
    street-level cases got an overdue mark (there is no level above the street)."""

    now: datetime
    escalated: int
    flagged: int
    escalated_ids: list[int]
    flagged_ids: list[int]



@dataclass(frozen=True)
class Skipped:
    """A case a bulk action left alone, and why (in Chinese and English)."""

    incident_id: int
    reason: str
    reason_en: str


@dataclass(frozen=True)
class BulkResult:
    """What :func:`act_many` did: the cases ``done`` (in the order given) with their new state,
    and the ``skipped`` ones with the reason each was refused."""

    action: str
    done: list[int]
    skipped: list[Skipped]
    results: list[ActionResult] = field(default_factory=list)

    @property
    def skipped_ids(self) -> list[int]:
        return [s.incident_id for s in self.skipped]

"""事: incidents (事件 / 矛盾纠纷) and their three-level mediation (三级调处).

An incident has a current ``level`` (grid/community/street) and ``status``; every change is one
append-only :class:`IncidentStep` on its timeline. ``due_at`` is the deadline at the current level,
``case_due_at`` the deadline of the whole case. ``street_id``/``community_id`` copy the grid's
ancestors so a street's queue is one indexed range, not a join over its grids.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridman.core.models.base import Base, SyncMixin, utcnow


class Incident(SyncMixin, Base):  # 事件
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), nullable=False)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    category: Mapped[str] = mapped_column(String(20), nullable=False)  # enums.IncidentCategory
    subcategory: Mapped[str | None] = mapped_column(String(20))  # enums.DisputeKind for disputes
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(12), nullable=False, default="grid")  # enums.MediationLevel
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="reported")  # enums.IncidentStatus
    priority: Mapped[str] = mapped_column(String(10), nullable=False, default="normal")
    source: Mapped[str | None] = mapped_column(String(20))  # patrol / visit / hotline / walk_in
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime)
    reported_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    location_text: Mapped[str | None] = mapped_column(String(200))
    level_entered_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(DateTime)  # deadline at the current level
    case_due_at: Mapped[datetime | None] = mapped_column(DateTime)  # deadline of the whole case
    handled_level: Mapped[str | None] = mapped_column(String(12))  # level that resolved/failed it
    agreement_text: Mapped[str | None] = mapped_column(Text)  # 调解协议
    agreement_terms: Mapped[str | None] = mapped_column(Text)
    referral_target: Mapped[str | None] = mapped_column(String(30))  # enums.ReferralTarget
    referral_outcome: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_on_time: Mapped[bool | None] = mapped_column(Boolean)
    satisfaction: Mapped[str | None] = mapped_column(String(12))  # enums.Satisfaction
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))

    steps: Mapped[list[IncidentStep]] = relationship(
        back_populates="incident", order_by="IncidentStep.seq", cascade="all, delete-orphan"
    )
    parties: Mapped[list[IncidentParty]] = relationship(back_populates="incident", cascade="all, delete-orphan")
    attachments: Mapped[list[IncidentAttachment]] = relationship(
        back_populates="incident", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_incidents_grid_status", "grid_id", "status"),
        Index("ix_incidents_street_status_due", "street_id", "status", "due_at"),
        Index("ix_incidents_community_status_due", "community_id", "status", "due_at"),
        Index("ix_incidents_status_due", "status", "due_at"),
        Index("ix_incidents_reported_at", "reported_at"),
        # the supervisor's queue: an area's active cases in deadline order (migration 0003_mediation;
        # closed/merged cases have no due_at). The FTS5 / pg_trgm text index lives in that migration only.
        Index("ix_incidents_street_due", "street_id", "due_at"),
        Index("ix_incidents_community_due", "community_id", "due_at"),
        Index("ix_incidents_grid_due", "grid_id", "due_at"),
        Index("ix_incidents_due", "due_at"),
        Index("ix_incidents_merged_into", "merged_into_id"),
    )


class IncidentParty(Base):  # 当事人
    __tablename__ = "incident_parties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False, index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False)  # copied or free text
    role: Mapped[str] = mapped_column(String(20), nullable=False, default="party")  # applicant / respondent / party
    phone: Mapped[str | None] = mapped_column(String(30))

    incident: Mapped[Incident] = relationship(back_populates="parties")


class IncidentStep(Base):  # 处置流程记录 (append-only)
    """One step of the timeline. Never updated or deleted: the history is the record."""

    __tablename__ = "incident_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str | None] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(20), nullable=False)  # report/accept/escalate/...
    from_level: Mapped[str | None] = mapped_column(String(12))
    to_level: Mapped[str | None] = mapped_column(String(12))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(40))  # referral committee / merged case / handler
    note: Mapped[str | None] = mapped_column(Text)

    incident: Mapped[Incident] = relationship(back_populates="steps")

    __table_args__ = (UniqueConstraint("incident_id", "seq", name="uq_incident_steps_incident_seq"),)


class IncidentAttachment(Base):  # 附件 (photos), stored beside the database by content hash
    __tablename__ = "incident_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False, index=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    mime: Mapped[str | None] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    incident: Mapped[Incident] = relationship(back_populates="attachments")


class TimeLimitPolicy(Base):  # 办理时限
    """Time limit per mediation level and (optionally) category; ``level='case'`` is the whole case.
    A row with ``category`` NULL is the default for its level."""

    __tablename__ = "time_limit_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(12), nullable=False)  # grid/community/street/case
    category: Mapped[str | None] = mapped_column(String(20))
    days: Mapped[int] = mapped_column(Integer, nullable=False)
    working_days: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)

    __table_args__ = (UniqueConstraint("level", "category", name="uq_time_limit_policies_level_category"),)


class Holiday(Base):  # 法定节假日/调休 — for working-day arithmetic
    __tablename__ = "holidays"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)  # 调休上班
    name: Mapped[str | None] = mapped_column(String(40))

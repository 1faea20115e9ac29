"""情: visit logs (走访), public-sentiment reports (社情民意), population-change events (人口变动)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gridman.core.models.base import Base, SyncMixin


class VisitLog(SyncMixin, Base):  # 走访记录
    __tablename__ = "visit_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), nullable=False)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    visitor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    visited_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False, default="routine")  # enums.VisitKind
    findings: Mapped[str | None] = mapped_column(Text)
    follow_up: Mapped[str | None] = mapped_column(Text)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))  # if the visit raised one

    __table_args__ = (Index("ix_visit_logs_grid_at", "grid_id", "visited_at"),)


class SentimentReport(SyncMixin, Base):  # 社情民意
    __tablename__ = "sentiment_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), nullable=False, index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reported_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    topic: Mapped[str] = mapped_column(String(200), nullable=False)
    content: Mapped[str | None] = mapped_column(Text)
    mood: Mapped[str | None] = mapped_column(String(20))  # positive / neutral / negative
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="open")  # open / forwarded / done


class PopulationEvent(SyncMixin, Base):  # 人口变动
    __tablename__ = "population_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # enums.PopulationEventKind
    occurred_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    from_place: Mapped[str | None] = mapped_column(String(200))
    to_place: Mapped[str | None] = mapped_column(String(200))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(String(500))

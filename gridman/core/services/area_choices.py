"""The areas the export and report dialogs name, as plain data: the area an export is of, and the
areas (district, street, community) a monthly report may be made for — those in the actor's scope,
exactly what :func:`export.monthly_report` accepts (:mod:`scope`).

Threading: the caller's thread and session (the GUI calls these in an op-runner job).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core.enums import AreaLevel
from gridman.core.models import Area
from gridman.core.services import scope
from gridman.core.services.permissions import Actor

REPORT_LEVELS = (AreaLevel.DISTRICT.value, AreaLevel.STREET.value, AreaLevel.COMMUNITY.value)


@dataclass(frozen=True)
class AreaChoice:
    code: str
    name: str
    level: str


def area_choice(session: Session, area_id: int | None) -> AreaChoice | None:
    """The area ``area_id`` as code, name and level (None for no area or an unknown id)."""
    a = session.get(Area, area_id) if area_id else None
    return AreaChoice(a.code, a.name, a.level) if a is not None else None


def report_areas(session: Session, actor: Actor) -> list[AreaChoice]:
    """The districts, streets and communities in the actor's scope, by code."""
    q = (select(Area.code, Area.name, Area.level)
         .where(Area.level.in_(REPORT_LEVELS), scope.rows(actor, Area.id)).order_by(Area.code))
    return [AreaChoice(c, n, lv) for c, n, lv in session.execute(q)]

"""Counts per table and per area level (``gridman stats``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridman.core.enums import Role
from gridman.core.models import Area, User


def level_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Area.level, func.count()).group_by(Area.level)).all()
    return {lv: n for lv, n in rows}


def role_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(User.role, func.count()).where(User.is_system.is_(False)).group_by(User.role)
    ).all()
    return {r: n for r, n in rows if r in {x.value for x in Role}}

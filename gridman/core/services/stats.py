"""Counts per table and per area level (``gridman stats``, ``gridman db check``) — of what the
actor may see: the unrestricted count every table; a scoped role counts the rows of its scope in
the tables whose rows hang on a grid or an area (:func:`scope.rows`), and nothing of the others
(users, the audit log, settings…), which are not theirs to measure."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridman.core.enums import Role
from gridman.core.models import (
    Area,
    Building,
    ExchangePackage,
    Household,
    ImportBatch,
    Incident,
    Organisation,
    Premise,
    Resident,
    User,
    VisitLog,
)
from gridman.core.services import scope
from gridman.core.services.permissions import Actor, Perm, require

# the tables whose rows a scoped role counts, by the grid or area column its scope is decided on
SCOPED_TABLES: dict[str, Any] = {
    "areas": Area.id, "buildings": Building.grid_id, "households": Household.grid_id, "residents": Resident.grid_id,
    "premises": Premise.grid_id, "organisations": Organisation.area_id, "incidents": Incident.grid_id,
    "visit_logs": VisitLog.grid_id, "import_batches": ImportBatch.area_id, "exchange_packages": ExchangePackage.area_id,
}


def table_counts(session: Session, actor: Actor) -> dict[str, int]:
    """Rows per table the actor may count (every table for the unrestricted)."""
    require(actor, Perm.READ)
    if scope.unrestricted(actor):
        from gridman.core.db import table_counts as all_tables

        return all_tables(session)
    return {name: int(session.scalar(select(func.count()).select_from(col.table).where(scope.rows(actor, col))) or 0)
            for name, col in SCOPED_TABLES.items()}


def level_counts(session: Session, actor: Actor) -> dict[str, int]:
    """Areas per level within the actor's scope (:func:`scope.rows` on the area's id)."""
    rows = session.execute(select(Area.level, func.count()).where(scope.rows(actor, Area.id))
                           .group_by(Area.level)).all()
    return {lv: n for lv, n in rows}


def role_counts(session: Session, actor: Actor) -> dict[str, int]:
    """Accounts per role — for those who manage users (an empty answer for the others)."""
    if not actor.can(Perm.MANAGE_USERS):
        return {}
    rows = session.execute(
        select(User.role, func.count()).where(User.is_system.is_(False)).group_by(User.role)
    ).all()
    return {r: n for r, n in rows if r in {x.value for x in Role}}

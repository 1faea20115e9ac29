"""The supervisor's queue (待办) for any area (the mediation figures are in
:mod:`gridman.core.services.mediation.figures`).

The queue lists an area's *active* cases (not closed, not merged) overdue first, then by deadline —
one ordering, since a case is overdue exactly when its ``due_at`` has passed. It relies on the
invariant kept by :mod:`gridman.core.services.mediation`: ``due_at`` is set exactly while a case is
active, so ``due_at IS NOT NULL`` over the (street|community|grid, due_at) indexes of migration
0003_mediation walks an area's active cases in deadline order and the first page is an index range
scan with LIMIT. Per-status counts use the (area, status, due_at) indexes and never touch the table.

Text search: on SQLite the FTS5 trigram table ``incidents_fts`` for queries of three or more
characters (a trigram index cannot answer fewer), a LIKE scan otherwise; on PostgreSQL ``ILIKE`` on
the expression the pg_trgm GIN index was built on (without pg_trgm the same query scans).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal_column, or_, select, text
from sqlalchemy.orm import Session

from gridman.core.enums import IncidentStatus, label
from gridman.core.models import Area, Incident, User, utcnow
from gridman.core.services.errors import ValidationError
from gridman.core.services.mediation import ACTIVE_STATUSES, LEVELS
from gridman.core.services.mediation.cases import in_scope
from gridman.core.services.permissions import Actor, Perm, require, require_area

S = IncidentStatus
# Exactly the expression of the pg_trgm index in migration 0003_mediation.
PG_TEXT_EXPR = "(coalesce(incidents.title, '') || ' ' || coalesce(incidents.description, ''))"
FTS_MIN_CHARS = 3
FTS_DRIVE_MAX = 5000  # see text_condition


@dataclass(frozen=True)
class QueueRow:
    id: int
    version: int
    title: str
    category: str
    subcategory: str | None
    priority: str
    level: str
    status: str
    status_label: str
    grid_id: int
    grid_name: str
    reported_at: datetime
    due_at: datetime | None
    case_due_at: datetime | None
    overdue: bool
    handler_id: int | None
    handler_name: str | None


@dataclass(frozen=True)
class QueueResult:
    """A page of the queue; ``total`` matches all filters (None if not asked for); ``counts`` are the
    area's (and level's) active cases per status, whatever the other filters."""

    now: datetime
    rows: list[QueueRow]
    total: int | None
    counts: dict[str, int] | None
    limit: int
    offset: int


# --- scope --------------------------------------------------------------------------------------


def _area(session: Session, actor: Actor, area_id: int | None) -> Area | None:
    return None if area_id is None else require_area(session, actor, Perm.READ, area_id)


def _has_fts(session: Session) -> bool:
    return bool(session.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'incidents_fts'")
    ).scalar())


def _like_pattern(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _fts_phrase(q: str) -> str:
    return '"' + q.replace('"', '""') + '"'


def fts_match_count(session: Session, q: str, *, cap: int | None = None) -> int:
    """Cases whose title or description contains ``q`` (SQLite FTS5), counting at most ``cap``."""
    sql = "SELECT rowid FROM incidents_fts WHERE incidents_fts MATCH :q"
    if cap is not None:
        sql += f" LIMIT {int(cap)}"
    return int(session.execute(text(f"SELECT count(*) FROM ({sql})"), {"q": _fts_phrase(q)}).scalar_one())


def text_condition(session: Session, q: str) -> ColumnElement[bool]:
    """Substring search in title and description (see module docstring for the indexes used).

    On SQLite a term with at most ``FTS_DRIVE_MAX`` matches drives the query through FTS5 (fetch the
    matches by rowid, keep the active ones, sort: cost grows with the matches). A more frequent term
    is tested with LIKE while walking the deadline index instead: the first page is complete after
    a few thousand index entries at most, rather than after fetching and sorting tens of thousands
    of matches. (The capped FTS count that decides costs well under a millisecond to ~10 ms.)
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return literal_column(PG_TEXT_EXPR).ilike(_like_pattern(q), escape="\\")
    if dialect == "sqlite" and len(q) >= FTS_MIN_CHARS and _has_fts(session) \
            and fts_match_count(session, q, cap=FTS_DRIVE_MAX + 1) <= FTS_DRIVE_MAX:
        fts: Select[Any] = select(literal_column("rowid")).select_from(text("incidents_fts")).where(
            text("incidents_fts MATCH :fts_q").bindparams(fts_q=_fts_phrase(q)))
        return Incident.id.in_(fts)
    pat = _like_pattern(q)
    return or_(Incident.title.like(pat, escape="\\"), Incident.description.like(pat, escape="\\"))


# --- the queue ----------------------------------------------------------------------------------


def _one_of(values: str | list[str] | tuple[str, ...] | None, allowed: tuple[str, ...], what: str) -> list[str] | None:
    if values is None or values == "" or values == []:
        return None
    vals = [values] if isinstance(values, str) else list(values)
    bad = [v for v in vals if v not in allowed]
    if bad:
        raise ValidationError(f"{what} {bad[0]!r} 无效，可选：{', '.join(allowed)}", field=what,
                              en=f"Invalid {what} {bad[0]!r}; one of {', '.join(allowed)}")
    return vals


def queue(session: Session, actor: Actor, area_id: int | None = None, *, level: str | list[str] | None = None,
          status: str | list[str] | None = None, category: str | list[str] | None = None,
          overdue: bool | None = None, handler: int | None = None, text: str | None = None,
          limit: int = 50, offset: int = 0, now: datetime | None = None, with_counts: bool = True,
          with_total: bool = True) -> QueueResult:
    """Active cases of an area (default: the actor's scope), overdue first then by deadline."""
    require(actor, Perm.READ)
    now = now or utcnow()
    area = _area(session, actor, area_id)
    levels = _one_of(level, LEVELS, "level")
    statuses = _one_of(status, ACTIVE_STATUSES, "status")
    if limit < 1 or limit > 1000 or offset < 0:
        raise ValidationError("每页条数应在 1–1000 之间，偏移不能为负", field="limit", en="limit 1–1000, offset ≥ 0")
    t = Incident
    conds: list[ColumnElement[bool]] = [in_scope(actor, area), t.due_at.is_not(None)]
    not_closed = t.status.not_in((S.CLOSED.value, S.MERGED.value))
    if statuses:
        conds.append(t.status.in_(statuses))
    else:
        # NOT IN cannot drive an index: the planner walks (area, due_at) in order.
        conds.append(not_closed)
    if levels:
        conds.append(t.level.in_(levels))
    if category:
        conds.append(t.category.in_([category] if isinstance(category, str) else list(category)))
    if overdue is True:
        conds.append(t.due_at < now)
    elif overdue is False:
        conds.append(t.due_at >= now)
    if handler is not None:
        conds.append(t.handler_id == handler)
    q_text = (text or "").strip()
    if q_text:
        conds.append(text_condition(session, q_text))
    where = and_(*conds)
    # the same set for counting: status IN (…) lets SQLite count in the (area, status, due_at) index
    count_where = and_(*[c for c in conds if c is not not_closed], t.status.in_(statuses or ACTIVE_STATUSES))
    rows = session.execute(
        select(t.id, t.version, t.title, t.category, t.subcategory, t.priority, t.level, t.status, t.grid_id,
               t.reported_at, t.due_at, t.case_due_at, t.handler_id)
        .where(where).order_by(t.due_at, t.id).limit(limit).offset(offset)
    ).all()
    grid_names: dict[int, str] = {}
    handler_names: dict[int, str] = {}
    if rows:
        gids = sorted({r.grid_id for r in rows})
        grid_names = dict(session.execute(select(Area.id, Area.name).where(Area.id.in_(gids))).all())
        hids = sorted({r.handler_id for r in rows if r.handler_id})
        if hids:
            handler_names = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(hids))).all())
    out = [QueueRow(r.id, r.version, r.title, r.category, r.subcategory, r.priority, r.level, r.status,
                    label(r.status, enum=IncidentStatus), r.grid_id, grid_names.get(r.grid_id, ""), r.reported_at,
                    r.due_at, r.case_due_at, r.due_at is not None and r.due_at < now, r.handler_id,
                    handler_names.get(r.handler_id) if r.handler_id else None) for r in rows]
    total = None
    if with_total:
        total = session.execute(select(func.count()).select_from(t).where(count_where)).scalar_one()
    counts = status_counts(session, actor, area_id, level=level, _area_obj=area) if with_counts else None
    return QueueResult(now, out, total, counts, limit, offset)


def status_counts(session: Session, actor: Actor, area_id: int | None = None, *,
                  level: str | list[str] | None = None, _area_obj: Area | None = None) -> dict[str, int]:
    """Active cases per status in an area (every active status present, zeros included)."""
    require(actor, Perm.READ)
    area = _area_obj if _area_obj is not None else _area(session, actor, area_id)
    levels = _one_of(level, LEVELS, "level")
    t = Incident
    conds = [in_scope(actor, area), t.status.in_(ACTIVE_STATUSES)]
    if levels:
        conds.append(t.level.in_(levels))
    rows = session.execute(select(t.status, func.count()).where(*conds).group_by(t.status)).all()
    out = {s: 0 for s in ACTIVE_STATUSES}
    out.update({s: n for s, n in rows})
    return out

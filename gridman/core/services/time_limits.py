"""Time limits of three-level mediation (办理时限): policy lookup, working-day arithmetic, policy admin.

A :class:`~gridman.core.models.TimeLimitPolicy` row gives the days allowed at one level
(``grid``/``community``/``street``) or for the whole case (``case``), optionally for one incident
category; the row with ``category`` NULL is the level's default. Days are calendar days or working
days. Working days skip Saturdays, Sundays and :class:`~gridman.core.models.Holiday` rows, except
that a Holiday row with ``is_workday`` marks a make-up working day (调休上班), usually a Saturday.

Deadlines are stored as naive UTC like every timestamp in gridman, but *which day* a moment falls
on is decided in China Standard Time (UTC+8, no daylight saving): a case reported at 17:00 UTC on a
Friday was reported on Saturday morning in Hefei. A deadline keeps the start's time of day:
3 calendar days after Mon 10:00 is Thu 10:00; 3 working days after Fri 10:00 is Wed 10:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core.enums import IncidentCategory, MediationLevel
from gridman.core.models import Holiday, TimeLimitPolicy, utcnow
from gridman.core.services.errors import ValidationError
from gridman.core.services.permissions import Actor, Perm, require

LOCAL_OFFSET = timedelta(hours=8)  # China Standard Time
CASE = "case"  # the whole-case pseudo level of the policy table
POLICY_LEVELS = (MediationLevel.GRID.value, MediationLevel.COMMUNITY.value, MediationLevel.STREET.value, CASE)
# Used only if a database lost its policy rows (migration 0002 inserts these defaults).
FALLBACK_DAYS = {"grid": 3, "community": 7, "street": 15, CASE: 30}


@dataclass(frozen=True)
class Limit:
    """The limit that applies: ``days`` calendar or working days; ``category`` None = level default."""

    level: str
    category: str | None
    days: int
    working_days: bool


class Calendar:
    """Holidays and make-up working days, loaded once (a sweep computes many deadlines)."""

    def __init__(self, holidays: set[date] | None = None, workdays: set[date] | None = None) -> None:
        self.holidays = holidays or set()
        self.workdays = workdays or set()

    @classmethod
    def load(cls, session: Session) -> Calendar:
        hol: set[date] = set()
        work: set[date] = set()
        for day, is_workday in session.execute(select(Holiday.day, Holiday.is_workday)):
            (work if is_workday else hol).add(day)
        return cls(hol, work)

    def is_working_day(self, d: date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5

    def add(self, start: datetime, days: int, *, working_days: bool) -> datetime:
        """The deadline ``days`` (calendar or working) days after ``start`` (naive UTC)."""
        if not working_days:
            return start + timedelta(days=days)
        local = start + LOCAL_OFFSET
        d = local.date()
        left = days
        while left > 0:
            d += timedelta(days=1)
            if self.is_working_day(d):
                left -= 1
        return datetime.combine(d, local.time()) - LOCAL_OFFSET


class PolicyTable:
    """All policy rows in memory: ``limit(level, category)`` with fallback to the level default."""

    def __init__(self, rows: list[Limit]) -> None:
        self.rows = {(r.level, r.category): r for r in rows}

    @classmethod
    def load(cls, session: Session) -> PolicyTable:
        rows = session.execute(
            select(TimeLimitPolicy.level, TimeLimitPolicy.category, TimeLimitPolicy.days,
                   TimeLimitPolicy.working_days)
        ).all()
        return cls([Limit(lv, cat, d, bool(wd)) for lv, cat, d, wd in rows])

    def limit(self, level: str, category: str | None = None) -> Limit:
        if category is not None and (level, category) in self.rows:
            return self.rows[(level, category)]
        if (level, None) in self.rows:
            return self.rows[(level, None)]
        return Limit(level, None, FALLBACK_DAYS[level], False)


class Deadlines:
    """Policy + calendar: what a mediation action needs to set ``due_at``/``case_due_at``."""

    def __init__(self, policies: PolicyTable, calendar: Calendar) -> None:
        self.policies = policies
        self.calendar = calendar

    @classmethod
    def load(cls, session: Session) -> Deadlines:
        with session.no_autoflush:  # callers load this mid-change; their one flush comes later
            return cls(PolicyTable.load(session), Calendar.load(session))

    def due(self, level: str, category: str | None, start: datetime) -> datetime:
        lim = self.policies.limit(level, category)
        return self.calendar.add(start, lim.days, working_days=lim.working_days)


# --- administration (the administrator edits the policy table) ---------------------------------


def list_policies(session: Session) -> list[Limit]:
    rows = PolicyTable.load(session).rows.values()
    order = {lv: i for i, lv in enumerate(POLICY_LEVELS)}
    return sorted(rows, key=lambda r: (order.get(r.level, 9), r.category or ""))


def set_policy(session: Session, actor: Actor, *, level: str, days: int, working_days: bool = False,
               category: str | None = None) -> Limit:
    """Create or change one policy row. Existing deadlines are not recomputed: a new limit applies
    from the next level change on (a case keeps the deadline it was given)."""
    require(actor, Perm.MANAGE_POLICY)
    if level not in POLICY_LEVELS:
        raise ValidationError(f"层级 {level!r} 无效，应为 grid/community/street/case", field="level",
                              en=f"Invalid level {level!r}: use grid/community/street/case")
    if category is not None and category not in {c.value for c in IncidentCategory}:
        raise ValidationError(f"事件类别 {category!r} 无效", field="category", en=f"Invalid category {category!r}")
    if not isinstance(days, int) or days < 1 or days > 365:
        raise ValidationError(f"时限天数 {days!r} 应在 1 到 365 之间", field="days",
                              en=f"Days {days!r} must be between 1 and 365")
    q = select(TimeLimitPolicy).where(TimeLimitPolicy.level == level)
    q = q.where(TimeLimitPolicy.category.is_(None) if category is None else TimeLimitPolicy.category == category)
    row = session.scalar(q)
    if row is None:
        row = TimeLimitPolicy(level=level, category=category, days=days, working_days=working_days,
                              updated_at=utcnow())
        session.add(row)
    else:
        row.days = days
        row.working_days = working_days
    session.flush()
    return Limit(level, category, days, working_days)


def set_holiday(session: Session, actor: Actor, *, day: date, is_workday: bool = False,
                name: str | None = None) -> None:
    """Mark a public holiday (``is_workday`` False) or a make-up working day (调休, True)."""
    require(actor, Perm.MANAGE_POLICY)
    row = session.get(Holiday, day)
    if row is None:
        session.add(Holiday(day=day, is_workday=is_workday, name=name))
    else:
        row.is_workday = is_workday
        row.name = name
    session.flush()


def list_holidays(session: Session, *, year: int | None = None) -> list[tuple[date, bool, str | None]]:
    """(day, is a make-up working day, name) of the holiday calendar, in date order (a year's or all)."""
    q = select(Holiday.day, Holiday.is_workday, Holiday.name).order_by(Holiday.day)
    if year is not None:
        q = q.where(Holiday.day >= date(year, 1, 1), Holiday.day <= date(year, 12, 31))
    return [(d, bool(w), n) for d, w, n in session.execute(q)]

"""The mediation figures (调处统计) — each defined once, here. ``stats mediation``, the supervisor's
queue, the dashboard's rate charts and the monthly report all call these functions.

**The cohort rule (one for every figure).** The cases *reported* in the period ``[date_from,
date_to]`` (whole days) in the area, merged duplicates left out (a duplicate is not a case, whenever
it was noticed), **in the state they had reached by the end of the period** (the end of ``date_to``;
now when the period is open-ended). Work done after the period is not credited to it.

Why this rule: it is the one a supervisor reporting upward needs. A figure sent up for October
must be the figure anyone recomputes for October later — in November, in December — and it must
not improve because cases were closed after the report went out; it also makes the monthly report
(截至月末) and ``stats mediation --from 10-01 --to 10-31`` the same numbers by construction. Counting
the cases *reported* in the period (rather than those closed in it) ties each rate to the same
set of cases, so every rate is a share of one cohort and shares of grids add up to their street.

What "by the end of the period" means for each kind of fact:

- states kept on the case (closed, on time, level that handled it) use its timestamps: closed
  means status ``closed`` with ``closed_at`` before the end. A case closed in the period and
  reopened after it counts as not closed once it has been reopened (the case keeps only its
  latest closure);
- events (mediation outcomes, evaluations, referrals) are counted from the case's steps
  (``incident_steps``) dated before the end: every such event counts once. An unsatisfied
  evaluation reopens the case, so it would vanish from a count over closed cases; counted as an
  event it stays in the satisfaction rate.

Everything is computed in SQL (conditional sums, GROUP BY; the 90th percentile by nearest rank
with ``ORDER BY … LIMIT 1 OFFSET k``), scoped by :func:`.cases.in_scope` (:func:`scope.rows`).
Counts are additive (:class:`Counts` ``+``), so the figures of a street equal the sum of its grids'.
Qt-free; plain data out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, true
from sqlalchemy.orm import Session

from gridman.core.enums import IncidentStatus, MediationLevel, ReferralTarget
from gridman.core.models import Area, Incident, IncidentStep
from gridman.core.services import scope
from gridman.core.services.errors import NotFound, ValidationError
from gridman.core.services.mediation.cases import in_scope
from gridman.core.services.mediation.rules import LEVELS
from gridman.core.services.permissions import Actor, Perm, require, require_area

S = IncidentStatus
SATISFIED = ("satisfied", "basic")
ENTRY_ACTIONS = ("report", "escalate", "hand_down", "reopen", "verify_fail")
EXIT_STATUSES = (S.RESOLVED.value, S.FAILED.value, S.REFERRED.value, S.CLOSED.value, S.MERGED.value)
OUTCOME_ACTIONS = ("resolve", "fail", "referral_outcome")
EVENT_ACTIONS = (*OUTCOME_ACTIONS, "evaluate", "refer")

# The name of each rate, one word per concept in the CLI, the dashboard and the report (zh, en).
LABELS: dict[str, tuple[str, str]] = {
    "closure_rate": ("结案率", "Closure rate"),
    "on_time_rate": ("按期结案率", "On-time closure rate"),
    "mediation_success_rate": ("调解成功率", "Mediation success rate"),
    "satisfaction_rate": ("满意率", "Satisfaction rate"),
    "grid_share": ("网格化解占比", "Settled at grid level"),
}

# The rule of each figure in words, for reports and help (Chinese first, English second).
RULES: dict[str, tuple[str, str]] = {
    "cohort": ("本期上报的事件（已合并的重复事件不计），按截至期末的状态统计；期末之后的办理不计入本期。",
               "Cases reported in the period (merged duplicates excluded), as they stood at the period's end."),
    "closure_rate": ("结案率 = 截至期末已核查结案的事件 ÷ 受理事件", "closed by the end ÷ reported"),
    "on_time_rate": ("按期结案率 = 在案件期限内结案的 ÷ 截至期末已结案的", "closed within the case deadline ÷ closed"),
    "mediation_success_rate": ("调解成功率 = 调解成功 ÷（调解成功 + 调解不成），按期末前记录的每次调解结果计",
                               "resolved ÷ (resolved + failed), every outcome recorded by the end"),
    "satisfaction_rate": ("满意率 =（满意 + 基本满意）÷ 全部评价，按期末前的每次评价计（不满意的评价会退回重办，仍计入）",
                          "satisfied or basic ÷ all evaluations made by the end (unsatisfied ones included)"),
    "grid_share": ("网格化解占比（矛盾不上交）= 在网格层级化解的已结案事件 ÷ 已结案事件",
                   "closed cases settled at grid level ÷ closed cases"),
    "referred": ("分流 = 期末前的分流次数（按去向）", "referrals made by the end, per target"),
    "level_times": ("各层级用时 = 进入该层级到在该层级办结（成功、不成、分流、结案）或离开；期末仍在进行的不计",
                    "hours from entering a level to the first step ending the stay; stays running at the end "
                    "are not counted"),
}


@dataclass(frozen=True)
class Period:
    """Whole days ``[date_from, date_to]``; ``start``/``end`` are the datetimes bounding them
    (``end`` exclusive, None when open)."""

    date_from: date | None
    date_to: date | None

    @property
    def start(self) -> datetime | None:
        return None if self.date_from is None else datetime.combine(self.date_from, datetime.min.time())

    @property
    def end(self) -> datetime | None:
        return None if self.date_to is None else datetime.combine(self.date_to + timedelta(days=1),
                                                                   datetime.min.time())

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        return cls(date(year, month, 1), nxt - timedelta(days=1))

    def check(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValidationError(f"起始日期 {self.date_from} 晚于截止日期 {self.date_to}", field="date_from",
                                  en=f"From {self.date_from} is after to {self.date_to}")


@dataclass(frozen=True)
class Counts:
    """The additive counts behind the rates, for one cohort (see the module docstring)."""

    reported: int = 0  # cases in the cohort (merged duplicates excluded)
    merged: int = 0  # merged duplicates reported in the period (not in the cohort)
    closed: int = 0  # status closed, closed before the end
    closed_on_time: int = 0  # of those, within the case deadline
    settled_at_grid: int = 0  # of those, settled (resolved) at grid level
    resolved: int = 0  # outcome events 调解成功 before the end
    failed: int = 0  # outcome events 调解不成 before the end
    evaluated: int = 0  # evaluations before the end
    satisfied: int = 0  # of those, 满意 or 基本满意
    referrals: dict[str, int] = field(default_factory=dict)  # referral events per target

    def __add__(self, other: Counts) -> Counts:
        refs = dict(self.referrals)
        for k, v in other.referrals.items():
            refs[k] = refs.get(k, 0) + v
        sums = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self) if f.name != "referrals"}
        return Counts(**sums, referrals=refs)

    @property
    def referred(self) -> int:
        return sum(self.referrals.values())


@dataclass(frozen=True)
class LevelTime:
    """Hours a case spent at a level, per stay: from entering the level (report, escalation,
    hand-down, reopening) to the first step that ended the stay there (resolved, failed, referred,
    closed, merged) or to the next level change, both before the end; stays still running at the
    end are not counted. Stays of the cohort's cases only."""

    level: str
    stays: int
    avg_hours: float | None
    p90_hours: float | None


@dataclass(frozen=True)
class Figures:
    """The figures of one cohort (see the module docstring for the rule; :data:`RULES` in words).

    - ``closure_rate`` = closed ÷ reported;
    - ``on_time_rate`` = closed within the case deadline ÷ closed;
    - ``mediation_success_rate`` (调解成功率) = resolved ÷ (resolved + failed), outcome events;
    - ``satisfaction_rate`` = 满意 + 基本满意 ÷ evaluations;
    - ``grid_share`` (矛盾不上交) = closed cases settled at grid level ÷ closed;
    - ``referrals``: referral events per committee/department (``referred`` their sum);
    - ``level_times``: see :class:`LevelTime` (empty when not asked for).
    Rates are fractions 0–1, None when the denominator is 0.
    """

    area_id: int | None
    date_from: date | None
    date_to: date | None
    reported: int
    merged: int
    closed: int
    closure_rate: float | None
    closed_on_time: int
    on_time_rate: float | None
    resolved: int
    failed: int
    mediation_success_rate: float | None
    evaluated: int
    satisfied: int
    satisfaction_rate: float | None
    settled_at_grid: int
    grid_share: float | None
    referred: int
    referrals: dict[str, int] = field(default_factory=dict)
    level_times: list[LevelTime] = field(default_factory=list)


def rate(n: int, d: int) -> float | None:
    return n / d if d else None


def of_counts(c: Counts, *, area_id: int | None = None, period: Period | None = None,
              level_times: list[LevelTime] | None = None) -> Figures:
    """The figures (rates included) of counts ``c`` — the one place each rate is divided out."""
    period = period or Period(None, None)
    return Figures(
        area_id=area_id, date_from=period.date_from, date_to=period.date_to,
        reported=c.reported, merged=c.merged, closed=c.closed, closure_rate=rate(c.closed, c.reported),
        closed_on_time=c.closed_on_time, on_time_rate=rate(c.closed_on_time, c.closed),
        resolved=c.resolved, failed=c.failed, mediation_success_rate=rate(c.resolved, c.resolved + c.failed),
        evaluated=c.evaluated, satisfied=c.satisfied, satisfaction_rate=rate(c.satisfied, c.evaluated),
        settled_at_grid=c.settled_at_grid, grid_share=rate(c.settled_at_grid, c.closed), referred=c.referred,
        referrals={r.value: c.referrals.get(r.value, 0) for r in ReferralTarget},
        level_times=level_times or [],
    )


# --- the cohort and its counts -----------------------------------------------------------------


def _area(session: Session, actor: Actor, area_id: int | None, *, covered: bool = True) -> Area | None:
    """The area asked for (None: the actor's whole scope); refused outside the actor's scope
    unless ``covered`` is False (then the figures are of the part of it the actor sees)."""
    if area_id is None:
        return None
    if covered:
        return require_area(session, actor, Perm.READ, area_id)
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound(f"区划 {area_id} 不存在", en=f"Area {area_id} does not exist")
    return area


def cohort(actor: Actor, area: scope.AreaLike | None, period: Period) -> list[ColumnElement[bool]]:
    """Conditions on ``incidents`` selecting the cohort (merged duplicates still in: see ``_live``)."""
    t = Incident
    out = [in_scope(actor, area)]
    if period.start is not None:
        out.append(t.reported_at >= period.start)
    if period.end is not None:
        out.append(t.reported_at < period.end)
    return out


def _before_end(col: Any, period: Period) -> ColumnElement[bool]:
    return true() if period.end is None else col < period.end


def _n(cond: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def counts(session: Session, conds: list[ColumnElement[bool]], period: Period, *,
           by: Any = None) -> dict[Any, Counts]:
    """The counts of the cohort ``conds`` — per value of the incidents column ``by`` (e.g.
    ``Incident.grid_id``), or under the key None for the whole cohort. Two GROUP BY queries: one
    over the cases, one over their outcome, evaluation and referral steps."""
    t = Incident
    live = t.status != S.MERGED.value
    closed = and_(t.status == S.CLOSED.value, _before_end(t.closed_at, period))
    keys = [by] if by is not None else []
    acc: dict[Any, dict[str, Any]] = {}

    def slot(key: Any) -> dict[str, Any]:
        return acc.setdefault(key, {"referrals": {}})

    for row in session.execute(select(
        *keys, _n(live).label("reported"), _n(~live).label("merged"), _n(closed).label("closed"),
        _n(and_(closed, t.closed_on_time.is_(True))).label("closed_on_time"),
        _n(and_(closed, t.handled_level == MediationLevel.GRID.value)).label("settled_at_grid"),
    ).where(*conds).group_by(*keys)):
        slot(row[0] if by is not None else None).update(
            reported=row.reported, merged=row.merged, closed=row.closed, closed_on_time=row.closed_on_time,
            settled_at_grid=row.settled_at_grid)
    st = IncidentStep.__table__
    q = (select(*keys, st.c.action, st.c.to_status, st.c.target, func.count())
         .join(t.__table__, t.__table__.c.id == st.c.incident_id)
         .where(*conds, live, st.c.action.in_(EVENT_ACTIONS), _before_end(st.c.at, period))
         .group_by(*keys, st.c.action, st.c.to_status, st.c.target))
    for row in session.execute(q):
        key = row[0] if by is not None else None
        action, to_status, target, n = row[-4:]
        d = slot(key)
        if action == "evaluate":
            d["evaluated"] = d.get("evaluated", 0) + n
            if target in SATISFIED:
                d["satisfied"] = d.get("satisfied", 0) + n
        elif action == "refer":
            d["referrals"][target] = d["referrals"].get(target, 0) + n
        elif to_status in (S.RESOLVED.value, S.FAILED.value):
            k = "resolved" if to_status == S.RESOLVED.value else "failed"
            d[k] = d.get(k, 0) + n
    return {k: Counts(**v) for k, v in acc.items()}


def total(parts: Iterable[Counts]) -> Counts:
    out = Counts()
    for c in parts:
        out = out + c
    return out


# --- the figures callers ask for ------------------------------------------------------------------


def figures(session: Session, actor: Actor, area_id: int | None = None, date_from: date | None = None,
            date_to: date | None = None, *, with_level_times: bool = True) -> Figures:
    """The figures of an area (default: the actor's scope) for the cases reported in
    ``[date_from, date_to]``, as they stood at the end of ``date_to`` (module docstring).
    An area outside the actor's scope is refused."""
    require(actor, Perm.READ)
    area = _area(session, actor, area_id)
    period = Period(date_from, date_to)
    period.check()
    return _figures(session, actor, area, period, with_level_times=with_level_times)


def _figures(session: Session, actor: Actor, area: Area | None, period: Period, *,
             with_level_times: bool) -> Figures:
    conds = cohort(actor, area, period)
    c = counts(session, conds, period).get(None, Counts())
    lts = level_times(session, conds, period) if with_level_times else None
    return of_counts(c, area_id=area.id if area else None, period=period, level_times=lts)


def figures_by(session: Session, actor: Actor, *, area_id: int | None, period: Period,
               by: Any) -> dict[Any, Counts]:
    """The counts of an area's cohort per value of an incidents column (``Incident.grid_id``,
    ``Incident.community_id``); sum them with :func:`total`, divide with :func:`of_counts`."""
    require(actor, Perm.READ)
    area = _area(session, actor, area_id)
    period.check()
    return counts(session, cohort(actor, area, period), period, by=by)


def monthly(session: Session, actor: Actor, *, area_id: int | None, months: list[str]) -> dict[str, Figures]:
    """The figures of each month ``"YYYY-MM"`` of ``months`` (each month its own period and end),
    without level times. For the dashboard: an area above the actor's scope (the tree shows their
    ancestors) gives the part of it the actor sees, as every dashboard figure does."""
    require(actor, Perm.READ)
    area = _area(session, actor, area_id, covered=False)
    out: dict[str, Figures] = {}
    for key in months:
        out[key] = _figures(session, actor, area, Period.month(int(key[:4]), int(key[5:7])), with_level_times=False)
    return out


def level_times(session: Session, conds: list[ColumnElement[bool]], period: Period) -> list[LevelTime]:
    """:class:`LevelTime` per level for the cohort ``conds`` (the stays' steps before the end)."""
    st = IncidentStep.__table__
    t = Incident
    is_entry = or_(st.c.action.in_(ENTRY_ACTIONS), and_(st.c.action == "evaluate", st.c.to_status != "closed"))
    is_exit = st.c.to_status.in_(EXIT_STATUSES)
    marks = (select(st.c.incident_id, st.c.seq, st.c.at, st.c.to_level, case((is_entry, 1), else_=0).label("is_entry"))
             .join(t.__table__, t.__table__.c.id == st.c.incident_id)
             .where(*conds, t.status != S.MERGED.value, or_(is_entry, is_exit), _before_end(st.c.at, period))
             .subquery("marks"))
    seg = select(
        marks.c.to_level.label("level"), marks.c.at.label("at"), marks.c.is_entry.label("is_entry"),
        func.lead(marks.c.at).over(partition_by=marks.c.incident_id, order_by=marks.c.seq).label("next_at"),
    ).subquery("seg")
    if session.get_bind().dialect.name == "postgresql":
        hours = func.extract("epoch", seg.c.next_at - seg.c.at) / 3600.0
    else:
        hours = (func.julianday(seg.c.next_at) - func.julianday(seg.c.at)) * 24.0
    durs = (select(seg.c.level.label("level"), hours.label("hours"))
            .where(seg.c.is_entry == 1, seg.c.next_at.is_not(None))).subquery("durs")
    # one pass: per level the count, the mean and the nearest-rank 90th percentile, i.e. the
    # ceil(0.9·n)-th smallest stay — (9n + 9) / 10 in integer arithmetic on both databases
    ranked = select(
        durs.c.level, durs.c.hours,
        func.row_number().over(partition_by=durs.c.level, order_by=durs.c.hours).label("rn"),
        func.count().over(partition_by=durs.c.level).label("n"),
        func.avg(durs.c.hours).over(partition_by=durs.c.level).label("mean"),
    ).subquery("ranked")
    got = {lv: (n, mean, p90) for lv, n, mean, p90 in session.execute(
        select(ranked.c.level, ranked.c.n, ranked.c.mean, ranked.c.hours)
        .where(ranked.c.rn == (ranked.c.n * 9 + 9) // 10)).all()}
    out = []
    for lv in LEVELS:
        n, mean, p90 = got.get(lv, (0, None, None))
        out.append(LevelTime(lv, int(n), None if mean is None else float(mean), None if p90 is None else float(p90)))
    return out

"""Figures for the dashboard (统计看板), the area tree's counts and the map's colouring.

Simple SQL aggregates over the existing tables, limited to the actor's scope and to the selected
area's subtree. Qt-free; every function returns plain data. Months are grouped in SQL with the
backend's own date formatting (``strftime`` on SQLite, ``to_char`` on PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from gridman.core.enums import OPEN_STATUSES, AreaLevel
from gridman.core.models import Area, Household, Incident, Resident, ResidentTag, Tag, User, WardenAssignment
from gridman.core.services import permissions, scope
from gridman.core.services.mediation import figures as mediation_figures
from gridman.core.services.permissions import Actor, Perm, require

OPEN_CODES = [s.value for s in OPEN_STATUSES]
ELDERLY_AGE = 60


def _month(session: Session, col: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(col, "YYYY-MM")
    return func.strftime("%Y-%m", col)


def _where(session: Session, actor: Actor, grid_col: Any, area_id: int | None) -> ColumnElement[bool]:
    """The rows (by grid column) in the actor's scope and in ``area_id``'s subtree."""
    require(actor, Perm.READ)
    return scope.rows_by_id(session, actor, grid_col, area_id)


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


def _month_keys(end: date, months: int) -> list[str]:
    keys = []
    y, m = end.year, end.month
    for _ in range(months):
        keys.append(f"{y:04d}-{m:02d}")
        m -= 1
        if m == 0:
            y, m = y - 1, 12
    return keys[::-1]


def latest_month(session: Session, actor: Actor, area_id: int | None = None) -> date:
    """The month the figures end at: the latest report in scope (sample data is dated)."""
    last = session.scalar(select(func.max(Incident.reported_at)).where(_where(session, actor, Incident.grid_id, area_id)))
    return (last.date() if isinstance(last, datetime) else last) or date.today()


@dataclass(frozen=True)
class MonthSeries:
    months: list[str]
    series: dict[str, list[float]]  # key (level code, rate name) → one value per month


def incidents_per_month(session: Session, actor: Actor, *, area_id: int | None = None, months: int = 12,
                        end: date | None = None) -> MonthSeries:
    """Incidents reported per month, by the mediation level they are (or were closed) at."""
    end = end or latest_month(session, actor, area_id)
    keys = _month_keys(end, months)
    start = datetime(int(keys[0][:4]), int(keys[0][5:]), 1)
    mon = _month(session, Incident.reported_at)
    q = (select(mon, Incident.level, func.count()).where(_where(session, actor, Incident.grid_id, area_id),
                                                         Incident.reported_at >= start)
         .group_by(mon, Incident.level))
    series: dict[str, list[float]] = {lv: [0.0] * len(keys) for lv in ("grid", "community", "street")}
    idx = {k: i for i, k in enumerate(keys)}
    for m, lv, n in session.execute(q):
        if m in idx:
            series.setdefault(lv, [0.0] * len(keys))[idx[m]] = float(n)
    return MonthSeries(keys, series)


def rates_per_month(session: Session, actor: Actor, *, area_id: int | None = None, months: int = 12,
                    end: date | None = None) -> MonthSeries:
    """Per month of report: closure, on-time and satisfaction rates in percent, as defined once in
    :mod:`gridman.core.services.mediation.figures` (each month its own cohort, as it stood at the
    month's end); 0 when there is nothing to rate, so the series has no gaps."""
    end = end or latest_month(session, actor, area_id)
    keys = _month_keys(end, months)
    figs = mediation_figures.monthly(session, actor, area_id=area_id, months=keys)
    names = {"closure": "closure_rate", "on_time": "on_time_rate", "satisfaction": "satisfaction_rate"}
    out = {k: [100.0 * (getattr(figs[m], attr) or 0.0) for m in keys] for k, attr in names.items()}
    return MonthSeries(keys, out)


def incidents_by_category(session: Session, actor: Actor, *, area_id: int | None = None,
                          open_only: bool = False) -> list[tuple[str, int]]:
    q = (select(Incident.category, func.count()).where(_where(session, actor, Incident.grid_id, area_id))
         .group_by(Incident.category).order_by(func.count().desc()))
    if open_only:
        q = q.where(Incident.status.in_(OPEN_CODES))
    return [(c, int(n)) for c, n in session.execute(q)]


@dataclass(frozen=True)
class Pyramid:
    bands: list[str]  # "0-4", "5-9", … "85+"
    male: list[int]
    female: list[int]


def population_pyramid(session: Session, actor: Actor, *, area_id: int | None = None, today: date | None = None,
                       band: int = 5, top: int = 85) -> Pyramid:
    """Active residents by age band and sex (ages from birth dates, computed as date ranges in SQL)."""
    today = today or date.today()
    edges = list(range(0, top + 1, band))
    whens = []
    for lo in reversed(edges):
        whens.append((Resident.birth_date <= _years_before(today, lo), lo))
    band_expr = case(*whens, else_=-1)
    q = (select(band_expr, Resident.sex, func.count())
         .where(_where(session, actor, Resident.grid_id, area_id), Resident.status == "active",
                Resident.birth_date.isnot(None))
         .group_by(band_expr, Resident.sex))
    male = [0] * len(edges)
    female = [0] * len(edges)
    pos = {lo: i for i, lo in enumerate(edges)}
    for lo, sex, n in session.execute(q):
        if lo in pos:
            (male if sex == "M" else female)[pos[lo]] += int(n)
    bands = [f"{lo}-{lo + band - 1}" for lo in edges[:-1]] + [f"{top}+"]
    return Pyramid(bands, male, female)


def tag_counts(session: Session, actor: Actor, *, area_id: int | None = None) -> list[tuple[str, str, str, int]]:
    """(code, Chinese name, English name, residents) per tag; sensitive tags only for roles allowed."""
    q = (select(Tag.code, Tag.name, Tag.name_en, Tag.sensitive, func.count(ResidentTag.id))
         .join(ResidentTag, ResidentTag.tag_id == Tag.id).join(Resident, Resident.id == ResidentTag.resident_id)
         .where(_where(session, actor, Resident.grid_id, area_id), Resident.status == "active")
         .group_by(Tag.id, Tag.code, Tag.name, Tag.name_en, Tag.sensitive).order_by(Tag.id))
    return [(c, n, e, int(k)) for c, n, e, s, k in session.execute(q) if permissions.sees_tag(actor, s)]


@dataclass(frozen=True)
class Workload:
    user_id: int
    name: str
    grids: int
    households: int
    open_incidents: int


def warden_workload(session: Session, actor: Actor, *, area_id: int | None = None, limit: int = 30,
                    today: date | None = None) -> list[Workload]:
    """Per warden with a current assignment in the area: grids, households and open incidents of
    those grids (busiest first)."""
    today = today or date.today()
    cur = scope.current_assignment(today)
    where = _where(session, actor, WardenAssignment.grid_id, area_id)
    hh = (select(Household.grid_id.label("g"), func.count().label("n")).group_by(Household.grid_id).subquery())
    inc = (select(Incident.grid_id.label("g"), func.count().label("n")).where(Incident.status.in_(OPEN_CODES))
           .group_by(Incident.grid_id).subquery())
    q = (select(User.id, User.display_name, func.count(WardenAssignment.grid_id),
                func.coalesce(func.sum(hh.c.n), 0), func.coalesce(func.sum(inc.c.n), 0))
         .join(WardenAssignment, WardenAssignment.user_id == User.id)
         .outerjoin(hh, hh.c.g == WardenAssignment.grid_id).outerjoin(inc, inc.c.g == WardenAssignment.grid_id)
         .where(cur, where).group_by(User.id, User.display_name)
         .order_by(func.coalesce(func.sum(inc.c.n), 0).desc(), User.id).limit(limit))
    return [Workload(u, n, int(g), int(h), int(i)) for u, n, g, h, i in session.execute(q)]


# --- per-grid figures (tree counts, map colours) ------------------------------------------------


@dataclass(frozen=True)
class GridFigures:
    households: dict[int, int]
    residents: dict[int, int]
    open_incidents: dict[int, int]
    overdue: dict[int, int]
    wardens: dict[int, int]
    elderly: dict[int, int]

    def households_per_warden(self, grid_id: int) -> float:
        w = self.wardens.get(grid_id, 0)
        return self.households.get(grid_id, 0) / w if w else float(self.households.get(grid_id, 0))

    def elderly_share(self, grid_id: int) -> float:
        n = self.residents.get(grid_id, 0)
        return 100.0 * self.elderly.get(grid_id, 0) / n if n else 0.0


FIGURES = ("open_incidents", "overdue", "households_per_warden", "elderly_share")
FIGURE_LABELS = {
    "open_incidents": ("未办结事件", "Open incidents"),
    "overdue": ("超期事件", "Overdue cases"),
    "households_per_warden": ("网格员人均户数", "Households per warden"),
    "elderly_share": ("老年人占比(%)", "Share of elderly (%)"),
}


def grid_figures(session: Session, actor: Actor, *, area_id: int | None = None, now: datetime | None = None,
                 today: date | None = None) -> GridFigures:
    """Counts per grid in scope: households, active residents, open and overdue incidents,
    current wardens and residents aged 60+."""
    now = now or datetime.now()
    today = today or date.today()

    def per_grid(col: Any, *conds: Any) -> dict[int, int]:
        q = select(col, func.count()).where(_where(session, actor, col, area_id), *conds).group_by(col)
        return {int(g): int(n) for g, n in session.execute(q) if g is not None}

    born_before = _years_before(today, ELDERLY_AGE)
    # one scan per table: conditional sums instead of a query per figure
    res: dict[int, tuple[int, int]] = {}
    q = (select(Resident.grid_id, func.count(),
                func.sum(case((Resident.birth_date <= born_before, 1), else_=0)))
         .where(_where(session, actor, Resident.grid_id, area_id), Resident.status == "active")
         .group_by(Resident.grid_id))
    for g, n, old in session.execute(q):
        res[int(g)] = (int(n), int(old or 0))
    inc: dict[int, tuple[int, int]] = {}
    q = (select(Incident.grid_id, func.count(), func.sum(case((Incident.due_at < now, 1), else_=0)))
         .where(_where(session, actor, Incident.grid_id, area_id), Incident.status.in_(OPEN_CODES))
         .group_by(Incident.grid_id))
    for g, n, over in session.execute(q):
        inc[int(g)] = (int(n), int(over or 0))
    return GridFigures(
        households=per_grid(Household.grid_id),
        residents={g: v[0] for g, v in res.items()},
        open_incidents={g: v[0] for g, v in inc.items()},
        overdue={g: v[1] for g, v in inc.items() if v[1]},
        wardens=per_grid(WardenAssignment.grid_id, scope.current_assignment(today)),
        elderly={g: v[1] for g, v in res.items() if v[1]},
    )


def figure_value(fig: GridFigures, name: str, grid_id: int) -> float:
    if name == "households_per_warden":
        return fig.households_per_warden(grid_id)
    if name == "elderly_share":
        return fig.elderly_share(grid_id)
    return float(getattr(fig, name).get(grid_id, 0))


@dataclass(frozen=True)
class MapGrid:
    id: int
    name: str
    path: str
    boundary: bytes | None
    center: tuple[float, float] | None


def map_grids(session: Session, actor: Actor, *, area_id: int | None = None) -> list[MapGrid]:
    """The grids (with WKB boundaries) in scope under ``area_id``."""
    q = (select(Area.id, Area.name, Area.path, Area.boundary, Area.center_lon, Area.center_lat)
         .where(Area.level == AreaLevel.GRID, _where(session, actor, Area.id, area_id)).order_by(Area.code))
    return [MapGrid(i, n, p, b, (lo, la) if lo is not None and la is not None else None)
            for i, n, p, b, lo, la in session.execute(q)]


def map_points(session: Session, actor: Actor, *, area_id: int | None = None,
               limit: int = 50_000) -> dict[str, list[tuple[int, float, float]]]:
    """Buildings and open incidents with coordinates: kind → [(id, lon, lat)]."""
    from gridman.core.models import Building

    b = session.execute(select(Building.id, Building.lon, Building.lat)
                        .where(_where(session, actor, Building.grid_id, area_id), Building.lon.isnot(None))
                        .limit(limit)).all()
    lon = func.coalesce(Incident.lon, Building.lon)
    lat = func.coalesce(Incident.lat, Building.lat)
    i = session.execute(select(Incident.id, lon, lat).outerjoin(Building, Building.id == Incident.building_id)
                        .where(_where(session, actor, Incident.grid_id, area_id), lon.isnot(None),
                               Incident.status.in_(OPEN_CODES)).limit(limit)).all()
    return {"buildings": [(a, x, y) for a, x, y in b if x is not None and y is not None],
            "incidents": [(a, x, y) for a, x, y in i if x is not None and y is not None]}


def since(days: int, *, today: date | None = None) -> date:
    return (today or date.today()) - timedelta(days=days)

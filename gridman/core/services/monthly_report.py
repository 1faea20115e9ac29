"""The monthly report (月报) of an area: an .xlsx with population, incidents and the mediation
figures per community and grid, with charts.

The mediation figures are :mod:`gridman.core.services.mediation.figures`' (counted once per grid,
summed per community and for the area, so the area's row is exactly what ``stats mediation`` gives
for the month); this module only lays them out. Small workbook: openpyxl (charts).

A long job: it takes a :class:`gridman.core.tasks.TaskState`, reports progress between stages and
checks for cancellation before the file is written, so a cancelled report writes nothing (no file,
no audit entry); a save that fails leaves no broken workbook and keeps an older file of that name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridman.core import tasks
from gridman.core.enums import AreaLevel, IncidentCategory, IncidentStatus, MediationLevel, PopulationType
from gridman.core.models import Area, Incident, Resident, ResidentTag, Tag
from gridman.core.services import audit, cleaning, permissions, scope
from gridman.core.services.areas import by_code
from gridman.core.services.errors import ValidationError
from gridman.core.services.mediation import figures as mf
from gridman.core.services.permissions import Actor, Perm, require
from gridman.core.tasks import TaskState
from gridman.core.xlsxstream import save_workbook

# the areas a monthly report may be made for (a grid's figures are rows of its community's report)
REPORT_LEVELS = (AreaLevel.DISTRICT.value, AreaLevel.STREET.value, AreaLevel.COMMUNITY.value)

@dataclass
class MonthlyReport:
    area_code: str
    month: str
    path: str
    population: int
    incidents: int
    closed: int


def month_period(month: str) -> mf.Period:
    """The period of ``"YYYY-MM"`` (a user-facing error otherwise)."""
    try:
        y, m = (int(x) for x in month.split("-"))
        return mf.Period.month(y, m)
    except (ValueError, TypeError):
        raise ValidationError(f"月份“{month}”格式应为 YYYY-MM", field="month", en=f"Month {month!r} must be YYYY-MM") from None


@dataclass
class _Data:
    """What the sheets show, gathered in SQL."""

    area: Area
    month: str
    grids: list[Any]  # rows: id, code, name, parent_id
    comms: dict[int, Any]  # id → row: id, code, name
    pop: dict[tuple[int, str], int] = field(default_factory=dict)  # (grid, population type) → residents
    tags: dict[tuple[int, str], int] = field(default_factory=dict)  # (grid, tag name) → residents
    tag_names: list[str] = field(default_factory=list)
    show_sensitive: bool = False
    by_state: dict[str, dict[str, int]] = field(default_factory=dict)  # category/level/status → value → cases
    med: dict[int, mf.Counts] = field(default_factory=dict)  # grid → mediation counts

    def grid_ids(self, community_id: int | None = None) -> list[int]:
        return [g.id for g in self.grids if community_id is None or g.parent_id == community_id]

    def med_total(self, grid_ids: list[int]) -> mf.Counts:
        return mf.total(self.med[g] for g in grid_ids if g in self.med)


def _gather(session: Session, actor: Actor, area: Area, month: str, period: mf.Period, task: TaskState) -> _Data:
    grids = session.execute(select(Area.id, Area.code, Area.name, Area.parent_id)
                            .where(Area.id.in_(scope.visible_grid_ids(actor, area))).order_by(Area.code)).all()
    comms = {c.id: c for c in session.execute(select(Area.id, Area.code, Area.name).where(
        Area.id.in_({g.parent_id for g in grids})).order_by(Area.code))}
    d = _Data(area, month, list(grids), comms, show_sensitive=permissions.sees_tag(actor, True))
    r = Resident.__table__
    in_scope = scope.rows(actor, r.c.grid_id, area)
    for gid, pt, n in session.execute(select(r.c.grid_id, r.c.population_type, func.count())
                                      .where(in_scope, r.c.status == "active")
                                      .group_by(r.c.grid_id, r.c.population_type)):
        d.pop[(gid, pt)] = n
    task.progress(0.2, "人口")
    rt, t = ResidentTag.__table__, Tag.__table__
    tq = (select(r.c.grid_id, t.c.name, t.c.sensitive, func.count()).select_from(rt)
          .join(r, r.c.id == rt.c.resident_id).join(t, t.c.id == rt.c.tag_id)
          .where(in_scope, r.c.status == "active").group_by(r.c.grid_id, t.c.name, t.c.sensitive))
    for gid, name, sens, n in session.execute(tq):
        if sens and not d.show_sensitive:
            continue
        d.tags[(gid, name)] = n
        if name not in d.tag_names:
            d.tag_names.append(name)
    task.progress(0.4, "标签")
    i = Incident
    cohort = [*mf.cohort(actor, area, period), i.status != IncidentStatus.MERGED.value]
    for key, col in (("category", i.category), ("level", i.level), ("status", i.status)):
        d.by_state[key] = {v: n for v, n in session.execute(select(col, func.count()).where(*cohort).group_by(col))}
    task.progress(0.6, "事件")
    d.med = mf.figures_by(session, actor, area_id=area.id, period=period, by=i.grid_id)
    task.progress(0.8, "调处")
    return d


def _header(ws: Any, row: list[str]) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    ws.append(row)
    for c in ws[ws.max_row]:
        c.font, c.fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
        c.alignment = Alignment(horizontal="center", wrap_text=True)


def _title(ws: Any, text: str) -> None:
    from openpyxl.styles import Font

    ws.append([text])
    ws["A1"].font = Font(bold=True, size=14)


def _population_sheet(ws: Any, d: _Data) -> int:
    from openpyxl.chart import BarChart, Reference

    ws.title = "人口"
    _title(ws, f"{d.area.name} {d.month} 月报 — 实有人口（在住）")
    pts = list(PopulationType)
    labels = [cleaning.enum_label(p) for p in pts]
    _header(ws, ["社区", "网格编码", "网格", *labels, "合计", *d.tag_names])
    for g in d.grids:
        vals = [d.pop.get((g.id, p.value), 0) for p in pts]
        ws.append([d.comms[g.parent_id].name if g.parent_id in d.comms else "", g.code, g.name, *vals, sum(vals),
                   *[d.tags.get((g.id, tn), 0) for tn in d.tag_names]])
    ws.append([])
    _header(ws, ["社区", "", "", *labels, "合计", *d.tag_names])
    c_first = ws.max_row + 1
    for cid, c in d.comms.items():
        gids = d.grid_ids(cid)
        vals = [sum(d.pop.get((gid, p.value), 0) for gid in gids) for p in pts]
        ws.append([c.name, "", "", *vals, sum(vals), *[sum(d.tags.get((gid, tn), 0) for gid in gids)
                                                       for tn in d.tag_names]])
    c_last = ws.max_row
    total_pop = sum(d.pop.values())
    ws.append(["合计", "", "", *[sum(v for (_g, p), v in d.pop.items() if p == pt.value) for pt in pts], total_pop,
               *[sum(v for (_g, tn2), v in d.tags.items() if tn2 == tn) for tn in d.tag_names]])
    ws.freeze_panes = "D3"
    for col, w in (("A", 14), ("B", 18), ("C", 10)):
        ws.column_dimensions[col].width = w
    if c_last >= c_first:
        ch = BarChart()
        ch.type, ch.grouping, ch.overlap = "col", "stacked", 100
        ch.title = "各社区人口类型"
        ch.add_data(Reference(ws, min_col=4, max_col=3 + len(pts), min_row=c_first - 1, max_row=c_last),
                    titles_from_data=True)
        ch.set_categories(Reference(ws, min_col=1, min_row=c_first, max_row=c_last))
        ch.width, ch.height = 18, 9
        ws.add_chart(ch, f"A{ws.max_row + 3}")
    return total_pop


def _incidents_sheet(ws: Any, d: _Data) -> None:
    from openpyxl.chart import PieChart, Reference

    _title(ws, f"{d.area.name} {d.month} 事件（本月上报）")
    blocks = [("类别", "category", IncidentCategory), ("当前层级", "level", MediationLevel),
              ("当前状态", "status", IncidentStatus)]
    pie_at = None
    for title, key, enum in blocks:
        ws.append([])
        _header(ws, [title, "件数"])
        b_first = ws.max_row + 1
        for m in enum:
            if m != IncidentStatus.MERGED:
                ws.append([cleaning.enum_label(m), d.by_state[key].get(m.value, 0)])
        if key == "category":
            pie_at = (b_first, ws.max_row)
    if pie_at:
        pc = PieChart()
        pc.title = "事件类别"
        pc.add_data(Reference(ws, min_col=2, min_row=pie_at[0] - 1, max_row=pie_at[1]), titles_from_data=True)
        pc.set_categories(Reference(ws, min_col=1, min_row=pie_at[0], max_row=pie_at[1]))
        ws.add_chart(pc, "D3")
    ws.column_dimensions["A"].width = 18


RATE_COLS = ("closure_rate", "on_time_rate", "satisfaction_rate", "grid_share")
MEDIATION_COLS = ["单位", "编码", "受理", "已结案", *(mf.LABELS[k][0] for k in RATE_COLS), "调解成功", "调解不成", "分流"]


def _mediation_row(c: mf.Counts) -> list[Any]:
    """One row of the 调处 sheet: the counts and the rates of :mod:`mediation.figures` (rounded)."""
    f = mf.of_counts(c)
    r = [getattr(f, k) for k in RATE_COLS]
    return [f.reported, f.closed, *(None if x is None else round(x, 4) for x in r), f.resolved, f.failed, f.referred]


def _mediation_sheet(ws: Any, d: _Data) -> mf.Counts:
    from openpyxl.chart import BarChart, Reference

    _title(ws, f"{d.area.name} {d.month} 矛盾纠纷调处（本月上报的事件，截至月末）")
    _header(ws, MEDIATION_COLS)
    for cid, c in d.comms.items():
        ws.append([c.name, c.code, *_mediation_row(d.med_total(d.grid_ids(cid)))])
    whole = d.med_total(d.grid_ids())
    ws.append(["合计", d.area.code, *_mediation_row(whole)])
    c_rows = (3, ws.max_row - 1)
    ws.append([])
    _header(ws, ["网格", "编码", *MEDIATION_COLS[2:]])
    for g in d.grids:
        ws.append([g.name, g.code, *_mediation_row(d.med_total([g.id]))])
    for row in ws.iter_rows(min_row=2):
        for cell in row[4:8]:
            if isinstance(cell.value, float):
                cell.number_format = "0.0%"
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 18
    if c_rows[1] >= c_rows[0]:
        bc = BarChart()
        bc.title = "各社区受理与结案"
        bc.add_data(Reference(ws, min_col=3, max_col=4, min_row=2, max_row=c_rows[1]), titles_from_data=True)
        bc.set_categories(Reference(ws, min_col=1, min_row=c_rows[0], max_row=c_rows[1]))
        bc.width, bc.height = 18, 9
        ws.add_chart(bc, "M2")
    return whole


def _notes_sheet(ws: Any, d: _Data, actor: Actor) -> None:
    rules = mf.RULES
    lines = [("区划", f"{d.area.name}（{d.area.code}）"), ("月份", d.month),
             ("口径", "人口为统计时在住人员；" + rules["cohort"][0]),
             *((mf.LABELS[k][0], rules[k][0]) for k in (*RATE_COLS, "mediation_success_rate")),
             ("分流", rules["referred"][0]),
             ("敏感标签", "已显示" if d.show_sensitive else "按权限未显示重点人群标签"),
             ("生成", f"{datetime.now():%Y-%m-%d %H:%M} {actor.display_name}")]
    for line in lines:
        ws.append(list(line))
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 80


def monthly_report(session: Session, actor: Actor, *, area_code: str | None, month: str, out: str | Path,
                   task: TaskState | None = None) -> MonthlyReport:
    """Write the monthly report of ``area_code`` (default: the actor's area) for ``month``
    (``YYYY-MM``) to ``out``: sheets 人口, 事件, 调处 (the mediation figures of the month's
    cohort as it stood at the month's end) and 说明 (the rules, from :data:`mediation_figures.RULES`)."""
    from openpyxl import Workbook

    task = tasks.ensure(task)
    if area_code:
        area = by_code(session, area_code)
    elif actor.area_id is not None:
        area = session.get(Area, actor.area_id)  # type: ignore[assignment]
    else:
        raise ValidationError("请指定区划", field="area", en="An area is required")
    require(actor, Perm.EXPORT, area)
    period = month_period(month)
    task.progress(0.0, "统计")
    d = _gather(session, actor, area, month, period, task.sub(0.0, 0.8))
    wb = Workbook()
    total_pop = _population_sheet(wb.active, d)
    _incidents_sheet(wb.create_sheet("事件"), d)
    whole = _mediation_sheet(wb.create_sheet("调处"), d)
    _notes_sheet(wb.create_sheet("说明"), d, actor)
    task.progress(0.9, "写入文件")  # the last chance to cancel: nothing is written before this
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_workbook(wb, out, session)  # formula-like text stays text; a failed save leaves no broken workbook
    audit.record(session, actor, "export", table="monthly_report", note=f"月报 {area.code} {month} → {out.name}")
    task.progress(1.0, "完成")
    return MonthlyReport(area.code, month, str(out), total_pop, whole.reported, whole.closed)

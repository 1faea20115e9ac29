"""``gridman incidents …``: report, show, act on cases, the queue, the overdue sweep, time limits.

Every sub-command calls the same services as the GUI (:mod:`gridman.core.services.mediation`,
:mod:`~gridman.core.services.mediation.queue`, :mod:`~gridman.core.services.time_limits`) and
prints one JSON object with ``--json``. ``act`` without ``--version`` acts on the current version
(a one-shot command has nothing older to protect); with ``--version`` a case changed meanwhile is
refused (exit 2). ``act ACTION ID ID …`` acts on several cases (``mediation.act_many``: each in
a savepoint, the refused ones listed with the reason). Its options and which are required come
from the actions' declaration (``mediation.action_spec``), not from a list kept here.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.orm import Session

from gridman.cli import args
from gridman.cli.common import Context, add_json
from gridman.core.enums import IncidentStatus, MediationLevel, label
from gridman.core.services import mediation as med
from gridman.core.services import time_limits as tl
from gridman.core.services.areas import by_code
from gridman.core.services.errors import ValidationError
from gridman.core.services.mediation import queue as mq

ACTION_NAMES = [a.value.replace("_", "-") for a in med.CASE_ACTIONS]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("incidents", help="三级调处：上报、办理、待办队列、超期上报、时限")
    isub = p.add_subparsers(dest="incidents_command", metavar="SUBCOMMAND", required=True)

    r = add_json(isub.add_parser("report", help="上报事件"))
    r.add_argument("--grid", required=True, help="网格编码")
    r.add_argument("--category", required=True, help="dispute/hazard/request/public_order/environment/other 或中文")
    r.add_argument("--title", required=True)
    r.add_argument("--description")
    r.add_argument("--subcategory", help="纠纷类型 (family/neighbour/property_mgmt/labour/land/medical/traffic)")
    r.add_argument("--priority", default="normal", help="low/normal/high/urgent")
    r.add_argument("--party", action="append", default=[], metavar="NAME", help="当事人姓名（可多次）")
    r.add_argument("--resident", action="append", type=args.row_id, default=[], metavar="ID", help="登记人员 id（可多次）")
    r.add_argument("--building", type=args.row_id, help="建筑 id")
    r.add_argument("--point", nargs=2, type=args.number(-180, 180), metavar=("LON", "LAT"))
    r.add_argument("--location", help="地点描述")
    r.add_argument("--attach", action="append", type=args.input_file, default=[], metavar="FILE", help="附件（可多次）")
    r.add_argument("--now", type=args.iso_datetime, help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_report)

    s = add_json(isub.add_parser("show", help="查看事件及其办理过程"))
    s.add_argument("id", type=args.row_id)
    s.set_defaults(func=cmd_show)

    a = add_json(isub.add_parser("act", help="办理事件（可一次办理多件）：" + " ".join(ACTION_NAMES)))
    a.add_argument("first", metavar="ACTION", help="操作：" + " | ".join(ACTION_NAMES) + "（也可写作 ID ACTION）")
    a.add_argument("rest", nargs="+", metavar="ID", help="一个或多个事件 id（多件时逐件办理，不能办理的列出原因）")
    for flag, inputs in _options().items():
        _add_option(a, flag, inputs)
    a.add_argument("--version", type=args.count(0), help="办理时看到的版本号（冲突检测，仅限一件）")
    a.add_argument("--now", type=args.iso_datetime, help=argparse.SUPPRESS)
    a.set_defaults(func=cmd_act)

    q = add_json(isub.add_parser("queue", help="待办队列：超期优先，按时限排序"))
    q.add_argument("--area", help="区划编码（默认：本人负责范围）")
    q.add_argument("--level", choices=list(med.LEVELS))
    q.add_argument("--status", choices=list(med.ACTIVE_STATUSES))
    q.add_argument("--category")
    q.add_argument("--overdue", action="store_true", help="只看超期")
    q.add_argument("--handler", help="承办人用户名")
    q.add_argument("--text", type=args.search_text, help="标题/描述中的文字")
    q.add_argument("--limit", type=args.count(1, 100_000), default=50)
    q.add_argument("--offset", type=args.count(0), default=0)
    q.add_argument("--now", type=args.iso_datetime, help="以此时间判断超期 (ISO)")
    q.set_defaults(func=cmd_queue)

    e = add_json(isub.add_parser("escalate-overdue", help="超期事件自动上报一级（可定时运行，重复运行无副作用）"))
    e.add_argument("--now", type=args.iso_datetime, help="以此时间为准 (ISO)，用于测试和补跑")
    e.set_defaults(func=cmd_escalate_overdue)

    pol = add_json(isub.add_parser("policy", help="查看或设置办理时限"))
    pol.add_argument("--set", nargs=2, metavar=("LEVEL", "DAYS"), help="grid/community/street/case 天数")
    pol.add_argument("--working-days", action="store_true", help="按工作日计算（跳过周末和节假日）")
    pol.add_argument("--category", help="只对此类别生效（默认：该层级的默认时限）")
    pol.set_defaults(func=cmd_policy)


def cmd_report(ctx: Context) -> int:
    a = ctx.args
    parties = [med.PartyInput(name=n) for n in a.party] + [med.PartyInput(resident_id=i) for i in a.resident]
    lon, lat = a.point if a.point else (None, None)
    with ctx.db.work(ctx.actor) as s:
        grid = by_code(s, a.grid)
        res = med.report(s, ctx.actor, grid_id=grid.id, category=a.category, title=a.title,
                         description=a.description, subcategory=a.subcategory, priority=a.priority, parties=parties,
                         building_id=a.building, lon=lon, lat=lat, location_text=a.location,
                         attachments=med.file_inputs(a.attach), now=a.now, source="cli")
    ctx.out(res, lambda: f"已上报事件 #{res.incident_id}（{label(res.level, enum=MediationLevel)}层级，"
                         f"办理时限 {res.due_at:%Y-%m-%d %H:%M}）")
    return 0


def _show_text(v: med.IncidentView) -> str:
    lines = [f"#{v.id} {v.title}  [{v.category_label}] {v.level_label} · {v.status_label}"
             + ("  【超期】" if v.overdue else ""),
             f"网格：{v.grid_name}  上报：{v.reported_at:%Y-%m-%d %H:%M}  "
             f"时限：{v.due_at:%Y-%m-%d %H:%M}" if v.due_at else f"网格：{v.grid_name}  上报：{v.reported_at:%Y-%m-%d %H:%M}"]
    if v.description:
        lines.append(v.description)
    if v.parties:
        lines.append("当事人：" + "、".join(f"{p.name}（{p.role}）" for p in v.parties))
    if v.merged_ids:
        lines.append("已合并的重复事件：" + "、".join(f"#{i}" for i in v.merged_ids))
    lines.append(f"版本 {v.version}；办理过程：")
    for st in v.steps:
        who = st.actor_name or ""
        case = f"[#{st.incident_id}] " if st.incident_id != v.id else ""
        lines.append(f"  {st.at:%Y-%m-%d %H:%M} {case}{st.action_label} {who} "
                     f"{st.from_level or ''}→{st.to_level or ''} {st.note or ''}".rstrip())
    return "\n".join(lines)


def cmd_show(ctx: Context) -> int:
    with ctx.db.session() as s:
        v = med.show(s, ctx.actor, ctx.args.id)
    ctx.out(v, lambda: _show_text(v))
    return 0


def _options() -> dict[str, list[tuple[str, med.Input]]]:
    """Each option of ``act`` with the (action, input) pairs it fills, from the one declaration."""
    out: dict[str, list[tuple[str, med.Input]]] = {}
    for action in med.CASE_ACTIONS:
        for inp in med.action_spec(action).inputs:
            out.setdefault(inp.cli, []).append((action.value.replace("_", "-"), inp))
    return out


def _add_option(p: argparse.ArgumentParser, flag: str, inputs: list[tuple[str, med.Input]]) -> None:
    kinds = {i.kind for _a, i in inputs}
    helps: dict[str, list[str]] = {}
    for action, inp in inputs:
        text = inp.zh + ("（用户名）" if inp.kind == med.Kind.USER else "")
        if inp.choices():
            text += "：" + "/".join(c.value for c in inp.choices())
        helps.setdefault(text, []).append(action)
    help_text = "；".join(f"{'/'.join(acts)}: {text}" for text, acts in helps.items())
    kw: dict[str, Any] = {"help": help_text, "metavar": "VALUE"}
    if kinds == {med.Kind.FILES}:
        kw.update(action="append", type=args.input_file, default=[], metavar="FILE")
    elif kinds == {med.Kind.CASE}:
        kw.update(type=args.row_id, metavar="ID")
    elif kinds == {med.Kind.FLAG}:
        kw.update(choices=["yes", "no"], metavar="yes|no")
    p.add_argument(flag, dest="opt_" + flag.lstrip("-").replace("-", "_"), **kw)


def _action_and_ids(words: list[str]) -> tuple[str, list[int]]:
    names = [w for w in words if not w.isdigit()]
    if len(names) != 1:
        raise ValidationError("请给出一个操作和一个或多个事件 id，如：act accept 12 13", field="action",
                              en="Give one action and one or more case ids, e.g. act accept 12 13")
    ids = args.checked(args.ids, [w for w in words if w.isdigit()], field="id")
    if not ids:
        raise ValidationError("请给出事件 id", field="id", en="Give the case id(s)")
    return med.action_spec(names[0]).action.value, ids


def _inputs(ctx: Context, s: Session, action: str) -> dict[str, object]:
    """The action's inputs from the command line, as its declaration describes them."""
    kw: dict[str, object] = {}
    for inp in med.action_spec(action).inputs:
        raw = getattr(ctx.args, "opt_" + inp.cli.lstrip("-").replace("-", "_"))
        if raw is None or raw == []:
            if inp.needed() and inp.default is None:
                raise ValidationError(f"请用 {inp.cli} 指定{inp.zh}", field=inp.key, en=f"Give {inp.cli} ({inp.en})")
            continue
        if inp.kind == med.Kind.USER:
            raw = med.user_id(s, raw)
        elif inp.kind == med.Kind.FLAG:
            raw = raw == "yes"
        elif inp.kind == med.Kind.FILES:
            raw = med.file_inputs(raw)
        kw[inp.key] = raw
    return kw


def _bulk_text(res: med.BulkResult) -> str:
    lines = [f"{med.action_label(res.action)}：完成 {len(res.done)} 件"
             + (f"（{'、'.join(f'#{i}' for i in res.done)}）" if res.done else "")]
    if res.skipped:
        lines.append(f"跳过 {len(res.skipped)} 件：")
        lines += [f"  #{sk.incident_id}：{sk.reason}" for sk in res.skipped]
    return "\n".join(lines)


def cmd_act(ctx: Context) -> int:
    """One case: the result or the refusal (exit 2). Several: each in a savepoint; the done and
    the skipped cases with the reason each was refused (exit 1 if any was skipped)."""
    a = ctx.args
    action, ids = _action_and_ids([a.first, *a.rest])
    if a.version is not None and len(ids) > 1:
        raise ValidationError("--version 只能用于一件事件", field="version", en="--version applies to one case only")
    now = a.now
    with ctx.db.work(ctx.actor) as s:
        kw = _inputs(ctx, s, action)
        if len(ids) == 1:
            res = med.act(s, ctx.actor, ids[0], action, expected_version=a.version, now=now, **kw)
        else:
            bulk = med.act_many(s, ctx.actor, action, ids, now=now, **kw)
    if len(ids) > 1:
        ctx.out(bulk, lambda: _bulk_text(bulk))
        return 1 if bulk.skipped else 0
    ctx.out(res, lambda: f"事件 #{res.incident_id}：{med.action_label(res.action)}完成，现为"
                         f"{label(res.level, enum=MediationLevel)}层级“{label(res.status, enum=IncidentStatus)}”"
                         f"（版本 {res.version}）")
    return 0


def cmd_queue(ctx: Context) -> int:
    a = ctx.args
    with ctx.db.session() as s:
        area_id = by_code(s, a.area).id if a.area else None
        handler = med.user_id(s, a.handler) if a.handler else None
        res = mq.queue(s, ctx.actor, area_id, level=a.level, status=a.status, category=a.category,
                       overdue=True if a.overdue else None, handler=handler, text=a.text, limit=a.limit,
                       offset=a.offset, now=a.now)

    def human() -> str:
        head = "  ".join(f"{label(k, enum=IncidentStatus)} {v}" for k, v in (res.counts or {}).items())
        lines = [f"共 {res.total} 件（{head}）"]
        for r in res.rows:
            flag = "【超期】" if r.overdue else ""
            lines.append(f"#{r.id:<7} {flag}{r.due_at:%m-%d %H:%M} {label(r.level, enum=MediationLevel)} "
                         f"{r.status_label} {r.grid_name} {r.title}")
        return "\n".join(lines)

    ctx.out(res, human)
    return 0


def cmd_escalate_overdue(ctx: Context) -> int:
    with ctx.db.work(ctx.actor, note="escalate-overdue") as s:
        res = med.escalate_overdue(s, ctx.actor, now=ctx.args.now)
    ctx.out(res, lambda: f"超期上报 {res.escalated} 件，街道层级超期标记 {res.flagged} 件（时间 {res.now:%Y-%m-%d %H:%M}）")
    return 0


def cmd_policy(ctx: Context) -> int:
    a = ctx.args
    if a.set:
        level, days_s = a.set
        days = args.checked(args.count(0, 3650), days_s, field="days")
        with ctx.db.work(ctx.actor) as s:
            tl.set_policy(s, ctx.actor, level=level, days=days, working_days=a.working_days, category=a.category)
    with ctx.db.session() as s:
        rows = tl.list_policies(s)
        verify_by = med.verify_by_setting(s)
    out = {"policies": rows, "verify_by": verify_by}
    ctx.out(out, lambda: "\n".join(
        f"{r.level:<10} {r.category or '（默认）':<12} {r.days} {'个工作日' if r.working_days else '天'}" for r in rows))
    return 0

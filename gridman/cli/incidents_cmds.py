"""``gridman incidents …``: report, show, act on cases, the queue, the overdue sweep, time limits.

Every sub-command calls the same services as the GUI (:mod:`gridman.core.services.mediation`,
:mod:`~gridman.core.services.mediation_queue`, :mod:`~gridman.core.services.time_limits`) and
prints one JSON object with ``--json``. ``act`` without ``--version`` acts on the version it reads
just before (a one-shot command has nothing older to protect); with ``--version`` a case changed
meanwhile is refused (exit 2).
"""

from __future__ import annotations

import argparse
from datetime import datetime

from gridman.cli.common import Context, add_json
from gridman.core.enums import IncidentStatus, MediationLevel, ReferralTarget, label
from gridman.core.models import Incident
from gridman.core.services import mediation as med
from gridman.core.services import mediation_queue as mq
from gridman.core.services import time_limits as tl
from gridman.core.services.areas import by_code
from gridman.core.services.errors import NotFound, ValidationError

ACTION_NAMES = [a.replace("_", "-") for a in med.ACTIONS]


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
    r.add_argument("--resident", action="append", type=int, default=[], metavar="ID", help="登记人员 id（可多次）")
    r.add_argument("--building", type=int, help="建筑 id")
    r.add_argument("--point", nargs=2, type=float, metavar=("LON", "LAT"))
    r.add_argument("--location", help="地点描述")
    r.add_argument("--attach", action="append", default=[], metavar="FILE", help="附件（可多次）")
    r.add_argument("--now", help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_report)

    s = add_json(isub.add_parser("show", help="查看事件及其办理过程"))
    s.add_argument("id", type=int)
    s.set_defaults(func=cmd_show)

    a = add_json(isub.add_parser("act", help="办理事件：" + " ".join(ACTION_NAMES)))
    a.add_argument("id", type=int)
    a.add_argument("action", choices=ACTION_NAMES, metavar="ACTION", help=" | ".join(ACTION_NAMES))
    a.add_argument("--note", help="办理情况 / 理由 / 交办意见 / 分流结果")
    a.add_argument("--to", help="escalate/hand-down: 目标层级；refer: 调委会或部门；assign: 办理人用户名")
    a.add_argument("--agreement", help="调解协议内容 (resolve)")
    a.add_argument("--terms", help="协议条款 (resolve)")
    a.add_argument("--satisfaction", help="满意/基本满意/不满意 (evaluate)")
    a.add_argument("--into", type=int, help="合并到的事件 id (merge)")
    a.add_argument("--kind", default="note", help="note/visit/session (handle)")
    a.add_argument("--settled", choices=["yes", "no"], help="分流是否化解 (referral-outcome)")
    a.add_argument("--attach", action="append", default=[], metavar="FILE", help="附件 (attach)")
    a.add_argument("--version", type=int, help="办理时看到的版本号（冲突检测）")
    a.add_argument("--now", help=argparse.SUPPRESS)
    a.set_defaults(func=cmd_act)

    q = add_json(isub.add_parser("queue", help="待办队列：超期优先，按时限排序"))
    q.add_argument("--area", help="区划编码（默认：本人负责范围）")
    q.add_argument("--level", choices=list(med.LEVELS))
    q.add_argument("--status", choices=list(med.ACTIVE_STATUSES))
    q.add_argument("--category")
    q.add_argument("--overdue", action="store_true", help="只看超期")
    q.add_argument("--handler", help="承办人用户名")
    q.add_argument("--text", help="标题/描述中的文字")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--offset", type=int, default=0)
    q.add_argument("--now", help="以此时间判断超期 (ISO)")
    q.set_defaults(func=cmd_queue)

    e = add_json(isub.add_parser("escalate-overdue", help="超期事件自动上报一级（可定时运行，重复运行无副作用）"))
    e.add_argument("--now", help="以此时间为准 (ISO)，用于测试和补跑")
    e.set_defaults(func=cmd_escalate_overdue)

    pol = add_json(isub.add_parser("policy", help="查看或设置办理时限"))
    pol.add_argument("--set", nargs=2, metavar=("LEVEL", "DAYS"), help="grid/community/street/case 天数")
    pol.add_argument("--working-days", action="store_true", help="按工作日计算（跳过周末和节假日）")
    pol.add_argument("--category", help="只对此类别生效（默认：该层级的默认时限）")
    pol.set_defaults(func=cmd_policy)


def _now(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"时间 {value!r} 不是 ISO 格式（如 2026-11-01T09:00）", field="now",
                              en=f"{value!r} is not an ISO date-time") from None


def cmd_report(ctx: Context) -> int:
    a = ctx.args
    parties = [med.PartyInput(name=n) for n in a.party] + [med.PartyInput(resident_id=i) for i in a.resident]
    lon, lat = a.point if a.point else (None, None)
    with ctx.db.work(ctx.actor) as s:
        grid = by_code(s, a.grid)
        res = med.report(s, ctx.actor, grid_id=grid.id, category=a.category, title=a.title,
                         description=a.description, subcategory=a.subcategory, priority=a.priority, parties=parties,
                         building_id=a.building, lon=lon, lat=lat, location_text=a.location,
                         attachments=med.file_inputs(a.attach), now=_now(a.now), source="cli")
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


def cmd_act(ctx: Context) -> int:
    a = ctx.args
    action = a.action.replace("-", "_")
    now = _now(a.now)
    with ctx.db.work(ctx.actor) as s:
        inc = s.get(Incident, a.id)
        if inc is None:
            raise NotFound(f"事件 #{a.id} 不存在", en=f"No incident #{a.id}")
        version = a.version if a.version is not None else inc.version
        kw: dict[str, object] = {"now": now}
        if action in ("handle", "fail", "escalate", "hand_down", "verify_fail", "reopen"):
            kw["note"] = a.note
        elif action in ("accept", "resolve", "refer", "verify", "evaluate", "merge", "attach"):
            if a.note:
                kw["note"] = a.note
        if action == "handle":
            kw["kind"] = a.kind
        if action in ("escalate", "hand_down") and a.to:
            want = med.level_above(inc.level) if action == "escalate" else med.level_below(inc.level)
            if a.to != want:
                raise ValidationError(
                    f"事件 #{inc.id} 在{label(inc.level, enum=MediationLevel)}层级，只能"
                    f"{'上报' if action == 'escalate' else '交办'}到相邻一级（{want or '无'}），不能到 {a.to}",
                    field="to", en=f"Case #{inc.id} can only move one level ({want}), not to {a.to}")
        if action == "assign":
            if not a.to:
                raise ValidationError("请用 --to 指定办理人的用户名", field="to", en="Give --to USERNAME")
            from sqlalchemy import select

            from gridman.core.models import User

            uid = s.scalar(select(User.id).where(User.username == a.to))
            if uid is None:
                raise NotFound(f"用户 {a.to} 不存在", en=f"No user {a.to}")
            kw["handler_id"] = uid
        if action == "refer":
            if not a.to:
                raise ValidationError("请用 --to 指定分流去向：" + "、".join(t.value for t in ReferralTarget),
                                      field="to", en="Give --to COMMITTEE")
            kw["target"] = a.to
        if action == "resolve":
            kw["agreement_text"] = a.agreement
            kw["agreement_terms"] = a.terms
        if action == "evaluate":
            kw["satisfaction"] = a.satisfaction
        if action == "merge":
            if a.into is None:
                raise ValidationError("请用 --into 指定要合并到的事件", field="into", en="Give --into ID")
            kw["into_id"] = a.into
        if action == "referral_outcome":
            if a.settled is None:
                raise ValidationError("请用 --settled yes|no 说明分流是否化解", field="settled", en="Give --settled yes|no")
            kw["outcome"] = a.note
            kw["settled"] = a.settled == "yes"
        if action == "attach":
            kw["files"] = med.file_inputs(a.attach)
        res = med.act(s, ctx.actor, a.id, action, expected_version=version, **kw)
    ctx.out(res, lambda: f"事件 #{res.incident_id}：{med._lbl(res.action)}完成，现为"
                         f"{label(res.level, enum=MediationLevel)}层级“{label(res.status, enum=IncidentStatus)}”"
                         f"（版本 {res.version}）")
    return 0


def cmd_queue(ctx: Context) -> int:
    from sqlalchemy import select

    from gridman.core.models import User

    a = ctx.args
    with ctx.db.session() as s:
        area_id = by_code(s, a.area).id if a.area else None
        handler = None
        if a.handler:
            handler = s.scalar(select(User.id).where(User.username == a.handler))
            if handler is None:
                raise NotFound(f"用户 {a.handler} 不存在", en=f"No user {a.handler}")
        res = mq.queue(s, ctx.actor, area_id, level=a.level, status=a.status, category=a.category,
                       overdue=True if a.overdue else None, handler=handler, text=a.text, limit=a.limit,
                       offset=a.offset, now=_now(a.now))

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
        res = med.escalate_overdue(s, ctx.actor, now=_now(ctx.args.now))
    ctx.out(res, lambda: f"超期上报 {res.escalated} 件，街道层级超期标记 {res.flagged} 件（时间 {res.now:%Y-%m-%d %H:%M}）")
    return 0


def cmd_policy(ctx: Context) -> int:
    a = ctx.args
    if a.set:
        level, days_s = a.set
        try:
            days = int(days_s)
        except ValueError:
            raise ValidationError(f"天数 {days_s!r} 不是整数", field="days", en=f"{days_s!r} is not a number") from None
        with ctx.db.work(ctx.actor) as s:
            tl.set_policy(s, ctx.actor, level=level, days=days, working_days=a.working_days, category=a.category)
    with ctx.db.session() as s:
        rows = tl.list_policies(s)
        verify_by = med.verify_by_setting(s)
    out = {"policies": rows, "verify_by": verify_by}
    ctx.out(out, lambda: "\n".join(
        f"{r.level:<10} {r.category or '（默认）':<12} {r.days} {'个工作日' if r.working_days else '天'}" for r in rows))
    return 0

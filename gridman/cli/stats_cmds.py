"""``gridman stats``: counts per table and per area level; ``gridman stats mediation``: the
mediation figures of an area and period (调处统计)."""

from __future__ import annotations

import argparse

from gridman.cli import args
from gridman.cli.common import Context, add_json
from gridman.core.services.errors import ValidationError
from gridman.core.services.stats import level_counts, role_counts, table_counts


def register(sub: argparse._SubParsersAction) -> None:
    p = add_json(sub.add_parser("stats", help="counts per table and per area level; `stats mediation`: 调处统计"))
    p.set_defaults(func=cmd_stats)
    p.add_argument("stats_command", nargs="?", default=None, help=argparse.SUPPRESS)
    p.add_argument("--area", help="(stats mediation) 区划编码")
    p.add_argument("--from", dest="date_from", type=args.iso_date, help="(stats mediation) 上报日期起 YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", type=args.iso_date, help="(stats mediation) 上报日期止 YYYY-MM-DD（含）；统计截至该日末的状态")


def cmd_stats(ctx: Context) -> int:
    which = ctx.args.stats_command
    if which == "mediation":
        return cmd_stats_mediation(ctx)
    if which is not None:
        raise ValidationError(f"未知的统计 {which!r}（可用：mediation）", field="stats_command",
                              en=f"Unknown statistics {which!r} (available: mediation)")
    actor = ctx.actor  # the figures of the actor's scope only (stats.table_counts)
    with ctx.db.session() as s:
        out = {"tables": table_counts(s, actor), "areas_by_level": level_counts(s, actor),
               "users_by_role": role_counts(s, actor)}
    ctx.out(out, lambda: "\n".join([f"{k}: {v}" for k, v in out["tables"].items()]
                                   + [f"{k}: {v}" for k, v in out["areas_by_level"].items()]))
    return 0


def cmd_stats_mediation(ctx: Context) -> int:
    from gridman.core.enums import MediationLevel, ReferralTarget, label
    from gridman.core.services.areas import by_code
    from gridman.core.services.mediation import figures as mf

    a = ctx.args
    with ctx.db.session() as s:
        area_id = by_code(s, a.area).id if a.area else None
        f = mf.figures(s, ctx.actor, area_id, a.date_from, a.date_to)

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{x * 100:.1f}%"

    def human() -> str:
        name = {k: zh for k, (zh, _en) in mf.LABELS.items()}
        lines = [
            f"上报 {f.reported} 件（另合并重复 {f.merged} 件），结案 {f.closed} 件，{name['closure_rate']} {pct(f.closure_rate)}",
            f"{name['on_time_rate']} {pct(f.on_time_rate)}，{name['mediation_success_rate']} "
            f"{pct(f.mediation_success_rate)}，{name['satisfaction_rate']} {pct(f.satisfaction_rate)}（评价 {f.evaluated} 次）",
            f"{name['grid_share']}（矛盾不上交）{pct(f.grid_share)}，分流 {f.referred} 次",
        ]
        lines += [f"  {label(ReferralTarget(k))}: {v}" for k, v in f.referrals.items() if v]
        for lt in f.level_times:
            avg = "—" if lt.avg_hours is None else f"{lt.avg_hours / 24:.1f} 天"
            p90 = "—" if lt.p90_hours is None else f"{lt.p90_hours / 24:.1f} 天"
            lines.append(f"{label(MediationLevel(lt.level))}层级：{lt.stays} 次，平均 {avg}，90% 分位 {p90}")
        lines.append("口径：" + mf.RULES["cohort"][0])
        return "\n".join(lines)

    ctx.out(f, human)
    return 0

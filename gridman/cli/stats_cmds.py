"""``gridman stats``: counts per table and per area level."""

from __future__ import annotations

import argparse

from gridman.cli.common import Context, add_json
from gridman.core.db import table_counts
from gridman.core.services.stats import level_counts, role_counts


def register(sub: argparse._SubParsersAction) -> None:
    p = add_json(sub.add_parser("stats", help="counts per table and per area level"))
    p.set_defaults(func=cmd_stats)
    p.add_argument("stats_command", nargs="?", default=None, help=argparse.SUPPRESS)


def cmd_stats(ctx: Context) -> int:
    with ctx.db.session() as s:
        out = {"tables": table_counts(s), "areas_by_level": level_counts(s), "users_by_role": role_counts(s)}
    ctx.out(out, lambda: "\n".join([f"{k}: {v}" for k, v in out["tables"].items()]
                                   + [f"{k}: {v}" for k, v in out["areas_by_level"].items()]))
    return 0

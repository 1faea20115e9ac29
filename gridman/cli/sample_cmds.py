"""``gridman sample --out PATH [--scale demo|street|city] [--seed N]``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gridman.cli import args
from gridman.cli.common import Context, add_json
from gridman.core.db import open_database
from gridman.core.sample import SAMPLE_AS_OF, SCALES, generate
from gridman.core.services.errors import ValidationError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_json(sub.add_parser("sample", help="write a deterministic synthetic database"))
    p.add_argument("--out", required=True, type=args.database_output, help="new database file (or URL of an empty database)")
    p.add_argument("--scale", choices=sorted(SCALES), default="demo")
    p.add_argument("--seed", type=args.count(0, 2**32 - 1), default=20081)
    p.add_argument("--as-of", type=args.iso_datetime, default=SAMPLE_AS_OF, help="the sample's 'now' (ISO date-time)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_sample)


def cmd_sample(ctx: Context) -> int:
    a = ctx.args
    out = a.out
    if "://" not in out:
        path = Path(out)
        if path.exists():
            if not a.force:
                raise ValidationError(f"文件 {path} 已存在（使用 --force 覆盖）", en=f"{path} exists (use --force)")
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
    t0 = time.perf_counter()
    db = open_database(out)
    try:
        with ctx.progress() as task:
            res = generate(db, scale=a.scale, seed=a.seed, as_of=a.as_of, task=task)
    finally:
        db.dispose()
    secs = time.perf_counter() - t0
    result = {"out": out, "scale": res.scale, "seed": res.seed, "seconds": round(secs, 2),
              "rows_written": res.rows_written, "counts": res.counts}
    ctx.out(result, lambda: f"已生成 {a.scale} 样例数据库 {out}：{res.rows_written} 行，用时 {secs:.1f} 秒")
    return 0

"""``gridman exchange checkout|checkin|open|export|list|undo`` — offline sub-districts (离线交换)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gridman.cli import args
from gridman.cli.common import Context, add_json, to_jsonable
from gridman.core.db import open_database
from gridman.core.services import exchange
from gridman.core.services.errors import ValidationError
from gridman.core.services.permissions import system_actor


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exchange", help="offline exchange workbooks (离线交换): checkout, checkin, open, export")
    xs = p.add_subparsers(dest="exchange_cmd", metavar="ACTION", required=True)

    c = add_json(xs.add_parser("checkout", help="write the exchange workbook of a street/community/grids"))
    c.add_argument("--area", help="area code of a street, community or grid")
    c.add_argument("--grids", help="comma-separated grid codes (instead of --area)")
    c.add_argument("--out", required=True, type=args.output_file, help="the .xlsx to write")
    c.set_defaults(func=cmd_checkout)

    i = add_json(xs.add_parser("checkin", help="merge a returned exchange workbook"))
    i.add_argument("file", type=args.input_file)
    i.add_argument("--dry-run", action="store_true", help="only print what the check-in would do")
    i.add_argument("--resolve", choices=exchange.RESOLUTIONS, default="keep-central",
                   help="rows changed on both sides: keep-central (default), keep-offline, or ask (list and stop)")
    i.add_argument("--choices", type=args.json_object_file, help="JSON file {uuid: {field: offline|central}} of per-field conflict choices")
    i.add_argument("--confirm-deletes", action="store_true", help="really delete rows deleted offline")
    i.add_argument("--area", help="refuse unless the workbook belongs to this area code")
    i.set_defaults(func=cmd_checkin)

    o = add_json(xs.add_parser("open", help="create/refresh a local database for the package's area"))
    o.add_argument("file", type=args.input_file)
    o.add_argument("--db", dest="local_db", required=True, type=args.database_output, help="the local database file (or URL)")
    o.add_argument("--force", action="store_true", help="refresh even over local changes not exported yet")
    o.set_defaults(func=cmd_open)

    e = add_json(xs.add_parser("export", help="write the returned workbook from a local database"))
    e.add_argument("--db", dest="local_db", required=True)
    e.add_argument("--out", required=True, type=args.output_file)
    e.set_defaults(func=cmd_export)

    ls = add_json(xs.add_parser("list", help="packages checked out and their check-ins"))
    ls.set_defaults(func=cmd_list)

    u = add_json(xs.add_parser("undo", help="undo an exchange check-in (batch id)"))
    u.add_argument("batch_id", type=args.row_id)
    u.set_defaults(func=cmd_undo)


def cmd_checkout(ctx: Context) -> int:
    a = ctx.args
    grids = [g.strip() for g in a.grids.split(",") if g.strip()] if a.grids else None
    if not a.area and not grids:
        raise ValidationError("请用 --area 或 --grids 指定导出范围", en="Give --area or --grids")
    with ctx.progress() as task, ctx.db.work(ctx.actor) as s:
        res = exchange.checkout(s, ctx.actor, out=a.out, area_code=a.area, grid_codes=grids, task=task)
    total = sum(res.counts.values())
    ctx.out(res, lambda: f"已导出 {res.area_name}（{res.area_code}）交换包 {res.package_id} → {res.path}："
                         f"{total} 行，用时 {res.seconds} 秒\n" + _counts(res.counts))
    return 0


def _counts(counts: dict[str, int]) -> str:
    names = {r.key: r.sheet for r in exchange.REGISTERS}
    return "  " + "，".join(f"{names.get(k, k)} {v}" for k, v in counts.items())


def _conflict_text(cs: list[exchange.Conflict]) -> str:
    lines = []
    for c in cs:
        lines.append(f"  冲突 {c.sheet} 第 {c.row} 行 {c.label}（{c.uuid}）→ {c.resolution}")
        for f in c.fields:
            mark = "！" if f.clash else " "
            lines.append(f"   {mark}{f.column}: 离线={f.offline!r} 中心={f.central!r} 导出时={f.original!r}")
    return "\n".join(lines)


def cmd_checkin(ctx: Context) -> int:
    a = ctx.args
    choices = a.choices
    try:
        with ctx.progress() as task, ctx.db.session() if a.dry_run else ctx.db.work(ctx.actor) as s:
            res = exchange.checkin(s, ctx.actor, path=a.file, dry_run=a.dry_run, resolve=a.resolve, choices=choices,
                                   confirm_deletes=a.confirm_deletes, expect_area=a.area, task=task)
    except exchange.ConflictsPending as exc:
        pending = exc
        obj = {"error": "conflicts", "message": pending.text(ctx.lang), "conflicts": to_jsonable(pending.conflicts)}
        ctx.out(obj, lambda: pending.message + "\n" + _conflict_text(pending.conflicts))
        return 4
    except exchange.ExchangeInvalid as exc:
        if ctx.json:
            print(json.dumps({"error": "invalid", "message": exc.text(ctx.lang),
                              "issues": to_jsonable(exc.issues)}, ensure_ascii=False))
        else:
            print("\n".join(i.text() for i in exc.issues[:200]), file=sys.stderr)
        raise

    def text() -> str:
        out = [res.summary()]
        if res.conflicts:
            out.append(_conflict_text(res.conflicts))
        for d in res.deletions:
            out.append(f"  离线删除 {d['sheet']} {d['label']}（{d['uuid']}）：{d['action']}")
        out += [f"  提示：{n}" for n in res.notices]
        return "\n".join(out)

    ctx.out(res, text)
    return 0


def _local(ctx: Context, *, create: bool = False) -> Any:
    return open_database(ctx.args.local_db, create=create)


def cmd_open(ctx: Context) -> int:
    db = _local(ctx, create=True)
    try:
        with db.session() as s:
            actor = system_actor(s)
        with ctx.progress() as task, db.work(actor) as s:
            res = exchange.open_package(s, actor, path=ctx.args.file, force=ctx.args.force, task=task)
    finally:
        db.dispose()
    ctx.out(res, lambda: f"{'已刷新' if res.refreshed else '已创建'}本地库 {ctx.args.local_db}（{res.area_code}，"
                         f"交换包 {res.package_id}），用时 {res.seconds} 秒\n" + _counts(res.counts))
    return 0


def cmd_export(ctx: Context) -> int:
    db = _local(ctx)
    try:
        with db.session() as s:
            actor = system_actor(s)
        with ctx.progress() as task, db.work(actor) as s:
            res = exchange.export_local(s, actor, out=ctx.args.out, task=task)
    finally:
        db.dispose()
    ctx.out(res, lambda: f"已导出回传交换包 {res.package_id} → {res.path}，用时 {res.seconds} 秒\n" + _counts(res.counts))
    return 0


def cmd_list(ctx: Context) -> int:
    with ctx.db.session() as s:
        rows = exchange.list_packages(s, ctx.actor)

    def text() -> str:
        if not rows:
            return "（没有交换包）"
        return "\n".join(f"{p.package_id}  {p.area_code} {p.area_name}  导出 {p.created_at:%Y-%m-%d %H:%M} "
                         f"{p.created_by or ''}  " + (f"已导入（批次 {p.checkin_batch_id}）" if p.checked_in_at else "未导入")
                         for p in rows)

    ctx.out({"packages": rows}, text)
    return 0


def cmd_undo(ctx: Context) -> int:
    with ctx.db.work(ctx.actor) as s:
        res = exchange.undo_checkin(s, ctx.actor, ctx.args.batch_id)
    ctx.out(res, lambda: f"已撤销交换导入批次 {res.batch_id}：" + "，".join(f"{k} {v}" for k, v in res.reverted.items()))
    return 0

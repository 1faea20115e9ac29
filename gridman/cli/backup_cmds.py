"""``gridman backup create|verify|restore|list|schedule`` — backups of an SQLite database (备份与恢复)."""

from __future__ import annotations

import argparse

from gridman.cli.common import Context, add_json
from gridman.core.services import backup
from gridman.core.services.permissions import Perm, require


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backup", help="back up, verify and restore the database (with its attachments)")
    bs = p.add_subparsers(dest="backup_cmd", metavar="ACTION", required=True)

    c = add_json(bs.add_parser("create", help="write a backup (database and case attachments)"))
    c.add_argument("--folder", help="where to write it (default: the scheduled folder, else beside the database)")
    c.add_argument("--if-due", action="store_true", help="only when the schedule says a backup is due")
    c.set_defaults(func=cmd_create)

    v = add_json(bs.add_parser("verify", help="check a backup: integrity, checksum, schema, attachments"))
    v.add_argument("file")
    v.set_defaults(func=cmd_verify)

    r = add_json(bs.add_parser("restore", help="replace the database's content with a verified backup "
                                               "(the current content is backed up first)"))
    r.add_argument("file")
    r.set_defaults(func=cmd_restore)

    ls = add_json(bs.add_parser("list", help="the backups of this database, newest first"))
    ls.add_argument("--folder")
    ls.set_defaults(func=cmd_list)

    s = add_json(bs.add_parser("schedule", help="show or set the backup schedule (kept in the database)"))
    s.add_argument("--every-days", type=int, help="back up every N days (0: no schedule)")
    s.add_argument("--keep", type=int, default=7, help="keep the newest K scheduled backups (default 7)")
    s.add_argument("--folder", help="folder for scheduled backups (default: beside the database)")
    s.set_defaults(func=cmd_schedule)


def cmd_create(ctx: Context) -> int:
    a = ctx.args
    if a.if_due:
        res = backup.create_if_due(ctx.db, ctx.actor)
        if res is None:
            sched = backup.get_schedule(ctx.db)
            ctx.out({"created": False, "scheduled": sched is not None},
                    "未到备份时间" if sched else "未设置备份计划（gridman backup schedule --every-days N）")
            return 0
    else:
        res = backup.create(ctx.db, ctx.actor, folder=a.folder)
    ctx.out({"created": True, **vars(res)},
            lambda: f"已备份到 {res.path}（附件 {res.attachments} 个"
                    + (f"，缺失 {len(res.missing_attachments)} 个" if res.missing_attachments else "") + "）")
    return 0


def cmd_verify(ctx: Context) -> int:
    require(ctx.actor, Perm.BACKUP)  # a backup holds the whole database: only who may back up reads one
    res = backup.verify(ctx.args.file)
    en = ctx.lang.startswith("en")

    def text() -> str:
        if res.ok:
            extra = "" if res.attachments is not None else "（旧格式备份：无校验和，不含附件）"
            return f"备份完好：{res.path}，架构 {res.revision}，附件 {res.attachments or 0} 个{extra}"
        return "\n".join([f"备份有问题：{res.path}", *(f"  {p}" for p in (res.problems_en if en else res.problems))])
    ctx.out(res, text)
    return 0 if res.ok else 1


def cmd_restore(ctx: Context) -> int:
    safety = backup.restore(ctx.db, ctx.actor, ctx.args.file)
    out = {"restored": str(ctx.args.file), "before_restore": str(safety)}
    ctx.out(out, f"已从 {ctx.args.file} 恢复。恢复前的数据另存为：{safety}")
    return 0


def cmd_list(ctx: Context) -> int:
    require(ctx.actor, Perm.BACKUP)
    rows = backup.list_backups(ctx.db, ctx.args.folder)
    ctx.out({"backups": rows}, lambda: "\n".join(f"{e.modified}  {e.tag:<16} {e.size:>12}  {e.path}" for e in rows)
            or "没有备份")
    return 0


def cmd_schedule(ctx: Context) -> int:
    require(ctx.actor, Perm.BACKUP)
    a = ctx.args
    if a.every_days is None:
        sched = backup.get_schedule(ctx.db)
    else:
        sched = backup.set_schedule(ctx.db, ctx.actor, every_days=a.every_days, keep=a.keep, folder=a.folder)
    out = {"schedule": sched}
    ctx.out(out, lambda: (f"每 {sched.every_days} 天备份一次，保留最近 {sched.keep} 份，位置："
                          f"{sched.folder or '数据库文件旁边'}" if sched else "未设置备份计划"))
    return 0

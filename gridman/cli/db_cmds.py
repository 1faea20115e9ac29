"""``gridman db init|upgrade|check``."""

from __future__ import annotations

import argparse
from pathlib import Path

from gridman.cli.common import Context, add_json
from gridman.core.db import (
    current_revision,
    head_revision,
    integrity_check,
    open_database,
    resolve_url,
    sqlite_file,
    table_counts,
    upgrade_database,
)
from gridman.core.dbfile import Diagnosis, check_before_open, diagnose
from gridman.core.redact import redact_url
from gridman.core.services.stats import level_counts


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="create, upgrade and check the database")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    add_json(dsub.add_parser("init", help="create a new database (or bring an existing one up to date)")).set_defaults(
        func=cmd_init)
    add_json(dsub.add_parser("upgrade", help="upgrade the schema (a backup copy is made first)")).set_defaults(
        func=cmd_upgrade)
    add_json(dsub.add_parser("check", help="schema version, integrity and counts")).set_defaults(func=cmd_check)


def cmd_init(ctx: Context) -> int:
    db = open_database(ctx.args.db, upgrade=False)
    try:
        res = upgrade_database(db)
        out = {"url": redact_url(db.url), "revision": res.to_revision, "created": res.from_revision is None,
               "backup": str(res.backup) if res.backup else None}
    finally:
        db.dispose()
    ctx.out(out, lambda: f"数据库已就绪：{out['url']}（架构版本 {out['revision']}）")
    return 0


def cmd_upgrade(ctx: Context) -> int:
    db = open_database(ctx.args.db, upgrade=False, create=False)
    try:
        res = upgrade_database(db)
    finally:
        db.dispose()
    out = {"from": res.from_revision, "to": res.to_revision, "changed": res.changed,
           "backup": str(res.backup) if res.backup else None}
    ctx.out(out, lambda: (f"已从 {res.from_revision} 升级到 {res.to_revision}，备份：{res.backup}" if res.changed
                          else f"已是最新版本 {res.to_revision}"))
    return 0


def _diagnosis(ctx: Context) -> tuple[Path, Diagnosis] | None:
    """An SQLite file diagnosed read-only, before anything opens it (None: not SQLite)."""
    path = sqlite_file(resolve_url(ctx.args.db))
    if path is None:
        return None
    check_before_open(path, create=False)  # missing, a folder, not SQLite…: the clear refusal
    return path, diagnose(path)


def _damage(ctx: Context, path: Path, d: Diagnosis) -> int:
    """What ``integrity_check`` found, in which tables and indexes, and how to restore (exit 1)."""
    out = {"url": str(path), "integrity": d.text(ctx.lang), "damaged": True, "places": d.places,
           "problems": d.problems}
    ctx.out(out, lambda: "\n".join([f"数据库：{path}", f"完整性：{out['integrity']}"]
                                   + [f"  {p}" for p in d.problems[:20]]))
    return 1


def cmd_check(ctx: Context) -> int:
    diag = _diagnosis(ctx)
    if diag is not None and not diag[1].ok:
        return _damage(ctx, *diag)
    db = ctx.db
    if not ctx.actor.is_admin:  # the details (where, what, how many) are the administrators'
        short = {"schema_version": current_revision(db), "schema_head": head_revision(), "integrity": integrity_check(db)}
        ctx.out(short, lambda: f"架构版本：{short['schema_version']}（最新 {short['schema_head']}）\n"
                               f"完整性：{short['integrity']}")
        return 0 if short["integrity"] == "ok" else 1
    with db.session() as s:
        counts = table_counts(s)
        levels = level_counts(s, ctx.actor)
    out = {
        "url": redact_url(db.url),
        "dialect": db.dialect,
        "schema_version": current_revision(db),
        "schema_head": head_revision(),
        "integrity": integrity_check(db, pages=diag is None),  # diagnose checked an SQLite file's pages
        "counts": counts,
        "areas_by_level": levels,
    }
    def human() -> str:
        lines = [f"数据库：{out['url']}", f"架构版本：{out['schema_version']}（最新 {out['schema_head']}）",
                 f"完整性：{out['integrity']}"]
        lines += [f"  {k}: {v}" for k, v in counts.items()]
        return "\n".join(lines)
    ctx.out(out, human)
    return 0 if out["integrity"] == "ok" else 1

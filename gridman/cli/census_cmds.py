"""``gridman import …``, ``gridman export …``, ``gridman report monthly``: census workbooks in,
ledgers and reports out (the same services the GUI wizard will call)."""

from __future__ import annotations

import argparse

from gridman.cli import args
from gridman.cli.common import Context, add_json
from gridman.core.db import resolve_url
from gridman.core.outputs import check_output_path
from gridman.core.services import census as ci
from gridman.core.services import export as ex
from gridman.core.services.errors import ValidationError


def register(sub: argparse._SubParsersAction) -> None:
    p_imp = sub.add_parser("import", help="import census workbooks; list and undo imports")
    isub = p_imp.add_subparsers(dest="import_command", metavar="SUBCOMMAND", required=True)
    p = add_json(isub.add_parser("census", help="import a census workbook (实有人口)"))
    p.add_argument("file", type=args.input_file)
    p.add_argument("--sheet", help="sheet name (default: the one sheet holding a census table)")
    p.add_argument("--map", action="append", default=[], metavar="HEADER=FIELD",
                   help="map a column explicitly (FIELD empty or '-' ignores it); repeatable")
    p.add_argument("--area", help="code of the area to import into (default: your area)")
    p.add_argument("--dry-run", action="store_true", help="report what would happen, write nothing")
    p.add_argument("--policy", choices=["reject", "quarantine"], default="reject",
                   help="reject: any error rejects the whole file (default); quarantine: import valid rows")
    p.add_argument("--report", type=args.output_file, metavar="OUT.xlsx", help="write the rows with problems to this workbook")
    p.set_defaults(func=cmd_import_census)
    p = add_json(isub.add_parser("list", help="recorded imports"))
    p.add_argument("--limit", type=args.count(1, 100_000), default=50)
    p.set_defaults(func=cmd_import_list)
    p = add_json(isub.add_parser("undo", help="revert an import if nothing touched its rows since"))
    p.add_argument("batch_id", type=args.row_id)
    p.set_defaults(func=cmd_import_undo)

    p = add_json(sub.add_parser("export", help=f"export a list to .xlsx ({', '.join(ex.LISTS)}) or a blank template"))
    p.add_argument("what", help=f"list name ({', '.join(ex.LISTS)}) or 'template'")
    p.add_argument("name", nargs="?", help="with 'template': the list name")
    p.add_argument("--out", required=True, type=args.output_file, help="output .xlsx file")
    p.add_argument("--area", help="area code (default: your area)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help="filter rows; repeatable")
    p.set_defaults(func=cmd_export)

    p_rep = sub.add_parser("report", help="reports")
    rsub = p_rep.add_subparsers(dest="report_command", metavar="SUBCOMMAND", required=True)
    p = add_json(rsub.add_parser("monthly", help="monthly report workbook of an area"))
    p.add_argument("--area", required=True)
    p.add_argument("--month", required=True, type=args.month, help="YYYY-MM")
    p.add_argument("--out", required=True, type=args.output_file)
    p.set_defaults(func=cmd_report_monthly)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for it in items:
        if "=" not in it:
            raise ValidationError(f"{what} 应写成 键=值：{it}", en=f"{what} must be KEY=VALUE: {it}")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_import_census(ctx: Context) -> int:
    a = ctx.args
    mapping = _pairs(a.map, "--map") or None
    actor = ctx.actor
    report = None
    if a.report:  # refused before the import runs, not after it committed
        check_output_path(a.report, ctx.db)
    with ctx.progress() as task:
        # a dry run reads without the write lock and takes it only for the audit row of the check
        with ctx.db.work(actor) as s:
            res = ci.import_census(s, actor, path=a.file, sheet=a.sheet, mapping=mapping, area_code=a.area,
                                   dry_run=a.dry_run, policy=a.policy, task=task)
        if a.report and res.issues:
            report = str(ci.write_error_workbook(res, a.report, task=task, bind=ctx.db))
    out = res.summary()
    out["report"] = report
    out["issues"] = [vars(i) for i in res.issues[:200]]
    out["issues_total"] = len(res.issues)

    def text() -> str:
        lines = [f"{res.file_name}（工作表“{res.sheet}”，表头第 {res.header_row} 行）：{_status_zh(res.status)}",
                 f"读取 {res.rows_read} 行：新增 {res.inserted}，更新 {res.updated}，未变 {res.unchanged}，"
                 f"拒绝 {res.rejected}，警告 {res.warnings}；新建户 {res.households_created}，新加标签 {res.tags_added}"]
        if res.batch_id:
            lines.append(f"导入记录编号 {res.batch_id}（撤销：gridman import undo {res.batch_id}）")
        if res.unknown_columns:
            lines.append(f"未导入的列：{'、'.join(res.unknown_columns)}")
        for i in res.issues[:20]:
            lines.append(f"  第 {i.row} 行{('“' + i.column + '”') if i.column else ''}：{i.message}")
        if len(res.issues) > 20:
            lines.append(f"  …… 共 {len(res.issues)} 个问题")
        if report:
            lines.append(f"问题清单：{report}")
        return "\n".join(lines)

    ctx.out(out, text)
    return 1 if res.status == "rejected" else 0


def _status_zh(status: str) -> str:
    return {"imported": "已导入", "rejected": "有错误，整个文件未导入", "dry_run": "试运行（未写入）"}.get(status, status)


def cmd_import_list(ctx: Context) -> int:
    actor = ctx.actor
    with ctx.db.session() as s:
        rows = ci.list_imports(s, actor, limit=ctx.args.limit)
    ctx.out({"imports": rows}, lambda: "\n".join(
        f"{b.id:>5} {b.started_at:%Y-%m-%d %H:%M} {b.username or '-':<10} {b.status:<7} {b.file_name} "
        f"{(b.counts or {}).get('inserted', 0)} 新增 / {(b.counts or {}).get('updated', 0)} 更新" for b in rows)
        or "（没有导入记录）")
    return 0


def cmd_import_undo(ctx: Context) -> int:
    actor = ctx.actor
    with ctx.db.work(actor) as s:
        res = ci.undo_import(s, actor, batch_id=ctx.args.batch_id)
    ctx.out(res, f"已撤销导入 {res.batch_id}：删除新增人员 {res.residents_deleted}，恢复 {res.residents_restored}，"
                 f"删除新建户 {res.households_deleted}，移除标签 {res.tags_removed}")
    return 0


def cmd_export(ctx: Context) -> int:
    a = ctx.args
    if a.what == "template":
        if not a.name:
            raise ValidationError("请指定模板对应的列表，如 gridman export template residents --out 模板.xlsx",
                                  en="Give the list: gridman export template residents --out F.xlsx")
        path = ex.write_template(a.name, a.out, bind=resolve_url(a.db))
        ctx.out({"template": a.name, "path": str(path)}, f"模板已写入 {path}")
        return 0
    if a.name:
        raise ValidationError(f"多余的参数：{a.name}", en=f"Unexpected argument {a.name}")
    actor = ctx.actor
    with ctx.progress() as task, ctx.db.work(actor) as s:
        res = ex.export_list(s, actor, list_name=a.what, out=a.out, area_code=a.area,
                             filters=_pairs(a.filter, "--filter"), task=task)
    ctx.out(res, f"已导出 {res.rows} 行 → {res.path}" + ("（身份证号已脱敏）" if res.masked_ids and res.list == "residents" else ""))
    return 0


def cmd_report_monthly(ctx: Context) -> int:
    a = ctx.args
    actor = ctx.actor
    from gridman.core.services.monthly_report import monthly_report

    with ctx.progress() as task, ctx.db.work(actor) as s:
        res = monthly_report(s, actor, area_code=a.area, month=a.month, out=a.out, task=task)
    ctx.out(res, f"月报已写入 {res.path}：在住人口 {res.population}，本月事件 {res.incidents}，已结案 {res.closed}")
    return 0

"""Boundary commands: ``gridman areas import-geojson|export-geojson|measure``,
``gridman grids check|assign|split|merge|edit`` and ``gridman coverage``.

Boundary changes (split, merge, edit) print a preview of what would move unless ``--yes`` is
given; ``--token`` applies only if nothing changed since the preview that printed that token.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape

from gridman.cli import args
from gridman.cli.common import Context, add_json
from gridman.core.enums import AreaLevel
from gridman.core.outputs import check_output_path, write_text
from gridman.core.services import areas as area_svc
from gridman.core.services import geometry as geosvc
from gridman.core.services.errors import ValidationError


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("areas", help="the area tree: add, GeoJSON import/export, measures")
    asub = a.add_subparsers(dest="areas_command", metavar="ACTION", required=True)
    p = add_json(asub.add_parser("add", help="add one area (the city or district an office starts from)"))
    p.add_argument("code", metavar="CODE", help="GB/T 2260 or statistical code, e.g. 340100")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--level", required=True, choices=[lv.value for lv in AreaLevel])
    p.add_argument("--parent", metavar="CODE", help="parent area (default: inferred from the code: 340102 → 340100)")
    p.set_defaults(func=cmd_add)
    p = add_json(asub.add_parser("import", aliases=["import-geojson"],
                                 help="create/update areas from a boundary file: GeoJSON, TopoJSON, "
                                      "shapefile (.shp or .zip), KML/KMZ"))
    p.add_argument("file", type=args.input_file)
    p.add_argument("--level", choices=[lv.value for lv in AreaLevel],
                   help="level of the features (default: each feature's 'level' property)")
    p.add_argument("--parent", metavar="CODE", help="parent area (default: parent_code property or code prefix)")
    p.add_argument("--code-field", metavar="F", help="property holding the code (default: code/adcode/CODE/…)")
    p.add_argument("--name-field", metavar="F", help="property holding the name (default: name/NAME/…)")
    p.add_argument("--crs", metavar="CRS",
                   help="coordinates of the file (default: what the file says — a shapefile's .prj — else wgs84): "
                        "wgs84, cgcs2000, gcj02 (高德/腾讯 web maps) or an EPSG code such as EPSG:4548")
    p.add_argument("--encoding", metavar="ENC", help="a shapefile's attribute encoding (default: .cpg, else UTF-8 or GBK)")
    p.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    p.add_argument("--no-table", action="store_true",
                   help="don't create missing parents from the bundled GB/T 2260 table")
    p.set_defaults(func=cmd_import)
    p = add_json(asub.add_parser("export-geojson", help="write an area's subtree as GeoJSON"))
    p.add_argument("--area", required=True, metavar="CODE")
    p.add_argument("--out", required=True, type=args.output_file, metavar="F")
    p.add_argument("--level", action="append", choices=[lv.value for lv in AreaLevel],
                   help="only these levels (repeatable)")
    p.set_defaults(func=cmd_export)
    p = add_json(asub.add_parser("measure", help="area (m², km²), perimeter and centroid of an area"))
    p.add_argument("code")
    p.set_defaults(func=cmd_measure)

    g = sub.add_parser("grids", help="grid boundaries: check, assign, split, merge, edit")
    gsub = g.add_subparsers(dest="grids_command", metavar="ACTION", required=True)
    p = add_json(gsub.add_parser("check", help="check boundaries, staffing and size of a subtree"))
    p.add_argument("--area", metavar="CODE", help="subtree root (default: every top-level area)")
    p.add_argument("--repair", action="store_true", help="repair invalid boundaries (make_valid), reported")
    p.add_argument("--sliver", type=args.number(0), default=100.0, metavar="M2", help="sliver threshold in m² (100)")
    p.add_argument("--household-limit", type=args.count(1, 1_000_000), default=None, metavar="N",
                   help="households per grid (default: the grid's own limit, setting, or 500)")
    p.set_defaults(func=cmd_check)
    p = add_json(gsub.add_parser("assign", help="give buildings, premises and open incidents the grid containing them"))
    p.add_argument("--area", metavar="CODE")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_assign)
    p = add_json(gsub.add_parser("split", help="cut a grid in two along a line (preview unless --yes)"))
    p.add_argument("grid", metavar="GRID")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--line", metavar="WKT", help="LINESTRING (lon lat, …)")
    src.add_argument("--file", type=args.input_file, metavar="F", help="a file with the line as WKT or GeoJSON")
    p.add_argument("--new-code", metavar="CODE")
    p.add_argument("--name", metavar="NAME", help="name of the new grid")
    _confirm(p)
    p.set_defaults(func=cmd_split)
    p = add_json(gsub.add_parser("merge", help="merge grid B into grid A (preview unless --yes)"))
    p.add_argument("keep", metavar="A")
    p.add_argument("absorb", metavar="B")
    _confirm(p)
    p.set_defaults(func=cmd_merge)
    p = add_json(gsub.add_parser("edit", help="replace grid boundaries from GeoJSON (preview unless --yes)"))
    p.add_argument("file", type=args.input_file, help="FeatureCollection with code properties (or one feature with --grid)")
    p.add_argument("--grid", metavar="CODE", help="the grid, when the file holds one unnamed polygon")
    p.add_argument("--crs", choices=geosvc.CRS_CHOICES, default="wgs84")
    _confirm(p)
    p.set_defaults(func=cmd_edit)

    p = add_json(sub.add_parser("coverage", help="service coverage: buildings/households within a radius of facilities"))
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--facilities", type=args.input_file, metavar="F.geojson", help="facility points (GeoJSON)")
    src.add_argument("--facility-kind", metavar="K", help="Facility rows of this kind (e.g. service_center)")
    p.add_argument("--radius", type=args.number(0, 1_000_000), default=1000.0, metavar="M", help="metres (1000)")
    p.add_argument("--area", metavar="CODE")
    p.add_argument("--crs", choices=geosvc.CRS_CHOICES, default="wgs84", help="coordinates of the facility file")
    p.add_argument("--limit", type=args.count(0, 100_000), default=geosvc.SAMPLE_CAP, help="uncovered buildings listed (200)")
    p.set_defaults(func=cmd_coverage)


def _confirm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="apply the change (default: preview only)")
    p.add_argument("--token", metavar="T", help="apply only if the preview printed this token")


# --- areas ------------------------------------------------------------------------------------


def cmd_add(ctx: Context) -> int:
    a = ctx.args
    with ctx.db.work(ctx.actor, note=f"添加区划 {a.code}") as s:
        area = area_svc.add_area(s, ctx.actor, code=a.code, name=a.name, level=a.level, parent_code=a.parent)
        parent = area.parent
        out = {"id": area.id, "code": area.code, "name": area.name, "level": area.level,
               "parent": parent.code if parent is not None else None}
    ctx.out(out, lambda: f"已添加 {out['name']}（{out['code']}）" + (f"，上级 {out['parent']}" if out["parent"] else ""))
    return 0


def cmd_import(ctx: Context) -> int:
    a = ctx.args
    f = geosvc.read_boundaries(a.file, encoding=a.encoding)
    data, crs = f.data, a.crs or f.crs or "wgs84"
    with ctx.db.work(ctx.actor, note=f"边界导入 {Path(a.file).name}") as s:
        parent_id = area_svc.by_code(s, a.parent).id if a.parent else None
        with ctx.progress() as task:
            res = geosvc.import_geojson(s, ctx.actor, data=data, level=a.level, parent_id=parent_id,
                                        code_field=a.code_field, name_field=a.name_field, crs=crs,
                                        source=Path(a.file).name, dry_run=a.dry_run, use_table=not a.no_table,
                                        task=task)
        if a.dry_run:
            s.rollback()
    ctx.out(res, lambda: (f"{Path(a.file).name}：新建 {len(res.created)}，更新 {len(res.updated)}，未变 "
                          f"{len(res.unchanged)}，跳过 {len(res.skipped)}" + ("（试运行，未写入）" if a.dry_run else "")
                          + (f"\n  按 GB/T 2260 代码表新建上级：{'、'.join(res.from_table)}" if res.from_table else "")
                          + "".join(f"\n  {p.reason}" for p in res.problems)))
    return 0


def cmd_export(ctx: Context) -> int:
    a = ctx.args
    check_output_path(a.out, ctx.db)
    with ctx.db.work(ctx.actor, note="GeoJSON 导出") as s:
        area_id = area_svc.by_code(s, a.area).id
        fc = geosvc.export_geojson(s, ctx.actor, area_id=area_id, levels=a.level)
        from gridman.core.services import audit

        audit.record(s, ctx.actor, "export_geojson", table="areas", row_id=area_id,
                     changes={"features": len(fc["features"]), "file": str(a.out)})
    write_text(a.out, geosvc.geojson_text(fc), ctx.db)
    out = {"area": a.area, "out": str(a.out), "features": len(fc["features"])}
    ctx.out(out, lambda: f"已导出 {out['features']} 个要素到 {out['out']}")
    return 0


def cmd_measure(ctx: Context) -> int:
    with ctx.db.session() as s:
        m = geosvc.measure_area(s, ctx.actor, area_id=area_svc.by_code(s, ctx.args.code).id)
    ctx.out(m, lambda: (f"{m.name}（{m.code}）面积 {m.area_m2:,.1f} m²（{m.area_km2:.4f} km²），周长 {m.perimeter_m:,.1f} m，"
                        f"中心 {m.centroid_lon:.6f},{m.centroid_lat:.6f}（{m.crs}；椭球面积 {m.geodesic_area_m2:,.1f} m²）"))
    return 0


# --- grids ------------------------------------------------------------------------------------


def _roots(s: Any, code: str | None) -> list[int]:
    return [area_svc.by_code(s, code).id] if code else geosvc.root_area_ids(s)


def cmd_check(ctx: Context) -> int:
    a = ctx.args
    with ctx.db.work(ctx.actor, note="边界检查修复") as s:
        reports = [geosvc.check_subtree(s, ctx.actor, area_id=r, repair=a.repair, sliver_m2=a.sliver,
                                        household_limit=a.household_limit) for r in _roots(s, a.area)]
        if not a.repair:
            s.rollback()
    out: dict[str, Any] = reports[0].__dict__ if len(reports) == 1 else {"reports": reports}

    def text() -> str:
        lines = []
        for r in reports:
            lines.append(f"{r.root_code}：检查 {r.areas_checked} 个区划（{r.grids_checked} 个网格），{r.crs}，用时 {r.seconds:.2f} 秒")
            lines.append("  " + ("，".join(f"{k} {v}" for k, v in r.counts.items()) or "未发现问题"))
            for i in r.issues[:200]:
                lines.append(f"  [{i.kind}] {i.code} {i.name}：{i.detail}")
            for rep in r.repaired:
                lines.append(f"  已修复 {rep.code}：{rep.reason}，面积 {rep.area_m2_before} → {rep.area_m2_after} m²")
        return "\n".join(lines)

    ctx.out(out, text)
    return 0


def _assign_text(r: geosvc.AssignReport) -> str:
    lines = [f"范围 {r.scope}：点位 " + "，".join(f"{k} {v}" for k, v in r.points.items()),
             "变更 " + "，".join(f"{k} {v}" for k, v in r.changed.items()) + ("（试运行）" if r.dry_run else ""),
             f"不在任何网格内 {r.outside_count} 个，位于网格边界上 {r.border_count} 个"]
    for f in r.flows[:50]:
        lines.append(f"  {f['from']} → {f['to']}：" + "，".join(f"{k} {v}" for k, v in f.items() if k not in ("from", "to")))
    for n in r.outside[:20]:
        lines.append(f"  网格外：{n.table} #{n.id} {n.name or ''} ({n.lon:.6f},{n.lat:.6f})")
    for n in r.on_border[:20]:
        lines.append(f"  边界上：{n.table} #{n.id} {n.name or ''} ({n.lon:.6f},{n.lat:.6f}) 归 {n.grid_code}，接触 {'、'.join(n.touching)}")
    return "\n".join(lines)


def cmd_assign(ctx: Context) -> int:
    a = ctx.args
    with ctx.db.work(ctx.actor, note="网格归属") as s:
        area_id = area_svc.by_code(s, a.area).id if a.area else None
        with ctx.progress() as task:
            r = geosvc.assign(s, ctx.actor, area_id=area_id, dry_run=a.dry_run, task=task)
    ctx.out(r, lambda: _assign_text(r))
    return 0


def _change_text(r: geosvc.BoundaryChangeReport) -> str:
    head = "已执行" if r.applied else "预览（加 --yes 执行）"
    lines = [f"{head}：{r.kind}，令牌 {r.token}"]
    for sh in r.shapes:
        lines.append(f"  {sh.action} {sh.code} {sh.name}：{sh.area_m2_before} → {sh.area_m2_after} m²")
    lines.append("  将移动：" + "，".join(f"{k} {v}" for k, v in r.moved.items()))
    if r.repointed:
        lines.append("  其他引用改指：" + "，".join(f"{k} {v}" for k, v in r.repointed.items()))
    lines.append(_assign_text(r.assignment))
    return "\n".join(lines)


def _boundary_cmd(ctx: Context, fn: Any, note: str) -> int:
    a = ctx.args
    if a.yes:
        with ctx.db.work(ctx.actor, note=note) as s:
            r = fn(s, apply=True, expected_token=a.token)
    else:
        with ctx.db.session() as s:
            r = fn(s, apply=False, expected_token=None)
            s.rollback()
    ctx.out(r, lambda: _change_text(r))
    return 0


def _read_line(a: argparse.Namespace) -> Any:
    text = a.line if a.line else Path(a.file).read_text(encoding="utf-8-sig")
    text = text.strip()
    try:
        if text.startswith("{"):
            d = json.loads(text)
            if d.get("type") == "FeatureCollection":
                d = d["features"][0]
            if d.get("type") == "Feature":
                d = d["geometry"]
            return shape(d)
        return shapely.from_wkt(text)
    except Exception as exc:  # noqa: BLE001 - reported to the user with the source (the details go to the log)
        src = a.file or "--line"
        raise ValidationError(f"{src}：无法读取分割线，应为 WKT（LINESTRING (经度 纬度, …)）或 GeoJSON 线",
                              field="line", en=f"{src}: cannot read the line; write WKT (LINESTRING (lon lat, …)) "
                                               "or a GeoJSON line") from exc


def cmd_split(ctx: Context) -> int:
    a = ctx.args
    line = _read_line(a)

    def fn(s: Any, *, apply: bool, expected_token: str | None) -> Any:
        return geosvc.split_grid(s, ctx.actor, grid_id=area_svc.by_code(s, a.grid).id, line=line, new_code=a.new_code,
                                 new_name=a.name, apply=apply, expected_token=expected_token)

    return _boundary_cmd(ctx, fn, f"拆分网格 {a.grid}")


def cmd_merge(ctx: Context) -> int:
    a = ctx.args

    def fn(s: Any, *, apply: bool, expected_token: str | None) -> Any:
        return geosvc.merge_grids(s, ctx.actor, keep_id=area_svc.by_code(s, a.keep).id,
                                  absorb_id=area_svc.by_code(s, a.absorb).id, apply=apply,
                                  expected_token=expected_token)

    return _boundary_cmd(ctx, fn, f"合并网格 {a.absorb} → {a.keep}")


def cmd_edit(ctx: Context) -> int:
    a = ctx.args
    changes = geosvc.boundaries_from_geojson(geosvc.read_geojson(a.file), crs=a.crs, default_code=a.grid,
                                             source=a.file)

    def fn(s: Any, *, apply: bool, expected_token: str | None) -> Any:
        return geosvc.edit_boundaries(s, ctx.actor, changes=changes, apply=apply, expected_token=expected_token)

    return _boundary_cmd(ctx, fn, "调整网格边界")


# --- coverage ---------------------------------------------------------------------------------


def cmd_coverage(ctx: Context) -> int:
    a = ctx.args
    facilities = None
    if a.facilities:
        facilities = geosvc.facilities_from_geojson(geosvc.read_geojson(a.facilities), crs=a.crs,
                                                    source=Path(a.facilities).name)
    with ctx.db.session() as s:
        area_id = area_svc.by_code(s, a.area).id if a.area else None
        r = geosvc.coverage(s, ctx.actor, facilities=facilities, facility_kind=a.facility_kind, radius_m=a.radius,
                            area_id=area_id, uncovered_limit=a.limit)

    def text() -> str:
        lines = [f"{r.facilities} 个设施，半径 {r.radius_m:.0f} m（{r.crs}）：楼栋 {r.buildings_covered}/{r.buildings}，"
                 f"户 {r.households_covered}/{r.households}"]
        for c in r.communities:
            lines.append(f"  {c.code} {c.name}：楼栋 {c.building_share:.1%}，户 {c.household_share:.1%}")
        lines.append(f"未覆盖楼栋 {r.uncovered_count} 栋" + ("：" if r.uncovered else ""))
        for u in r.uncovered[:50]:
            lines.append(f"  {u.code or u.id} {u.name}（{u.grid_code}）最近设施 {u.nearest_m} m")
        return "\n".join(lines)

    ctx.out(r, text)
    return 0

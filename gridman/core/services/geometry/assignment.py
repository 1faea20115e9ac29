"""Grid boundaries (网格边界): import, export, measure, check, assign, split/merge, coverage.

Boundaries live in ``Area.boundary`` as WKB in WGS-84/CGCS2000 longitude–latitude, with
``center_lon/center_lat`` as the label point, so they work unchanged on SQLite and PostgreSQL
(PostGIS is not needed). Every computation in metres goes through :mod:`gridman.core.geo`
(Gauss–Krüger zone of the area). Heavy work is vectorised with shapely 2 and numpy: one STRtree
per job, array predicates, no per-point Python loops; writes are set-based (executemany) and
audited with :func:`audit.bulk_rows`.

Boundary changes (edit, split, merge) are two calls: without ``apply`` they return a preview of
what would move (buildings, premises, households, residents, open incidents) and a ``token``;
with ``apply=True`` they do it in the caller's unit of work and record it in the audit log.
Passing the preview's token as ``expected_token`` refuses to apply if the data changed meanwhile.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from sqlalchemy import Table, bindparam, func, or_, select, true, update
from sqlalchemy.orm import Session

from gridman.core import geo
from gridman.core.enums import OPEN_STATUSES, AreaLevel
from gridman.core.models import (
    Area,
    AuditEntry,
    Base,
    Building,
    Facility,
    Household,
    Incident,
    Premise,
    Resident,
    Setting,
    WardenAssignment,
    utcnow,
)
from gridman.core.services import areas as area_svc
from gridman.core.services import audit
from gridman.core.services.errors import ConflictError, GridmanError, NotFound, ValidationError
from gridman.core.services.permissions import Actor, Perm, grid_scope_filter, require

DEFAULT_HOUSEHOLD_LIMIT = 500  # 网格户数上限 when neither the grid nor the settings say otherwise
HOUSEHOLD_LIMIT_SETTING = "grids.household_limit"
LEVEL_ORDER = {lv.value: i for i, lv in enumerate(AreaLevel)}
OPEN = tuple(s.value for s in OPEN_STATUSES)
SAMPLE_CAP = 200  # lists in reports (outside points, uncovered buildings…) are capped at this many rows

# Property keys common publishers use: DataV/阿里云 (adcode, name), 天地图/国家基础地理 (PAC, NAME),
# statistical bureau exports (code, 区划代码), and generic GIS exports (CODE, id).
CODE_KEYS = ("code", "adcode", "CODE", "ADCODE", "Code", "PAC", "pac", "gb", "GB", "区划代码", "编码", "代码",
             "网格编码", "grid_code", "id", "ID")
NAME_KEYS = ("name", "NAME", "Name", "名称", "网格名称", "区划名称", "mc", "MC", "fullname")
CRS_CHOICES = ("wgs84", "cgcs2000", "gcj02")


def _chunks(seq: list[Any], n: int = 5000) -> Iterable[list[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _geom(wkb: bytes | None) -> Any:
    return shapely.from_wkb(wkb) if wkb else None


# ============================================================================================
# Import / export GeoJSON
# ============================================================================================


@dataclass
class FeatureProblem:
    index: int  # 1-based feature number in the file
    code: str | None
    reason: str
    reason_en: str


@dataclass
class ImportResult:
    source: str | None
    level: str | None
    crs: str
    features: int
    code_field: str | None
    name_field: str | None
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # features of another level than asked
    problems: list[FeatureProblem] = field(default_factory=list)
    dry_run: bool = False


def read_geojson(path: str | Path) -> dict[str, Any]:
    """Load a GeoJSON file (UTF-8, with or without BOM); errors name the file and the position."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise NotFound(f"找不到文件 {p}", en=f"File not found: {p}") from exc
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{p.name}：不是 UTF-8 编码的文本（位置 {exc.start}）", field="file",
                              en=f"{p.name}: not UTF-8 text (byte {exc.start})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{p.name}：第 {exc.lineno} 行第 {exc.colno} 列不是合法的 JSON（{exc.msg}）",
                              field="file", en=f"{p.name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ValidationError(f"{p.name}：不是 GeoJSON 对象", field="file", en=f"{p.name}: not a GeoJSON object")
    return data


def _features(data: dict[str, Any], source: str) -> list[dict[str, Any]]:
    kind = data.get("type")
    if kind == "FeatureCollection" and isinstance(data.get("features"), list):
        return data["features"]
    if kind == "Feature":
        return [data]
    raise ValidationError(f"{source}：应为 GeoJSON FeatureCollection（实际 type={kind!r}）", field="type",
                          en=f"{source}: expected a GeoJSON FeatureCollection (type={kind!r})")


def _pick_key(features: list[dict[str, Any]], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    if wanted:
        return wanted
    for feat in features[:50]:
        props = feat.get("properties") or {}
        for k in candidates:
            if props.get(k) not in (None, ""):
                return k
    return None


def _code_text(v: Any) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _to_crs(geom: Any, crs: str) -> Any:
    return geo.gcj02_geometry_to_wgs84(geom) if crs == "gcj02" else geom


def import_geojson(session: Session, actor: Actor, *, data: dict[str, Any], level: AreaLevel | str | None = None,
                   parent: Area | None = None, code_field: str | None = None, name_field: str | None = None,
                   crs: str = "wgs84", source: str | None = None, dry_run: bool = False) -> ImportResult:
    """Create or update areas from a GeoJSON FeatureCollection (Polygon / MultiPolygon).

    ``level`` is the level of the features (None: each feature's ``level`` property, as written by
    :func:`export_geojson`); features of another level are skipped. The parent is ``parent`` if
    given, else the feature's ``parent_code`` property, else the existing area whose code is the
    longest prefix of the feature's code (GB/T 2260 and statistical codes nest). An existing code
    is updated in place (name, boundary) if it sits under the same parent. All or nothing: any
    problem rolls the whole file back (the result lists every problem with its feature number).
    """
    source = source or "GeoJSON"
    if crs not in CRS_CHOICES:
        raise ValidationError(f"坐标系 {crs!r} 不支持（可选 wgs84、cgcs2000、gcj02）", field="crs",
                              en=f"Unsupported coordinate system {crs!r} (wgs84, cgcs2000, gcj02)")
    want_level = AreaLevel(level).value if level else None
    feats = _features(data, source)
    ckey = _pick_key(feats, code_field, CODE_KEYS)
    nkey = _pick_key(feats, name_field, NAME_KEYS)
    res = ImportResult(source=source, level=want_level, crs=crs, features=len(feats), code_field=ckey,
                       name_field=nkey, dry_run=dry_run)
    if parent is not None:
        require(actor, Perm.MANAGE_AREAS, parent)
    else:
        require(actor, Perm.MANAGE_AREAS)

    parsed: list[tuple[int, str, str, str, str | None, Any]] = []  # (n, code, name, level, parent, geom)
    for i, feat in enumerate(feats, 1):
        props = feat.get("properties") or {}
        code = _code_text(props.get(ckey)) if ckey else None
        code = code or _code_text(feat.get("id"))
        if not code:
            res.problems.append(FeatureProblem(i, None, f"第 {i} 个要素缺少编码属性（{ckey or '未识别'}）",
                                               f"feature {i}: no code property ({ckey or 'none recognised'})"))
            continue
        name = str(props.get(nkey) or "").strip() if nkey else ""
        name = name or code
        f_level = props.get("level") if want_level is None else want_level
        if want_level is not None and props.get("level") not in (None, want_level):
            res.skipped.append(code)
            continue
        if f_level not in LEVEL_ORDER:
            res.problems.append(FeatureProblem(i, code, f"第 {i} 个要素（{code}）没有指定层级，请用 --level",
                                               f"feature {i} ({code}): no level; give --level"))
            continue
        g = feat.get("geometry")
        if g is None:  # a feature without geometry: the area without a boundary (e.g. the city)
            parsed.append((i, code, name, f_level, _code_text(props.get("parent_code")), None))
            continue
        if not isinstance(g, dict) or g.get("type") not in ("Polygon", "MultiPolygon"):
            gtype = g.get("type") if isinstance(g, dict) else None
            res.problems.append(FeatureProblem(i, code, f"第 {i} 个要素（{code}）的几何类型 {gtype} 不是面（Polygon/MultiPolygon）",
                                               f"feature {i} ({code}): geometry {gtype} is not a Polygon/MultiPolygon"))
            continue
        try:
            geom = shapely.force_2d(shape(g))
        except Exception as exc:  # noqa: BLE001 - malformed coordinates: reported per feature
            res.problems.append(FeatureProblem(i, code, f"第 {i} 个要素（{code}）的坐标无法解析：{exc}",
                                               f"feature {i} ({code}): unreadable coordinates: {exc}"))
            continue
        b = geom.bounds
        if geom.is_empty or not (-180 <= b[0] <= b[2] <= 180 and -90 <= b[1] <= b[3] <= 90):
            res.problems.append(FeatureProblem(
                i, code, f"第 {i} 个要素（{code}）的坐标不是经纬度（范围 {tuple(round(v, 3) for v in b)}）",
                f"feature {i} ({code}): coordinates are not longitude/latitude (bounds {b})"))
            continue
        parsed.append((i, code, name, f_level, _code_text(props.get("parent_code")), _to_crs(geom, crs)))

    parsed.sort(key=lambda r: (LEVEL_ORDER[r[3]], r[0]))
    existing: dict[str, Area] = {a.code: a for a in session.scalars(select(Area))}
    planned: dict[str, str] = {}  # codes created by this file (dry run) → level

    def resolve_parent(code: str, lv: str, pcode: str | None) -> tuple[Area | None, str | None]:
        if parent is not None:
            return parent, None
        if lv == AreaLevel.CITY.value:
            return None, None
        allowed = {p.value for p in area_svc.ALLOWED_PARENTS[AreaLevel(lv)] if p is not None}
        if pcode:
            if pcode in existing:
                return existing[pcode], None
            if pcode in planned:
                return None, pcode
            return None, "?" + pcode
        for k in range(len(code) - 1, 1, -1):
            a = existing.get(code[:k])
            if a is not None and a.level in allowed:
                return a, None
            if planned.get(code[:k]) in allowed:
                return None, code[:k]
        return None, "?"

    for i, code, name, lv, pcode, geom in parsed:
        wkb = shapely.to_wkb(geom) if geom is not None else None
        lon, lat = geo.label_point(geom) if geom is not None else (None, None)
        par, pending = resolve_parent(code, lv, pcode)
        if pending and pending.startswith("?"):
            res.problems.append(FeatureProblem(
                i, code, f"第 {i} 个要素（{code}）找不到上级区划{('（' + pending[1:] + '）') if pending[1:] else ''}，请用 --parent 指定",
                f"feature {i} ({code}): no parent area found{(' (' + pending[1:] + ')') if pending[1:] else ''}; give --parent"))
            continue
        area = existing.get(code)
        try:
            if area is not None:
                if area.level != lv:
                    raise ValidationError(f"编码 {code} 已是{area.level}级区划“{area.name}”，不能作为{lv}导入",
                                          field="code", en=f"code {code} is already the {area.level} {area.name}")
                if par is not None and area.parent_id != par.id:
                    raise ValidationError(f"编码 {code}（{area.name}）已在其他上级区划之下", field="parent",
                                          en=f"code {code} ({area.name}) already sits under another parent")
                require(actor, Perm.MANAGE_AREAS, area)
                if area.boundary == wkb and area.name == name:
                    res.unchanged.append(code)
                    continue
                if not dry_run:
                    area.name = name
                    area.boundary = wkb
                    area.center_lon, area.center_lat = lon, lat
                res.updated.append(code)
            else:
                if dry_run:
                    planned[code] = lv
                else:
                    created = area_svc.create_area(session, actor, code=code, name=name, level=lv, parent=par,
                                                   boundary=wkb, center=(lon, lat) if geom is not None else None)
                    existing[code] = created
                res.created.append(code)
        except ValidationError as exc:
            res.problems.append(FeatureProblem(i, code, f"第 {i} 个要素：{exc.message}", f"feature {i}: {exc.en}"))
    if res.problems and not dry_run:
        head = "；".join(p.reason for p in res.problems[:5])
        head_en = "; ".join(p.reason_en for p in res.problems[:5])
        more = len(res.problems) - 5
        raise ValidationError(f"{source}：{len(res.problems)} 个要素有问题，未导入任何内容。{head}" + (f"；另有 {more} 个" if more > 0 else ""),
                              en=f"{source}: {len(res.problems)} features have problems; nothing imported. {head_en}"
                              + (f"; {more} more" if more > 0 else ""))
    if not dry_run and (res.created or res.updated):
        session.flush()
        audit.record(session, actor, "import_geojson", table="areas",
                     changes={"source": source, "created": len(res.created), "updated": len(res.updated)},
                     note=f"GeoJSON 边界导入 {source}")
    return res


def export_geojson(session: Session, actor: Actor, *, area: Area,
                   levels: Iterable[AreaLevel | str] | None = None) -> dict[str, Any]:
    """The subtree of ``area`` (itself included) as a FeatureCollection in lon/lat, parents
    before children, with ``code``/``name``/``level``/``parent_code`` properties so the file can
    be imported back unchanged (coordinates are written at full double precision)."""
    require(actor, Perm.EXPORT, area)
    q = area_svc.subtree_query(area).order_by(Area.depth, Area.code)
    if levels:
        q = q.where(Area.level.in_([AreaLevel(lv).value for lv in levels]))
    rows = list(session.scalars(q))
    parent_ids = {a.parent_id for a in rows if a.parent_id}
    pcodes = dict(session.execute(select(Area.id, Area.code).where(Area.id.in_(parent_ids))).all()) if parent_ids else {}
    feats = []
    for a in rows:
        g = _geom(a.boundary)
        feats.append({"type": "Feature",
                      "properties": {"code": a.code, "name": a.name, "level": a.level,
                                     "parent_code": pcodes.get(a.parent_id) if a.parent_id else None},
                      "geometry": mapping(g) if g is not None else None})
    return {"type": "FeatureCollection", "name": f"{area.code} {area.name}", "features": feats}


def geojson_text(fc: dict[str, Any]) -> str:
    return json.dumps(fc, ensure_ascii=False)


# ============================================================================================
# Measure
# ============================================================================================


@dataclass
class AreaMeasure:
    code: str
    name: str
    level: str
    area_m2: float
    area_km2: float
    perimeter_m: float
    centroid_lon: float
    centroid_lat: float
    geodesic_area_m2: float
    crs: str


def measure_area(session: Session, actor: Actor, *, area: Area) -> AreaMeasure:
    """Area (m², km²), perimeter (m) and centroid of one area, in its Gauss–Krüger zone."""
    require(actor, Perm.READ, area)
    g = _geom(area.boundary)
    if g is None:
        raise ValidationError(f"{area.name}（{area.code}）没有边界", field="boundary",
                              en=f"{area.name} ({area.code}) has no boundary")
    m = geo.measure(geo.polygonal(shapely.make_valid(g)) if not g.is_valid else g)
    return AreaMeasure(area.code, area.name, area.level, m.area_m2, m.area_km2, m.perimeter_m, m.centroid_lon,
                       m.centroid_lat, m.geodesic_area_m2, m.crs)


# ============================================================================================
# Check
# ============================================================================================


@dataclass
class CheckIssue:
    kind: str  # invalid / overlap / gap / outside_parent / sliver / no_boundary / no_warden / over_limit
    code: str
    name: str
    level: str
    detail: str
    detail_en: str
    other_code: str | None = None
    area_m2: float | None = None
    value: float | None = None


@dataclass
class Repair:
    code: str
    reason: str
    area_m2_before: float
    area_m2_after: float
    parts_after: int


@dataclass
class CheckReport:
    root_code: str
    crs: str
    areas_checked: int
    grids_checked: int
    issues: list[CheckIssue]
    counts: dict[str, int]
    repaired: list[Repair]
    seconds: float = 0.0


def household_limit_default(session: Session) -> int:
    s = session.get(Setting, HOUSEHOLD_LIMIT_SETTING)
    if s is not None and isinstance(s.value, int | float) and s.value > 0:
        return int(s.value)
    return DEFAULT_HOUSEHOLD_LIMIT


def _today() -> date:
    return date.today()


def check_subtree(session: Session, actor: Actor, *, area: Area, repair: bool = False, sliver_m2: float = 100.0,
                  tolerance_m2: float = 0.5, household_limit: int | None = None,
                  today: date | None = None) -> CheckReport:
    """Check the boundaries and staffing of ``area``'s subtree; per area, report:

    - ``invalid``: self-intersecting or otherwise invalid rings (``shapely.is_valid_reason``);
      with ``repair`` they are replaced by ``shapely.make_valid`` (polygonal part) and the change
      in area is reported — never silently.
    - ``overlap``: siblings whose interiors overlap, with the shared area in m²;
    - ``gap``: parts of a parent not covered by the union of its children (pieces smaller than
      ``sliver_m2`` are reported as ``sliver``);
    - ``outside_parent``: the part of a child sticking out of its parent;
    - ``sliver``: polygon parts (of a boundary or a gap) smaller than ``sliver_m2``;
    - ``no_boundary``; ``no_warden`` (grids without a current 网格员); ``over_limit`` (grids whose
      households exceed ``Area.household_limit``, else ``household_limit``, else the setting
      ``grids.household_limit``, else 500).

    Differences below ``tolerance_m2`` are floating-point noise and ignored. Vectorised: one
    projection of all boundaries, one STRtree for sibling pairs, array predicates and areas.
    """
    import time

    t0 = time.perf_counter()
    require(actor, Perm.MANAGE_AREAS if repair else Perm.READ, area)
    today = today or _today()
    default_limit = household_limit or household_limit_default(session)
    rows = session.execute(
        select(Area.id, Area.code, Area.name, Area.level, Area.parent_id, Area.boundary, Area.household_limit)
        .where(Area.path.like(area.path + "%")).order_by(Area.depth, Area.code)
    ).all()
    n = len(rows)
    ids = np.array([r.id for r in rows], dtype=np.int64)
    pos = {r.id: i for i, r in enumerate(rows)}
    parent_pos = np.array([pos.get(r.parent_id, -1) if r.parent_id else -1 for r in rows], dtype=np.int64)
    raw = shapely.from_wkb(np.array([r.boundary for r in rows], dtype=object))
    has = ~shapely.is_missing(raw)
    issues: list[CheckIssue] = []
    repaired: list[Repair] = []

    def add(i: int, kind: str, zh: str, en: str, *, other: int | None = None, m2: float | None = None,
            value: float | None = None) -> None:
        r = rows[i]
        issues.append(CheckIssue(kind, r.code, r.name, r.level, zh, en,
                                 rows[other].code if other is not None else None,
                                 None if m2 is None else round(m2, 2), value))

    proj = geo.Projection.for_geometries(raw[has]) if has.any() else geo.Projection.around(117.0, 31.8)
    for i in np.flatnonzero(~has):
        add(int(i), "no_boundary", "没有边界", "no boundary")

    # validity (in lon/lat, as stored)
    valid = np.ones(n, dtype=bool)
    valid[has] = shapely.is_valid(raw[has])
    geoms = raw.copy()
    for i in np.flatnonzero(has & ~valid):
        i = int(i)
        reason = shapely.is_valid_reason(raw[i])
        fixed = geo.polygonal(shapely.make_valid(raw[i]))
        before = float(proj.area_m2(raw[i]))
        after = float(proj.area_m2(fixed))
        add(i, "invalid", f"边界无效：{reason}", f"invalid boundary: {reason}", m2=before)
        geoms[i] = fixed
        if repair:
            a = session.get(Area, int(ids[i]))
            assert a is not None
            a.boundary = shapely.to_wkb(fixed)
            a.center_lon, a.center_lat = geo.label_point(fixed) if not fixed.is_empty else (None, None)
            repaired.append(Repair(rows[i].code, reason, round(before, 2), round(after, 2),
                                   int(shapely.get_num_geometries(fixed))))
    if repair and repaired:
        session.flush()

    # Topology (overlaps, gaps, containment) is decided on the stored lon/lat coordinates — the
    # edges the data actually describes; only the resulting pieces are measured in metres. (Doing
    # the topology after projection would invent slivers where a long edge meets a T-junction:
    # a projected chord is not the projected edge.)
    def m2(g: Any) -> np.ndarray:
        return proj.area_m2(g)

    # slivers among each boundary's own parts
    if has.any():
        parts, part_idx = shapely.get_parts(geoms[has], return_index=True)
        part_area = m2(parts)
        owner = np.flatnonzero(has)[part_idx]
        for j in np.flatnonzero(part_area < sliver_m2):
            add(int(owner[j]), "sliver", f"边界含面积仅 {part_area[j]:.1f} m² 的碎片",
                f"boundary has a sliver of {part_area[j]:.1f} m²", m2=float(part_area[j]))

    # sibling overlaps: one STRtree, candidate pairs, interiors-intersect test, overlap areas
    cand = np.flatnonzero(has & (parent_pos >= 0))
    if len(cand) > 1:
        tree = shapely.STRtree(geoms[cand])
        a_i, b_i = tree.query(geoms[cand], predicate="intersects")
        a_g, b_g = cand[a_i], cand[b_i]
        keep = (a_g < b_g) & (parent_pos[a_g] == parent_pos[b_g])
        a_g, b_g = a_g[keep], b_g[keep]
        if len(a_g):
            inner = shapely.relate_pattern(geoms[a_g], geoms[b_g], "T********")
            a_g, b_g = a_g[inner], b_g[inner]
            ov = m2(shapely.intersection(geoms[a_g], geoms[b_g])) if len(a_g) else []
            for x, y, v in zip(a_g, b_g, ov, strict=True):
                if v > tolerance_m2:
                    add(int(x), "overlap", f"与 {rows[int(y)].code}（{rows[int(y)].name}）重叠 {v:.1f} m²",
                        f"overlaps {rows[int(y)].code} ({rows[int(y)].name}) by {v:.1f} m²", other=int(y), m2=float(v))

    # children sticking out of their parent
    kids = np.flatnonzero(has & (parent_pos >= 0))
    kids = kids[has[parent_pos[kids]]] if len(kids) else kids
    if len(kids):
        par_geoms = geoms[parent_pos[kids]]
        shapely.prepare(par_geoms)
        inside = shapely.covers(par_geoms, geoms[kids])
        out = kids[~inside]
        if len(out):
            stick = m2(shapely.difference(geoms[out], geoms[parent_pos[out]]))
            for i, v in zip(out, stick, strict=True):
                if v > tolerance_m2:
                    p = int(parent_pos[i])
                    add(int(i), "outside_parent", f"超出上级 {rows[p].name}（{rows[p].code}）{v:.1f} m²",
                        f"sticks out of its parent {rows[p].code} by {v:.1f} m²", other=p, m2=float(v))

    # gaps: the parent minus the union of its children
    by_parent: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(has & (parent_pos >= 0)):
        by_parent[int(parent_pos[i])].append(int(i))
    for p, ch in by_parent.items():
        if not has[p]:
            continue
        rest = shapely.difference(geoms[p], shapely.union_all(geoms[ch]))
        if rest.is_empty:
            continue
        pieces = shapely.get_parts(rest)
        areas = m2(pieces)
        big = areas[areas >= sliver_m2]
        small = areas[(areas > tolerance_m2) & (areas < sliver_m2)]
        if len(big):
            add(p, "gap", f"下级区划未覆盖 {big.sum():.1f} m²（{len(big)} 处）",
                f"{big.sum():.1f} m² not covered by its children ({len(big)} pieces)", m2=float(big.sum()),
                value=len(big))
        if len(small):
            add(p, "sliver", f"下级区划之间有 {len(small)} 处碎缝，共 {small.sum():.1f} m²",
                f"{len(small)} sliver gaps between its children, {small.sum():.1f} m² in all",
                m2=float(small.sum()), value=len(small))

    # staffing and size of grids
    grid_pos = [i for i, r in enumerate(rows) if r.level == AreaLevel.GRID.value]
    if grid_pos:
        grid_ids = [int(ids[i]) for i in grid_pos]
        staffed: set[int] = set()
        counts: dict[int, int] = {}
        for ch in _chunks(grid_ids):
            staffed.update(session.scalars(
                select(WardenAssignment.grid_id).where(
                    WardenAssignment.grid_id.in_(ch), WardenAssignment.start_date <= today,
                    or_(WardenAssignment.end_date.is_(None), WardenAssignment.end_date >= today)).distinct()))
            counts.update(session.execute(select(Household.grid_id, func.count()).where(
                Household.grid_id.in_(ch)).group_by(Household.grid_id)).all())
        for i in grid_pos:
            gid = int(ids[i])
            if gid not in staffed:
                add(i, "no_warden", "没有在岗网格员", "no current warden")
            limit = rows[i].household_limit or default_limit
            hh = counts.get(gid, 0)
            if hh > limit:
                add(i, "over_limit", f"户数 {hh} 超过上限 {limit}", f"{hh} households exceed the limit of {limit}",
                    value=hh)
    cnt = Counter(x.kind for x in issues)
    return CheckReport(area.code, f"EPSG:{proj.epsg}", n, len(grid_pos), issues, dict(sorted(cnt.items())),
                       repaired, round(time.perf_counter() - t0, 3))


# ============================================================================================
# Assign points to grids, and the moves that follow
# ============================================================================================


@dataclass
class PointNote:
    table: str
    id: int
    name: str | None
    lon: float
    lat: float
    grid_code: str | None  # the grid it is (still) assigned to
    touching: list[str] = field(default_factory=list)  # grids whose border it lies on


@dataclass
class MoveRow:
    table: str
    id: int
    from_code: str | None
    to_code: str


@dataclass
class MovePlan:
    """What a re-assignment would change. ``moves[table]`` rows are (id, uuid, old, new)."""

    moves: dict[str, list[tuple[int, str, int | None, int]]] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    outside: list[tuple[str, int, str | None, float, float, int | None]] = field(default_factory=list)
    border: list[tuple[str, int, str | None, float, float, int | None, list[int]]] = field(default_factory=list)
    kept_households: int = 0  # households with no building: they stay where they are


@dataclass
class AssignReport:
    scope: str
    grids: int
    points: dict[str, int]
    changed: dict[str, int]
    outside_count: int
    border_count: int
    outside: list[PointNote]
    on_border: list[PointNote]
    moves: list[MoveRow]
    flows: list[dict[str, Any]]  # per (from grid → to grid): counts by table
    dry_run: bool
    token: str
    seconds: float = 0.0


_POINT_TABLES: tuple[tuple[str, Any], ...] = (("buildings", Building), ("premises", Premise), ("incidents", Incident))
_TABLES: dict[str, Any] = {"buildings": Building, "premises": Premise, "incidents": Incident,
                           "households": Household, "residents": Resident}


def _load_grids(session: Session) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    rows = session.execute(select(Area.id, Area.code, Area.boundary).where(
        Area.level == AreaLevel.GRID.value, Area.boundary.is_not(None)).order_by(Area.id)).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    geoms = shapely.from_wkb(np.array([r.boundary for r in rows], dtype=object)) if rows else np.zeros(0, dtype=object)
    codes = dict(session.execute(select(Area.id, Area.code).where(Area.level == AreaLevel.GRID.value)).all())
    if len(geoms):
        bad = ~shapely.is_valid(geoms)
        if bad.any():  # an invalid grid would make the predicates undefined: use its repaired form
            geoms[bad] = [geo.polygonal(shapely.make_valid(g)) for g in geoms[bad]]
    return ids, geoms, codes


def _point_cond(t: Table, bbox: tuple[float, float, float, float] | None, scope_list: list[int] | None) -> Any:
    """Rows with a point in ``bbox`` or currently in a scope grid (both None: every row)."""
    if bbox is None and scope_list is None:
        return true()
    conds = []
    if bbox is not None:
        conds.append(t.c.lon.between(bbox[0], bbox[2]) & t.c.lat.between(bbox[1], bbox[3]))
    if scope_list is not None:
        conds.append(t.c.grid_id.in_(scope_list))
    return or_(*conds)


def _fast_rows(conn: Any, stmt: Any) -> list[tuple[Any, ...]]:
    """All rows as plain DBAPI tuples: for a million (id, lon, lat, grid) rows, building
    SQLAlchemy Row objects costs more than the query. Only for integer/float columns, which
    need no result processing on SQLite or PostgreSQL."""
    res = conn.execute(stmt)
    try:
        return res.cursor.fetchall()
    finally:
        res.close()


def _by_id(session: Session, t: Table, ids: Iterable[int], *cols: Any) -> dict[int, tuple[Any, ...]]:
    """Extra columns for a few rows (uuids for audit, names for the report), chunked IN."""
    out: dict[int, tuple[Any, ...]] = {}
    for ch in _chunks(sorted(set(int(i) for i in ids))):
        for r in session.connection().execute(select(t.c.id, *cols).where(t.c.id.in_(ch))):
            out[r[0]] = tuple(r[1:])
    return out


@contextmanager
def _bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while a million row tuples are alive: its full passes
    over them would otherwise cost more than the work (nothing here creates reference cycles)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def plan_moves(session: Session, *, grid_ids: np.ndarray, grid_geoms: np.ndarray,
               bbox: tuple[float, float, float, float] | None, scope: set[int] | None,
               retired: dict[int, int] | None = None) -> MovePlan:
    """See :func:`_plan_moves`; runs with the garbage collector paused."""
    with _bulk():
        return _plan_moves(session, grid_ids=grid_ids, grid_geoms=grid_geoms, bbox=bbox, scope=scope,
                           retired=retired)


def _plan_moves(session: Session, *, grid_ids: np.ndarray, grid_geoms: np.ndarray,
                bbox: tuple[float, float, float, float] | None, scope: set[int] | None,
                retired: dict[int, int] | None = None) -> MovePlan:
    """Work out which rows change grid, given grid boundaries (possibly not yet saved).

    Points (buildings, premises, open incidents) get the grid containing them; a point on a
    border keeps its current grid if that is one of the grids it touches (else the lowest id); a
    point outside every grid keeps its current grid and is reported. Premises and open incidents
    without a point follow their building; households follow their building; residents follow
    their household. ``scope`` limits changes to rows whose old or new grid is in it (None: all);
    ``retired`` maps grids that disappear (merge) to the grid that takes over their rows.

    Only ids, coordinates and grid ids are read for the bulk (Core, no ORM objects); uuids and
    names are fetched afterwards for the few rows that move or are reported.
    """
    plan = MovePlan()
    retired = retired or {}
    scope_list = sorted(set(scope) | set(retired)) if scope is not None else None
    scope_arr = np.array(scope_list if scope_list is not None else [], dtype=np.int64)
    ret_from = np.array(sorted(retired), dtype=np.int64)
    ret_to = np.array([retired[k] for k in sorted(retired)], dtype=np.int64)

    def in_scope(g: np.ndarray) -> np.ndarray:
        return np.ones(len(g), dtype=bool) if scope is None else np.isin(g, scope_arr)

    def remap_retired(g: np.ndarray) -> np.ndarray:
        if not len(ret_from):
            return g
        pos = np.searchsorted(ret_from, g)
        pos = np.clip(pos, 0, len(ret_from) - 1)
        hit = ret_from[pos] == g
        return np.where(hit, ret_to[pos], g)

    conn = session.connection()
    b_ids = np.zeros(0, dtype=np.int64)
    b_new = np.zeros(0, dtype=np.int64)
    raw_moves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for table, model in _POINT_TABLES:
        t: Table = model.__table__
        q = select(t.c.id, t.c.lon, t.c.lat, t.c.grid_id).where(
            t.c.lon.is_not(None), t.c.lat.is_not(None), _point_cond(t, bbox, scope_list))
        if model is Incident:
            q = q.where(t.c.status.in_(OPEN))
        rows = _fast_rows(conn, q.order_by(t.c.id))
        plan.points[table] = len(rows)
        if not rows:
            raw_moves[table] = (np.zeros(0, np.int64),) * 3
            continue
        arr = np.array(rows, dtype=float)  # NULL grid → nan
        del rows
        pid = arr[:, 0].astype(np.int64)
        lon, lat = arr[:, 1].copy(), arr[:, 2].copy()
        cur = np.where(np.isnan(arr[:, 3]), -1, arr[:, 3]).astype(np.int64)
        del arr
        loc = geo.locate_points(grid_geoms, lon, lat)
        found = loc.index >= 0
        new = np.where(found, grid_ids[np.maximum(loc.index, 0)] if len(grid_ids) else -1, -1)
        touching: dict[int, list[int]] = defaultdict(list)
        for p, g in zip(loc.border_points.tolist(), loc.border_polys.tolist(), strict=True):
            touching[p].append(int(grid_ids[g]))
        for p, gs in touching.items():  # a border point keeps its grid if it touches it
            if cur[p] in gs:
                new[p] = cur[p]
        cur_eff = remap_retired(cur)
        new = np.where(found, new, cur_eff)
        scoped_old = in_scope(cur)
        out_idx = np.flatnonzero(~found & scoped_old)
        bord_idx = np.array(sorted(touching), dtype=np.int64)
        if len(bord_idx):
            bord_idx = bord_idx[scoped_old[bord_idx] | in_scope(new[bord_idx])]
        names = _by_id(session, t, pid[np.concatenate([out_idx[:SAMPLE_CAP], bord_idx[:SAMPLE_CAP]])],
                       t.c.name if "name" in t.c else t.c.title)
        for p in out_idx.tolist():
            plan.outside.append((table, int(pid[p]), names.get(int(pid[p]), (None,))[0], float(lon[p]), float(lat[p]),
                                 int(cur[p]) if cur[p] >= 0 else None))
        for p in bord_idx.tolist():
            plan.border.append((table, int(pid[p]), names.get(int(pid[p]), (None,))[0], float(lon[p]), float(lat[p]),
                                int(new[p]), sorted(set(touching[p]))))
        changed = (new != cur) & (found | (cur_eff != cur)) & (scoped_old | in_scope(new))
        raw_moves[table] = (pid[changed], cur[changed], new[changed])
        if table == "buildings":
            keep = found | (cur >= 0)
            b_ids, b_new = pid[keep], new[keep]  # pid is sorted (ORDER BY id)

    def finish(table: str, ids: np.ndarray, old: np.ndarray, new: np.ndarray) -> list[tuple[int, str, int | None, int]]:
        t = _TABLES[table].__table__
        uu = _by_id(session, t, ids.tolist(), t.c.uuid)
        return [(int(i), uu[int(i)][0], int(o) if o >= 0 else None, int(n))
                for i, o, n in zip(ids.tolist(), old.tolist(), new.tolist(), strict=True)]

    for table in ("buildings",):
        plan.moves[table] = finish(table, *raw_moves[table])
    moved_b = {m[0]: m[3] for m in plan.moves["buildings"]}
    # premises and open incidents without a point follow their building; rows of a retired grid
    # without a point go to the grid that absorbs it
    for table, model in (("premises", Premise), ("incidents", Incident)):
        t = model.__table__
        ids, old, new = (list(x.tolist()) for x in raw_moves[table])
        seen = set(ids)
        extra_q = []
        for ch in _chunks(sorted(moved_b)):
            extra_q.append(select(t.c.id, t.c.grid_id, t.c.building_id).where(
                t.c.building_id.in_(ch), or_(t.c.lon.is_(None), t.c.lat.is_(None))))
        if retired:
            extra_q.append(select(t.c.id, t.c.grid_id, t.c.building_id).where(t.c.grid_id.in_(sorted(retired))))
        for q in extra_q:
            if model is Incident:
                q = q.where(t.c.status.in_(OPEN))
            for rid, g, b in conn.execute(q):
                target = moved_b.get(b) if b in moved_b else retired.get(g)
                if target is not None and rid not in seen and g != target:
                    seen.add(rid)
                    ids.append(rid)
                    old.append(-1 if g is None else g)
                    new.append(target)
        plan.moves[table] = finish(table, np.array(ids, np.int64), np.array(old, np.int64), np.array(new, np.int64))
    # households follow their building (this also mends households that disagree with it)
    h = Household.__table__
    q = select(h.c.id, h.c.grid_id, h.c.building_id).where(h.c.building_id.is_not(None))
    if bbox is not None or scope_list is not None:
        b = Building.__table__
        q = q.where(h.c.building_id.in_(select(b.c.id).where(_point_cond(b, bbox, scope_list))))
    hrows = _fast_rows(conn, q)
    hh_ids = hh_old = hh_new = np.zeros(0, dtype=np.int64)
    if hrows and len(b_ids):
        harr = np.array(hrows, dtype=np.int64)
        hid, hg, hb = harr[:, 0], harr[:, 1], harr[:, 2]
        pos = np.clip(np.searchsorted(b_ids, hb), 0, len(b_ids) - 1)
        known = b_ids[pos] == hb
        target = np.where(known, b_new[pos], hg)
        ch = known & (target != hg) & (in_scope(hg) | in_scope(target))
        hh_ids, hh_old, hh_new = hid[ch], hg[ch], target[ch]
    if retired:  # households of a retired grid without a located building
        extra = conn.execute(select(h.c.id, h.c.grid_id).where(h.c.grid_id.in_(sorted(retired)))).all()
        seen = set(hh_ids.tolist())
        add = [(i, g) for i, g in extra if i not in seen]
        if add:
            hh_ids = np.concatenate([hh_ids, np.array([i for i, _ in add], np.int64)])
            hh_old = np.concatenate([hh_old, np.array([g for _, g in add], np.int64)])
            hh_new = np.concatenate([hh_new, np.array([retired[g] for _, g in add], np.int64)])
    plan.moves["households"] = finish("households", hh_ids, hh_old, hh_new)
    if scope_list is not None:
        plan.kept_households = int(session.scalar(select(func.count()).select_from(h).where(
            h.c.building_id.is_(None), h.c.grid_id.in_(scope_list))) or 0)
    # residents follow their household
    r = Resident.__table__
    hh_target = {m[0]: m[3] for m in plan.moves["households"]}
    r_ids: list[int] = []
    r_old: list[int] = []
    r_new: list[int] = []
    for ch in _chunks(sorted(hh_target)):
        for rid, g, hh in conn.execute(select(r.c.id, r.c.grid_id, r.c.household_id).where(r.c.household_id.in_(ch))):
            if g != hh_target[hh]:
                r_ids.append(rid)
                r_old.append(g)
                r_new.append(hh_target[hh])
    seen = set(r_ids)
    # residents already out of step with their household (in scope)
    q = (select(r.c.id, r.c.grid_id, r.c.household_id, h.c.grid_id)
         .join(h, h.c.id == r.c.household_id).where(r.c.grid_id != h.c.grid_id))
    for ch in _chunks(scope_list) if scope_list is not None else [None]:
        for rid, g, hh, hg in conn.execute(q if ch is None else q.where(h.c.grid_id.in_(ch))):
            if rid not in seen:
                seen.add(rid)
                r_ids.append(rid)
                r_old.append(g)
                r_new.append(hh_target.get(hh, hg))
    if retired:
        for rid, g in conn.execute(select(r.c.id, r.c.grid_id).where(
                r.c.grid_id.in_(sorted(retired)), r.c.household_id.is_(None))):
            if rid not in seen:
                r_ids.append(rid)
                r_old.append(g)
                r_new.append(retired[g])
    plan.moves["residents"] = finish("residents", np.array(r_ids, np.int64), np.array(r_old, np.int64),
                                     np.array(r_new, np.int64))
    for t_name in _TABLES:
        plan.moves.setdefault(t_name, [])
        plan.moves[t_name].sort()
    return plan


def _token(plan: MovePlan, extra: Iterable[Any] = ()) -> str:
    h = hashlib.sha256()
    for t in sorted(plan.moves):
        for m in plan.moves[t]:
            h.update(f"{t}:{m[0]}:{m[2]}:{m[3]};".encode())
    for x in extra:
        h.update(x if isinstance(x, bytes) else str(x).encode())
    return h.hexdigest()[:16]


def _ancestors_by_level(session: Session, grid_ids: Iterable[int]) -> dict[int, tuple[int | None, int | None]]:
    """grid id → (community id, street id), from the materialised paths."""
    gids = sorted(set(grid_ids))
    if not gids:
        return {}
    paths = dict(session.execute(select(Area.id, Area.path).where(Area.id.in_(gids))).all())
    anc_ids = {int(x) for p in paths.values() for x in p.strip("/").split("/") if x}
    levels = dict(session.execute(select(Area.id, Area.level).where(Area.id.in_(sorted(anc_ids)))).all())
    out: dict[int, tuple[int | None, int | None]] = {}
    for g, p in paths.items():
        chain = [int(x) for x in p.strip("/").split("/") if x]
        comm = next((a for a in chain if levels.get(a) == AreaLevel.COMMUNITY.value), None)
        street = next((a for a in chain if levels.get(a) == AreaLevel.STREET.value), None)
        out[g] = (comm, street)
    return out


def write_moves(session: Session, actor: Actor, plan: MovePlan, *, note: str,
                remap: dict[int, int] | None = None) -> dict[str, int]:
    """Apply a plan set-based: one executemany UPDATE per table (grid_id, version + 1,
    updated_at), incidents also get their community/street; one audit row per changed row via
    :func:`audit.bulk_rows`. ``remap`` replaces placeholder grid ids (a grid created by a split)."""
    remap = remap or {}
    now = utcnow()
    done: dict[str, int] = {}
    inc_moves = [(i, u, o, remap.get(n, n)) for i, u, o, n in plan.moves.get("incidents", [])]
    anc = _ancestors_by_level(session, [m[3] for m in inc_moves])
    for table, model in _TABLES.items():
        moves = [(i, u, o, remap.get(n, n)) for i, u, o, n in plan.moves.get(table, [])]
        if not moves:
            done[table] = 0
            continue
        t: Table = model.__table__
        values: dict[str, Any] = {"grid_id": bindparam("b_new"), "version": t.c.version + 1, "updated_at": now}
        if table == "incidents":
            values["community_id"] = bindparam("b_comm")
            values["street_id"] = bindparam("b_street")
        stmt = update(t).where(t.c.id == bindparam("b_id")).values(**values)
        params = []
        for i, _u, _o, n in moves:
            p = {"b_id": i, "b_new": n}
            if table == "incidents":
                p["b_comm"], p["b_street"] = anc.get(n, (None, None))
            params.append(p)
        for ch in _chunks(params, 10_000):
            session.execute(stmt, ch)
        audit_rows = audit.bulk_rows(actor, "update", table, [(i, u, {"grid_id": (o, n)}) for i, u, o, n in moves],
                                     note=note)
        for ch in _chunks(audit_rows, 10_000):
            session.execute(AuditEntry.__table__.insert(), ch)
        done[table] = len(moves)
    return done


def _report(session: Session, plan: MovePlan, *, scope: str, grids: int, dry_run: bool, token: str,
            codes: dict[int, str], seconds: float = 0.0) -> AssignReport:
    def code(g: int | None) -> str | None:
        return None if g is None else codes.get(g, str(g))

    names_out = [PointNote(t, i, nm, lon, lat, code(g)) for t, i, nm, lon, lat, g in plan.outside[:SAMPLE_CAP]]
    names_b = [PointNote(t, i, nm, lon, lat, code(g), [code(x) or "" for x in gs])
               for t, i, nm, lon, lat, g, gs in plan.border[:SAMPLE_CAP]]
    moves: list[MoveRow] = []
    flows: dict[tuple[str | None, str], Counter[str]] = defaultdict(Counter)
    for t, rows in plan.moves.items():
        for i, _u, o, n in rows:
            if len(moves) < SAMPLE_CAP:
                moves.append(MoveRow(t, i, code(o), code(n) or ""))
            flows[(code(o), code(n) or "")][t] += 1
    flow_list = [{"from": f, "to": to, **dict(c)} for (f, to), c in sorted(flows.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))]
    return AssignReport(scope=scope, grids=grids, points=dict(plan.points),
                        changed={t: len(v) for t, v in plan.moves.items()}, outside_count=len(plan.outside),
                        border_count=len(plan.border), outside=names_out, on_border=names_b, moves=moves,
                        flows=flow_list, dry_run=dry_run, token=token, seconds=round(seconds, 3))


def _bbox(geoms: Iterable[Any], pad_deg: float = 1e-6) -> tuple[float, float, float, float]:
    b = shapely.total_bounds(np.array(list(geoms), dtype=object))
    return (b[0] - pad_deg, b[1] - pad_deg, b[2] + pad_deg, b[3] + pad_deg)


def assign(session: Session, actor: Actor, *, area: Area | None = None, dry_run: bool = False) -> AssignReport:
    """Give every building, premise and open incident with a point the grid containing it, and
    let households and residents follow. ``area`` limits it to a subtree (rows whose old or new
    grid lies in it). With ``dry_run`` nothing is written."""
    import time

    t0 = time.perf_counter()
    require(actor, Perm.MANAGE_AREAS, area)
    grid_ids, grid_geoms, codes = _load_grids(session)
    scope: set[int] | None = None
    bbox = None
    if area is not None:
        scope = set(area_svc.subtree_ids(session, area, level=AreaLevel.GRID))
        parts = [g for gid, g in zip(grid_ids, grid_geoms, strict=True) if int(gid) in scope]
        own = _geom(area.boundary)
        parts += [own] if own is not None else []
        bbox = _bbox(parts) if parts else None
    plan = plan_moves(session, grid_ids=grid_ids, grid_geoms=grid_geoms, bbox=bbox, scope=scope)
    token = _token(plan)
    if not dry_run and any(plan.moves.values()):
        write_moves(session, actor, plan, note="按网格边界重新归属 / re-assigned by grid boundaries")
        audit.record(session, actor, "assign_grids", table="areas", row_id=area.id if area else None,
                     changes={t: len(v) for t, v in plan.moves.items()},
                     note=f"网格归属：{area.code if area else '全部'}")
    return _report(session, plan, scope=area.code if area else "*", grids=len(grid_ids), dry_run=dry_run,
                   token=token, codes=codes, seconds=time.perf_counter() - t0)


# ============================================================================================
# Boundary changes: edit, split, merge (preview, then apply)
# ============================================================================================


@dataclass
class ShapeChange:
    code: str
    name: str
    action: str  # reshape / create / delete
    area_m2_before: float | None
    area_m2_after: float | None


@dataclass
class BoundaryChangeReport:
    kind: str  # edit / split / merge
    shapes: list[ShapeChange]
    assignment: AssignReport
    moved: dict[str, int]  # buildings, premises, households, residents, open incidents
    repointed: dict[str, int]  # merge: other rows that referred to the absorbed grid
    applied: bool
    token: str


def _m2(g: Any) -> float | None:
    if g is None or g.is_empty:
        return None
    return round(geo.measure(g).area_m2, 2)


def _check_token(expected: str | None, token: str) -> None:
    if expected is not None and expected != token:
        raise ConflictError("预览之后数据或边界已有变化，请重新预览后再确认。",
                            en="The data or boundaries changed since the preview; preview again and confirm.")


def _moved(plan: MovePlan) -> dict[str, int]:
    return {"buildings": len(plan.moves["buildings"]), "premises": len(plan.moves["premises"]),
            "households": len(plan.moves["households"]), "residents": len(plan.moves["residents"]),
            "open_incidents": len(plan.moves["incidents"])}


def _reshape_plan(session: Session, changes: dict[int, Any], new_grids: dict[int, Any],
                  retired: dict[int, int] | None = None) -> tuple[MovePlan, dict[int, str]]:
    grid_ids, grid_geoms, codes = _load_grids(session)
    ids = [int(g) for g in grid_ids]
    geoms = list(grid_geoms)
    for gid, g in changes.items():
        if gid in ids:
            geoms[ids.index(gid)] = g
        else:
            ids.append(gid)
            geoms.append(g)
    drop = set(retired or {})
    keep = [k for k, gid in enumerate(ids) if gid not in drop]
    ids = [ids[k] for k in keep]
    geoms = [geoms[k] for k in keep]
    for gid, g in new_grids.items():
        ids.append(gid)
        geoms.append(g)
    affected = set(changes) | set(new_grids) | set(retired or {})
    old = {int(g): geom for g, geom in zip(grid_ids, grid_geoms, strict=True) if int(g) in affected}
    bbox = _bbox([*changes.values(), *new_grids.values(), *old.values()])
    plan = plan_moves(session, grid_ids=np.array(ids, dtype=np.int64), grid_geoms=np.array(geoms, dtype=object),
                      bbox=bbox, scope=affected, retired=retired)
    return plan, codes


def _grid(area: Area) -> None:
    if area.level != AreaLevel.GRID.value:
        raise ValidationError(f"{area.name}（{area.code}）不是网格", field="grid", en=f"{area.name} ({area.code}) is not a grid")


def _valid_polygon(g: Any, what: str) -> Any:
    g = shapely.force_2d(g)
    if g.geom_type not in ("Polygon", "MultiPolygon") or g.is_empty:
        raise ValidationError(f"{what}：新边界应为面（Polygon/MultiPolygon），实际为 {g.geom_type}", field="boundary",
                              en=f"{what}: the new boundary must be a Polygon/MultiPolygon, not {g.geom_type}")
    if not g.is_valid:
        raise ValidationError(f"{what}：新边界无效（{shapely.is_valid_reason(g)}）", field="boundary",
                              en=f"{what}: the new boundary is invalid ({shapely.is_valid_reason(g)})")
    return g


def edit_boundaries(session: Session, actor: Actor, *, changes: dict[str, Any], apply: bool = False,
                    expected_token: str | None = None) -> BoundaryChangeReport:
    """Change the boundaries of one or more grids (``{code: lon/lat geometry}``, e.g. both sides
    of a moved border) and re-assign what lies in the changed area. Preview unless ``apply``."""
    by_id: dict[int, Any] = {}
    shapes: list[ShapeChange] = []
    targets: list[tuple[Area, Any]] = []
    for code, g in changes.items():
        a = area_svc.by_code(session, code)
        require(actor, Perm.MANAGE_AREAS, a)
        g = _valid_polygon(g, f"{a.name}（{a.code}）")
        targets.append((a, g))
        shapes.append(ShapeChange(a.code, a.name, "reshape", _m2(_geom(a.boundary)), _m2(g)))
        if a.level == AreaLevel.GRID.value:
            by_id[a.id] = g
    if by_id:
        plan, codes = _reshape_plan(session, by_id, {})
    else:
        plan, codes = MovePlan(moves={t: [] for t in _TABLES}), {}
    token = _token(plan, [shapely.to_wkb(g) for _, g in targets])
    report = _report(session, plan, scope=",".join(changes), grids=len(codes), dry_run=not apply, token=token,
                     codes=codes)
    if apply:
        _check_token(expected_token, token)
        for a, g in targets:
            a.boundary = shapely.to_wkb(g)
            a.center_lon, a.center_lat = geo.label_point(g)
        session.flush()
        write_moves(session, actor, plan, note="边界调整后重新归属 / re-assigned after a boundary edit")
        audit.record(session, actor, "edit_boundary", table="areas", changes={"grids": list(changes), **_moved(plan)},
                     note="网格边界调整")
    return BoundaryChangeReport("edit", shapes, report, _moved(plan), {}, apply, token)


def _next_grid_code(session: Session, community: Area) -> tuple[str, int]:
    codes = session.scalars(select(Area.code).where(Area.parent_id == community.id)).all()
    n = 0
    for c in codes:
        tail = c[len(community.code):]
        if tail.isdigit():
            n = max(n, int(tail))
    return f"{community.code}{n + 1:03d}", n + 1


def split_grid(session: Session, actor: Actor, *, grid: Area, line: Any, new_code: str | None = None,
               new_name: str | None = None, apply: bool = False,
               expected_token: str | None = None) -> BoundaryChangeReport:
    """Cut a grid in two along a line (lon/lat LineString crossing it). The grid keeps the larger
    part; a new sibling grid (next free code of the community unless ``new_code``) gets the other,
    with what lies in it. Households without a building stay with the original grid."""
    from shapely.ops import split as _split

    _grid(grid)
    require(actor, Perm.MANAGE_AREAS, grid)
    g = _geom(grid.boundary)
    if g is None:
        raise ValidationError(f"{grid.name}（{grid.code}）没有边界，无法拆分", field="boundary",
                              en=f"{grid.name} ({grid.code}) has no boundary to split")
    line = shapely.force_2d(line)
    if line.geom_type not in ("LineString", "MultiLineString"):
        raise ValidationError(f"分割线应为 LineString，实际为 {line.geom_type}", field="line",
                              en=f"The cut must be a LineString, not {line.geom_type}")
    pieces = [p for p in shapely.get_parts(_split(g, line)) if p.geom_type == "Polygon"]
    if len(pieces) != 2:
        raise ValidationError(f"分割线把 {grid.name} 分成了 {len(pieces)} 块，应恰好两块（线须完整穿过网格）",
                              field="line", en=f"The line cuts {grid.name} into {len(pieces)} parts, not exactly two")
    pieces.sort(key=lambda p: -geo.measure(p).area_m2)
    keep, give = pieces
    community = session.get(Area, grid.parent_id) if grid.parent_id else None
    assert community is not None
    code, num = (new_code, 0) if new_code else _next_grid_code(session, community)
    name = new_name or (f"第{num}网格" if num else f"{grid.name}（拆分）")
    placeholder = -999  # the new grid's id until it exists (ids of real rows are positive)
    plan, codes = _reshape_plan(session, {grid.id: keep}, {placeholder: give})
    codes = {**codes, placeholder: code}
    token = _token(plan, [shapely.to_wkb(keep), shapely.to_wkb(give), code])
    shapes = [ShapeChange(grid.code, grid.name, "reshape", _m2(g), _m2(keep)),
              ShapeChange(code, name, "create", None, _m2(give))]
    report = _report(session, plan, scope=grid.code, grids=len(codes), dry_run=not apply, token=token, codes=codes)
    if apply:
        _check_token(expected_token, token)
        grid.boundary = shapely.to_wkb(keep)
        grid.center_lon, grid.center_lat = geo.label_point(keep)
        new = area_svc.create_area(session, actor, code=code, name=name, level=AreaLevel.GRID, parent=community,
                                   boundary=shapely.to_wkb(give), center=geo.label_point(give))
        write_moves(session, actor, plan, note=f"网格拆分 {grid.code} → {code}", remap={placeholder: new.id})
        audit.record(session, actor, "split_grid", table="areas", row_id=grid.id,
                     changes={"grid": grid.code, "new_grid": code, **_moved(plan)}, note=f"拆分网格 {grid.code}")
    return BoundaryChangeReport("split", shapes, report, _moved(plan), {}, apply, token)


def _area_fk_columns() -> list[tuple[Table, Any]]:
    """Every column of every table that refers to areas.id (except the tree's own parent_id)."""
    out = []
    for t in Base.metadata.sorted_tables:
        for fk in t.foreign_keys:
            if fk.column.table.name == "areas" and not (t.name == "areas"):
                out.append((t, fk.parent))
    return out


def merge_grids(session: Session, actor: Actor, *, keep: Area, absorb: Area, apply: bool = False,
                expected_token: str | None = None) -> BoundaryChangeReport:
    """Merge grid ``absorb`` into sibling grid ``keep``: ``keep`` takes the union of the two
    boundaries; everything that referred to ``absorb`` (households, residents, places, open and
    closed incidents, visit logs, warden assignments…) refers to ``keep``; ``absorb`` is deleted.
    The two must share a border."""
    for a in (keep, absorb):
        _grid(a)
        require(actor, Perm.MANAGE_AREAS, a)
    if keep.id == absorb.id:
        raise ValidationError("不能把网格与自身合并", en="A grid cannot be merged with itself")
    if keep.parent_id != absorb.parent_id:
        raise ValidationError(f"{keep.name} 与 {absorb.name} 不属于同一社区，不能合并", field="grid",
                              en=f"{keep.code} and {absorb.code} are in different communities")
    ga, gb = _geom(keep.boundary), _geom(absorb.boundary)
    if ga is None or gb is None:
        raise ValidationError("两个网格都需要有边界才能合并", field="boundary", en="Both grids need a boundary to merge")
    ga, gb = (x if x.is_valid else geo.polygonal(shapely.make_valid(x)) for x in (ga, gb))
    if not ga.intersects(gb):
        raise ValidationError(f"{keep.name} 与 {absorb.name} 不相邻，不能合并", field="grid",
                              en=f"{keep.code} and {absorb.code} do not share a border")
    union = geo.polygonal(shapely.union_all([ga, gb]))
    union = shapely.normalize(union) if union.geom_type == "MultiPolygon" else union
    plan, codes = _reshape_plan(session, {keep.id: union}, {}, retired={absorb.id: keep.id})
    fk_cols = _area_fk_columns()
    moved_tables = {t: m for t, m in _TABLES.items()}
    repoint: dict[str, int] = {}
    for t, col in fk_cols:
        n = session.scalar(select(func.count()).select_from(t).where(col == absorb.id)) or 0
        if t.name in moved_tables and col.name == "grid_id":
            n -= sum(1 for m in plan.moves[t.name] if m[2] == absorb.id)
        if n:
            repoint[f"{t.name}.{col.name}"] = int(n)
    token = _token(plan, [shapely.to_wkb(union), json.dumps(repoint, sort_keys=True)])
    shapes = [ShapeChange(keep.code, keep.name, "reshape", _m2(ga), _m2(union)),
              ShapeChange(absorb.code, absorb.name, "delete", _m2(gb), None)]
    report = _report(session, plan, scope=f"{keep.code}+{absorb.code}", grids=len(codes), dry_run=not apply,
                     token=token, codes=codes)
    if apply:
        _check_token(expected_token, token)
        keep.boundary = shapely.to_wkb(union)
        keep.center_lon, keep.center_lat = geo.label_point(union)
        session.flush()
        write_moves(session, actor, plan, note=f"网格合并 {absorb.code} → {keep.code}")
        now = utcnow()
        for t, col in fk_cols:
            # (rows of the moved tables still on the absorbed grid, e.g. closed incidents, move here too)
            idc = t.c.get("id")
            sel_cols = [idc] if idc is not None else list(t.primary_key.columns)
            uc = t.c.get("uuid")
            rows = session.execute(select(*sel_cols, *([uc] if uc is not None else [])).where(col == absorb.id)).all()
            if not rows:
                continue
            vals: dict[str, Any] = {col.name: keep.id}
            if "version" in t.c:
                vals["version"] = t.c.version + 1
            if "updated_at" in t.c:
                vals["updated_at"] = now
            session.execute(update(t).where(col == absorb.id).values(**vals))
            if idc is not None:
                arows = audit.bulk_rows(actor, "update", t.name,
                                        [(r[0], r[1] if uc is not None else None, {col.name: (absorb.id, keep.id)})
                                         for r in rows], note=f"网格合并 {absorb.code} → {keep.code}")
                for ch in _chunks(arows, 10_000):
                    session.execute(AuditEntry.__table__.insert(), ch)
        session.expire_all()
        gone = session.get(Area, absorb.id)
        code = absorb.code
        session.delete(gone)
        session.flush()
        audit.record(session, actor, "merge_grids", table="areas", row_id=keep.id,
                     changes={"keep": keep.code, "absorbed": code, **_moved(plan), "repointed": repoint},
                     note=f"合并网格 {code} → {keep.code}")
    return BoundaryChangeReport("merge", shapes, report, _moved(plan), repoint, apply, token)


# ============================================================================================
# Service coverage (15-minute service circle, 15分钟社区生活圈)
# ============================================================================================


@dataclass
class CommunityCoverage:
    code: str
    name: str
    buildings: int
    buildings_covered: int
    households: int
    households_covered: int
    building_share: float
    household_share: float


@dataclass
class UncoveredBuilding:
    id: int
    code: str | None
    name: str
    community_code: str | None
    grid_code: str | None
    households: int
    nearest_m: float | None


@dataclass
class CoverageReport:
    radius_m: float
    facilities: int
    crs: str
    buildings: int
    buildings_covered: int
    households: int
    households_covered: int
    communities: list[CommunityCoverage]
    uncovered_count: int
    uncovered: list[UncoveredBuilding]


def facilities_from_geojson(data: dict[str, Any], *, crs: str = "wgs84", name_field: str | None = None,
                            source: str = "GeoJSON") -> list[tuple[str, float, float]]:
    """(name, lon, lat) of the Point/MultiPoint features of a FeatureCollection."""
    feats = _features(data, source)
    nkey = _pick_key(feats, name_field, NAME_KEYS)
    out: list[tuple[str, float, float]] = []
    for i, f in enumerate(feats, 1):
        g = f.get("geometry") or {}
        if g.get("type") not in ("Point", "MultiPoint"):
            raise ValidationError(f"{source}：第 {i} 个要素不是点（{g.get('type')}）", field="geometry",
                                  en=f"{source}: feature {i} is not a point ({g.get('type')})")
        name = str((f.get("properties") or {}).get(nkey) or f"#{i}") if nkey else f"#{i}"
        for p in shapely.get_parts(_to_crs(shape(g), crs)):
            out.append((name, float(p.x), float(p.y)))
    return out


def coverage(session: Session, actor: Actor, *, facilities: list[tuple[str, float, float]] | None = None,
             facility_kind: str | None = None, radius_m: float = 1000.0, area: Area | None = None,
             uncovered_limit: int = SAMPLE_CAP) -> CoverageReport:
    """Share of buildings and households of each community within ``radius_m`` metres (measured
    in the Gauss–Krüger plane) of a facility: points given, or Facility rows of ``facility_kind``."""
    require(actor, Perm.READ, area)
    if radius_m <= 0 or not math.isfinite(radius_m):
        raise ValidationError(f"半径应为正数（{radius_m}）", field="radius", en=f"The radius must be positive ({radius_m})")
    if facilities is None:
        if not facility_kind:
            raise ValidationError("请给出设施点文件或设施类型", field="facilities",
                                  en="Give a facility file or a facility kind")
        facilities = [(n, lo, la) for n, lo, la in session.execute(
            select(Facility.name, Facility.lon, Facility.lat).where(
                Facility.kind == facility_kind, Facility.lon.is_not(None), Facility.lat.is_not(None)))]
    area_rows = session.execute(select(Area.id, Area.code, Area.name, Area.level, Area.path)).all()
    by_id = {r.id: r for r in area_rows}
    grid_comm: dict[int, int | None] = {}
    for r in area_rows:
        if r.level == AreaLevel.GRID.value:
            chain = [int(x) for x in r.path.strip("/").split("/") if x]
            grid_comm[r.id] = next((a for a in chain if by_id[a].level == AreaLevel.COMMUNITY.value), None)
    q = select(Building.id, Building.code, Building.name, Building.lon, Building.lat, Building.grid_id).where(
        Building.lon.is_not(None), Building.lat.is_not(None))
    if area is not None:
        q = q.where(Building.grid_id.in_(select(Area.id).where(Area.path.like(area.path + "%"))))
    q = q.where(grid_scope_filter(actor, Building.grid_id))  # a community's staff see their community only
    b = session.execute(q.order_by(Building.id)).all()
    hh = dict(session.execute(select(Household.building_id, func.count()).where(
        Household.building_id.is_not(None)).group_by(Household.building_id)).all())
    blon = np.array([r.lon for r in b], dtype=float)
    blat = np.array([r.lat for r in b], dtype=float)
    bhh = np.array([hh.get(r.id, 0) for r in b], dtype=np.int64)
    if len(b):
        proj = geo.Projection.around(float(np.mean(blon)), float(np.mean(blat)))
    elif facilities:
        proj = geo.Projection.around(facilities[0][1], facilities[0][2])
    else:
        proj = geo.Projection.around(117.0, 31.8)
    covered = np.zeros(len(b), dtype=bool)
    nearest = np.full(len(b), np.nan)
    if len(b) and facilities:
        fx, fy = proj.xy([f[1] for f in facilities], [f[2] for f in facilities])
        bx, by = proj.xy(blon, blat)
        fpts = shapely.points(fx, fy)
        bpts = shapely.points(bx, by)
        tree = shapely.STRtree(fpts)
        bi, _ = tree.query(bpts, predicate="dwithin", distance=radius_m)
        covered[np.unique(bi)] = True
        unc = np.flatnonzero(~covered)
        if len(unc):
            (ui, _fi), dist = tree.query_nearest(bpts[unc], return_distance=True, all_matches=False)
            nearest[unc[ui]] = dist
    per: dict[int | None, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    comm_of = np.array([grid_comm.get(r.grid_id) or -1 for r in b], dtype=np.int64)
    for c in np.unique(comm_of):
        m = comm_of == c
        per[int(c)] = [int(m.sum()), int((m & covered).sum()), int(bhh[m].sum()), int(bhh[m & covered].sum())]
    comms = []
    for c, (nb, nbc, nh, nhc) in sorted(per.items(), key=lambda kv: by_id[kv[0]].code if kv[0] in by_id else ""):
        r = by_id.get(c)
        comms.append(CommunityCoverage(r.code if r else "", r.name if r else "（未归属社区）", nb, nbc, nh, nhc,
                                       round(nbc / nb, 4) if nb else 0.0, round(nhc / nh, 4) if nh else 0.0))
    unc_rows = []
    for i in np.flatnonzero(~covered)[:uncovered_limit]:
        r = b[int(i)]
        c = grid_comm.get(r.grid_id)
        unc_rows.append(UncoveredBuilding(int(r.id), r.code, r.name, by_id[c].code if c in by_id else None,
                                          by_id[r.grid_id].code if r.grid_id in by_id else None, int(bhh[i]),
                                          None if np.isnan(nearest[i]) else round(float(nearest[i]), 1)))
    return CoverageReport(radius_m=radius_m, facilities=len(facilities), crs=f"EPSG:{proj.epsg}", buildings=len(b),
                          buildings_covered=int(covered.sum()), households=int(bhh.sum()),
                          households_covered=int(bhh[covered].sum()), communities=comms,
                          uncovered_count=int((~covered).sum()), uncovered=unc_rows)


__all__ = [
    "AreaMeasure", "AssignReport", "BoundaryChangeReport", "CheckIssue", "CheckReport", "CoverageReport",
    "GridmanError", "ImportResult", "assign", "check_subtree", "coverage", "edit_boundaries", "export_geojson",
    "facilities_from_geojson", "import_geojson", "measure_area", "merge_grids", "plan_moves", "read_geojson",
    "split_grid", "write_moves",
]

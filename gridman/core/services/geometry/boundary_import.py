"""Boundary import (边界导入): create or update areas from a GeoJSON FeatureCollection.

All or nothing: every feature is checked first; any problem rolls the whole file back and the
result lists every problem with its feature number. Long files report progress and can be
cancelled between features (:mod:`gridman.core.tasks`); a cancelled import writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core import divisions, geo, tasks
from gridman.core.enums import AreaLevel
from gridman.core.models import Area
from gridman.core.services import areas as area_svc
from gridman.core.services import audit
from gridman.core.services.errors import ValidationError
from gridman.core.services.geometry.geojson import (
    CODE_KEYS,
    CRS_CHOICES,
    NAME_KEYS,
    check_crs,
    code_text,
    features,
    pick_key,
    to_wgs84,
)
from gridman.core.services.permissions import Actor, Perm, require, require_area

LEVEL_ORDER = {lv.value: i for i, lv in enumerate(AreaLevel)}


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
    from_table: list[str] = field(default_factory=list)  # ancestors created from the GB/T 2260 table


@dataclass
class _Feature:
    index: int
    code: str
    name: str
    level: str
    parent_code: str | None
    geom: Any  # lon/lat as stored, or None (an area without a boundary, e.g. the city)


def _problem(res: ImportResult, i: int, code: str | None, zh: str, en: str) -> None:
    res.problems.append(FeatureProblem(i, code, zh, en))


def _read_geometry(res: ImportResult, i: int, code: str, g: Any, crs: str) -> Any:
    """The feature's polygon in stored lon/lat, or None after recording why it cannot be used."""
    if not isinstance(g, dict) or g.get("type") not in ("Polygon", "MultiPolygon"):
        gtype = g.get("type") if isinstance(g, dict) else None
        _problem(res, i, code, f"第 {i} 个要素（{code}）的几何类型 {gtype} 不是面（Polygon/MultiPolygon）",
                 f"feature {i} ({code}): geometry {gtype} is not a Polygon/MultiPolygon")
        return None
    try:
        geom = shapely.force_2d(shape(g))
    except Exception:  # noqa: BLE001 - malformed coordinates: reported per feature
        _problem(res, i, code, f"第 {i} 个要素（{code}）的坐标无法解析",
                 f"feature {i} ({code}): unreadable coordinates")
        return None
    b = geom.bounds
    projected = crs not in CRS_CHOICES
    if not geom.is_empty and projected:
        geom = to_wgs84(geom, crs)
    lb = geom.bounds
    if geom.is_empty or not (-180 <= lb[0] <= lb[2] <= 180 and -90 <= lb[1] <= lb[3] <= 90):
        shown = tuple(round(v, 3) for v in b)
        _problem(res, i, code, f"第 {i} 个要素（{code}）的坐标不是经纬度（范围 {shown}）：请指定文件的坐标系，如 EPSG:4548",
                 f"feature {i} ({code}): coordinates are not longitude/latitude (bounds {shown}); "
                 "give the file's coordinate system, e.g. EPSG:4548")
        return None
    return geom if projected else to_wgs84(geom, crs)


def _parse(feats: list[dict[str, Any]], res: ImportResult, want_level: str | None, crs: str,
           task: tasks.TaskState) -> list[_Feature]:
    """The usable features, parents' levels first; problems and skipped codes go into ``res``."""
    ckey, nkey = res.code_field, res.name_field
    parsed: list[_Feature] = []
    for i, feat in enumerate(feats, 1):
        task.step(i, len(feats), "读取要素 / reading features")
        props = feat.get("properties") or {}
        code = (code_text(props.get(ckey)) if ckey else None) or code_text(feat.get("id"))
        if not code:
            _problem(res, i, None, f"第 {i} 个要素缺少编码属性（{ckey or '未识别'}）",
                     f"feature {i}: no code property ({ckey or 'none recognised'})")
            continue
        name = (str(props.get(nkey) or "").strip() if nkey else "") or code
        f_level = props.get("level") if want_level is None else want_level
        if want_level is not None and props.get("level") not in (None, want_level):
            res.skipped.append(code)
            continue
        if f_level not in LEVEL_ORDER:
            _problem(res, i, code, f"第 {i} 个要素（{code}）没有指定层级，请用 --level",
                     f"feature {i} ({code}): no level; give --level")
            continue
        pcode = _parent_property(props)
        g = feat.get("geometry")
        if g is None:  # a feature without geometry: the area without a boundary (e.g. the city)
            parsed.append(_Feature(i, code, name, f_level, pcode, None))
            continue
        geom = _read_geometry(res, i, code, g, crs)
        if geom is not None:
            parsed.append(_Feature(i, code, name, f_level, pcode, geom))
    parsed.sort(key=lambda f: (LEVEL_ORDER[f.level], f.index))
    return parsed


def _parent_property(props: dict[str, Any]) -> str | None:
    """The parent code a feature names itself: ``parent_code`` / ``parent_adcode``, DataV's
    ``parent: {"adcode": 340100}``, or the last of its ``acroutes``."""
    for key in ("parent_code", "parent_adcode", "parentCode"):
        if props.get(key) not in (None, ""):
            return code_text(props[key])
    p = props.get("parent")
    if isinstance(p, dict):
        p = p.get("adcode") or p.get("code")
    if p not in (None, ""):
        return code_text(p)
    routes = props.get("acroutes")
    return code_text(routes[-1]) if isinstance(routes, list) and routes else None


class _Parents:
    """Finds each feature's parent: the one given, else the code the feature names as its parent,
    else the existing (or, in a dry run, planned) area among the codes its code's parent may have
    (:func:`gridman.core.divisions.parent_codes`: 340102 → 340100), else the longest prefix of its
    code. A parent in none of these but in the bundled GB/T 2260 table (``use_table``) is created
    from the table, with its own parents in turn."""

    def __init__(self, session: Session, actor: Actor, parent: Area | None, res: ImportResult,
                 use_table: bool) -> None:
        self.session, self.actor, self.parent, self.res, self.use_table = session, actor, parent, res, use_table
        self.existing: dict[str, Area] = {a.code: a for a in session.scalars(select(Area))}
        self.planned: dict[str, str] = {}  # codes created by this file in a dry run → level

    def _known(self, code: str, allowed: set[str]) -> tuple[Area | None, str | None] | None:
        a = self.existing.get(code)
        if a is not None and a.level in allowed:
            return a, None
        if self.planned.get(code) in allowed:
            return None, code
        return None

    def find(self, code: str, lv: str, pcode: str | None) -> tuple[Area | None, str | None]:
        """(parent area, None), or (None, a planned parent's code), or (None, "?" + missing code)."""
        if self.parent is not None:
            return self.parent, None
        if lv == AreaLevel.CITY.value:
            return None, None
        allowed = {p.value for p in area_svc.ALLOWED_PARENTS[AreaLevel(lv)] if p is not None}
        if pcode:
            found = self._known(pcode, allowed) or self._from_table(pcode, allowed)
            return found if found is not None else (None, "?" + pcode)
        candidates = divisions.parent_codes(code)
        for cand in [*candidates, *(code[:k] for k in range(len(code) - 1, 1, -1))]:
            found = self._known(cand, allowed)
            if found is not None:
                return found
        for cand in candidates:
            found = self._from_table(cand, allowed)
            if found is not None:
                return found
        return None, "?" + (candidates[0] if candidates else "")

    def _from_table(self, code: str, allowed: set[str]) -> tuple[Area | None, str | None] | None:
        """Create the division ``code`` from the bundled table (None if it is not there, is of a
        level that cannot hold the child, or has no parent itself)."""
        d = divisions.lookup(code) if self.use_table else None
        if d is None or d.level not in allowed:
            return None
        par, pending = self.find(d.code, d.level, None)
        if pending and pending.startswith("?"):
            if d.level != AreaLevel.DISTRICT.value:
                return None
            par, pending = None, None  # a county directly under its province (省直辖): at the top
        self.res.created.append(d.code)
        self.res.from_table.append(d.code)
        if self.res.dry_run:
            self.planned[d.code] = d.level
            return None, d.code
        self.existing[d.code] = area_svc.create_area(self.session, self.actor, code=d.code, name=d.name,
                                                     level=d.level, parent=par)
        return self.existing[d.code], None


def _apply(session: Session, actor: Actor, f: _Feature, parents: _Parents, res: ImportResult) -> None:
    """Create or update the area of one feature (or, in a dry run, only count it)."""
    wkb = shapely.to_wkb(f.geom) if f.geom is not None else None
    center = geo.label_point(f.geom) if f.geom is not None else None
    par, pending = parents.find(f.code, f.level, f.parent_code)
    if pending and pending.startswith("?"):
        missing = pending[1:]
        _problem(res, f.index, f.code,
                 f"第 {f.index} 个要素（{f.code}）找不到上级区划{('（' + missing + '）') if missing else ''}："
                 "请先用 gridman areas add 添加上级，或用 --parent 指定",
                 f"feature {f.index} ({f.code}): no parent area found{(' (' + missing + ')') if missing else ''}; "
                 "add it first with gridman areas add, or give --parent")
        return
    area = parents.existing.get(f.code)
    if area is None:
        if res.dry_run:
            parents.planned[f.code] = f.level
        else:
            parents.existing[f.code] = area_svc.create_area(
                session, actor, code=f.code, name=f.name, level=f.level, parent=par, boundary=wkb,
                center=center)
        res.created.append(f.code)
        return
    if area.level != f.level:
        raise ValidationError(f"编码 {f.code} 已是{area.level}级区划“{area.name}”，不能作为{f.level}导入",
                              field="code", en=f"code {f.code} is already the {area.level} {area.name}")
    if par is not None and area.parent_id != par.id:
        raise ValidationError(f"编码 {f.code}（{area.name}）已在其他上级区划之下", field="parent",
                              en=f"code {f.code} ({area.name}) already sits under another parent")
    require(actor, Perm.MANAGE_AREAS, area)
    if area.boundary == wkb and area.name == f.name:
        res.unchanged.append(f.code)
        return
    if not res.dry_run:
        area.name = f.name
        area.boundary = wkb
        area.center_lon, area.center_lat = center if center is not None else (None, None)
    res.updated.append(f.code)


def _refuse(res: ImportResult, source: str) -> ValidationError:
    head = "；".join(p.reason for p in res.problems[:5])
    head_en = "; ".join(p.reason_en for p in res.problems[:5])
    more = len(res.problems) - 5
    return ValidationError(f"{source}：{len(res.problems)} 个要素有问题，未导入任何内容。{head}" + (f"；另有 {more} 个" if more > 0 else ""),
                           en=f"{source}: {len(res.problems)} features have problems; nothing imported. {head_en}"
                           + (f"; {more} more" if more > 0 else ""))


def import_geojson(session: Session, actor: Actor, *, data: dict[str, Any], level: AreaLevel | str | None = None,
                   parent_id: int | None = None, code_field: str | None = None, name_field: str | None = None,
                   crs: str = "wgs84", source: str | None = None, dry_run: bool = False,
                   use_table: bool = True, task: tasks.TaskState | None = None) -> ImportResult:
    """Create or update areas from a GeoJSON FeatureCollection (Polygon / MultiPolygon).

    ``level`` is the level of the features (None: each feature's ``level`` property, as written by
    :func:`~gridman.core.services.geometry.geojson.export_geojson`); features of another level are
    skipped. The parent is area ``parent_id`` if given, else the parent the feature names
    (``parent_code``, DataV's ``parent.adcode``), else the existing area its code belongs under
    (GB/T 2260: 340102 → 340100; statistical codes below: 340104001 → 340104). With ``use_table``
    a parent missing from the database but in the bundled GB/T 2260 table
    (:mod:`gridman.core.divisions`) is created by its name there (listed in ``from_table``). An existing code is updated in place (name, boundary)
    if it sits under the same parent. All or nothing: any problem rolls the whole file back (the
    result lists every problem with its feature number). ``task`` gets progress and may cancel
    (between features, inside the caller's transaction: nothing is written then).
    """
    task = tasks.ensure(task)
    source = source or "GeoJSON"
    check_crs(crs)
    want_level = AreaLevel(level).value if level else None
    feats = features(data, source)
    res = ImportResult(source=source, level=want_level, crs=crs, features=len(feats),
                       code_field=pick_key(feats, code_field, CODE_KEYS),
                       name_field=pick_key(feats, name_field, NAME_KEYS), dry_run=dry_run)
    parent = require_area(session, actor, Perm.MANAGE_AREAS, parent_id) if parent_id is not None else None
    if parent is None:
        require(actor, Perm.MANAGE_AREAS)
    parsed = _parse(feats, res, want_level, crs, task.sub(0.0, 0.3))
    parents = _Parents(session, actor, parent, res, use_table)
    writing = task.sub(0.3, 1.0)
    for n, f in enumerate(parsed, 1):
        writing.step(n, len(parsed), "写入区划 / writing areas")
        try:
            _apply(session, actor, f, parents, res)
        except ValidationError as exc:
            _problem(res, f.index, f.code, f"第 {f.index} 个要素：{exc.message}", f"feature {f.index}: {exc.en}")
    task.check()
    if res.problems and not dry_run:
        raise _refuse(res, source)
    if not dry_run and (res.created or res.updated):
        session.flush()
        audit.record(session, actor, "import_geojson", table="areas",
                     changes={"source": source, "created": len(res.created), "updated": len(res.updated)},
                     note=f"GeoJSON 边界导入 {source}")
    task.progress(1.0, "完成 / done")
    return res

"""GeoJSON files (file io): reading a file, finding its code and name properties, coordinate
systems (GCJ-02 → WGS-84), writing an area's subtree, facility points and replacement boundaries.

Boundaries live in ``Area.boundary`` as WKB in WGS-84/CGCS2000 longitude–latitude; a GCJ-02 file
(高德/腾讯 web maps) is converted on reading.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, cast

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core import geo
from gridman.core.enums import AreaLevel
from gridman.core.models import Area
from gridman.core.services import scope
from gridman.core.services.errors import NotFound, ValidationError
from gridman.core.services.geometry.shared import wkb_geometry
from gridman.core.services.permissions import Actor, Perm, require_area

# Property keys common publishers use: DataV/阿里云 (adcode, name), 天地图/国家基础地理 (PAC, NAME),
# statistical bureau exports (code, 区划代码), and generic GIS exports (CODE, id).
CODE_KEYS = ("code", "adcode", "CODE", "ADCODE", "Code", "PAC", "pac", "gb", "GB", "区划代码", "编码", "代码",
             "网格编码", "grid_code", "id", "ID")
NAME_KEYS = ("name", "NAME", "Name", "名称", "网格名称", "区划名称", "mc", "MC", "fullname")
CRS_CHOICES = ("wgs84", "cgcs2000", "gcj02")


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
        raise ValidationError(f"{p.name}：第 {exc.lineno} 行第 {exc.colno} 列不是合法的 JSON，请检查文件内容",
                              field="file", en=f"{p.name}: invalid JSON at line {exc.lineno} column {exc.colno}; check the file") from exc
    if not isinstance(data, dict):
        raise ValidationError(f"{p.name}：不是 GeoJSON 对象", field="file", en=f"{p.name}: not a GeoJSON object")
    return data


def features(data: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """The features of a FeatureCollection (or the one Feature)."""
    kind = data.get("type")
    if kind == "FeatureCollection" and isinstance(data.get("features"), list):
        return data["features"]
    if kind == "Feature":
        return [data]
    raise ValidationError(f"{source}：应为 GeoJSON FeatureCollection（实际 type={kind!r}）", field="type",
                          en=f"{source}: expected a GeoJSON FeatureCollection (type={kind!r})")


def pick_key(feats: list[dict[str, Any]], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    """The property holding the codes (or names): ``wanted``, else the first candidate with values."""
    if wanted:
        return wanted
    for feat in feats[:50]:
        props = feat.get("properties") or {}
        for k in candidates:
            if props.get(k) not in (None, ""):
                return k
    return None


def code_text(v: Any) -> str | None:
    """A code property as text (a number read as 340104.0 becomes "340104")."""
    if v is None or v == "":
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def check_crs(crs: str) -> None:
    """``crs`` is one of :data:`CRS_CHOICES` or anything PROJ knows (``EPSG:4548``, a .prj's WKT)."""
    if crs in CRS_CHOICES:
        return
    try:
        _to_lonlat(crs)
    except Exception as exc:  # noqa: BLE001 — pyproj's CRSError and kin: the user's input is wrong
        raise ValidationError(f"坐标系 {crs[:60]!r} 无法识别（可选 wgs84、cgcs2000、gcj02，或 EPSG 代码，如 EPSG:4548）",
                              field="crs", en=f"Unknown coordinate system {crs[:60]!r} (wgs84, cgcs2000, gcj02, "
                              "or an EPSG code such as EPSG:4548)") from exc


@cache
def _to_lonlat(crs: str) -> Any:
    from pyproj import CRS, Transformer

    return Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4326), always_xy=True)


def short_crs(crs: str) -> str:
    """``EPSG:4548`` for a WKT PROJ recognises as that code, else the text as given."""
    from pyproj import CRS

    try:
        code = CRS.from_user_input(crs).to_epsg(min_confidence=70)
    except Exception:  # noqa: BLE001 — an unreadable .prj is reported when it is used
        return crs
    return f"EPSG:{code}" if code else crs


def to_wgs84(geom: Any, crs: str) -> Any:
    """A geometry of a file in ``crs`` as stored (WGS-84/CGCS2000 lon/lat): GCJ-02 shifted back,
    projected coordinates (e.g. a CGCS2000 Gauss–Krüger zone) unprojected with PROJ."""
    if crs == "gcj02":
        return geo.gcj02_geometry_to_wgs84(geom)
    if crs in CRS_CHOICES:
        return geom
    t = _to_lonlat(crs)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def export_geojson(session: Session, actor: Actor, *, area_id: int,
                   levels: Iterable[AreaLevel | str] | None = None) -> dict[str, Any]:
    """The subtree of area ``area_id`` (itself included) as a FeatureCollection in lon/lat, parents
    before children, with ``code``/``name``/``level``/``parent_code`` properties so the file can
    be imported back unchanged (coordinates are written at full double precision)."""
    area = require_area(session, actor, Perm.EXPORT, area_id)
    q = scope.subtree_areas(area.path).order_by(Area.depth, Area.code)
    if levels:
        q = q.where(Area.level.in_([AreaLevel(lv).value for lv in levels]))
    rows = cast(list[Area], list(session.scalars(q)))  # scope's Select[tuple[Area]] types rows as tuples
    parent_ids = {a.parent_id for a in rows if a.parent_id}
    pcodes = dict(session.execute(select(Area.id, Area.code).where(Area.id.in_(parent_ids))).all()) if parent_ids else {}
    feats = []
    for a in rows:
        g = wkb_geometry(a.boundary)
        feats.append({"type": "Feature",
                      "properties": {"code": a.code, "name": a.name, "level": a.level,
                                     "parent_code": pcodes.get(a.parent_id) if a.parent_id else None},
                      "geometry": mapping(g) if g is not None else None})
    return {"type": "FeatureCollection", "name": f"{area.code} {area.name}", "features": feats}


def geojson_text(fc: dict[str, Any]) -> str:
    return json.dumps(fc, ensure_ascii=False)


def facilities_from_geojson(data: dict[str, Any], *, crs: str = "wgs84", name_field: str | None = None,
                            source: str = "GeoJSON") -> list[tuple[str, float, float]]:
    """(name, lon, lat) of the Point/MultiPoint features of a FeatureCollection."""
    feats = features(data, source)
    nkey = pick_key(feats, name_field, NAME_KEYS)
    out: list[tuple[str, float, float]] = []
    for i, f in enumerate(feats, 1):
        g = f.get("geometry") or {}
        if g.get("type") not in ("Point", "MultiPoint"):
            raise ValidationError(f"{source}：第 {i} 个要素不是点（{g.get('type')}）", field="geometry",
                                  en=f"{source}: feature {i} is not a point ({g.get('type')})")
        name = str((f.get("properties") or {}).get(nkey) or f"#{i}") if nkey else f"#{i}"
        for p in shapely.get_parts(_geometry(g, crs, source, i, name)):
            out.append((name, float(p.x), float(p.y)))
    return out


def _geometry(g: Any, crs: str, source: str, i: int, what: str) -> Any:
    """Feature ``i``'s geometry in lon/lat; malformed coordinates are a :class:`ValidationError`
    naming the feature (not shapely's message)."""
    try:
        geom = to_wgs84(shapely.force_2d(shape(g)), crs)
        if geom.geom_type in ("Point", "MultiPoint") and any(p.is_empty for p in shapely.get_parts(geom)):
            raise ValueError("a point without coordinates")
    except Exception as exc:  # noqa: BLE001 - malformed coordinates: reported with the feature
        raise ValidationError(f"{source}：第 {i} 个要素（{what}）的坐标无法解析", field="geometry",
                              en=f"{source}: feature {i} ({what}): unreadable coordinates") from exc
    return geom


def boundaries_from_geojson(data: dict[str, Any], *, crs: str = "wgs84", default_code: str | None = None,
                            source: str = "GeoJSON") -> dict[str, Any]:
    """``{code: lon/lat geometry}`` of a file of replacement boundaries (for
    :func:`~gridman.core.services.geometry.reshaping.edit_boundaries`); a feature without a code
    property is ``default_code``'s."""
    check_crs(crs)
    changes: dict[str, Any] = {}
    for i, f in enumerate(features(data, source), 1):
        props = f.get("properties") or {}
        code = code_text(next((props.get(k) for k in CODE_KEYS if props.get(k)), None)) or default_code
        if not code:
            raise ValidationError(f"{source}：第 {i} 个要素没有编码，请用 --grid", field="code",
                                  en=f"{source}: feature {i} has no code; give --grid")
        changes[code] = _geometry(f.get("geometry"), crs, source, i, code)
    return changes

"""Boundary files as offices have them: GeoJSON, TopoJSON, ESRI shapefiles and KML/KMZ.

:func:`read_boundaries` turns any of them into a GeoJSON FeatureCollection in the file's own
coordinates, with the coordinate system it found (a shapefile's ``.prj``, a GeoJSON's legacy
``crs`` member; KML is always WGS-84) and, for a shapefile, the text encoding of its ``.dbf`` (the
``.cpg`` file, else UTF-8 if every record decodes, else GBK — what Chinese GIS departments write).
The import (:func:`gridman.core.services.geometry.boundary_import.import_geojson`) then does the
same checks, preview and whole-file refusal for every format, and reprojects with pyproj (e.g. a
CGCS2000 3-degree Gauss–Krüger zone, EPSG:4513–4554) to the stored longitude/latitude.

Shapefiles are read with pyshp (pure Python, no GDAL to install on an office PC); TopoJSON and
KML are small, documented formats decoded here.
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from gridman.core.services.errors import NotFound, ValidationError
from gridman.core.services.geometry.geojson import read_geojson, short_crs

FORMATS = {".geojson": "geojson", ".json": "geojson", ".topojson": "topojson", ".shp": "shapefile",
           ".zip": "shapefile", ".kml": "kml", ".kmz": "kml"}
FILE_FILTER = "*.geojson *.json *.topojson *.shp *.zip *.kml *.kmz"


@dataclass
class BoundaryFile:
    data: dict[str, Any]  # a GeoJSON FeatureCollection in the file's coordinates
    crs: str | None  # what the file says ("EPSG:4548", a WKT, "wgs84"), None if it says nothing
    format: str  # geojson, topojson, shapefile, kml
    encoding: str | None = None  # a shapefile's attribute encoding


def _bad(p: Path, zh: str, en: str) -> ValidationError:
    return ValidationError(f"{p.name}：{zh}", field="file", en=f"{p.name}: {en}")


def read_boundaries(path: str | Path, *, encoding: str | None = None) -> BoundaryFile:
    """Read a boundary file of any supported format (by its extension)."""
    p = Path(path)
    if not p.exists():
        raise NotFound(f"找不到文件 {p}", en=f"File not found: {p}")
    kind = FORMATS.get(p.suffix.lower())
    if kind is None:
        raise _bad(p, f"不支持的文件类型 {p.suffix}（可用 GeoJSON、TopoJSON、Shapefile（.shp 或 .zip）、KML/KMZ）",
                   f"unsupported file type {p.suffix} (GeoJSON, TopoJSON, shapefile .shp or .zip, KML/KMZ)")
    if kind == "shapefile":
        return _shapefile(p, encoding)
    if kind == "kml":
        return BoundaryFile(_kml(p), "wgs84", "kml")
    data = read_geojson(p)
    if data.get("type") == "Topology":
        return BoundaryFile(topojson_features(data, p), _legacy_crs(data), "topojson")
    return BoundaryFile(data, _legacy_crs(data), "geojson")


def _legacy_crs(data: dict[str, Any]) -> str | None:
    """GeoJSON 2008's ``"crs": {"properties": {"name": "urn:ogc:def:crs:EPSG::4548"}}``."""
    name = ((data.get("crs") or {}).get("properties") or {}).get("name") if isinstance(data.get("crs"), dict) else None
    if not isinstance(name, str):
        return None
    if name.upper().endswith(("CRS84", "EPSG::4326", "EPSG:4326")):
        return "wgs84"
    code = name.rsplit(":", 1)[-1]
    return f"EPSG:{code}" if code.isdigit() else name


# --- TopoJSON --------------------------------------------------------------------------------


def topojson_features(topo: dict[str, Any], p: Path) -> dict[str, Any]:
    """The polygons of every object of a TopoJSON topology as one FeatureCollection (arcs decoded:
    quantised and delta-encoded when the topology has a ``transform``; ``~i`` is arc i reversed)."""
    arcs_in = topo.get("arcs")
    objects = topo.get("objects")
    if not isinstance(arcs_in, list) or not isinstance(objects, dict):
        raise _bad(p, "不是有效的 TopoJSON（缺少 arcs 或 objects）", "not a valid TopoJSON (no arcs or objects)")
    tf = topo.get("transform") or {}
    (sx, sy), (tx, ty) = tf.get("scale", (1, 1)), tf.get("translate", (0, 0))
    arcs: list[list[tuple[float, float]]] = []
    for arc in arcs_in:
        pts, x, y = [], 0.0, 0.0
        for q in arc:
            if tf:
                x, y = x + q[0], y + q[1]
                pts.append((x * sx + tx, y * sy + ty))
            else:
                pts.append((float(q[0]), float(q[1])))
        arcs.append(pts)

    def ring(indices: list[int]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for i in indices:
            pts = arcs[i] if i >= 0 else arcs[~i][::-1]
            out.extend(pts if not out else pts[1:])
        return out

    feats = []
    for obj in objects.values():
        geoms = obj.get("geometries", [obj]) if obj.get("type") == "GeometryCollection" else [obj]
        for g in geoms:
            geometry: dict[str, Any]
            if g.get("type") == "Polygon":
                geometry = {"type": "Polygon", "coordinates": [ring(r) for r in g["arcs"]]}
            elif g.get("type") == "MultiPolygon":
                geometry = {"type": "MultiPolygon", "coordinates": [[ring(r) for r in poly] for poly in g["arcs"]]}
            else:
                geometry = {"type": g.get("type"), "coordinates": None}
            props = dict(g.get("properties") or {})
            if "id" in g and "id" not in props:
                props["id"] = g["id"]
            feats.append({"type": "Feature", "id": g.get("id"), "properties": props, "geometry": geometry})
    return {"type": "FeatureCollection", "features": feats}


# --- shapefiles ------------------------------------------------------------------------------


def _shapefile(p: Path, encoding: str | None) -> BoundaryFile:
    if p.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="gridman-shp-") as tmp:
            try:
                with zipfile.ZipFile(p) as z:
                    shps = [n for n in z.namelist() if n.lower().endswith(".shp") and not n.startswith("__MACOSX")]
                    if len(shps) != 1:
                        raise _bad(p, f"压缩包中应有且只有一个 .shp 文件（找到 {len(shps)} 个）",
                                   f"the archive must hold exactly one .shp file (found {len(shps)})")
                    stem = shps[0][:-4]
                    for n in z.namelist():  # the parts of that shapefile, by base name only
                        if n.startswith(stem + ".") and "/" not in n[len(stem):]:
                            (Path(tmp) / Path(n).name).write_bytes(z.read(n))
            except zipfile.BadZipFile as exc:
                raise _bad(p, "不是有效的 zip 压缩包", "not a valid zip archive") from exc
            return _read_shp(Path(tmp) / Path(shps[0]).name, encoding, p)
    return _read_shp(p, encoding, p)


def _sibling(shp: Path, ext: str) -> Path | None:
    for cand in (shp.with_suffix(ext), shp.with_suffix(ext.upper())):
        if cand.exists():
            return cand
    return None


def _read_shp(shp: Path, encoding: str | None, shown: Path) -> BoundaryFile:
    import shapefile  # pyshp

    if _sibling(shp, ".dbf") is None:
        raise _bad(shown, "缺少同名的 .dbf 属性文件", "the .dbf attribute file is missing")
    cpg = _sibling(shp, ".cpg")
    if encoding is None and cpg is not None:
        encoding = _cpg_encoding(cpg.read_text(encoding="ascii", errors="ignore"))
    prj = _sibling(shp, ".prj")
    crs = short_crs(prj.read_text(encoding="utf-8", errors="replace").strip()) if prj is not None else None
    tries = [encoding] if encoding else ["utf-8", "gbk"]
    for i, enc in enumerate(tries):
        try:
            with shapefile.Reader(str(shp), encoding=enc, encodingErrors="strict") as r:
                fields = [f[0] for f in r.fields[1:]]
                feats = [{"type": "Feature", "properties": dict(zip(fields, rec.record, strict=False)),
                          "geometry": rec.shape.__geo_interface__ if rec.shape.shapeType else None}
                         for rec in r.iterShapeRecords()]
            return BoundaryFile({"type": "FeatureCollection", "features": feats}, crs, "shapefile", enc)
        except LookupError as exc:
            raise _bad(shown, f"未知的文字编码 {enc}", f"unknown text encoding {enc}") from exc
        except (UnicodeDecodeError, shapefile.ShapefileException) as exc:
            if not isinstance(exc, UnicodeDecodeError) and "decode" not in str(exc):
                raise _bad(shown, "不是有效的 Shapefile", "not a valid shapefile") from exc
            if i + 1 < len(tries):
                continue  # not UTF-8: GBK, as Chinese GIS software writes without a .cpg
            raise _bad(shown, f"属性表（.dbf）不是 {enc} 编码的文本，请用 --encoding 指定",
                       f"the attribute table (.dbf) is not {enc} text; give --encoding") from exc
    raise AssertionError("unreachable")


def _cpg_encoding(text: str) -> str | None:
    t = text.strip().lower()
    return {"936": "gbk", "cp936": "gbk", "65001": "utf-8", "utf8": "utf-8"}.get(t, t or None)


# --- KML / KMZ -------------------------------------------------------------------------------


def _kml(p: Path) -> dict[str, Any]:
    try:
        if p.suffix.lower() == ".kmz":
            with zipfile.ZipFile(p) as z:
                name = next((n for n in z.namelist() if n.lower().endswith(".kml")), None)
                if name is None:
                    raise _bad(p, "KMZ 中没有 .kml 文件", "the KMZ holds no .kml file")
                raw = z.read(name)
        else:
            raw = p.read_bytes()
        root = ElementTree.fromstring(raw)
    except zipfile.BadZipFile as exc:
        raise _bad(p, "不是有效的 KMZ 压缩包", "not a valid KMZ archive") from exc
    except ElementTree.ParseError as exc:
        line, col = exc.position
        raise _bad(p, f"第 {line} 行第 {col} 列不是合法的 XML", f"invalid XML at line {line} column {col}") from exc
    feats = []
    for pm in root.iter():
        if _local(pm.tag) != "Placemark":
            continue
        props: dict[str, Any] = {}
        for el in pm.iter():
            tag = _local(el.tag)
            if tag == "name" and "name" not in props:
                props["name"] = (el.text or "").strip()
            elif tag in ("Data", "SimpleData") and el.get("name"):
                value = next((c.text for c in el if _local(c.tag) == "value"), None) if tag == "Data" else el.text
                props[el.get("name", "")] = (value or "").strip()
        polys = [_kml_polygon(el) for el in pm.iter() if _local(el.tag) == "Polygon"]
        geometry: dict[str, Any] | None
        if not polys:
            geometry = None
        elif len(polys) == 1:
            geometry = {"type": "Polygon", "coordinates": polys[0]}
        else:
            geometry = {"type": "MultiPolygon", "coordinates": polys}
        feats.append({"type": "Feature", "properties": props, "geometry": geometry})
    return {"type": "FeatureCollection", "features": feats}


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _kml_polygon(poly: ElementTree.Element) -> list[list[tuple[float, ...]]]:
    rings = []
    for part in ("outerBoundaryIs", "innerBoundaryIs"):
        for b in (el for el in poly if _local(el.tag) == part):
            for coords in (el for el in b.iter() if _local(el.tag) == "coordinates"):
                pts = [tuple(float(v) for v in t.split(",")[:2]) for t in (coords.text or "").split() if t]
                rings.append(pts)
    return rings

"""Pure geometry helpers (no database): coordinate systems, projections, measures.

Boundaries are stored in WGS-84 / CGCS2000 longitude–latitude (the two differ by centimetres,
well below what a grid boundary means). Anything measured — areas, lengths, distances, overlaps —
is measured in metres after projecting to the CGCS2000 3-degree Gauss–Krüger zone whose central
meridian is nearest to the place (EPSG:4534 … 4554, central meridians 75°E … 135°E), or UTM
outside China's longitudes. Inside one 3-degree zone the scale error is below 0.03 %, so areas
agree with the geodesic (ellipsoidal) area to a few hundredths of a per cent.

GCJ-02 (国测局坐标, "Mars coordinates") is the obfuscated system of most Chinese web maps (高德,
腾讯). Its forward formula is public (the widely used eviltransform implementation); the inverse
has no closed form and is found by fixed-point iteration to well below a millimetre.

Everything here is vectorised over numpy arrays / shapely geometry arrays: no Python loop per
coordinate or per polygon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer

# --- GCJ-02 ---------------------------------------------------------------------------------

_GCJ_A = 6378245.0  # Krasovsky 1940 semi-major axis used by the GCJ-02 formula
_GCJ_EE = 0.00669342162296594323  # its first eccentricity squared


def out_of_china(lon: Any, lat: Any) -> np.ndarray:
    """The rectangle outside which GCJ-02 applies no offset (as in the reference implementation)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = lon - 105.0
    y = lat - 35.0
    pi = math.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    sq = np.sqrt(np.abs(x))
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sq + common
    d_lat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sq + common
    d_lon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * pi
    magic = 1.0 - _GCJ_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * pi)
    d_lon = (d_lon * 180.0) / (_GCJ_A / sqrt_magic * np.cos(rad_lat) * pi)
    outside = out_of_china(lon, lat)
    return np.where(outside, 0.0, d_lon), np.where(outside, 0.0, d_lat)


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 → GCJ-02 (arrays or scalars, lon first)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    d_lon, d_lat = _gcj_delta(lon, lat)
    return lon + d_lon, lat + d_lat


def gcj02_to_wgs84(lon: Any, lat: Any, *, tol_deg: float = 1e-10, max_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → WGS-84 by fixed-point iteration on the forward formula.

    The offset varies slowly (a few metres per kilometre), so ``w ← w − (f(w) − g)`` converges
    geometrically; 1e-10° is about 0.01 mm, far inside the required 0.5 m.
    """
    g_lon = np.asarray(lon, dtype=float)
    g_lat = np.asarray(lat, dtype=float)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(max_iter):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = f_lon - g_lon, f_lat - g_lat
        w_lon = w_lon - e_lon
        w_lat = w_lat - e_lat
        if float(np.max(np.abs(e_lon), initial=0.0)) < tol_deg and float(np.max(np.abs(e_lat), initial=0.0)) < tol_deg:
            break
    return w_lon, w_lat


def gcj02_geometry_to_wgs84(geom: Any) -> Any:
    """Convert every coordinate of a shapely geometry (or array of them) from GCJ-02 to WGS-84."""

    def f(xy: np.ndarray) -> np.ndarray:
        lon, lat = gcj02_to_wgs84(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, f)


# --- projections ------------------------------------------------------------------------------

SEGMENT_DEG = 0.0005  # densify lon/lat edges to ≈ 50 m before projecting them
GEOD = Geod(ellps="GRS80")  # CGCS2000's ellipsoid differs from GRS80 by 0.1 mm in the minor axis


def gk_zone_epsg(lon: float) -> int | None:
    """EPSG code of the CGCS2000 3-degree Gauss–Krüger zone (no zone prefix) for a longitude,
    or None outside 73.5°E–136.5°E (the zones EPSG:4534 CM 75°E … EPSG:4554 CM 135°E)."""
    cm = 3 * round(lon / 3.0)
    if cm < 75 or cm > 135:
        return None
    return 4534 + (cm - 75) // 3


def utm_epsg(lon: float, lat: float) -> int:
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def metric_epsg(lon: float, lat: float) -> int:
    """The projected CRS used to measure around (lon, lat): its GK zone, else UTM."""
    return gk_zone_epsg(lon) or utm_epsg(lon, lat)


@lru_cache(maxsize=64)
def _transformers(epsg: int) -> tuple[Transformer, Transformer]:
    geo = CRS.from_epsg(4490)  # CGCS2000 geographic (lon/lat with always_xy)
    proj = CRS.from_epsg(epsg)
    return (Transformer.from_crs(geo, proj, always_xy=True), Transformer.from_crs(proj, geo, always_xy=True))


@dataclass(frozen=True)
class Projection:
    """A lon/lat ⇄ metres projection (one CRS), applied to shapely geometries or arrays."""

    epsg: int

    @classmethod
    def around(cls, lon: float, lat: float) -> Projection:
        return cls(metric_epsg(lon, lat))

    @classmethod
    def for_geometries(cls, geoms: Any) -> Projection:
        """The zone of the centre of the geometries' total bounds (one CRS for a whole subtree, so
        neighbours are compared in the same frame)."""
        b = shapely.total_bounds(np.asarray(geoms, dtype=object))
        if not np.all(np.isfinite(b)):
            return cls(metric_epsg(117.0, 31.8))
        return cls.around((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)

    @property
    def name(self) -> str:
        return CRS.from_epsg(self.epsg).name

    def xy(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        fwd, _ = _transformers(self.epsg)
        x, y = fwd.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x), np.asarray(y)

    def lonlat(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        _, inv = _transformers(self.epsg)
        lon, lat = inv.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return np.asarray(lon), np.asarray(lat)

    def to_metric(self, geom: Any) -> Any:
        fwd, _ = _transformers(self.epsg)

        def f(c: np.ndarray) -> np.ndarray:
            x, y = fwd.transform(c[:, 0], c[:, 1])
            return np.column_stack([x, y])

        return shapely.transform(geom, f)

    def area_m2(self, geom: Any) -> Any:
        """Area in m² of lon/lat geometries (scalar or array): densified to ~50 m segments, so a
        long straight lon/lat edge is measured along its true (curved) projected course."""
        return shapely.area(self.to_metric(shapely.segmentize(geom, SEGMENT_DEG)))

    def to_lonlat(self, geom: Any) -> Any:
        _, inv = _transformers(self.epsg)

        def f(c: np.ndarray) -> np.ndarray:
            x, y = inv.transform(c[:, 0], c[:, 1])
            return np.column_stack([x, y])

        return shapely.transform(geom, f)


@dataclass(frozen=True)
class Measure:
    """Area, perimeter and centroid of one boundary, in metres (and the geodesic check)."""

    area_m2: float
    area_km2: float
    perimeter_m: float
    centroid_lon: float
    centroid_lat: float
    geodesic_area_m2: float
    crs: str  # e.g. "EPSG:4548"


def geodesic_area_perimeter(geom: Any) -> tuple[float, float]:
    """Area (m², absolute) and perimeter (m) on the GRS80 ellipsoid (pyproj.Geod)."""
    if hasattr(shapely, "orient_polygons"):  # shapely ≥ 2.1: shells counter-clockwise, holes clockwise
        geom = shapely.orient_polygons(geom)
    else:  # pragma: no cover
        from shapely.geometry.polygon import orient

        geom = orient(geom) if geom.geom_type == "Polygon" else shapely.MultiPolygon([orient(p) for p in geom.geoms])
    area, perim = GEOD.geometry_area_perimeter(geom)
    return abs(area), perim


def measure(geom: Any, projection: Projection | None = None) -> Measure:
    """Measure a lon/lat polygon through the Gauss–Krüger zone of its centre."""
    if projection is None:
        c = geom.centroid
        projection = Projection.around(c.x, c.y)
    m = projection.to_metric(shapely.segmentize(geom, SEGMENT_DEG))
    cen = m.centroid
    lon, lat = projection.lonlat(cen.x, cen.y)
    geo_area, _ = geodesic_area_perimeter(geom)
    return Measure(area_m2=float(m.area), area_km2=float(m.area) / 1e6, perimeter_m=float(m.length),
                   centroid_lon=float(lon), centroid_lat=float(lat), geodesic_area_m2=geo_area,
                   crs=f"EPSG:{projection.epsg}")


def polygonal(geom: Any) -> Any:
    """Only the polygonal part of a geometry (make_valid may add stray lines or points); an
    empty Polygon when nothing is left."""
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return shapely.Polygon()
    polys: list[Any] = []
    for p in parts:
        polys.extend(shapely.get_parts(p) if p.geom_type == "MultiPolygon" else [p])
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def label_point(geom: Any) -> tuple[float, float]:
    """A point for the label: the centroid when it lies inside, else a point on the surface
    (an L-shaped or U-shaped grid's centroid may fall outside it)."""
    c = geom.centroid
    if not geom.contains(c):
        c = geom.representative_point()
    return round(c.x, 7), round(c.y, 7)


# --- points in polygons ---------------------------------------------------------------------

INSIDE, BORDER, OUTSIDE, AMBIGUOUS = 0, 1, 2, 3


@dataclass
class Located:
    """Where each point fell. ``index[i]`` is the polygon containing point i (−1 if none);
    ``status[i]`` is INSIDE (strictly inside exactly one), BORDER (on the boundary of one or
    more, inside none), OUTSIDE (touches none) or AMBIGUOUS (strictly inside several: the
    polygons overlap). ``border_pairs`` are (point, polygon) pairs for BORDER/AMBIGUOUS points,
    so the caller can prefer, say, the point's current polygon."""

    index: np.ndarray
    status: np.ndarray
    border_points: np.ndarray
    border_polys: np.ndarray


def locate_points(polys: np.ndarray, x: np.ndarray, y: np.ndarray) -> Located:
    """Assign points to polygons, vectorised (no Python loop per point or per polygon).

    Making a million shapely Point objects costs more than the whole test, so points stay as
    coordinate arrays: they are binned into a regular cell raster over their extent, the
    occupied cells are queried once against an STRtree of the polygons (``predicate=
    "intersects"``), and each point is tested only against its cell's polygons with the
    prepared, vectorised ``shapely.contains_xy`` / ``intersects_xy``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(x)
    index = np.full(n, -1, dtype=np.int64)
    status = np.full(n, OUTSIDE, dtype=np.int8)
    empty = np.zeros(0, dtype=np.int64)
    polys = np.asarray(polys, dtype=object)
    if n == 0 or len(polys) == 0:
        return Located(index, status, empty, empty)
    shapely.prepare(polys)
    x0, x1 = float(x.min()), float(x.max())
    y0, y1 = float(y.min()), float(y.max())
    side = max(1, int(math.ceil(math.sqrt(4 * len(polys)))))
    w = (x1 - x0) / side or 1e-9
    h = (y1 - y0) / side or 1e-9
    cx = np.clip(((x - x0) / w).astype(np.int64), 0, side - 1)
    cy = np.clip(((y - y0) / h).astype(np.int64), 0, side - 1)
    cell = cy * side + cx
    occ, point_cell = np.unique(cell, return_inverse=True)
    ox, oy = occ % side, occ // side
    boxes = shapely.box(x0 + ox * w, y0 + oy * h, x0 + (ox + 1) * w, y0 + (oy + 1) * h)
    tree = shapely.STRtree(polys)
    ci, pi = tree.query(boxes, predicate="intersects")
    order = np.argsort(ci, kind="stable")
    poly_sorted = pi[order]
    per_cell = np.bincount(ci, minlength=len(occ))
    starts = np.concatenate([[0], np.cumsum(per_cell)[:-1]])
    k = per_cell[point_cell]
    total = int(k.sum())
    point_rep = np.repeat(np.arange(n), k)
    first = np.repeat(np.cumsum(k) - k, k)
    poly_rep = poly_sorted[np.repeat(starts[point_cell], k) + (np.arange(total) - first)]
    inside = shapely.contains_xy(polys[poly_rep], x[point_rep], y[point_rep])
    hits = np.bincount(point_rep[inside], minlength=n)
    index[point_rep[inside]] = poly_rep[inside]
    status[hits == 1] = INSIDE
    amb = hits > 1
    status[amb] = AMBIGUOUS
    # points inside nothing: on a border, or outside every polygon
    rest = hits == 0
    sel = rest[point_rep]
    rp, rg = point_rep[sel], poly_rep[sel]
    touch = shapely.intersects_xy(polys[rg], x[rp], y[rp])
    bp, bg = rp[touch], rg[touch]
    status[np.unique(bp)] = BORDER
    # a deterministic default for border points: the lowest polygon index touching it
    if len(bp):
        o = np.lexsort((bg, bp))
        bp_s, bg_s = bp[o], bg[o]
        firsts = np.concatenate([[True], bp_s[1:] != bp_s[:-1]])
        index[bp_s[firsts]] = bg_s[firsts]
    ap, ag = point_rep[inside & amb[point_rep]], poly_rep[inside & amb[point_rep]]
    return Located(index, status, np.concatenate([bp, ap]), np.concatenate([bg, ag]))

"""Pure geometry helpers: GCJ-02, projections, measures, point location (no database)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridman.core import geo

# Published test vectors of the reference implementation (eviltransform): wgs lat/lon, gcj lat/lon.
VECTORS = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]
PROJ = geo.Projection(4548)  # CGCS2000 3-degree GK, CM 117°E (Hefei)
X0, Y0 = 500_000.0, 3_520_000.0  # ≈ 117.0°E, 31.8°N


def metres_between(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return geo.GEOD.inv(lon1, lat1, lon2, lat2)[2]


def ll_polygon(shell: list[tuple[float, float]], holes: list[list[tuple[float, float]]] | None = None) -> shapely.Polygon:
    """A polygon given in metres of the GK frame (relative to X0, Y0), converted to lon/lat."""
    def conv(ring: list[tuple[float, float]]) -> list[tuple[float, float]]:
        lon, lat = PROJ.lonlat([X0 + x for x, _ in ring], [Y0 + y for _, y in ring])
        return list(zip(lon.tolist(), lat.tolist(), strict=True))
    return shapely.Polygon(conv(shell), [conv(h) for h in holes or []])


def rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


@pytest.mark.parametrize("wlat,wlon,glat,glon", VECTORS)
def test_gcj02_forward_matches_published_vectors(wlat, wlon, glat, glon):
    lon, lat = geo.wgs84_to_gcj02(wlon, wlat)
    assert float(lon) == pytest.approx(glon, abs=1e-9)
    assert float(lat) == pytest.approx(glat, abs=1e-9)


@pytest.mark.parametrize("wlat,wlon,glat,glon", VECTORS)
def test_gcj02_inverse_recovers_wgs84_within_half_a_metre(wlat, wlon, glat, glon):
    lon, lat = geo.gcj02_to_wgs84(glon, glat)
    assert metres_between(float(lon), float(lat), wlon, wlat) < 0.5
    assert metres_between(glon, glat, wlon, wlat) > 100  # the offset is real (hundreds of metres)


@settings(max_examples=60, deadline=None)
@given(st.floats(73.7, 134.5), st.floats(18.2, 53.4))
def test_gcj02_round_trip_anywhere_in_china(lon, lat):
    g_lon, g_lat = geo.wgs84_to_gcj02(lon, lat)
    w_lon, w_lat = geo.gcj02_to_wgs84(g_lon, g_lat)
    assert metres_between(float(w_lon), float(w_lat), lon, lat) < 0.01


def test_gcj02_is_identity_outside_china():
    lon, lat = geo.gcj02_to_wgs84([2.35, -43.17], [48.85, -22.9])
    assert lon.tolist() == [2.35, -43.17] and lat.tolist() == [48.85, -22.9]


def test_zone_choice():
    assert geo.gk_zone_epsg(117.2) == 4548
    assert geo.gk_zone_epsg(75.0) == 4534 and geo.gk_zone_epsg(135.2) == 4554
    assert geo.gk_zone_epsg(118.6) == 4549  # nearest central meridian 120°E
    assert geo.gk_zone_epsg(10.0) is None
    assert geo.metric_epsg(10.0, 50.0) == 32632  # UTM 32N outside China's longitudes


def test_unit_square_in_projected_frame_measures_one_square_kilometre():
    sq = ll_polygon(rect(0, 0, 1000, 1000))
    m = geo.measure(sq)
    assert m.crs == "EPSG:4548"
    assert m.area_m2 == pytest.approx(1_000_000, rel=1e-4)
    assert m.area_km2 == pytest.approx(1.0, rel=1e-4)
    assert m.perimeter_m == pytest.approx(4000, rel=1e-4)
    x, y = PROJ.xy(m.centroid_lon, m.centroid_lat)
    assert float(x) - X0 == pytest.approx(500, abs=0.05) and float(y) - Y0 == pytest.approx(500, abs=0.05)


def test_l_shaped_grid_area_perimeter_centroid():
    ell = ll_polygon([(0, 0), (2000, 0), (2000, 1000), (1000, 1000), (1000, 2000), (0, 2000), (0, 0)])
    m = geo.measure(ell)
    assert m.area_m2 == pytest.approx(3_000_000, rel=1e-4)
    assert m.perimeter_m == pytest.approx(8000, rel=1e-4)
    x, y = PROJ.xy(m.centroid_lon, m.centroid_lat)
    assert float(x) - X0 == pytest.approx(2500 / 3, abs=0.1)
    assert float(y) - Y0 == pytest.approx(2500 / 3, abs=0.1)
    lon, lat = geo.label_point(ell)
    assert ell.contains(shapely.Point(lon, lat))


def test_polygon_with_a_hole():
    holed = ll_polygon(rect(0, 0, 1000, 1000), [rect(400, 400, 600, 700)])
    assert geo.measure(holed).area_m2 == pytest.approx(1_000_000 - 60_000, rel=1e-4)


@pytest.mark.parametrize("lon,lat,size_deg", [(117.2, 31.8, 0.05), (117.3, 31.9, 0.2), (118.45, 32.0, 0.3),
                                              (87.6, 43.8, 0.25), (126.6, 45.7, 0.1)])
def test_projected_area_agrees_with_geodesic_area_within_half_a_percent(lon, lat, size_deg):
    # real-sized polygons (a few km to ~30 km), including one near a zone edge (118.45°E, 1.45° from CM)
    poly = shapely.Polygon([(lon, lat), (lon + size_deg, lat + size_deg * 0.1), (lon + size_deg * 0.8, lat + size_deg),
                            (lon - size_deg * 0.2, lat + size_deg * 0.7)])
    m = geo.measure(poly)
    geodesic, _ = geo.geodesic_area_perimeter(shapely.segmentize(poly, geo.SEGMENT_DEG))
    assert abs(m.area_m2 - geodesic) / geodesic < 0.005
    assert abs(m.area_m2 - geodesic) / geodesic < 0.001  # in fact well inside a tenth of that


def test_locate_points_inside_border_outside_hole_and_overlap():
    g1 = shapely.box(0, 0, 1, 1)
    g2 = shapely.box(1, 0, 2, 1)
    g3 = shapely.Polygon(shapely.box(0, 1, 2, 2).exterior.coords, [[(0.5, 1.5), (0.7, 1.5), (0.7, 1.7), (0.5, 1.7)]])
    g4 = shapely.box(1.8, 1.8, 3, 3)  # overlaps g3 in [1.8,2]²
    polys = np.array([g1, g2, g3, g4], dtype=object)
    x = np.array([0.5, 1.5, 1.0, 0.6, 5.0, 1.9, 1.0, 0.5])
    y = np.array([0.5, 0.5, 0.5, 1.6, 5.0, 1.9, 1.0, 0.0])
    r = geo.locate_points(polys, x, y)
    assert r.status.tolist() == [geo.INSIDE, geo.INSIDE, geo.BORDER, geo.OUTSIDE, geo.OUTSIDE, geo.AMBIGUOUS,
                                 geo.BORDER, geo.BORDER]
    assert r.index.tolist()[:2] == [0, 1]
    assert r.index[3] == -1 and r.index[4] == -1  # in the hole / far away
    touching = sorted(int(g) for p, g in zip(r.border_points, r.border_polys, strict=True) if p == 2)
    assert touching == [0, 1]  # the point on the shared edge touches both grids
    corner = sorted(int(g) for p, g in zip(r.border_points, r.border_polys, strict=True) if p == 6)
    assert corner == [0, 1, 2]
    assert r.index[2] == 0  # default for a border point: the lowest polygon index
    amb = sorted(int(g) for p, g in zip(r.border_points, r.border_polys, strict=True) if p == 5)
    assert amb == [2, 3]


def test_locate_points_agrees_with_a_naive_loop_on_random_tiling():
    rng = np.random.default_rng(7)
    xs = np.sort(rng.uniform(0, 10, 9))
    edges = np.concatenate([[0.0], xs, [10.0]])
    polys = np.array([shapely.box(edges[i], 0, edges[i + 1], 10 - i * 0.3) for i in range(len(edges) - 1)], dtype=object)
    px, py = rng.uniform(-1, 11, 3000), rng.uniform(-1, 11, 3000)
    r = geo.locate_points(polys, px, py)
    for k in range(0, 3000, 7):
        pt = shapely.Point(px[k], py[k])
        expect = [i for i, p in enumerate(polys) if p.contains(pt)]
        assert (r.index[k] == expect[0]) if expect else (r.index[k] == -1)

"""Boundary files as offices have them: a GBK shapefile in a CGCS2000 Gauss–Krüger zone (zipped
and loose), KML/KMZ and TopoJSON import to the same shapes as the lon/lat original; bad files
get a clear answer naming the file and nothing is written."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.polygon import orient
from sqlalchemy import func, select

from gridman.cli import main as cli_main
from gridman.core.enums import Role
from gridman.core.models import Area
from gridman.core.services import geometry as G
from gridman.core.services.errors import ValidationError
from tests.helpers import make_user, signed_in
from tests.test_divisions import HEFEI


def districts() -> dict[str, shapely.Polygon]:
    """Nine lon/lat polygons around Hefei, densified like real boundaries (and with a hole in one)."""
    out = {}
    for i, (code, _name) in enumerate(HEFEI):
        x, y = 116.9 + 0.1 * (i % 3), 31.6 + 0.1 * (i // 3)
        p = shapely.box(x, y, x + 0.1, y + 0.1)
        if i == 4:
            p = p.difference(shapely.box(x + 0.04, y + 0.04, x + 0.06, y + 0.06))
        out[code] = shapely.segmentize(p, 0.002)
    return out


NAMES = dict(HEFEI)


def write_shapefile(folder: Path, *, encoding: str = "gbk", cpg: str | None = None) -> Path:
    import shapefile

    to_gk = Transformer.from_crs(4326, 4548, always_xy=True)
    base = folder / "hefei_districts"
    with shapefile.Writer(str(base), shapeType=shapefile.POLYGON, encoding=encoding) as w:
        w.field("ADCODE", "C", size=12)
        w.field("NAME", "C", size=40)
        w.field("LEVEL", "C", size=12)
        for code, poly in districts().items():
            gk = shapely.transform(orient(poly, sign=-1.0), lambda xy: shapely.get_coordinates(
                shapely.points(*to_gk.transform(xy[:, 0], xy[:, 1]))))
            w.poly([list(gk.exterior.coords), *[list(r.coords)[::-1] for r in gk.interiors]])
            w.record(code, NAMES[code], "district")
    (folder / "hefei_districts.prj").write_text(CRS.from_epsg(4548).to_wkt("WKT1_ESRI"), encoding="ascii")
    if cpg:
        (folder / "hefei_districts.cpg").write_text(cpg, encoding="ascii")
    return base.with_suffix(".shp")


def zipped(shp: Path) -> Path:
    z = shp.with_suffix(".zip")
    with zipfile.ZipFile(z, "w") as f:
        for part in shp.parent.glob(shp.stem + ".*"):
            if part.suffix != ".zip":
                f.write(part, f"行政区划/{part.name}")
    return z


def assert_same_shapes(db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        got = {a.code: (a.name, shapely.from_wkb(a.boundary)) for a in
               s.scalars(select(Area).where(Area.code.in_(list(NAMES))))}
    assert {c: n for c, (n, _g) in got.items()} == NAMES  # GBK names read right
    for code, want in districts().items():
        g = got[code][1]
        assert g.symmetric_difference(want).area < 1e-4 * want.area, code  # under 0.01 % of the area


def cli(db, *args: str) -> int:  # type: ignore[no-untyped-def]
    url = db.url if db.dialect != "sqlite" else str(db.sqlite_path)
    return cli_main([*signed_in(url, "admin"), *args])


def test_a_zipped_gbk_shapefile_in_epsg_4548_imports_to_the_same_shapes(db, tmp_path, capsys):
    make_user(db, "admin", Role.ADMIN)
    z = zipped(write_shapefile(tmp_path))
    db.dispose()
    assert cli(db, "areas", "import", str(z), "--level", "district", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["crs"] == "EPSG:4548" and out["from_table"] == ["340100"] and len(out["created"]) == 10
    assert_same_shapes(db)


def test_loose_shapefile_with_cpg_kml_kmz_and_topojson(sqlite_db, tmp_path):
    (tmp_path / "loose").mkdir()
    shp = write_shapefile(tmp_path / "loose", encoding="utf-8", cpg="UTF-8")
    f = G.read_boundaries(shp)
    assert (f.format, f.crs, f.encoding) == ("shapefile", "EPSG:4548", "utf-8")
    assert sorted(ft["properties"]["NAME"] for ft in f.data["features"]) == sorted(NAMES.values())
    for path in (write_kml(tmp_path / "hefei.kml"), write_kmz(tmp_path), write_topojson(tmp_path / "hefei.topojson")):
        with sqlite_db.session() as s:
            from gridman.core.services.permissions import system_actor

            admin = system_actor(s)
        bf = G.read_boundaries(path)
        with sqlite_db.work(admin) as s:
            res = G.import_geojson(s, admin, data=bf.data, level="district", crs=bf.crs or "wgs84",
                                   source=path.name)
        assert not res.problems, path
        assert_same_shapes(sqlite_db)


def _kml_text() -> str:
    marks = []
    for code, poly in districts().items():
        rings = "".join(f"<innerBoundaryIs><LinearRing><coordinates>{_coords(r)}</coordinates></LinearRing>"
                        f"</innerBoundaryIs>" for r in poly.interiors)
        marks.append(f"<Placemark><name>{NAMES[code]}</name><ExtendedData><Data name=\"adcode\"><value>{code}"
                     f"</value></Data></ExtendedData><Polygon><outerBoundaryIs><LinearRing><coordinates>"
                     f"{_coords(poly.exterior)}</coordinates></LinearRing></outerBoundaryIs>{rings}</Polygon>"
                     f"</Placemark>")
    return ('<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
            + "".join(marks) + "</Document></kml>")


def _coords(ring) -> str:  # type: ignore[no-untyped-def]
    return " ".join(f"{x},{y},0" for x, y in ring.coords)


def write_kml(p: Path) -> Path:
    p.write_text(_kml_text(), encoding="utf-8")
    return p


def write_kmz(folder: Path) -> Path:
    p = folder / "hefei.kmz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("doc.kml", _kml_text())
    return p


def write_topojson(p: Path) -> Path:
    """One arc per ring, quantised (1e-6°) and delta-encoded, the second ring of each polygon
    stored reversed and referenced as ~i."""
    scale, (tx, ty) = 1e-6, (116.0, 31.0)
    arcs, geoms = [], []

    def arc(coords, reverse: bool) -> int:  # type: ignore[no-untyped-def]
        pts = list(coords)[::-1] if reverse else list(coords)
        q = [(round((x - tx) / scale), round((y - ty) / scale)) for x, y in pts]
        arcs.append([q[0]] + [(b[0] - a[0], b[1] - a[1]) for a, b in zip(q, q[1:], strict=False)])
        return ~(len(arcs) - 1) if reverse else len(arcs) - 1

    for code, poly in districts().items():
        rings = [arc(poly.exterior.coords, False)] + [arc(r.coords, True) for r in poly.interiors]
        geoms.append({"type": "Polygon", "arcs": [[i] for i in rings], "id": code,
                      "properties": {"name": NAMES[code]}})
    topo = {"type": "Topology", "transform": {"scale": [scale, scale], "translate": [tx, ty]},
            "objects": {"districts": {"type": "GeometryCollection", "geometries": geoms}}, "arcs": arcs}
    p.write_text(json.dumps(topo), encoding="utf-8")
    return p


def test_bad_boundary_files_are_refused_clearly(sqlite_db, tmp_path, capsys):
    shp = write_shapefile(tmp_path)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as z:
        z.write(shp, "a.shp")
        z.write(shp, "b.shp")
    with pytest.raises(ValidationError, match="two.zip.*一个 .shp"):
        G.read_boundaries(two)
    shp.with_suffix(".dbf").rename(tmp_path / "elsewhere.dbf")
    with pytest.raises(ValidationError, match=r"hefei_districts.shp.*\.dbf"):
        G.read_boundaries(shp)
    bad = tmp_path / "bad.kml"
    bad.write_text("<kml><Placemark></kml>", encoding="utf-8")
    with pytest.raises(ValidationError, match="bad.kml：第 1 行"):
        G.read_boundaries(bad)
    with pytest.raises(ValidationError, match="不支持的文件类型"):
        G.read_boundaries(tmp_path / "elsewhere.dbf")
    make_user(sqlite_db, "admin", Role.ADMIN)
    (tmp_path / "ok").mkdir()
    shp2 = write_shapefile(tmp_path / "ok")
    sqlite_db.dispose()
    # projected coordinates declared as lon/lat: refused, saying what to give
    assert cli(sqlite_db, "areas", "import", str(shp2), "--crs", "wgs84", "--level", "district") == 2
    assert "EPSG:4548" in capsys.readouterr().err
    assert cli(sqlite_db, "areas", "import", str(shp2), "--crs", "EPSG:99999", "--level", "district") == 2
    assert "无法识别" in capsys.readouterr().err
    with sqlite_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Area)) == 0

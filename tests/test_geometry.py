"""Grid boundaries on both databases: import/export, check, assign, split/merge, coverage, CLI.

The layouts are drawn in metres in the CGCS2000 Gauss–Krüger frame (CM 117°E) and converted to
lon/lat, so every expected area is known exactly (up to the centimetre-level difference between
a straight edge in lon/lat and in the plane, hence relative tolerances of 1e-4 … 1e-3).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import shapely
from shapely.geometry import mapping
from sqlalchemy import func, select

from gridman.core import geo, tasks
from gridman.core.enums import Role
from gridman.core.models import Area, AuditEntry, Building, Household, Incident, Resident, WardenAssignment
from gridman.core.services import areas as area_svc
from gridman.core.services import geometry as G
from gridman.core.services.errors import ConflictError, PermissionDenied, ValidationError
from gridman.core.services.permissions import system_actor
from tests.helpers import build_tree, make_user, signed_in
from tests.test_geo import PROJ, X0, Y0, ll_polygon, rect

ROOT = Path(__file__).resolve().parents[1]
COMM, COMM2 = "340104001001", "340104002001"
G1, G2, G3 = "340104001001001", "340104001001002", "340104002001001"


def ll(x: float, y: float) -> tuple[float, float]:
    lon, lat = PROJ.lonlat(X0 + x, Y0 + y)
    return float(lon), float(lat)


def fc(*features: tuple[str, str, object], **props: object) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"adcode": code, "name": name, **props}, "geometry": mapping(g)}
        for code, name, g in features]}


def admin(db):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return system_actor(s)


def load(db, data: dict, level: str | None = None, parent: str | None = None, **kw):  # type: ignore[no-untyped-def]
    a = admin(db)
    with db.work(a) as s:
        par = area_svc.by_code(s, parent).id if parent else None
        return G.import_geojson(s, a, data=data, level=level, parent_id=par, **kw)


@pytest.fixture
def layout(db):  # type: ignore[no-untyped-def]
    """Community [0,2000]×[0,2000] m: g1 [0,1000]×[0,1000], g2 [1000,2000]×[0,1000]; community2 with
    g3 [0,2000]×[1000,2000] holding a hole [800,1200]×[1400,1600] (so community2 covers g3's ring)."""
    tree = build_tree(db)
    load(db, fc((COMM, "西园社区", ll_polygon(COMM_RING)),
                (COMM2, "琥珀社区", ll_polygon(rect(0, 1000, 2000, 2000)))), level="community")
    load(db, fc((G1, "第1网格", ll_polygon(rect(0, 0, 1000, 1000))), (G2, "第2网格", ll_polygon(rect(1000, 0, 2000, 1000)))),
         level="grid", parent=COMM)
    load(db, fc((G3, "第1网格", ll_polygon(G3_RING, [rect(800, 1400, 1200, 1600)]))), level="grid", parent=COMM2)
    return tree


# Neighbours share vertices (as real GIS data do): a straight edge in lon/lat is not straight in
# the plane, so a corner of one grid lying "on" a longer edge of another would be centimetres off it.
COMM_RING = [(0, 0), (1000, 0), (2000, 0), (2000, 1000), (1000, 1000), (0, 1000), (0, 0)]
G3_RING = [(0, 1000), (1000, 1000), (2000, 1000), (2000, 2000), (0, 2000), (0, 1000)]


def add_building(db, name: str, x: float, y: float, grid: str, households: int = 0,  # type: ignore[no-untyped-def]
                 residents_each: int = 0) -> int:
    a = admin(db)
    with db.work(a) as s:
        gid = area_svc.by_code(s, grid).id
        lon, lat = ll(x, y)
        b = Building(name=name, lon=lon, lat=lat, grid_id=gid, code=f"B-{name}")
        s.add(b)
        s.flush()
        for h in range(households):
            hh = Household(household_no=f"{name}-{h}", grid_id=gid, building_id=b.id)
            s.add(hh)
            s.flush()
            for r in range(residents_each):
                s.add(Resident(name=f"{name}{h}{r}", grid_id=gid, household_id=hh.id))
        s.flush()
        return b.id


def grid_of(db, model, row_id: int) -> str:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return s.get(Area, s.get(model, row_id).grid_id).code


def audit_count(db, **where) -> int:  # type: ignore[no-untyped-def]
    with db.session() as s:
        q = select(func.count()).select_from(AuditEntry)
        for k, v in where.items():
            q = q.where(getattr(AuditEntry, k) == v)
        return int(s.scalar(q) or 0)


# --- import / export --------------------------------------------------------------------------


def test_import_creates_under_parent_and_round_trip_changes_nothing(db, layout, tmp_path):
    a = admin(db)
    with db.session() as s:
        g = area_svc.by_code(s, G1)
        assert g.path.startswith(area_svc.by_code(s, COMM).path) and g.depth == 4
        assert shapely.from_wkb(g.boundary).equals_exact(ll_polygon(rect(0, 0, 1000, 1000)), 0)
        assert g.center_lon == pytest.approx(ll(500, 500)[0], abs=1e-6)
    # a new grid, created by import under the community (path/depth from the parent)
    res = load(db, fc((COMM + "003", "第3网格", ll_polygon(rect(0, 0, 10, 10)))), level="grid", parent=COMM)
    assert res.created == [COMM + "003"] and res.code_field == "adcode" and res.name_field == "name"
    with db.session() as s:
        new = area_svc.by_code(s, COMM + "003")
        assert new.parent_id == layout.community and new.path == area_svc.by_code(s, COMM).path + f"{new.id}/"
    with db.work(a) as s:
        exported = G.export_geojson(s, a, area_id=area_svc.by_code(s, "340104").id)
    text = G.geojson_text(exported)
    f = tmp_path / "d.geojson"
    f.write_text(text, encoding="utf-8")
    before = audit_count(db)
    with db.work(a) as s:
        again = G.import_geojson(s, a, data=G.read_geojson(f))
    assert again.created == [] and again.updated == [] and len(again.unchanged) == len(exported["features"]) == 9
    assert audit_count(db) == before  # nothing written
    with db.work(a) as s:
        assert G.geojson_text(G.export_geojson(s, a, area_id=area_svc.by_code(s, "340104").id)) == text


def test_import_updates_in_place_and_reports_problems_all_or_nothing(db, layout):
    res = load(db, fc((G1, "第一网格", ll_polygon(rect(0, 0, 900, 1000)))), level="grid", parent=COMM)
    assert res.updated == [G1]
    with db.session() as s:
        assert area_svc.by_code(s, G1).name == "第一网格"
    bad = fc((G2, "第2网格", ll_polygon(rect(1000, 0, 2000, 900))), ("340104001002001", "错", ll_polygon(rect(0, 0, 1, 1))))
    bad["features"].append({"type": "Feature", "properties": {"adcode": G1}, "geometry": {"type": "Point",
                                                                                          "coordinates": [117, 31]}})
    with pytest.raises(ValidationError) as ei:
        load(db, bad, level="grid", parent=COMM)
    assert "第 2 个要素" in ei.value.message and "第 3 个要素" in ei.value.message
    with db.session() as s:  # rolled back: g2 unchanged
        assert shapely.from_wkb(area_svc.by_code(s, G2).boundary).equals_exact(ll_polygon(rect(1000, 0, 2000, 1000)), 0)
    projected = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": G2},
                 "geometry": mapping(shapely.box(X0, Y0, X0 + 10, Y0 + 10))}]}
    with pytest.raises(ValidationError, match="不是经纬度"):
        load(db, projected, level="grid", parent=COMM)


def test_import_infers_parents_from_code_prefixes_and_dry_run_writes_nothing(db, layout):
    data = fc((COMM + "003", "第3网格", ll_polygon(rect(0, 0, 10, 10))),
              (COMM2 + "002", "第2网格", ll_polygon(rect(0, 1000, 10, 1010))))
    before = audit_count(db)
    dry = load(db, data, level="grid", dry_run=True)
    assert dry.created == [COMM + "003", COMM2 + "002"] and dry.dry_run
    assert audit_count(db) == before
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Area).where(Area.code == COMM + "003")) == 0
    imports = audit_count(db, action="import_geojson")
    load(db, data, level="grid")  # no --parent: the community whose code is the prefix
    with db.session() as s:
        assert area_svc.by_code(s, COMM + "003").parent_id == layout.community
        assert area_svc.by_code(s, COMM2 + "002").parent_id == layout.community2
    assert audit_count(db, action="import_geojson") == imports + 1
    warden = make_user(db, "wgi", Role.WARDEN, grids=[layout.grid1])
    with db.work(warden) as s, pytest.raises(PermissionDenied):
        G.import_geojson(s, warden, data=data, level="grid")


def test_import_gcj02_is_converted_to_wgs84(db, layout):
    sq = ll_polygon(rect(0, 0, 1000, 1000))
    gcj = shapely.transform(sq, lambda c: __import__("numpy").column_stack(geo.wgs84_to_gcj02(c[:, 0], c[:, 1])))
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"CODE": G1, "NAME": "第1网格"}, "geometry": mapping(gcj)}]}
    res = load(db, data, level="grid", parent=COMM, crs="gcj02")
    assert res.code_field == "CODE" and res.name_field == "NAME"
    with db.session() as s:
        stored = shapely.from_wkb(area_svc.by_code(s, G1).boundary)
    for (lo1, la1), (lo2, la2) in zip(stored.exterior.coords, sq.exterior.coords, strict=True):
        assert geo.GEOD.inv(lo1, la1, lo2, la2)[2] < 0.5


def test_measure_service(db, layout):
    a = admin(db)
    with db.session() as s:
        m = G.measure_area(s, a, area_id=area_svc.by_code(s, G3).id)
    assert m.area_m2 == pytest.approx(2_000_000 - 80_000, rel=1e-4)
    assert m.perimeter_m == pytest.approx(6000 + 1200, rel=1e-4)
    assert abs(m.area_m2 - m.geodesic_area_m2) / m.geodesic_area_m2 < 0.005


# --- check ------------------------------------------------------------------------------------


def test_check_finds_overlap_gap_outside_sliver_bowtie_staffing_and_size(db, layout):
    a = admin(db)
    # g1 grows 100 m into g2, g2 loses its top 100 m: overlap [1000,1100]×[0,900] = 90,000 m², gap
    # [1100,2000]×[900,1000] = 90,000 m²; a 5 m × 5 m sliver grid; a grid sticking 100×100 out of
    # community2. The community gets the grids' corners as vertices (shared vertices).
    load(db, fc((COMM, "西园社区", ll_polygon([(0, 0), (1000, 0), (1100, 0), (2000, 0), (2000, 900), (2000, 1000),
                                               (1100, 1000), (1000, 1000), (0, 1000), (0, 0)]))), level="community")
    load(db, fc((G1, "第1网格", ll_polygon([(0, 0), (1000, 0), (1100, 0), (1100, 1000), (1000, 1000), (0, 1000), (0, 0)])),
                (G2, "第2网格", ll_polygon([(1000, 0), (1100, 0), (2000, 0), (2000, 900), (1000, 900), (1000, 0)])),
                (COMM + "003", "碎片网格", ll_polygon(rect(0, 0, 5, 5)))), level="grid", parent=COMM)
    load(db, fc((COMM2 + "002", "越界网格", ll_polygon(rect(1900, 1000, 2100, 1100)))), level="grid", parent=COMM2)
    hh_grid = None
    with db.work(a) as s:
        g1 = area_svc.by_code(s, G1)
        g1.household_limit = 2
        hh_grid = g1.id
        for k in range(3):
            s.add(Household(household_no=f"H{k}", grid_id=hh_grid))
    make_user(db, "wg1", Role.WARDEN, grids=[layout.grid1])
    with db.session() as s:
        rep = G.check_subtree(s, a, area_id=area_svc.by_code(s, "340104").id, today=date(2026, 1, 1))
    by = {}
    for i in rep.issues:
        by.setdefault((i.kind, i.code), []).append(i)
    ov = {i.other_code: i.area_m2 for i in by[("overlap", G1)]}
    assert ov[G2] == pytest.approx(90_000, rel=1e-3)
    assert ov[COMM + "003"] == pytest.approx(25, rel=1e-3)  # the sliver lies inside g1
    assert by[("gap", COMM)][0].area_m2 == pytest.approx(90_000, rel=1e-3)
    assert ("outside_parent", G1) not in by and ("outside_parent", G2) not in by
    assert by[("outside_parent", COMM2 + "002")][0].area_m2 == pytest.approx(10_000, rel=1e-3)
    assert by[("sliver", COMM + "003")][0].area_m2 == pytest.approx(25, rel=1e-3)
    assert ("no_warden", G1) not in by and ("no_warden", G2) in by and ("no_warden", G3) in by
    assert by[("over_limit", G1)][0].value == 3
    assert ("over_limit", G2) not in by
    assert rep.crs == "EPSG:4548" and rep.grids_checked == 5 and rep.repaired == []
    assert by[("gap", COMM2)][0].area_m2 == pytest.approx(80_000, rel=1e-3)  # g3's hole
    assert by[("overlap", G3)][0].area_m2 == pytest.approx(10_000, rel=1e-3)  # the sticking-out grid
    assert {k for k, _ in by} == {"overlap", "gap", "outside_parent", "sliver", "no_warden", "over_limit",
                                  "no_boundary"}
    # a household limit from the caller
    with db.session() as s:
        rep2 = G.check_subtree(s, a, area_id=area_svc.by_code(s, COMM).id, household_limit=1)
    assert {i.code for i in rep2.issues if i.kind == "over_limit"} == {G1}  # g1's own limit (2) still wins


def test_check_repair_bowtie_is_reported_and_audited(db, layout):
    a = admin(db)
    bowtie = ll_polygon([(0, 1000), (1000, 2000), (1000, 1000), (0, 2000), (0, 1000)])
    load(db, fc((G3, "第1网格", bowtie)), level="grid", parent=COMM2)
    with db.session() as s:  # without --repair: reported, nothing written
        rep = G.check_subtree(s, a, area_id=area_svc.by_code(s, COMM2).id)
        inv = [i for i in rep.issues if i.kind == "invalid"]
        assert len(inv) == 1 and inv[0].code == G3 and "Self-intersection" in inv[0].detail
        assert not shapely.is_valid(shapely.from_wkb(area_svc.by_code(s, G3).boundary))
    with db.work(a) as s:
        rep = G.check_subtree(s, a, area_id=area_svc.by_code(s, COMM2).id, repair=True)
    assert len(rep.repaired) == 1
    r = rep.repaired[0]
    assert r.code == G3 and r.parts_after == 2 and "Self-intersection" in r.reason
    assert r.area_m2_after == pytest.approx(500_000, rel=1e-3)  # two triangles of 1000×500/2… ×2
    with db.session() as s:
        g3 = area_svc.by_code(s, G3)
        fixed = shapely.from_wkb(g3.boundary)
        assert fixed.is_valid and fixed.geom_type == "MultiPolygon"
        row = s.scalar(select(AuditEntry).where(AuditEntry.table_name == "areas", AuditEntry.row_id == g3.id,
                                                AuditEntry.action == "update").order_by(AuditEntry.id.desc()))
        assert "boundary" in row.changes
    with db.session() as s:
        again = G.check_subtree(s, a, area_id=area_svc.by_code(s, COMM2).id)
    assert not [i for i in again.issues if i.kind == "invalid"]


def test_check_of_the_demo_sample_is_clean_and_warden_cannot_repair(demo_db):
    a = admin(demo_db)
    with demo_db.session() as s:
        root = s.scalar(select(Area).where(Area.parent_id.is_(None)))
        rep = G.check_subtree(s, a, area_id=root.id)
        assert set(rep.counts) == {"no_boundary"}  # only the city has no boundary in the sample
        grid = s.scalar(select(Area).where(Area.level == "grid"))
    warden = make_user(demo_db, "wgx", Role.WARDEN, grids=[grid.id])
    with demo_db.session() as s, pytest.raises(PermissionDenied):
        G.check_subtree(s, warden, area_id=area_svc.by_code(s, grid.code).id, repair=True)


# --- assign -----------------------------------------------------------------------------------


def test_assign_moves_points_households_residents_open_incidents_and_reports_border_and_outside(db, layout):
    a = admin(db)
    b_wrong = add_building(db, "错", 1500, 500, G1, households=2, residents_each=2)  # really in g2
    b_ok = add_building(db, "对", 500, 500, G1, households=1, residents_each=1)
    b_border = add_building(db, "边", 1000, 1000, G2)  # shared corner of g1, g2, g3
    b_hole = add_building(db, "洞", 1000, 1500, G3)  # inside g3's hole: outside every grid
    with db.work(a) as s:
        g1 = area_svc.by_code(s, G1).id
        lon, lat = ll(1800, 1800)
        open_inc = Incident(grid_id=g1, category="hazard", title="开放事件", status="accepted", lon=lon, lat=lat)
        closed_inc = Incident(grid_id=g1, category="hazard", title="已结事件", status="closed", lon=lon, lat=lat)
        follow = Incident(grid_id=g1, category="dispute", title="随楼栋", status="reported", building_id=b_wrong)
        s.add_all([open_inc, closed_inc, follow])
        s.flush()
        ids = (open_inc.id, closed_inc.id, follow.id)
    with db.work(a) as s:
        dry = G.assign(s, a, dry_run=True)
    assert dry.changed == {"buildings": 1, "premises": 0, "incidents": 2, "households": 2, "residents": 4}
    assert grid_of(db, Building, b_wrong) == G1  # dry run wrote nothing
    with db.work(a) as s:
        rep = G.assign(s, a)
    assert rep.token == dry.token
    assert grid_of(db, Building, b_wrong) == G2 and grid_of(db, Building, b_ok) == G1
    assert grid_of(db, Building, b_border) == G2  # on the border: keeps its current grid (one it touches)
    assert grid_of(db, Building, b_hole) == G3  # outside every grid: left alone, reported
    assert [n.id for n in rep.outside] == [b_hole]
    border = [n for n in rep.on_border if n.id == b_border][0]
    assert sorted(border.touching) == sorted([G1, G2, G3])
    assert grid_of(db, Incident, ids[0]) == G3 and grid_of(db, Incident, ids[1]) == G1  # closed ones stay
    assert grid_of(db, Incident, ids[2]) == G2  # no point: follows its building
    with db.session() as s:
        inc = s.get(Incident, ids[0])
        assert inc.community_id == layout.community2 and inc.street_id == layout.street2
        hh = s.scalars(select(Household).where(Household.building_id == b_wrong)).all()
        assert {h.grid_id for h in hh} == {area_svc.by_code(s, G2).id}
        res = s.scalars(select(Resident).where(Resident.household_id.in_([h.id for h in hh]))).all()
        assert len(res) == 4 and {r.grid_id for r in res} == {area_svc.by_code(s, G2).id}
        assert all(r.version == 2 for r in res)
        aud = s.scalars(select(AuditEntry).where(AuditEntry.table_name == "residents",
                                                 AuditEntry.action == "update")).all()
        assert len(aud) == 4 and aud[0].changes["grid_id"] == [layout.grid1, area_svc.by_code(s, G2).id]
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "assign_grids")) == 1
    with db.work(a) as s:
        assert sum(G.assign(s, a).changed.values()) == 0  # idempotent


def test_assign_scoped_to_an_area_and_refused_to_wardens(db, layout):
    a = admin(db)
    b = add_building(db, "甲", 500, 500, G3)  # in g1 geometrically, assigned to g3 (other street)
    warden = make_user(db, "wg", Role.WARDEN, grids=[layout.grid1])
    with db.work(warden) as s, pytest.raises(PermissionDenied):
        G.assign(s, warden, area_id=area_svc.by_code(s, G1).id)
    with db.work(a) as s:
        rep = G.assign(s, a, area_id=area_svc.by_code(s, COMM).id)
    assert rep.changed["buildings"] == 1 and grid_of(db, Building, b) == G1


def _cancel_at(marker: str, nth: int = 1) -> tuple[tasks.TaskState, list[tuple[float, str]]]:
    """A task that records its reports and cancels itself at the ``nth`` report whose message
    contains ``marker`` (as the GUI's Cancel button would, from another thread)."""
    seen: list[tuple[float, str]] = []

    def report(fraction: float, message: str) -> None:
        seen.append((fraction, message))
        if sum(marker in m for _f, m in seen) == nth:
            task.cancel()

    task = tasks.TaskState(report, min_interval=0.0)
    return task, seen


def test_assign_cancelled_while_writing_leaves_nothing_written(db, layout):
    a = admin(db)
    moved = [add_building(db, f"错{i}", 1500, 100 + 100 * i, G1, households=1, residents_each=2) for i in range(3)]
    before = audit_count(db)
    task, seen = _cancel_at("writing buildings")
    with pytest.raises(tasks.Cancelled) as exc, db.work(a) as s:  # the exception leaves the unit of work
        G.assign(s, a, task=task)
    assert "未写入" in exc.value.message  # a user-facing message, Chinese first
    assert any("writing households" in m or "writing residents" in m for _f, m in seen) is False
    fractions = [f for f, _m in seen]
    assert fractions == sorted(fractions) and 0.5 <= fractions[-1] < 1.0  # cancelled inside the write stage
    assert all(grid_of(db, Building, b) == G1 for b in moved)  # the buildings' UPDATE was rolled back
    assert audit_count(db) == before
    with db.work(a) as s:
        assert G.assign(s, a, task=tasks.TaskState()).changed["buildings"] == 3  # and a new run does it all


def test_boundary_import_cancelled_midway_writes_nothing(db, layout):
    before = audit_count(db)
    codes = [COMM + f"{n:03d}" for n in range(5, 9)]
    data = fc(*[(c, f"第{k}网格", ll_polygon(rect(10 * k, 0, 10 * k + 10, 10))) for k, c in enumerate(codes)])
    task, seen = _cancel_at("writing areas", nth=2)  # the first new grid has been created by then
    with pytest.raises(tasks.Cancelled):
        load(db, data, level="grid", parent=COMM, task=task)
    assert any("reading features" in m for _f, m in seen)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Area).where(Area.code.in_(codes))) == 0
    assert audit_count(db) == before
    res = load(db, data, level="grid", parent=COMM, task=tasks.TaskState())
    assert res.created == codes


# --- split / merge / edit ---------------------------------------------------------------------


def test_split_preview_then_apply_with_audit(db, layout):
    a = admin(db)
    west = add_building(db, "西", 250, 500, G1, households=1, residents_each=3)
    east = add_building(db, "东", 750, 500, G1, households=2, residents_each=1)
    with db.work(a) as s:
        gid = area_svc.by_code(s, G1).id
        s.add(Household(household_no="无楼", grid_id=gid))  # no building: stays
        lon, lat = ll(800, 200)
        s.add(Incident(grid_id=gid, category="request", title="东侧事件", status="reported", lon=lon, lat=lat))
    # the line runs beyond the grid on both sides, cutting it at x = 400 m (west 40 %, east 60 %)
    line = shapely.LineString([ll(400, -50), ll(400, 1050)])
    with db.session() as s:
        prev = G.split_grid(s, a, grid_id=area_svc.by_code(s, G1).id, line=line)
    assert not prev.applied
    new_code = COMM + "003"
    assert [(x.code, x.action) for x in prev.shapes] == [(G1, "reshape"), (new_code, "create")]
    assert prev.shapes[0].area_m2_after == pytest.approx(600_000, rel=1e-3)  # the grid keeps the larger part
    assert prev.shapes[1].area_m2_after == pytest.approx(400_000, rel=1e-3)
    assert prev.moved == {"buildings": 1, "premises": 0, "households": 1, "residents": 3, "open_incidents": 0}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Area).where(Area.code == new_code)) == 0
    with db.work(a) as s:
        done = G.split_grid(s, a, grid_id=area_svc.by_code(s, G1).id, line=line, apply=True, expected_token=prev.token)
    assert done.applied and done.moved == prev.moved
    assert grid_of(db, Building, west) == new_code and grid_of(db, Building, east) == G1
    with db.session() as s:
        new = area_svc.by_code(s, new_code)
        assert new.parent_id == layout.community and new.name == "第3网格"
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "split_grid")) == 1
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.table_name == "residents", AuditEntry.note.like("网格拆分%"))) == 3
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.table_name == "areas", AuditEntry.action == "insert", AuditEntry.row_id == new.id)) == 1
        rep = G.check_subtree(s, a, area_id=area_svc.by_code(s, COMM).id)
    assert not [i for i in rep.issues if i.kind in ("overlap", "gap", "outside_parent", "sliver", "invalid")]


def test_split_refuses_a_line_that_does_not_cross(db, layout):
    a = admin(db)
    with db.session() as s, pytest.raises(ValidationError, match="恰好两块"):
        G.split_grid(s, a, grid_id=area_svc.by_code(s, G1).id, line=shapely.LineString([ll(400, -50), ll(400, 500)]))


def test_merge_preview_apply_audit_and_stale_token(db, layout):
    a = admin(db)
    add_building(db, "乙", 1500, 500, G2, households=2, residents_each=2)
    wg = make_user(db, "wg2", Role.WARDEN, grids=[layout.grid2])
    with db.work(a) as s:
        s.add(Incident(grid_id=layout.grid2, category="hazard", title="x", status="closed"))
        s.add(Incident(grid_id=layout.grid2, category="hazard", title="y", status="in_progress"))
    with db.session() as s:
        prev = G.merge_grids(s, a, keep_id=area_svc.by_code(s, G1).id, absorb_id=area_svc.by_code(s, G2).id)
    assert prev.moved == {"buildings": 1, "premises": 0, "households": 2, "residents": 4, "open_incidents": 1}
    assert prev.repointed == {"incidents.grid_id": 1, "warden_assignments.grid_id": 1}
    assert prev.shapes[0].area_m2_after == pytest.approx(2_000_000, rel=1e-4)
    # the data changes after the preview: applying with the old token is refused
    add_building(db, "丙", 1600, 600, G2)
    with db.work(a) as s, pytest.raises(ConflictError):
        G.merge_grids(s, a, keep_id=area_svc.by_code(s, G1).id, absorb_id=area_svc.by_code(s, G2).id, apply=True,
                      expected_token=prev.token)
    with db.work(a) as s:
        done = G.merge_grids(s, a, keep_id=area_svc.by_code(s, G1).id, absorb_id=area_svc.by_code(s, G2).id, apply=True)
    assert done.moved["buildings"] == 2
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Area).where(Area.code == G2)) == 0
        keep = area_svc.by_code(s, G1)
        assert shapely.from_wkb(keep.boundary).equals(ll_polygon(rect(0, 0, 2000, 1000)).buffer(0)) or \
            G.measure_area(s, a, area_id=keep.id).area_m2 == pytest.approx(2_000_000, rel=1e-4)
        assert s.scalar(select(func.count()).select_from(Incident).where(Incident.grid_id == keep.id)) == 2
        assert s.scalar(select(WardenAssignment.grid_id).where(WardenAssignment.user_id == wg.user_id)) == keep.id
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.table_name == "areas", AuditEntry.action == "delete", AuditEntry.row_id == layout.grid2)) == 1
        m = s.scalar(select(AuditEntry).where(AuditEntry.action == "merge_grids"))
        assert m.changes["absorbed"] == G2 and m.changes["residents"] == 4


def test_merge_refuses_grids_of_different_communities(db, layout):
    a = admin(db)
    with db.session() as s, pytest.raises(ValidationError):
        G.merge_grids(s, a, keep_id=area_svc.by_code(s, G1).id, absorb_id=area_svc.by_code(s, G3).id)


def test_edit_moves_shared_border(db, layout):
    a = admin(db)
    b = add_building(db, "丁", 950, 500, G1, households=1, residents_each=1)
    changes = {G1: ll_polygon(rect(0, 0, 900, 1000)), G2: ll_polygon(rect(900, 0, 2000, 1000))}
    with db.session() as s:
        prev = G.edit_boundaries(s, a, changes=changes)
    assert prev.moved["buildings"] == 1 and prev.moved["residents"] == 1
    with db.work(a) as s:
        G.edit_boundaries(s, a, changes=changes, apply=True, expected_token=prev.token)
    assert grid_of(db, Building, b) == G2


# --- coverage ---------------------------------------------------------------------------------


def test_coverage_on_a_known_layout(db, layout):
    a = admin(db)
    near = add_building(db, "近", 500 + 590, 500, G2, households=3)  # 590 m east of the facility
    far = add_building(db, "远", 500, 500 + 620, G3, households=5)  # 620 m north (other community)
    add_building(db, "中", 500, 500, G1, households=2)  # at the facility
    fac = [("服务中心", *ll(500, 500))]
    with db.session() as s:
        r = G.coverage(s, a, facilities=fac, radius_m=600)
    assert (r.buildings, r.buildings_covered, r.households, r.households_covered) == (3, 2, 10, 5)
    per = {c.code: c for c in r.communities}
    assert per[COMM].building_share == 1.0 and per[COMM].household_share == 1.0
    assert per[COMM2].buildings_covered == 0 and per[COMM2].households == 5
    assert [u.id for u in r.uncovered] == [far] and r.uncovered[0].nearest_m == pytest.approx(620, abs=0.5)
    with db.session() as s:
        r2 = G.coverage(s, a, facilities=fac, radius_m=630, area_id=area_svc.by_code(s, COMM2).id)
    assert (r2.buildings, r2.buildings_covered) == (1, 1)
    staff = make_user(db, "sq", Role.COMMUNITY_STAFF, area_id=layout.community)
    with db.session() as s:
        r3 = G.coverage(s, staff, facilities=fac, radius_m=600)
    assert (r3.buildings, r3.households) == (2, 5)  # only the buildings of their own community
    assert near  # noqa: B018 - kept for readability of the layout


def test_coverage_from_facility_rows_of_a_kind(demo_db):
    a = admin(demo_db)
    with demo_db.session() as s:
        r = G.coverage(s, a, facility_kind="service_center", radius_m=1000)
        r_big = G.coverage(s, a, facility_kind="service_center", radius_m=50_000)
    assert r.facilities > 0 and 0 < r.buildings_covered < r.buildings
    assert r_big.buildings_covered == r_big.buildings and r_big.uncovered_count == 0


# --- CLI --------------------------------------------------------------------------------------


def gridman(url: str, *args: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "gridman", *signed_in(url), *args, "--json"], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_cli_import_check_assign_split_export_coverage(db, tmp_path):
    build_tree(db)
    make_user(db, "admin", Role.ADMIN)  # the empty database has no account to sign in with
    url = db.url if db.dialect != "sqlite" else str(db.sqlite_path)
    db.dispose()
    f = tmp_path / "grids.geojson"
    f.write_text(json.dumps(fc((G1, "第1网格", ll_polygon(rect(0, 0, 1000, 1000))),
                               (G2, "第2网格", ll_polygon(rect(1000, 0, 2000, 1000))))), encoding="utf-8")
    out = gridman(url, "areas", "import-geojson", str(f), "--level", "grid", "--parent", COMM)
    assert out["updated"] == [G1, G2]
    chk = gridman(url, "grids", "check", "--area", COMM)
    assert chk["counts"] == {"no_boundary": 1, "no_warden": 2}  # the community itself has no boundary
    asg = gridman(url, "grids", "assign", "--dry-run")
    assert asg["dry_run"] is True and asg["changed"]["buildings"] == 0
    prev = gridman(url, "grids", "split", G2, "--line", shapely.LineString([ll(1500, -10), ll(1500, 1010)]).wkt)
    assert prev["applied"] is False and len(prev["token"]) == 16
    done = gridman(url, "grids", "split", G2, "--line", shapely.LineString([ll(1500, -10), ll(1500, 1010)]).wkt,
                   "--yes", "--token", prev["token"])
    assert done["applied"] is True and done["shapes"][1]["code"] == COMM + "003"
    exp = gridman(url, "areas", "export-geojson", "--area", COMM, "--out", str(tmp_path / "out.geojson"))
    assert exp["features"] == 4
    fac = tmp_path / "fac.geojson"
    fac.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "站"}, "geometry": {"type": "Point", "coordinates": list(ll(0, 0))}}]}))
    cov = gridman(url, "coverage", "--facilities", str(fac), "--radius", "500")
    assert cov["facilities"] == 1 and cov["buildings"] == 0
    bad = subprocess.run([sys.executable, "-m", "gridman", *signed_in(url), "grids", "merge", G1, G3, "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "不属于同一社区" in bad.stderr


@pytest.mark.parametrize("coords", [[], ["a", "b"]])
def test_facilities_with_unreadable_coordinates_name_the_feature(coords):
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "卫生站"}, "geometry": {"type": "Point", "coordinates": [117.2, 31.8]}},
        {"type": "Feature", "properties": {"name": "警务室"}, "geometry": {"type": "Point", "coordinates": coords}}]}
    with pytest.raises(ValidationError) as ei:  # was shapely's GEOSException / ValueError text
        G.facilities_from_geojson(fc, source="f.geojson")
    assert "第 2 个要素（警务室）" in ei.value.message and "feature 2" in ei.value.en

"""Geometry benchmarks (issue 5). Prints figures next to their peer; never pass/fail.

1. Point → grid assignment of 1,000,000 building points against the 3,262 grids of the city
   (the sample's tiling): the vectorised ``geo.locate_points`` (STRtree + prepared contains_xy)
   next to a naive per-polygon ``contains`` loop timed on a sample and extrapolated.
2. ``grids check`` (``check_subtree``) of the whole city: on ``bench/out/city.sqlite`` if present,
   else on a synthetic city database (same tiling, wardens, 380,000 households) built here.
3. End-to-end ``grids assign --dry-run`` through the database (load points, locate, plan moves)
   with ``--db-points N`` building rows (default 1,000,000; 0 skips it). The synthetic database is
   kept in ``bench/out/geometry-city-N.sqlite`` (gitignored) and reused. Then the write path:
   100,000 buildings put in a wrong grid and re-assigned for real (set-based UPDATE + audit rows).

Usage: python bench/bench_geometry.py [--points N] [--naive-sample N] [--db-points N]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridman.core import geo  # noqa: E402
from gridman.core.db import open_database  # noqa: E402
from gridman.core.models import Area, Building, Household, User, WardenAssignment, new_uuid, utcnow  # noqa: E402
from gridman.core.sample import _city_scale, _tile  # noqa: E402
from gridman.core.services import geometry as G  # noqa: E402
from gridman.core.services.permissions import system_actor  # noqa: E402


def city_tiling() -> list[dict]:
    """The sample's city: 9 districts → 38 streets → 362 communities → 3,262 grids (boxes)."""
    sc = _city_scale()
    out: list[dict] = [{"code": sc.city[0], "name": sc.city[1], "level": "city", "parent": None, "rect": None}]
    per_street = sc.communities_per_street
    n_comm = sum(per_street)
    grids_per_comm = [sc.grids // n_comm + (1 if k < sc.grids % n_comm else 0) for k in range(n_comm)]
    si = ci = 0
    for (dcode, dname, streets), drect in zip(sc.districts, _tile(sc.bbox, len(sc.districts)), strict=True):
        out.append({"code": dcode, "name": dname, "level": "district", "parent": sc.city[0], "rect": drect})
        for s_no, (sname, srect) in enumerate(zip(streets, _tile(drect, len(streets)), strict=True), 1):
            scode = f"{dcode}{s_no:03d}"
            out.append({"code": scode, "name": sname, "level": "street", "parent": dcode, "rect": srect})
            for c_no, crect in enumerate(_tile(srect, per_street[si]), 1):
                ccode = f"{scode}{c_no:03d}"
                out.append({"code": ccode, "name": f"社区{ccode}", "level": "community", "parent": scode, "rect": crect})
                for g_no, grect in enumerate(_tile(crect, grids_per_comm[ci]), 1):
                    out.append({"code": f"{ccode}{g_no:03d}", "name": f"第{g_no}网格", "level": "grid",
                                "parent": ccode, "rect": grect})
                ci += 1
            si += 1
    return out


def build_city_db(path: Path, tiles: list[dict], *, households: int, buildings: int, seed: int = 5) -> None:
    """A city database with the tiling, a warden for 97 % of grids, households and building points."""
    db = open_database(path)
    rng = random.Random(seed)
    now = utcnow()
    sync = {"version": 1, "created_at": now, "updated_at": now}
    rows, ids, paths = [], {}, {}
    for i, t in enumerate(tiles, 1):
        ids[t["code"]] = i
        ppath = paths[t["parent"]] if t["parent"] else "/"
        paths[t["code"]] = f"{ppath}{i}/"
        r = t["rect"]
        rows.append({"id": i, "code": t["code"], "name": t["name"], "level": t["level"],
                     "parent_id": ids[t["parent"]] if t["parent"] else None, "path": paths[t["code"]],
                     "depth": paths[t["code"]].count("/") - 2, "boundary": shapely.to_wkb(shapely.box(*r)) if r else None,
                     "center_lon": (r[0] + r[2]) / 2 if r else None, "center_lat": (r[1] + r[3]) / 2 if r else None,
                     "household_limit": None, "note": None, "uuid": new_uuid(), **sync})
    grids = [(ids[t["code"]], t["rect"]) for t in tiles if t["level"] == "grid"]
    with db.engine.begin() as c:
        c.execute(insert(Area), rows)
        users, wa = [], []
        for k, (gid, _) in enumerate(grids, 1):
            users.append({"id": 1000 + k, "username": f"wg{k}", "display_name": f"网格员{k}", "password_hash": "x",
                          "role": "warden", "active": True, "is_system": False, "uuid": new_uuid(), **sync})
            if rng.random() < 0.97:
                wa.append({"user_id": 1000 + k, "grid_id": gid, "start_date": date(2024, 1, 1), "end_date": None,
                           "is_primary": True, "uuid": new_uuid(), **sync})
        c.execute(insert(User), users)
        c.execute(insert(WardenAssignment), wa)
        gids = np.array([g for g, _ in grids])
        rects = np.array([r for _, r in grids])
        nb = max(buildings, 1)
        pick = np.random.default_rng(seed).integers(0, len(grids), nb)
        u = np.random.default_rng(seed + 1).uniform(0.02, 0.98, (nb, 2))
        lon = rects[pick, 0] + u[:, 0] * (rects[pick, 2] - rects[pick, 0])
        lat = rects[pick, 1] + u[:, 1] * (rects[pick, 3] - rects[pick, 1])
        batch = 50_000
        for s in range(0, buildings, batch):
            c.execute(insert(Building), [
                {"id": s + j + 1, "grid_id": int(gids[pick[s + j]]), "name": f"{s + j + 1}栋", "lon": float(lon[s + j]),
                 "lat": float(lat[s + j]), "uuid": new_uuid(), **sync} for j in range(min(batch, buildings - s))])
        for s in range(0, households, batch):
            c.execute(insert(Household), [
                {"household_no": f"H{s + j}", "grid_id": int(gids[rng.randrange(len(gids))]), "kind": "family",
                 "uuid": new_uuid(), **sync} for j in range(min(batch, households - s))])
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--naive-sample", type=int, default=2_000)
    ap.add_argument("--db-points", type=int, default=1_000_000)
    args = ap.parse_args()

    tiles = city_tiling()
    grid_tiles = [t for t in tiles if t["level"] == "grid"]
    polys = np.array([shapely.box(*t["rect"]) for t in grid_tiles], dtype=object)
    x0, y0, x1, y1 = shapely.total_bounds(polys)
    rng = np.random.default_rng(1)
    n = args.points
    px, py = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    print(f"grids: {len(polys):,}  points: {n:,}")

    geo.locate_points(polys[:10], px[:1000], py[:1000])  # warm-up (imports, GEOS)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        loc = geo.locate_points(polys, px, py)
        best = min(best, time.perf_counter() - t0)
    counts = np.bincount(loc.status, minlength=4)
    print(f"[assign] vectorised locate_points (STRtree + prepared contains_xy): {best:.2f} s "
          f"(best of 3; inside {counts[0]:,}, border {counts[1]:,}, outside {counts[2]:,}) — target < 3 s")

    k = min(args.naive_sample, n)
    sample = [shapely.Point(px[i], py[i]) for i in range(k)]
    plist = list(polys)
    t0 = time.perf_counter()
    naive = []
    for pt in sample:
        hit = -1
        for j, poly in enumerate(plist):
            if poly.contains(pt):
                hit = j
                break
        naive.append(hit)
    dt = time.perf_counter() - t0
    agree = np.mean(np.array(naive) == loc.index[:k])
    print(f"[assign] naive per-polygon contains loop: {dt:.2f} s for {k:,} points → extrapolated "
          f"{dt / k * n:,.0f} s for {n:,} ({dt / k * n / best:,.0f}× slower); agreement {agree:.1%}")

    with tempfile.TemporaryDirectory() as tmp:
        city = ROOT / "bench" / "out" / "city.sqlite"
        if city.exists():
            src = city
            print(f"[check] using {city}")
        else:
            src = ROOT / "bench" / "out" / f"geometry-city-{args.db_points}.sqlite"
            if not src.exists():
                src.parent.mkdir(parents=True, exist_ok=True)
                part = src.with_suffix(".part")
                part.unlink(missing_ok=True)
                t0 = time.perf_counter()
                build_city_db(part, tiles, households=380_000, buildings=args.db_points)
                part.rename(src)
                print(f"[check] built a synthetic city database in {time.perf_counter() - t0:.1f} s "
                      f"({len(tiles):,} areas, 380,000 households, {args.db_points:,} buildings) → {src}")
            else:
                print(f"[check] reusing the synthetic city database {src}")
        db = open_database(src)
        with db.session() as s:
            actor = system_actor(s)
            root = s.scalar(select(Area).where(Area.parent_id.is_(None)))
            for run in range(2):
                t0 = time.perf_counter()
                rep = G.check_subtree(s, actor, area_id=root.id)
                dt = time.perf_counter() - t0
                print(f"[check] grids check of the whole city ({rep.areas_checked:,} areas, {rep.grids_checked:,} "
                      f"grids): {dt:.2f} s (run {run + 1}) — target < 10 s; issues {rep.counts}")
        if args.db_points and not city.exists():
            copy = Path(tmp) / "assign.sqlite"
            shutil.copyfile(src, copy)
            db2 = open_database(copy)
            with db2.work(actor) as s:
                t0 = time.perf_counter()
                r = G.assign(s, actor, dry_run=True)
                dt = time.perf_counter() - t0
            print(f"[assign] end-to-end grids assign --dry-run through SQLite ({r.points['buildings']:,} buildings, "
                  f"load + locate + plan): {dt:.2f} s; changed {sum(r.changed.values())}, border {r.border_count}")
            # the write path: 100,000 buildings put in a wrong grid, then re-assigned for real
            moved = min(100_000, args.db_points)
            with db2.engine.begin() as c:
                c.exec_driver_sql(f"UPDATE buildings SET grid_id = (SELECT MIN(id) FROM areas WHERE level='grid') "
                                  f"WHERE id <= {moved}")
            with db2.work(actor) as s:
                t0 = time.perf_counter()
                r = G.assign(s, actor)
                dt = time.perf_counter() - t0
            print(f"[assign] grids assign writing {r.changed['buildings']:,} changed buildings (executemany + "
                  f"{r.changed['buildings']:,} audit rows): {dt:.2f} s")
            db2.dispose()
        db.dispose()


if __name__ == "__main__":
    main()

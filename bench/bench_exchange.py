"""Offline exchange benchmarks (issue 7). Prints figures; never pass/fail.

On a street of ~100,000 residents (``gridman sample --scale street``, cached in
``bench/out/street.sqlite``, copied before anything writes):

1. checkout of the street (target < 20 s) — wall time, peak RSS, file size;
2. check-in of the unchanged workbook (every row compared; target < 30 s);
3. the offline round trip: ``exchange open`` into a local database, 1,000 residents edited and
   500 households with 2 residents each added there, ``exchange export``, then the check-in of
   that returned workbook (target < 30 s), with 300 of the edited residents also changed
   centrally (→ 300 conflicts);
4. peers in the same run: openpyxl's own write-only writer for the residents sheet alone, and a
   raw python-calamine read of every sheet of the package (the floor under any check-in).

Each phase runs in its own process so its peak RSS is its own.
Usage: python bench/bench_exchange.py [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
STREET_DB = OUT / "street.sqlite"
STREET = "340104001"


def _phase(name: str, *args: str) -> dict:
    r = subprocess.run([sys.executable, __file__, "--phase", name, *args], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        print(f"phase {name} failed:\n{r.stderr[-3000:]}")
        raise SystemExit(1)
    return json.loads(r.stdout.strip().splitlines()[-1])


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(name: str, args: list[str]) -> None:
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import select, text

    from gridman.core.db import open_database
    from gridman.core.services import exchange
    from gridman.core.services.permissions import system_actor

    def admin(db):  # type: ignore[no-untyped-def]
        with db.session() as s:
            return system_actor(s)

    t0 = time.perf_counter()
    out: dict = {}
    if name == "checkout":
        db = open_database(args[0])
        a = admin(db)
        with db.work(a) as s:
            res = exchange.checkout(s, a, out=args[1], area_code=STREET)
        out = {"counts": res.counts, "size_mb": round(Path(args[1]).stat().st_size / 2**20, 1)}
    elif name == "checkin":
        db = open_database(args[0])
        a = admin(db)
        with db.work(a) as s:
            res = exchange.checkin(s, a, path=args[1])
        out = {"summary": res.summary(), "conflicts": len(res.conflicts)}
    elif name == "open":
        db = open_database(args[0])
        a = admin(db)
        with db.work(a) as s:
            res = exchange.open_package(s, a, path=args[1])
        out = {"counts": res.counts}
    elif name == "edit_local":
        from datetime import date

        from gridman.core import idcard
        from gridman.core.models import Area, Resident
        from gridman.core.services import people

        db = open_database(args[0])
        a = admin(db)
        t1 = time.perf_counter()
        with db.work(a) as s:
            grids = list(s.scalars(select(Area.id).where(Area.level == "grid").order_by(Area.id)))
            for i, r in enumerate(s.scalars(select(Resident).order_by(Resident.id).limit(1000))):
                r.phone = f"139{i:08d}"
            for i in range(500):
                people.register_household(s, a, grid_id=grids[i % len(grids)], household_no=f"BENCH-{i:05d}",
                                          address=f"离线新增{i}号", members=[
                    {"name": f"新户主{i}", "citizen_id": idcard.make("340104", date(1970 + i % 30, 1 + i % 12, 1 + i % 28),
                                                                   i % 500, "M"),
                     "relation_to_head": "head", "population_type": "registered", "status": "active"},
                    {"name": f"新配偶{i}", "relation_to_head": "spouse", "population_type": "registered",
                     "status": "active", "sex": "F"}])
        out = {"edit_seconds": round(time.perf_counter() - t1, 1)}
    elif name == "export":
        db = open_database(args[0])
        a = admin(db)
        with db.work(a) as s:
            exchange.export_local(s, a, out=args[1])
    elif name == "central_edit":
        db = open_database(args[0])
        with db.engine.begin() as c:  # 300 of the residents edited offline, also changed centrally
            c.execute(text("UPDATE residents SET employer = '中心单位', version = version + 1 WHERE id IN "
                           "(SELECT id FROM residents ORDER BY id LIMIT 300)"))
    elif name == "peer_openpyxl":
        from openpyxl import Workbook

        from gridman.core.services.exchange.canonical import canon_row, display_row, register_select
        from gridman.core.services.exchange.workbook import BY_KEY

        db = open_database(args[0])
        reg = BY_KEY["residents"]
        with db.session() as s:
            rows = [display_row(reg, r._mapping, canon_row(reg, r._mapping, False), r._mapping["version"])
                    for r in s.execute(register_select(reg, lambda t: t.c.id > 0))]
        t1 = time.perf_counter()
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("实有人口")
        for row in rows:
            ws.append(row)
        wb.save(args[1])
        out = {"rows": len(rows), "cells": len(rows) * len(rows[0]), "write_seconds": round(time.perf_counter() - t1, 1)}
    elif name == "peer_calamine":
        from python_calamine import CalamineWorkbook

        wb = CalamineWorkbook.from_path(args[0])
        n = 0
        for title in wb.sheet_names:
            n += sum(len(r) for r in wb.get_sheet_by_name(title).to_python())
        out = {"cells": n}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["peak_rss_mb"] = round(_rss_mb())
    print(json.dumps(out, ensure_ascii=False))


def ensure_street() -> None:
    if STREET_DB.exists():
        return
    OUT.mkdir(parents=True, exist_ok=True)
    print("generating the street sample (once) …", flush=True)
    subprocess.run([sys.executable, "-m", "gridman", "sample", "--scale", "street", "--out", str(STREET_DB)],
                   check=True, cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase")
    ap.add_argument("--keep", action="store_true", help="keep the temporary files")
    ap.add_argument("rest", nargs="*")
    a = ap.parse_args()
    if a.phase:
        run_phase(a.phase, a.rest)
        return
    ensure_street()
    tmp = Path(tempfile.mkdtemp(prefix="gridman-bench-exchange-"))
    try:
        central = tmp / "central.sqlite"
        shutil.copyfile(STREET_DB, central)
        book, local, back = tmp / "street.xlsx", tmp / "local.sqlite", tmp / "returned.xlsx"
        co = _phase("checkout", str(central), str(book))
        cells = sum(co["counts"].values())
        print(f"checkout of street {STREET}: {co['seconds']} s (target < 20 s), peak RSS {co['peak_rss_mb']} MB, "
              f"file {co['size_mb']} MB, rows {cells:,}: {co['counts']}")
        pc = _phase("peer_calamine", str(book))
        print(f"  peer: raw calamine read of every sheet: {pc['seconds']} s for {pc['cells']:,} cells, "
              f"peak RSS {pc['peak_rss_mb']} MB")
        po = _phase("peer_openpyxl", str(central), str(tmp / "peer.xlsx"))
        print(f"  peer: openpyxl write-only, residents sheet alone ({po['cells']:,} cells): {po['write_seconds']} s")
        ci = _phase("checkin", str(central), str(book))
        print(f"check-in of the unchanged workbook: {ci['seconds']} s (target < 30 s), peak RSS {ci['peak_rss_mb']} MB"
              f" — {ci['summary']}")
        # the offline round trip (a second checkout: the first one is checked in now)
        shutil.copyfile(STREET_DB, central)
        _phase("checkout", str(central), str(book))
        op = _phase("open", str(local), str(book))
        print(f"exchange open into a local database: {op['seconds']} s, peak RSS {op['peak_rss_mb']} MB")
        ed = _phase("edit_local", str(local))
        ex = _phase("export", str(local), str(back))
        print(f"local edits (1,000 residents, 500 households × 2): {ed['edit_seconds']} s; exchange export: "
              f"{ex['seconds']} s, peak RSS {ex['peak_rss_mb']} MB")
        _phase("central_edit", str(central))
        ci2 = _phase("checkin", str(central), str(back))
        print(f"check-in of the returned workbook: {ci2['seconds']} s (target < 30 s), peak RSS {ci2['peak_rss_mb']} MB"
              f" — {ci2['summary']}")
    finally:
        if a.keep:
            print("files kept in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Foundation benchmarks (issue 2). Prints figures; never pass/fail.

1. ``gridman sample --scale city``: wall time and peak memory (RSS of the child process).
2. Insert throughput of the sample writer (SQLAlchemy Core executemany, as the writer does it)
   next to raw ``sqlite3.executemany`` of the same resident rows, in the same run.

Usage: python bench/bench_foundation.py [--skip-city] [--rows N]
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from sqlalchemy import insert

from gridman.core.db import open_database
from gridman.core.models import Resident
from gridman.core.sample import SAMPLE_AS_OF, STREET, Rand, _Generator, _Writer

ROOT = Path(__file__).resolve().parents[1]


def bench_city(tmp: Path) -> None:
    out = tmp / "city.sqlite"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "gridman", "sample", "--out", str(out), "--scale", "city", "--json"],
                       capture_output=True, text=True)
    secs = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if r.returncode != 0:
        print("city sample failed:", r.stderr[-2000:])
        return
    import json

    res = json.loads(r.stdout)
    c = res["counts"]
    print(f"sample --scale city: {secs:.1f} s wall, peak RSS {peak_mb:.0f} MB, {res['rows_written']:,} rows "
          f"({res['rows_written'] / secs:,.0f} rows/s overall), file {out.stat().st_size / 2**20:.0f} MB")
    print(f"  grids={c['areas']} residents={c['residents']:,} incidents={c['incidents']:,} "
          f"steps={c['incident_steps']:,} users={c['users']:,}")


class _Collect(_Writer):
    def __init__(self) -> None:  # noqa: D107 - collects resident rows instead of writing
        self.rows: list[dict] = []
        self.written = 0

    def add(self, model, row):  # type: ignore[no-untyped-def]
        if model is Resident:
            self.rows.append(row)

    def flush(self) -> None:
        pass


def bench_insert(tmp: Path, n_rows: int) -> None:
    sc = STREET
    gen = _Generator(sc, Rand(7), SAMPLE_AS_OF,
                     _Collect(), {})
    gen.tags_for = lambda *a: []  # type: ignore[method-assign]
    gen.grid_residents = []
    grid = {"id": 1, "code": "340104001001001", "path": "/1/", "depth": 0}
    while len(gen.w.rows) < n_rows:
        gen.household(gen.ids.next("households"), grid, "地址", False)
    rows = [{**r, "household_id": None} for r in gen.w.rows[:n_rows]]
    cols = list(rows[0].keys())
    grid_sql = ("INSERT INTO areas (id, uuid, version, created_at, updated_at, code, name, level, path, depth) "
                "VALUES (1, 'g', 1, '2026-01-01', '2026-01-01', '1', 'g', 'grid', '/1/', 0)")

    # sample writer path: Core insert() executemany in batches of 20,000 in one transaction
    d = open_database(tmp / "a.sqlite")
    with d.engine.begin() as c:
        c.exec_driver_sql(grid_sql)
    t0 = time.perf_counter()
    with d.engine.begin() as c:
        for i in range(0, len(rows), 20_000):
            c.execute(insert(Resident.__table__), rows[i : i + 20_000])
    t_sa = time.perf_counter() - t0
    d.dispose()

    # raw sqlite3 executemany of the same rows into the same schema
    d = open_database(tmp / "b.sqlite")
    d.dispose()
    con = sqlite3.connect(tmp / "b.sqlite")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=ON")
    with con:
        con.execute(grid_sql)
    tuples = [tuple(r[k] for k in cols) for r in rows]
    sql = f"INSERT INTO residents ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        t0 = time.perf_counter()
        with con:
            con.executemany(sql, tuples)
        t_raw = time.perf_counter() - t0
    con.close()
    n = len(rows)
    print(f"insert {n:,} resident rows ({len(cols)} columns):")
    print(f"  sample writer (Core executemany): {t_sa:.2f} s = {n / t_sa:,.0f} rows/s")
    print(f"  raw sqlite3.executemany:          {t_raw:.2f} s = {n / t_raw:,.0f} rows/s")
    print(f"  ratio writer/raw: {t_sa / t_raw:.2f}x  (target within 2.5x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-city", action="store_true")
    ap.add_argument("--rows", type=int, default=200_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        bench_insert(tmp, a.rows)
        if not a.skip_city:
            bench_city(tmp)


if __name__ == "__main__":
    main()

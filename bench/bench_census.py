"""Census import/export benchmark: prints figures next to the pandas peer measured in the same run.

    python bench/bench_census.py [--rows 100000] [--keep] [--baseline REV]

(``--baseline REV``: only the import, of this checkout and of commit REV alternately, compared.)

1. builds a 100,000-row × 20-column census workbook (bench/out/census_100k.xlsx, reused if present);
2. gridman end-to-end import into a fresh SQLite database (read with calamine, clean and
   validate every cell, household checks, write residents/households/tags/audit in one
   transaction, commit) — time and peak RSS, three runs, the median reported;
3. the peer: ``pandas.read_excel(engine="openpyxl")`` + ``DataFrame.to_sql`` of the same file
   (no validation at all) — time and peak RSS;
4. export of the 100,000 imported residents to .xlsx — time and peak RSS.

Each measurement runs in its own process so peak memory (ru_maxrss) is its own.
Targets (issue 4): import ≥ 4× faster than the peer and ≤ 8 s, peak < 600 MB; export < 15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"

HEADERS = ["户号", "网格编码", "姓名", "性别", "民族", "公民身份号码", "出生日期", "联系电话", "户籍地址", "现住址",
           "与户主关系", "人口类型", "居住证号", "居住证有效期", "文化程度", "婚姻状况", "政治面貌", "工作单位", "标签", "备注"]
N_GRIDS = 40


def grid_code(i: int) -> str:
    return f"340104001001{i + 1:03d}"


def build_workbook(path: Path, rows: int) -> None:
    from gridman.core import idcard
    from gridman.core.xlsxstream import StreamWriter

    rng = random.Random(4)
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
    given = "伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平刚桂英华"
    eth = ["汉族"] * 20 + ["回族", "满族", "壮族"]
    rel = ["配偶", "子女", "父母", "孙子女", "兄弟姐妹", "其他"]
    seq: dict[tuple[str, date, str], int] = {}
    with StreamWriter(path, sheet_name="实有人口", widths=[12] * len(HEADERS)) as w:
        w.write_row(HEADERS)
        i = 0
        hh = 0
        while i < rows:
            hh += 1
            size = min(rng.randint(1, 5), rows - i)
            g = grid_code(hh % N_GRIDS)
            floating = rng.random() < 0.2
            for k in range(size):
                sex = rng.choice("MF")
                born = date(1940, 1, 1) + timedelta(days=rng.randint(0, 30000))
                key = ("340104", born, sex)
                s = seq.get(key, 0)
                seq[key] = s + 1
                cid = idcard.make("340104", born, s, sex)
                form = i % 5
                bd = (born.isoformat() if form == 0 else f"{born.year}/{born.month}/{born.day}" if form == 1
                      else born.strftime("%Y%m%d") if form == 2 else f"{born.year}年{born.month}月{born.day}日"
                      if form == 3 else born)
                w.write_row([
                    f"B{hh:07d}", g, rng.choice(surnames) + rng.choice(given) + rng.choice(given), "男" if sex == "M" else "女",
                    rng.choice(eth), cid, bd, f"1{rng.randint(3, 9)}{rng.randint(0, 999999999):09d}",
                    "安徽省合肥市蜀山区", f"马鞍山路{rng.randint(1, 99)}号{rng.randint(1, 30)}栋{rng.randint(101, 2404)}室",
                    "户主" if k == 0 else rng.choice(rel), "流动人口" if floating else "户籍人口",
                    f"JZ{rng.randint(10**9, 10**10 - 1)}" if floating else None,
                    (date(2027, 1, 1) + timedelta(days=rng.randint(0, 700))) if floating else None,
                    rng.choice(["小学", "初中", "高中", "大专", "本科", None]), rng.choice(["已婚", "未婚", None]),
                    rng.choice(["群众", "中共党员", "共青团员"]), rng.choice(["", "合肥某某公司", "个体"]) or None,
                    rng.choice(["", "", "", "低保", "残疾人", "独居老人、寿星卡"]) or None,
                    None if rng.random() < 0.9 else "备注" + str(i),
                ])
                i += 1


def fresh_db(path: Path):  # type: ignore[no-untyped-def]
    from gridman.core.db import open_database
    from gridman.core.services import areas
    from gridman.core.services.permissions import system_actor

    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    db = open_database(path)
    with db.session() as s:
        admin = system_actor(s)
    with db.work(admin) as s:
        city = areas.create_area(s, admin, code="340100", name="合肥市", level="city")
        dist = areas.create_area(s, admin, code="340104", name="蜀山区", level="district", parent=city)
        st = areas.create_area(s, admin, code="340104001", name="笔架山街道", level="street", parent=dist)
        com = areas.create_area(s, admin, code="340104001001", name="西园社区", level="community", parent=st)
        for i in range(N_GRIDS):
            areas.create_area(s, admin, code=grid_code(i), name=f"第{i + 1}网格", level="grid", parent=com)
    return db, admin


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_import(wb: Path, dbpath: Path) -> dict:
    db, admin = fresh_db(dbpath)
    from gridman.core.services import census as ci
    from gridman.core.tasks import TaskState

    base = maxrss_mb()
    # CPU seconds per stage, from the import's own progress reports: read (check, calamine, find
    # the table), validate (clean every cell, households, duplicates, plan), write (+ commit)
    stages = {"read": 0.0, "validate": 0.0, "write": 0.0}
    last = [time.process_time(), "read"]

    locked = [0.0]  # wall clock when the write stage began: the write lock is held from there to the commit

    def on_progress(fraction: float, _msg: str) -> None:
        if fraction >= 0.65 and not locked[0]:
            locked[0] = time.perf_counter()
        now = time.process_time()
        stages[last[1]] += now - last[0]
        last[0] = now
        last[1] = "read" if fraction < 0.15 else "validate" if fraction < 0.65 else "write"

    t, c = time.perf_counter(), time.process_time()
    with db.work(admin) as s:
        res = ci.import_census(s, admin, path=wb, task=TaskState(on_progress, min_interval=0))
        last[1] = "write"
    stages["write"] += time.process_time() - last[0]  # with the commit
    end = time.perf_counter()
    dt, cpu = end - t, time.process_time() - c
    assert res.status == "imported", res.issues[:5]
    return {"seconds": dt, "cpu": cpu, "write_stage_seconds": end - locked[0], "peak_mb": maxrss_mb(), "base_mb": base, "inserted": res.inserted,
            "households": res.households_created, "tags": res.tags_added, "errors": len(res.issues),
            "stages_cpu": stages}


def one_pandas(wb: Path, dbpath: Path) -> dict:
    import pandas as pd
    from sqlalchemy import create_engine

    dbpath.unlink(missing_ok=True)
    base = maxrss_mb()
    t, c = time.perf_counter(), time.process_time()
    df = pd.read_excel(wb, engine="openpyxl", dtype=str)
    t_read = time.perf_counter() - t
    eng = create_engine(f"sqlite:///{dbpath}")
    df.to_sql("residents_raw", eng, index=False, chunksize=10_000)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    return {"seconds": dt, "cpu": cpu, "read_seconds": t_read, "peak_mb": maxrss_mb(), "base_mb": base, "rows": len(df)}


def one_export(dbpath: Path, out: Path) -> dict:
    from gridman.core.db import open_database
    from gridman.core.services import export as ex
    from gridman.core.services.permissions import system_actor

    db = open_database(dbpath)
    with db.session() as s:
        admin = system_actor(s)
    base = maxrss_mb()
    t, c = time.perf_counter(), time.process_time()
    with db.work(admin) as s:
        res = ex.export_list(s, admin, list_name="residents", out=out)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    return {"seconds": dt, "cpu": cpu, "peak_mb": maxrss_mb(), "base_mb": base, "rows": res.rows,
            "size_mb": out.stat().st_size / 1e6}


def sub(*args: str, tree: Path = ROOT) -> dict:
    """One measurement in a process of its own, with the code of ``tree`` (this checkout, or the
    baseline's worktree: its own bench script puts its own tree first on sys.path)."""
    r = subprocess.run([sys.executable, str(tree / "bench" / "bench_census.py"), *args], capture_output=True,
                       text=True, cwd=tree)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare_with(rev: str, wb: Path) -> None:
    """The import of this checkout and of ``rev`` (a commit before a change), run alternately three
    times each in the same run, medians compared: the check that a change kept the import's speed."""
    tree = OUT / f"baseline-{rev[:12]}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True,
                       capture_output=True)
    try:
        now, before = [], []
        for _ in range(3):
            now.append(sub("--one", "import", "--wb", str(wb), "--dbpath", str(OUT / "census_import.sqlite")))
            before.append(sub("--one", "import", "--wb", str(wb), "--dbpath", str(OUT / "census_baseline.sqlite"),
                              tree=tree))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    def summary(runs: list[dict]) -> tuple[float, str]:
        secs = sorted(r["seconds"] for r in runs)
        cpu = sorted(r["cpu"] for r in runs)[1]
        return secs[1], f"median {secs[1]:6.2f} s (runs {', '.join(f'{x:.2f}' for x in secs)} s), CPU {cpu:.2f} s"

    med_now, text_now = summary(now)
    med_before, text_before = summary(before)
    print(f"import now:                {text_now}")
    print(f"import before ({rev[:10]}): {text_before}")
    print(f"→ now / before = {med_now / med_before:.3f} (target: within 5 %, i.e. ≤ 1.050)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--one", choices=["import", "pandas", "export"])
    ap.add_argument("--wb")
    ap.add_argument("--dbpath")
    ap.add_argument("--baseline", metavar="REV", help="also time the import of commit REV, alternately, and compare")
    a = ap.parse_args()
    if a.one == "import":
        print(json.dumps(one_import(Path(a.wb), Path(a.dbpath))))
        return
    if a.one == "pandas":
        print(json.dumps(one_pandas(Path(a.wb), Path(a.dbpath))))
        return
    if a.one == "export":
        print(json.dumps(one_export(Path(a.dbpath), Path(a.wb))))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    wb = OUT / f"census_{a.rows // 1000}k.xlsx"
    if not wb.exists():
        t = time.perf_counter()
        build_workbook(wb, a.rows)
        print(f"built {wb.name} ({a.rows:,} rows × {len(HEADERS)} columns, {wb.stat().st_size / 1e6:.1f} MB) "
              f"in {time.perf_counter() - t:.1f} s")
    print(f"workbook: {wb} ({wb.stat().st_size / 1e6:.1f} MB); load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores (wall times suffer when the machine is shared; CPU times shown too)")
    if a.baseline:
        compare_with(a.baseline, wb)
        return
    # the import three times (median reported: the shared machine's speed drifts by ±5 %), the peer once
    runs = sorted((sub("--one", "import", "--wb", str(wb), "--dbpath", str(OUT / "census_import.sqlite"))
                   for _ in range(3)), key=lambda r: r["seconds"])
    g = runs[1]
    each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
    print(f"gridman import (calamine + validate + executemany, SQLite): {g['seconds']:6.2f} s (CPU {g['cpu']:.2f} s), "
          f"median of 3 runs ({each} s), "
          f"peak RSS {g['peak_mb']:.0f} MB (process baseline {g['base_mb']:.0f} MB); inserted {g['inserted']:,} "
          f"residents, {g['households']:,} households, {g['tags']:,} tags")
    print("  CPU by stage: " + ", ".join(f"{k} {v:.2f} s" for k, v in g["stages_cpu"].items()))
    p = sub("--one", "pandas", "--wb", str(wb), "--dbpath", str(OUT / "census_pandas.sqlite"))
    print(f"peer pandas.read_excel(openpyxl) + to_sql:           {p['seconds']:6.2f} s (CPU {p['cpu']:.2f} s) "
          f"(read {p['read_seconds']:.2f} s), peak RSS {p['peak_mb']:.0f} MB — no validation")
    print(f"→ gridman is {p['seconds'] / g['seconds']:.2f}× faster than the peer in wall time "
          f"({p['seconds'] / runs[-1]['seconds']:.2f}× against its slowest run), "
          f"{p['cpu'] / g['cpu']:.2f}× in CPU time (target ≥ 4×, ≤ 8 s, < 600 MB)")
    e = sub("--one", "export", "--wb", str(OUT / "export_100k.xlsx"), "--dbpath", str(OUT / "census_import.sqlite"))
    print(f"export of {e['rows']:,} residents to .xlsx: {e['seconds']:6.2f} s (CPU {e['cpu']:.2f} s), peak RSS {e['peak_mb']:.0f} MB, "
          f"{e['size_mb']:.1f} MB (target < 15 s)")


if __name__ == "__main__":
    main()

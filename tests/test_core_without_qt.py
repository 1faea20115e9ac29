"""gridman.core never imports Qt: import every core module with PySide6 and pyqtgraph blocked."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import gridman.core

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import importlib, pkgutil, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'PyQt5', 'PyQt6') or name.startswith('gridman.gui'):
            raise ImportError('blocked in this test: ' + name)
        return None

sys.meta_path.insert(0, Block())
import gridman.core
mods = ['gridman.core'] + [m.name for m in pkgutil.walk_packages(gridman.core.__path__, 'gridman.core.')
                           if '.migrations.versions' not in m.name and not m.name.endswith('migrations.env')]
for m in mods:
    importlib.import_module(m)
import gridman.cli, gridman.cli.common
for m in gridman.cli.COMMAND_MODULES:
    importlib.import_module(m)
assert not any(k.startswith(('PySide6', 'pyqtgraph')) for k in sys.modules)
print(len(mods))
"""


def test_core_imports_with_qt_blocked():
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    expected = 1 + len([m for m in pkgutil.walk_packages(gridman.core.__path__, "gridman.core.")
                        if ".migrations.versions" not in m.name and not m.name.endswith("migrations.env")])
    assert int(r.stdout.strip()) == expected


def test_cli_command_runs_with_qt_blocked(tmp_path):
    from gridman.core.db import open_database

    open_database(tmp_path / "x.sqlite").dispose()  # db check refuses a missing file (issue #16)
    script = SCRIPT.split("import gridman.core\n")[0] + (
        "from gridman.cli import main\n"
        f"raise SystemExit(main(['--db', r'{tmp_path / 'x.sqlite'}', 'db', 'check', '--json']))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '"integrity": "ok"' in r.stdout

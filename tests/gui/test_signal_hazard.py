"""Regression guard for the PySide6 6.12.0 / CPython 3.11 hazard: every Signal.emit dropped a
reference to True and the process aborted after ~2,000 emissions ("Fatal Python error:
bool_dealloc"). Runs in a subprocess so a crash is a failed test, not a dead test runner."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import os, sys
os.environ['QT_QPA_PLATFORM'] = 'offscreen'
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication
import pyqtgraph as pg

app = QApplication([])

class Emitter(QObject):
    changed = Signal(bool)

got = []
e = Emitter()
e.changed.connect(lambda v: got.append(v))
for i in range(10_000):
    e.changed.emit(True)
assert len(got) == 10_000

plot = pg.PlotWidget()
for i in range(5_000):
    item = pg.ScatterPlotItem([i], [i])
    plot.addItem(item)
app.processEvents()
print(len(got), len(plot.getPlotItem().items))
"""


def test_10000_emits_and_5000_pyqtgraph_items_do_not_crash():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    emitted, items = map(int, r.stdout.split())
    assert emitted == 10_000 and items == 5_000


def test_pinned_pair_is_not_the_hazardous_one():
    import PySide6

    major_minor = sys.version_info[:2]
    assert not (major_minor == (3, 11) and PySide6.__version__.startswith("6.12.0")), (
        "PySide6 6.12.0 on Python 3.11 aborts after ~2,000 signal emissions; see pyproject.toml")

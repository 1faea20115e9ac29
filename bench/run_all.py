"""Run every bench/bench_*.py in turn (``make bench``). Each prints its own figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
for script in sorted(here.glob("bench_*.py")):
    print(f"=== {script.name} ===", flush=True)
    subprocess.run([sys.executable, str(script)], check=False)

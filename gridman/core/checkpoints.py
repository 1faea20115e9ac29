"""Named points inside long writes where a kill -9 test stops the process (issue 16).

``reached(name)`` does nothing unless the environment variable ``GRIDMAN_TEST_PAUSE_AT`` names
this point; then it writes the name to the file ``GRIDMAN_TEST_PAUSE_READY`` (the test's signal
that the process is there) and waits to be killed — leaving after two minutes without writing
anything more, should the test itself have died. Only tests set these variables.

Points: ``census.read`` (workbook read), ``census.validate`` (rows checked, plan made, no lock
held), ``census.write`` (half of the residents written, lock held), ``census.commit`` (all
written, just before the commit); ``checkin.read``, ``checkin.validate``, ``checkin.write``,
``checkin.commit`` likewise for the offline check-in.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_AT = "GRIDMAN_TEST_PAUSE_AT"
READY_FILE = "GRIDMAN_TEST_PAUSE_READY"
WAIT_S = 120.0


def reached(name: str) -> None:
    """A no-op, unless a test asked the process to stop at ``name`` (see the module docstring)."""
    if os.environ.get(PAUSE_AT) != name:
        return
    ready = os.environ.get(READY_FILE)
    if ready:
        Path(ready).write_text(name, encoding="utf-8")
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        time.sleep(0.1)
    os._exit(3)  # the test never came: leave without committing anything

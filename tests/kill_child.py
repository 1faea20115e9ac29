"""Run the gridman CLI in this process and stop dead at a chosen write: the child half of the
kill -9 tests (tests/test_kill9.py).

``python -m tests.kill_child READY N -- <gridman arguments>``: the N-th data-changing SQL statement
(INSERT, UPDATE, DELETE) of the run — or, for N < 0, the (-N)-th COMMIT, just before it reaches the
database — writes the file READY and then sleeps, so the parent can SIGKILL the process at that
point, with the transaction open and part of its writes done. N = 0 stops nowhere and writes
"<writes> <commits>" to READY at the end (how the parent learns where the points are). Nothing in gridman is changed for this: the pause is an SQLAlchemy engine event installed
here, in the child, before the CLI runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

WRITES = ("INSERT", "UPDATE", "DELETE")


def main() -> int:
    ready, n = Path(sys.argv[1]), int(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1:]
    seen = commits = 0

    def stop_here() -> None:
        ready.write_text(str(seen), encoding="utf-8")
        time.sleep(600)  # the parent kills us here

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        nonlocal seen
        if statement.lstrip().upper().startswith(WRITES):
            seen += 1
            if seen == n:
                stop_here()

    @event.listens_for(Engine, "commit")
    def _commit(_conn):  # type: ignore[no-untyped-def]
        nonlocal commits
        commits += 1
        if n < 0 and commits == -n:
            stop_here()

    from gridman.cli import main as cli_main

    rc = cli_main(args)
    if n == 0:
        ready.write_text(f"{seen} {commits}", encoding="utf-8")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())

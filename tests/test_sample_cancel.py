"""The sample generator takes the one progress-and-cancel protocol: progress per community, and a
cancel leaves the database empty (its one transaction rolls back)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gridman.core import tasks
from gridman.core.sample import generate


def test_sample_reports_progress_and_a_cancel_writes_nothing(db) -> None:  # type: ignore[no-untyped-def]
    seen: list[float] = []

    def cancel_after_first(f: float, _m: str) -> None:  # as the GUI's cancel button would, mid-job
        seen.append(f)
        if 0.0 < f < 1.0:
            task.cancel()

    task = tasks.TaskState(cancel_after_first, min_interval=0.0)
    with pytest.raises(tasks.Cancelled):
        generate(db, scale="demo", task=task)
    assert seen and 0.0 < seen[0] < 1.0
    with db.session() as s:
        for table in ("areas", "users", "residents", "incidents"):
            n = s.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            assert n == (1 if table == "users" else 0), table  # only the built-in system user remains

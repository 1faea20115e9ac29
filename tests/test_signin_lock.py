"""Signing in while another writer holds the SQLite write lock waits its turn instead of failing
with "database is locked" (the sign-in records the time of the last login, so it writes)."""

from __future__ import annotations

import sqlite3
import threading

from sqlalchemy import select

from gridman.core.db import Database
from gridman.core.models import User
from gridman.core.services.auth import authenticate


def test_sign_in_waits_for_a_writer_that_commits_meanwhile(sqlite_demo: Database) -> None:
    path = str(sqlite_demo.sqlite_path)
    holding, release = threading.Event(), threading.Event()

    def other_writer() -> None:  # e.g. the overdue sweep of another window
        conn = sqlite3.connect(path, timeout=10, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE settings SET value = value")
        holding.set()
        release.wait(0.5)
        conn.execute("COMMIT")
        conn.close()

    t = threading.Thread(target=other_writer)
    t.start()
    try:
        assert holding.wait(10)
        # the sign-in reads the account while the other writer holds the lock, then writes after it
        # committed: a deferred transaction fails here at once (its snapshot is stale)
        with sqlite_demo.begin() as s:
            actor = authenticate(s, "warden", "gridman123")
    finally:
        release.set()
        t.join()
    assert actor.username == "warden"
    with sqlite_demo.session() as s:
        assert s.scalar(select(User.last_login_at).where(User.username == "warden")) is not None

"""Bulk actions: one action on many cases, each in its own savepoint.

A case the action is refused on (status, level, scope, a changed version, bad input) or that
fails in the database is rolled back to its savepoint and listed with the reason; the others
stay done. Nothing of a skipped case is written — neither its step nor its audit rows (the audit
hook writes inside the same savepoint).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gridman.core.services.errors import GridmanError
from gridman.core.services.mediation.actions import ACTIONS
from gridman.core.services.mediation.records import ActionResult, BulkResult, Skipped
from gridman.core.services.mediation.rules import action_key
from gridman.core.services.permissions import Actor

log = logging.getLogger("gridman.mediation")


def act_many(session: Session, actor: Actor, action: str, incident_ids: Sequence[int], *,
             expected_versions: Mapping[int, int] | None = None, now: datetime | None = None,
             **inputs: Any) -> BulkResult:
    """Take ``action`` with the same ``inputs`` on each of ``incident_ids`` (duplicates once, in
    the order given). ``expected_versions`` (id → the version the user saw) guards each case
    against a concurrent change; a case without one acts on its current version.

    Each case runs in a savepoint: a refused or failing case is rolled back alone and listed in
    ``skipped`` with the reason in Chinese and English. An unknown action raises at once."""
    fn = ACTIONS[action_key(action)]
    versions = expected_versions or {}
    done: list[int] = []
    results: list[ActionResult] = []
    skipped: list[Skipped] = []
    for iid in dict.fromkeys(int(i) for i in incident_ids):
        try:
            with session.begin_nested():
                res = fn(session, actor, iid, expected_version=versions.get(iid), now=now, **inputs)
        except GridmanError as exc:
            skipped.append(Skipped(iid, exc.message, exc.en))
            continue
        except SQLAlchemyError:
            log.exception("bulk %s: case #%s failed in the database", action, iid)
            skipped.append(Skipped(iid, f"事件 #{iid} 保存失败（数据库拒绝了此修改），已跳过。",
                                   f"Case #{iid} could not be saved (the database refused the change); skipped."))
            continue
        done.append(iid)
        results.append(res)
    return BulkResult(action_key(action), done, skipped, results)

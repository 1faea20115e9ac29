"""Offline sub-districts (离线交换): check an area out into a workbook, take it back, merge, lose nothing.

The package by stage (callers import from here):

- :mod:`.workbook` — the format: registers and columns, canonical values, cell cleaners, checksum;
  :mod:`.xlsx` — the streamed .xlsx writer and the calamine reader;
- :mod:`.checkout` — :func:`checkout` writes the registers of a street, community or set of grids
  into an exchange workbook and records an ``ExchangePackage``;
- :mod:`.package` — :func:`read_package` reads and verifies a workbook;
- :mod:`.context`, :mod:`.conflicts`, :mod:`.validation`, :mod:`.writing` — what a check-in looks
  up, the conflicts it finds (:func:`find_conflicts`), the checks on the rows it writes, the writes;
- :mod:`.checkin` — :func:`checkin` merges a returned workbook in one transaction: rows changed
  only offline are updated, rows changed only centrally stay, rows changed on both sides are
  conflicts (keep-central by default), new rows are inserted, rows deleted offline are only
  reported unless confirmed, incident steps are only ever appended; recorded as
  ``ImportBatch(kind="exchange")`` with audit rows carrying its id;
- :mod:`.undo` — :func:`undo_checkin` reverts it while nothing touched its rows since;
- :mod:`.offline_copy` — :func:`open_package` builds (or refreshes) a local gridman database from a
  package, with the same uuids and versions; :func:`export_local` writes its returned workbook;
- :mod:`.packages` — :func:`list_packages`, the packages of the actor's scope.

Long use cases (checkout, check-in, open, export) take ``task: TaskState | None`` for progress and
cancel (:mod:`gridman.core.tasks`); a cancelled job leaves nothing written.

Threading: every function works in the session it is given (one unit of work); nothing is shared.
"""

from __future__ import annotations

from gridman.core.services.exchange.canonical import USERS, canon_row, register_select
from gridman.core.services.exchange.checkin import checkin
from gridman.core.services.exchange.checkout import checkout
from gridman.core.services.exchange.conflicts import find_conflicts
from gridman.core.services.exchange.offline_copy import export_local, open_package
from gridman.core.services.exchange.package import Package, read_package
from gridman.core.services.exchange.packages import database_id, list_packages
from gridman.core.services.exchange.results import (
    RESOLUTIONS,
    CellIssue,
    CheckinResult,
    CheckoutResult,
    Conflict,
    ConflictsPending,
    ExchangeInvalid,
    ExchangeRefused,
    FieldDiff,
    OpenResult,
    PackageInfo,
    UndoResult,
)
from gridman.core.services.exchange.undo import undo_checkin
from gridman.core.services.exchange.workbook import BY_KEY, REGISTERS
from gridman.core.services.exchange.writing import apply_timeline

__all__ = [
    "BY_KEY", "REGISTERS", "RESOLUTIONS", "USERS", "CellIssue", "CheckinResult", "CheckoutResult", "Conflict",
    "ConflictsPending", "ExchangeInvalid", "ExchangeRefused", "FieldDiff", "OpenResult", "Package", "PackageInfo",
    "UndoResult", "apply_timeline", "canon_row", "checkin", "checkout", "database_id", "export_local",
    "find_conflicts", "list_packages", "open_package", "read_package", "register_select", "undo_checkin",
]

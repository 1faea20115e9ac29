"""Census import (实有人口导入), split by stage — see :mod:`census.importer` for the whole story.

``workbook`` reads and checks the file; ``table`` finds the header row and the mapping;
``validation`` cleans every cell and checks each row; ``matching`` checks the rows against the
database and plans what each does; ``writing`` (on ``bulk``) writes; ``undo`` lists and reverts
imports; ``error_workbook`` writes the rows to fix; ``records`` holds the fields and results.
"""

from __future__ import annotations

from gridman.core.services.census.error_workbook import write_error_workbook
from gridman.core.services.census.importer import import_census
from gridman.core.services.census.records import (
    ALL_FIELDS,
    HOUSEHOLD_FIELDS,
    RESIDENT_FIELDS,
    ImportFileError,
    ImportResult,
    RowIssue,
)
from gridman.core.services.census.table import SheetPreview, header_set_key, preview_sheet
from gridman.core.services.census.undo import BatchInfo, UndoResult, list_imports, undo_import
from gridman.core.services.census.workbook import read_workbook

__all__ = [
    "ALL_FIELDS", "HOUSEHOLD_FIELDS", "RESIDENT_FIELDS", "BatchInfo", "ImportFileError", "ImportResult", "RowIssue",
    "SheetPreview", "UndoResult", "header_set_key", "import_census", "list_imports", "preview_sheet",
    "read_workbook", "undo_import", "write_error_workbook",
]

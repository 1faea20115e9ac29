"""What the census import (实有人口导入) reads and reports: its fields, its limits, its errors and
its result records (plain data, handed to the GUI and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gridman.core.services.errors import ValidationError

# --- limits ------------------------------------------------------------------------------------

EXCEL_MAX_ROWS = 1_048_576
MAX_DATA_ROWS = 500_000  # beyond this, ask for the file to be split
MAX_UNCOMPRESSED = 1_500_000_000  # bytes, whole zip
MAX_RATIO = 200  # uncompressed/compressed for members over 10 MB (real sheets: 5–20×)
HEADER_SCAN_ROWS = 30
CHUNK = 5_000  # rows per executemany and per IN (…) list

RESIDENT_FIELDS: tuple[str, ...] = (
    "name", "sex", "ethnicity", "citizen_id", "birth_date", "phone", "landline", "registered_address", "current_address",
    "relation_to_head", "population_type", "residence_permit_no", "residence_permit_expiry", "education",
    "marital_status", "political_status", "employer", "status", "note",
)
HOUSEHOLD_FIELDS = ("household_no", "grid", "building", "household_address")
ALL_FIELDS = (*HOUSEHOLD_FIELDS, *RESIDENT_FIELDS, "tags")


class ImportFileError(ValidationError):
    """The file as a whole cannot be imported (not a workbook, encrypted, no header…)."""


def file_error(zh: str, en: str) -> ImportFileError:
    return ImportFileError(zh, en=en)


# --- result records ----------------------------------------------------------------------------


@dataclass
class RowIssue:
    row: int  # Excel row number (1-based)
    column: str | None  # header text of the offending column (None: the whole row)
    field: str | None
    code: str
    message: str
    en: str
    severity: str = "error"


@dataclass
class ImportResult:
    file_name: str
    file_sha256: str
    sheet: str
    header_row: int
    mapping: dict[str, str]  # header → field
    unknown_columns: list[str]
    rows_read: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    warnings: int = 0
    households_created: int = 0
    tags_added: int = 0
    status: str = "dry_run"  # imported / rejected / dry_run
    policy: str = "reject"
    dry_run: bool = False
    batch_id: int | None = None
    id_lookups: int = 0  # citizen IDs looked up in the register (the audit row of a check that wrote nothing)
    skipped_rows: list[tuple[int, str]] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    # for the error report (not serialised by the CLI)
    headers: list[str] = field(default_factory=list, repr=False)
    raw_rows: list[tuple[int, list[Any]]] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        keys = ("file_name", "file_sha256", "sheet", "header_row", "mapping", "unknown_columns", "rows_read",
                "inserted", "updated", "unchanged", "rejected", "warnings", "households_created", "tags_added",
                "status", "policy", "dry_run", "batch_id", "skipped_rows")
        out = {k: getattr(self, k) for k in keys}
        out["errors"] = sum(1 for i in self.issues if i.severity == "error")
        return out



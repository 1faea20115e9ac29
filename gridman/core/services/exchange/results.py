"""What the offline exchange hands back: results of each use case, the refusals (nothing written)
and the conflicts of a check-in. Plain data, safe to pass across threads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridman.core.services.errors import GridmanError

RESOLUTIONS = ("keep-central", "keep-offline", "ask")


class ExchangeRefused(GridmanError):
    """A check-in (or open) refused as a whole; ``reason`` is a short code, the database is unchanged."""

    def __init__(self, reason: str, message: str, *, en: str) -> None:
        super().__init__(message, en=en)
        self.reason = reason


def refuse(reason: str, zh: str, en: str) -> ExchangeRefused:
    return ExchangeRefused(reason, zh, en=en)


@dataclass(frozen=True)
class CellIssue:
    sheet: str
    row: int
    column: str
    reason: str

    def text(self) -> str:
        return f"{self.sheet} 第 {self.row} 行 “{self.column}”：{self.reason}"


class ExchangeInvalid(GridmanError):
    """Cells that cannot be taken in: nothing was written. ``issues`` name sheet/row/column/reason."""

    def __init__(self, issues: list[CellIssue]) -> None:
        head = "；".join(i.text() for i in issues[:5]) + ("……" if len(issues) > 5 else "")
        super().__init__(f"交换工作簿有 {len(issues)} 处错误，未导入任何数据：{head}",
                         en=f"The exchange workbook has {len(issues)} errors; nothing was imported. {head}")
        self.issues = issues


@dataclass
class FieldDiff:
    field: str
    column: str
    offline: Any
    central: Any
    original: Any
    clash: bool  # changed on both sides to different values


@dataclass
class Conflict:
    register: str
    sheet: str
    row: int
    uuid: str
    label: str
    fields: list[FieldDiff]  # only the true conflicts: fields changed on both sides to different values
    resolution: str = "keep-central"  # what the check-in did (offline-only changes are taken whatever it is)


class ConflictsPending(GridmanError):
    """``resolve="ask"`` and there are conflicts: nothing written; the conflicts are attached."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(f"有 {len(conflicts)} 条记录在离线和中心两边都被修改，请逐项选择后再导入。",
                         en=f"{len(conflicts)} rows changed both offline and centrally; choose per field.")
        self.conflicts = conflicts


@dataclass
class CheckoutResult:
    package_id: str
    path: str
    area_code: str
    area_name: str
    counts: dict[str, int]
    checksum: str
    seconds: float


@dataclass
class CheckinResult:
    package_id: str
    batch_id: int | None
    dry_run: bool
    counts: dict[str, dict[str, int]]
    conflicts: list[Conflict] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)  # rows deleted offline (reported / deleted)
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        t = {k: sum(v.get(k, 0) for v in self.counts.values())
             for k in ("inserted", "updated", "unchanged", "conflicts", "deleted_offline", "deleted", "appended")}
        head = "【试运行，未写入】" if self.dry_run else f"已导入（批次 {self.batch_id}）"
        return (f"{head} 交换包 {self.package_id}：新增 {t['inserted']}，更新 {t['updated']}，未变 {t['unchanged']}，"
                f"冲突 {t['conflicts']}（保留中心数据为默认），离线删除 {t['deleted_offline']}（已删除 {t['deleted']}），"
                f"追加处置记录 {t['appended']}")


@dataclass
class OpenResult:
    package_id: str
    area_code: str
    refreshed: bool
    counts: dict[str, int]
    seconds: float


@dataclass
class UndoResult:
    batch_id: int
    package_id: str | None
    reverted: dict[str, int]


@dataclass
class PackageInfo:
    package_id: str
    area_code: str
    area_name: str
    created_at: datetime
    created_by: str | None
    file_name: str | None
    checked_in_at: datetime | None
    checkin_batch_id: int | None
    counts: dict[str, int] | None
    checked_in_by: str | None = None  # the user who ran the check-in

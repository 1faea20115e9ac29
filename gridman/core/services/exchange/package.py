"""Reading a package (a checked-out or returned exchange workbook): metadata, checksum and keys
verified, every register row cleaned into canonical values. Structural problems refuse the whole
file (:class:`ExchangeRefused`); cell problems are collected as :class:`CellIssue`."""

from __future__ import annotations

import json
import uuid as uuidlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridman.core import tasks
from gridman.core.services.exchange.results import CellIssue, refuse
from gridman.core.services.exchange.workbook import (
    CHECKSUMMED_META,
    DELETE_HEADER,
    FORMAT,
    META_SHEET,
    ORIG_SHEET,
    REGISTERS,
    UUID_HEADER,
    VERSION_HEADER,
    CellError,
    Register,
    checksum,
    cleaner_for,
)
from gridman.core.services.exchange.xlsx import Book
from gridman.core.tasks import TaskState

DELETE_MARKS = ("是", "Y", "y", "yes", "删除", "1")


@dataclass
class WbRow:
    row: int  # Excel row number
    uuid: str
    new: bool
    deleted: bool
    vals: dict[str, Any]
    keys: dict[str, Any]  # natural keys typed in refkey columns
    same: bool = False  # provably as exported (no database look-up needed)


@dataclass
class Package:
    meta: dict[str, Any]
    originals: dict[str, dict[str, tuple[int, str]]]  # register -> uuid -> (version, values as JSON)
    raw_originals: list[tuple[str, str, int, str]]
    rows: dict[str, list[WbRow]]
    issues: list[CellIssue]
    file: Path
    _decoded: dict[tuple[str, str], list[Any]] = field(default_factory=dict)

    def orig(self, reg: str, uuid: str) -> list[Any]:
        """Export-time canonical values of a row (decoded on demand: most rows are compared as text)."""
        k = (reg, uuid)
        v = self._decoded.get(k)
        if v is None:
            v = self._decoded[k] = json.loads(self.originals[reg][uuid][1])
        return v

    def orig_dict(self, reg: str, uuid: str) -> dict[str, Any]:
        """Export-time values of a row by field (the fields the package was written with)."""
        return dict(zip(self.meta["columns"][reg], self.orig(reg, uuid), strict=False))


def read_package(path: str | Path, *, data: bool = True, task: TaskState | None = None) -> Package:
    """Read and verify a package: metadata, checksum, keys; with ``data`` also every register row,
    cleaned (progress per sheet). Structural problems raise :class:`ExchangeRefused`; cell
    problems are collected."""
    path = Path(path)
    task = tasks.ensure(task)
    task.progress(0.0, f"读取 {path.name}")
    try:
        book = Book(path)
    except Exception:  # noqa: BLE001 - any unreadable file is one refusal
        raise refuse("unreadable", f"无法读取文件 {path.name}（不是有效的 Excel 工作簿）",
                     f"Cannot read {path.name} (not a valid Excel workbook)") from None
    try:
        meta = _read_meta(book, path)
        raw, originals = _read_originals(book)
        stated = meta.get("checksum")
        cmeta = {k: meta.get(k) for k in CHECKSUMMED_META}
        if not stated or checksum(cmeta, raw) != stated:
            raise refuse("tampered", f"{path.name} 的元数据或校验值与内容不符，文件已被改动，拒绝导入",
                         f"{path.name}: metadata or checksum do not match the content; the file was altered")
        pkg = Package(meta, originals, raw, {}, [], path)
        if data:
            for i, reg in enumerate(REGISTERS):
                task.step(i, len(REGISTERS), f"读取 {reg.sheet}")
                pkg.rows[reg.key] = _read_sheet(book, reg, pkg)
        task.progress(1.0, f"已读取 {path.name}")
        return pkg
    finally:
        book.close()


def _read_meta(book: Book, path: Path) -> dict[str, Any]:
    if META_SHEET not in book.sheet_names or ORIG_SHEET not in book.sheet_names:
        raise refuse("not_package", f"{path.name} 不是 gridman 离线交换工作簿（缺少元数据）",
                     f"{path.name} is not a gridman exchange workbook (no metadata)")
    meta: dict[str, Any] = {}
    for r in book.rows(META_SHEET)[1:]:
        if not r or not r[0]:
            continue
        k, v = str(r[0]), r[2] if len(r) > 2 else None
        if k in ("grid_codes", "columns", "counts", "ids_masked"):
            try:
                v = json.loads(v) if isinstance(v, str) and v else v
            except ValueError:
                raise refuse("tampered", f"元数据“{k}”已被改动", f"Metadata {k} was altered") from None
        meta[k] = v
    if meta.get("format") != FORMAT:
        raise refuse("not_package", f"{path.name} 不是本版本的离线交换工作簿", f"{path.name}: unknown exchange format")
    return meta


def _read_originals(book: Book) -> tuple[list[tuple[str, str, int, str]], dict[str, dict[str, tuple[int, str]]]]:
    raw: list[tuple[str, str, int, str]] = []
    originals: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)
    for r in book.rows(ORIG_SHEET)[1:]:
        if not r or r[0] in ("", None):
            continue
        try:
            reg, u, ver, vals = str(r[0]), str(r[1]), int(float(r[2] or 0)), str(r[3])
        except (ValueError, IndexError, TypeError):
            raise refuse("tampered", "隐藏的原始值表已被改动", "The hidden originals sheet was altered") from None
        raw.append((reg, u, ver, vals))
        originals[reg][u] = (ver, vals)
    return raw, dict(originals)


def _read_sheet(book: Book, reg: Register, pkg: Package) -> list[WbRow]:
    orig = pkg.originals.get(reg.key, {})
    if reg.sheet not in book.sheet_names:
        if orig:
            raise refuse("keys_gone", f"工作表“{reg.sheet}”被删除，无法比对", f"Sheet {reg.sheet} was removed")
        return []
    rows = book.rows(reg.sheet)
    if not rows:
        return []
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    idx = {h: i for i, h in enumerate(header) if h}
    if UUID_HEADER not in idx or (reg.versioned and VERSION_HEADER not in idx):
        raise refuse("keys_gone", f"工作表“{reg.sheet}”的 UUID/版本列被删除，无法识别记录，拒绝导入",
                     f"Sheet {reg.sheet}: the UUID/version key columns are gone; rows cannot be identified")
    for h in (c.header for c in reg.cols if c.header not in idx and c.kind != "info"):
        pkg.issues.append(CellIssue(reg.sheet, 1, h, "缺少此列"))
    reader = _SheetReader(reg, pkg, idx, orig, len(header))
    out = [w for n, r in enumerate(rows[1:], start=2) if (w := reader.row(n, r)) is not None]
    reader.refuse_broken_keys()
    present = {w.uuid for w in out if not w.new}
    missing_n = len(set(orig) - present)
    new_n = sum(1 for w in out if w.new)
    if orig and missing_n > len(orig) / 2 and new_n >= missing_n / 2:
        raise refuse("keys_gone", f"工作表“{reg.sheet}”中 {missing_n} 条原有记录失去了标识（UUID），拒绝导入",
                     f"Sheet {reg.sheet}: {missing_n} exported rows lost their keys")
    return out


class _SheetReader:
    """Rows of one register sheet → :class:`WbRow`, noting rows whose keys were cleared or forged."""

    def __init__(self, reg: Register, pkg: Package, idx: dict[str, int], orig: dict[str, tuple[int, str]],
                 width: int) -> None:
        self.reg, self.pkg, self.orig, self.width = reg, pkg, orig, width
        self.iu, self.iv, self.idel = idx[UUID_HEADER], idx.get(VERSION_HEADER), idx.get(DELETE_HEADER)
        self.plan = [(c, idx[c.header], cleaner_for(c)) for c in reg.cols if c.header in idx and c.kind != "info"]
        self.keyless: list[int] = []
        self.forged: list[int] = []

    def row(self, n: int, r: list[Any]) -> WbRow | None:
        if len(r) < self.width:
            r = list(r) + [""] * (self.width - len(r))
        u = r[self.iu]
        u = str(u).strip() if u not in (None, "") else ""
        ver = r[self.iv] if self.iv is not None else ""
        vals: dict[str, Any] = {}
        keys: dict[str, Any] = {}
        empty = True
        for col, i, clean in self.plan:
            raw = r[i]
            if empty and raw is not None and raw != "":
                empty = False
            try:
                v = clean(raw)
            except CellError as exc:
                self.pkg.issues.append(CellIssue(self.reg.sheet, n, col.header, str(exc)))
                v = None
            if col.kind == "refkey":
                keys[col.field] = v
            else:
                vals[col.field] = v
        if empty and not u:
            return None
        if not u:
            if ver not in (None, ""):
                self.keyless.append(n)
                return None
            u, new = str(uuidlib.uuid4()), True
        else:
            new = u not in self.orig
            self._check_version(n, u, new, ver)
        deleted = self.idel is not None and str(r[self.idel]).strip() in DELETE_MARKS
        return WbRow(n, u, new, deleted, vals, keys)

    def _check_version(self, n: int, u: str, new: bool, ver: Any) -> None:
        if not self.reg.versioned:
            return
        if not new:
            try:
                if int(float(ver)) != self.orig[u][0]:
                    self.forged.append(n)
            except (TypeError, ValueError):
                self.forged.append(n)
        elif ver not in (None, ""):
            self.forged.append(n)

    def refuse_broken_keys(self) -> None:
        sheet, keyless, forged = self.reg.sheet, self.keyless, self.forged
        if keyless:
            raise refuse("keys_gone", f"工作表“{sheet}”第 {', '.join(map(str, keyless[:10]))} 行的 UUID 被清除，"
                         "无法识别记录，拒绝导入",
                         f"Sheet {sheet}: rows {keyless[:10]} lost their UUID; rows cannot be identified")
        if forged:
            raise refuse("tampered", f"工作表“{sheet}”第 {', '.join(map(str, forged[:10]))} 行的 UUID 或版本号被改动，拒绝导入",
                         f"Sheet {sheet}: rows {forged[:10]} have altered UUID/version keys")

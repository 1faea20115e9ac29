"""Checkout (导出交换包): write the exchange workbook of a street, community or set of grids and
record the package. The sheet layout here is shared with the returned workbook of an offline copy."""

from __future__ import annotations

import json
import time
import uuid as uuidlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gridman.core import tasks
from gridman.core.models import Area, ExchangePackage, utcnow
from gridman.core.outputs import check_output_path
from gridman.core.services import audit, permissions, scope
from gridman.core.services.exchange.canonical import TABLES, USERS, codec_for, dumps, register_select, rows_in
from gridman.core.services.exchange.coverage import Coverage, coverage
from gridman.core.services.exchange.packages import database_id
from gridman.core.services.exchange.results import CheckoutResult
from gridman.core.services.exchange.workbook import (
    FORMAT,
    HELP_SHEET,
    META_LABELS,
    META_SHEET,
    ORIG_SHEET,
    REGISTERS,
    Register,
    checksum,
    enum_label,
)
from gridman.core.services.exchange.xlsx import SheetRows, write_workbook
from gridman.core.services.permissions import Actor, Perm, require
from gridman.core.tasks import TaskState

HELP_TEXT = [
    ["gridman 离线交换工作簿 / offline exchange workbook"],
    ["1. 每个工作表是一类台账。可修改白色单元格；灰色表头的列（UUID、版本等）是记录标识，已隐藏并保护，请勿改动。"],
    ["2. 新增记录：在表格末尾新起一行填写，UUID 和版本留空。新住户的成员在“实有人口”中填写同一户号即可。"],
    ["3. 删除记录：在“删除（填“是”）”列填“是”。导入时只报告删除，经确认后才删除；事件和处置记录不删除。"],
    ["4. 事件升级、办理：在“处置记录”中新增一行（复制同一事件已有的一行，修改时间、动作、新层级、新状态）。"],
    ["   事件的当前层级和状态随最新的处置记录变化，不要直接修改。"],
    ["5. 枚举列请从下拉列表中选择；日期写成 2024-05-01，时间写成 2024-05-01 09:30。"],
    ["6. “_元数据”和隐藏的“_原始值”是导回时比对用的，被改动的文件会被拒绝导入。"],
]
ORIG_HEADERS = ["表", "UUID", "版本", "值"]
ORIG_KINDS = ["text", "text", "int", "text"]
PROGRESS_EVERY = 1000  # rows between progress reports


def register_sheet(reg: Register) -> SheetRows:
    """The empty sheet of a register: headers, kinds, hidden key columns, locks, drop-down lists."""
    headers = reg.all_headers()
    kinds, hidden, locked, widths = ["text"], [True], [True], [38]
    lists: dict[int, list[str]] = {}
    if reg.versioned:
        kinds, hidden, locked, widths = [*kinds, "int"], [*hidden, True], [*locked, True], [*widths, 6]
    for col in reg.cols:
        kinds.append(col.kind if col.kind in ("int", "float", "date", "datetime") else "text")
        hidden.append(col.hidden)
        locked.append(col.hidden or col.readonly or col.kind == "info")
        widths.append(col.width)
        if col.kind == "enum" and col.enum is not None and not col.readonly:
            lists[len(kinds) - 1] = [enum_label(col.enum, m) for m in col.enum]
        elif col.kind == "choice" and col.choices:
            lists[len(kinds) - 1] = list(col.choices.values())
    kinds, hidden, locked, widths = [*kinds, "text"], [*hidden, False], [*locked, False], [*widths, 10]
    lists[len(kinds) - 1] = ["是"]
    return SheetRows(reg.sheet, headers, [], kinds, hidden, locked, widths, lists)


def meta_rows(meta: dict[str, Any]) -> list[list[Any]]:
    """The metadata sheet's rows: key, Chinese label, value (JSON unless a string)."""
    return [[k, META_LABELS.get(k, k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)]
            for k, v in meta.items()]


def _areas_rows(session: Session, cov: Coverage) -> list[tuple[str, str, int, str]]:
    """The package's areas (and their ancestors) as originals rows, parents first."""
    ids = scope.path_ids(cov.area.path)
    q = select(Area).where(or_(Area.id.in_(ids), Area.id.in_(cov.area_ids)))
    by_id = {a.id: a for a in session.scalars(q)}
    out = []
    for a in sorted(by_id.values(), key=lambda a: (a.depth, a.code)):
        parent = by_id.get(a.parent_id) if a.parent_id else None
        vals = [a.code, a.name, a.level, parent.code if parent else None, a.center_lon, a.center_lat,
                a.household_limit, a.boundary.hex() if a.boundary else None]
        out.append(("_areas", a.uuid, a.version, dumps(vals)))
    return out


class _Writer:
    """The rows of one checkout, produced while the workbook streams: register cells, and the
    export-time originals collected on the way (written last, with the checksum)."""

    def __init__(self, session: Session, cov: Coverage, mask_ids: bool, task: TaskState) -> None:
        self.s, self.cov, self.mask_ids, self.task = session, cov, mask_ids, task
        self.originals: list[tuple[str, str, int, str]] = _areas_rows(session, cov)
        self.usernames: set[str] = set()
        self.counts: dict[str, int] = {}
        self.expected = {reg.key: session.scalar(select(func.count()).select_from(TABLES[reg.key])
                                                 .where(rows_in(reg, cov)(TABLES[reg.key]))) or 0
                         for reg in REGISTERS}
        self.work = 2 * sum(self.expected.values()) + 1  # every row twice: its cells, its originals
        self.done = 0
        self.checksum = ""

    def report(self, n: int, message: str) -> None:
        self.done += n
        self.task.progress(self.done / self.work, message)

    def register_rows(self, reg: Register) -> Iterator[list[Any]]:
        user_fields = [c.field for c in reg.cols if c.kind == "user"]
        q = register_select(reg, rows_in(reg, self.cov)).execution_options(yield_per=5000)
        result = self.s.execute(q)
        keys = list(result.keys())
        codec = codec_for(reg, keys, self.mask_ids)
        upos = [keys.index(f"m__{f}") for f in user_fields]
        iu, iv = codec.i_uuid, codec.i_ver
        add = self.originals.append
        enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        n = 0
        message = f"导出 {reg.sheet}"
        for row in result:
            canon = codec.canon(row)
            ver = row[iv] if iv is not None else 0
            add((reg.key, row[iu], ver, enc(canon)))
            for i in upos:
                if row[i]:
                    self.usernames.add(row[i])
            n += 1
            if n % PROGRESS_EVERY == 0:
                self.report(PROGRESS_EVERY, message)
            yield codec.cells(row, canon, ver if reg.versioned else None)
        self.report(n % PROGRESS_EVERY, message)
        self.counts[reg.key] = n

    def original_rows(self, meta: dict[str, Any]) -> Iterator[list[Any]]:
        for u in self.s.execute(select(USERS.c.uuid, USERS.c.username, USERS.c.display_name, USERS.c.role)
                                .where(USERS.c.username.in_(sorted(self.usernames)))):
            self.originals.append(("_users", u.uuid, 0, dumps([u.username, u.display_name, u.role])))
        meta["counts"] = dict(self.counts)
        self.checksum = checksum(meta, self.originals)
        for i, r in enumerate(self.originals, 1):
            if i % PROGRESS_EVERY == 0:
                self.report(PROGRESS_EVERY, "写入原始值")
            yield list(r)

    def meta_rows(self, meta: dict[str, Any]) -> Iterator[list[Any]]:
        yield from meta_rows({**meta, "checksum": self.checksum, "kind": "checkout"})


def checkout(session: Session, actor: Actor, *, out: str | Path, area_code: str | None = None,
             grid_codes: list[str] | None = None, task: TaskState | None = None) -> CheckoutResult:
    """Write the exchange workbook of an area and record the package (one unit of work). Progress
    is reported per 1,000 rows; a cancelled checkout leaves no file and no record."""
    t0 = time.perf_counter()
    task = tasks.ensure(task)
    check_output_path(out, session)  # never the database: a failed record below unlinks ``out``
    cov = coverage(session, area_code=area_code, grid_codes=grid_codes)
    require(actor, Perm.EXPORT, cov.area)
    if cov.grid_codes:
        for g in session.scalars(select(Area).where(Area.id.in_(cov.grid_ids))):
            require(actor, Perm.EXPORT, g)
    task.progress(0.0, "准备导出")
    package_id = str(uuidlib.uuid4())
    mask_ids = not permissions.sees_ids(actor)
    now = utcnow().replace(microsecond=0)
    meta: dict[str, Any] = {
        "format": FORMAT, "package_id": package_id, "area_code": cov.area.code, "area_name": cov.area.name,
        "area_level": cov.area.level, "grid_codes": cov.grid_codes or [], "source_database_id": database_id(session),
        "exported_at": now.isoformat(sep=" "), "exported_by": actor.username, "ids_masked": mask_ids,
        "columns": {r.key: r.fields for r in REGISTERS},
    }
    w = _Writer(session, cov, mask_ids, task)
    sheets: list[SheetRows] = [SheetRows(HELP_SHEET, ["说明"], HELP_TEXT, widths=[120], protect=True)]
    for reg in REGISTERS:
        sh = register_sheet(reg)
        sh.rows = w.register_rows(reg)
        sheets.append(sh)
    sheets.append(SheetRows(ORIG_SHEET, ORIG_HEADERS, w.original_rows(meta), kinds=ORIG_KINDS, state="veryHidden"))
    sheets.append(SheetRows(META_SHEET, ["键", "项目", "值"], w.meta_rows(meta), widths=[22, 20, 60]))
    out = Path(out)
    write_workbook(out, sheets, task=task)
    try:
        res = _record(session, actor, w, meta, out)
        task.progress(1.0, "已导出")
        task.check()  # cancelled at the last moment: still nothing kept
    except BaseException:
        out.unlink(missing_ok=True)  # no file without its record
        raise
    res.seconds = round(time.perf_counter() - t0, 2)
    return res


def _record(session: Session, actor: Actor, w: _Writer, meta: dict[str, Any], out: Path) -> CheckoutResult:
    cov, package_id = w.cov, meta["package_id"]
    pkg = ExchangePackage(package_id=package_id, area_id=cov.area.id, created_by=actor.user_id,
                          file_name=out.name, checksum=w.checksum,
                          created_at=datetime.fromisoformat(meta["exported_at"]),
                          meta={"grid_codes": cov.grid_codes or [], "counts": w.counts, "ids_masked": w.mask_ids,
                                "exported_at": meta["exported_at"], "area_code": cov.area.code})
    session.add(pkg)
    session.flush()
    audit.record(session, actor, "export", table="exchange_packages", row_id=pkg.id,
                 note=f"离线交换包 {package_id}（{cov.area.name}）→ {out.name}")
    return CheckoutResult(package_id, str(out), cov.area.code, cov.area.name, w.counts, w.checksum, 0.0)

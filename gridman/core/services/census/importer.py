"""Census import (实有人口导入): a clerk's workbook in, residents and households written, nothing lost.

The import runs in four stages, one module each, reporting progress through the caller's
:class:`tasks.TaskState` (read to 15 %, validate to 65 %, then write):

1. **read** the file — :mod:`census.workbook` (sniffing, zip and size checks, calamine/csv);
2. **find the table** — :mod:`census.table` (the header row, the column mapping, remembered);
3. **validate** — :mod:`census.validation` (every cell, each row, duplicates in the file), then
   :mod:`census.matching` (grids, households, buildings, registered residents, heads, scope) and
   the plan of what each row does;
4. **write** — :mod:`census.writing` on :mod:`census.bulk`, all in the caller's transaction.

Stages 1–3 run without the database's write lock (:func:`db.read_phase`: other writers — a
warden's report — go on meanwhile; a dry run or a rejected file never takes it); the lock is taken
for stage 4 only (:func:`db.write_phase`), which first re-checks under the lock that nothing the
plan read changed meanwhile, and plans again if it did. Everything is written in the one
transaction the caller commits, so a failure, a Cancel or a kill leaves nothing written; the
progress bar reaches 100 % "导入完成" after that commit (:func:`db.done_after_commit`).

A rejected file writes nothing; its error workbook is :mod:`census.error_workbook`; undo and the
list of imports are :mod:`census.undo`.

Threading: call from one worker thread with its own session; ``task.cancel()`` may be called from
any thread (the import stops at its next progress report and the caller's transaction rolls back).
"""

from __future__ import annotations

import gc
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core import checkpoints, db, tasks
from gridman.core.enums import AreaLevel
from gridman.core.models import Area
from gridman.core.services.census import bulk, matching, validation, writing
from gridman.core.services.census.records import ImportResult, RowIssue, file_error
from gridman.core.services.census.table import Table, pick_table, remember_mapping, remembered_loader
from gridman.core.services.census.workbook import read_workbook
from gridman.core.services.errors import ConflictError, NotFound, ValidationError
from gridman.core.services.permissions import Actor, Perm, require
from gridman.core.tasks import TaskState
from gridman.core.xlsxstream import file_sha256


def import_census(session: Session, actor: Actor, *, path: str | Path, sheet: str | None = None,
                  mapping: dict[str, str] | None = None, area_code: str | None = None, dry_run: bool = False,
                  policy: str = "reject", task: TaskState | None = None, today: date | None = None,
                  ) -> ImportResult:
    """Import a census workbook into ``area_code`` (default: the actor's area, or everywhere).

    ``policy`` "reject" writes nothing if any row has an error; "quarantine" writes the valid rows
    and reports the rest. ``dry_run`` computes exactly the same plan and writes nothing. Runs in
    the caller's transaction (``with db.work(actor) as s``, or ``db.session()`` for a dry run),
    which must not have written anything before: the caller's commit makes it durable.
    """
    # The import holds millions of small objects (cells, cleaned values, rows); the cyclic garbage
    # collector would re-scan all of them again and again while more are allocated (measured: a
    # third of the run time). Nothing here makes reference cycles, so it is paused meanwhile.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _import_census(session, actor, path=Path(path), sheet=sheet, mapping=mapping, area_code=area_code,
                              dry_run=dry_run, policy=policy, task=tasks.ensure(task), today=today)
    finally:
        if gc_was_enabled:
            gc.enable()


def _import_census(session: Session, actor: Actor, *, path: Path, sheet: str | None, mapping: dict[str, str] | None,
                   area_code: str | None, dry_run: bool, policy: str, task: TaskState, today: date | None,
                   ) -> ImportResult:
    if policy not in ("reject", "quarantine"):
        raise ValidationError(f"未知的处理方式“{policy}”（reject 或 quarantine）", field="policy",
                              en=f"Unknown policy {policy!r} (reject or quarantine)")
    snapshot = db.read_phase(session)  # read, validate and plan without the write lock
    area = _import_area(session, actor, area_code)
    require(actor, Perm.IMPORT, area)
    today = today or date.today()
    task.progress(0.0, "检查文件")
    names, load = read_workbook(path, task=task)
    sha = file_sha256(path)
    checkpoints.reached("census.read")
    table = pick_table(path.name, names, load, sheet=sheet, mapping=mapping, remembered=remembered_loader(session))
    fields_present = set(table.columns.values())
    _require_columns(table, fields_present, area)
    for _attempt in range(PLAN_TRIES):
        result, good = _plan(session, actor, area, table, fields_present, (path.name, sha), dry_run, policy, task, today)
        if result.status == "rejected" or dry_run:
            _audit_check(session, actor, snapshot, result, path.name)
            return result
        checkpoints.reached("census.validate")
        changed = db.write_phase(session, snapshot)  # the write lock, from here to the commit
        if not changed & PLAN_READS:
            break
        snapshot = db.read_phase(session)  # residents, households… changed meanwhile: plan again
        task.progress(0.15, "导入期间有人修改了人员或户，重新核对")
    else:
        raise ConflictError("导入期间有人反复修改了相关人员或户，请稍后重新导入。",
                            en="Residents or households kept changing during the import; import again later.")
    _write(session, actor, area, result, good, task)
    remember_mapping(session, table)
    result.status = "imported"
    checkpoints.reached("census.commit")
    task.progress(0.99, "正在提交")
    db.done_after_commit(session, task, "导入完成")
    return result


def _audit_check(session: Session, actor: Actor, snapshot: db.Snapshot, result: ImportResult, file_name: str) -> None:
    """A dry run or a rejected file wrote nothing but told the actor which citizen IDs are
    registered: who asked, and how many, is audited — under the write lock for that one row only
    (in a unit of work; a plain read session keeps nothing)."""
    if not result.id_lookups or "actor" not in session.info:
        return
    db.write_phase(session, snapshot)
    matching.audit_lookup(session, actor, rows=result.rows_read, citizen_ids=result.id_lookups, file_name=file_name,
                          status="dry_run" if result.dry_run else "rejected")


# What a plan reads: when others changed one of these between the plan and the write lock, the
# import plans again (at most PLAN_TRIES times) rather than write what it planned.
PLAN_READS = frozenset({"areas", "buildings", "households", "residents", "resident_tags", "tags"})
PLAN_TRIES = 3


def _plan(session: Session, actor: Actor, area: Area | None, table: Table, fields_present: set[str], file: tuple[str, str],
          dry_run: bool, policy: str, task: TaskState, today: date) -> tuple[ImportResult, list[matching.Plan]]:
    """Validate every row and plan what it does (stages 3 and 4 of the module docstring); a
    rejected file or a dry run comes back with its status set and nothing to write."""
    result = ImportResult(*file, table.sheet, table.header_row,
                          {table.headers[j]: f for j, f in table.columns.items()}, table.unknown,
                          len(table.rows), policy=policy, dry_run=dry_run, skipped_rows=table.skipped,
                          headers=table.headers, raw_rows=table.rows)
    task.progress(0.15, f"校验 {len(table.rows):,} 行")
    rows = validation.clean_table(session, actor, table, today, task)
    task.progress(0.5, "核对户、网格和已有人员")
    matching.resolve(session, actor, area, rows, fields_present)
    validation.mark_duplicates(rows)
    matching.match_existing(session, actor, rows)
    matching.check_heads(session, rows, fields_present)
    task.progress(0.6, "生成导入计划")
    good = _count(result, table, rows, matching.plan(session, rows, fields_present))
    result.id_lookups = matching.id_lookups(rows)
    if result.rejected and policy == "reject":
        result.status = "rejected"
        result.inserted = result.updated = result.unchanged = result.households_created = result.tags_added = 0
        result.rejected = len(rows)
        task.progress(1.0, "有错误，整个文件未导入")
    elif dry_run:
        result.status = "dry_run"
        task.progress(1.0, "试运行完成，未写入")
    return result, good


def _import_area(session: Session, actor: Actor, area_code: str | None) -> Area | None:
    """The area imported into: ``area_code``'s, else the actor's (None: everywhere)."""
    if area_code:
        area = session.scalar(select(Area).where(Area.code == area_code))
        if area is None:
            raise NotFound(f"找不到编码为 {area_code} 的区划或网格", en=f"No area with code {area_code}")
        return area
    return session.get(Area, actor.area_id) if actor.area_id else None


def _require_columns(table: Table, fields_present: set[str], area: Area | None) -> None:
    if "name" not in fields_present:
        raise file_error(f"工作表“{table.sheet}”缺少“姓名”列", f"Sheet {table.sheet!r} has no name column")
    if not ({"household_no", "grid"} & fields_present) and not (area and area.level == AreaLevel.GRID):
        raise file_error("缺少“户号”或“网格”列：请在表中加上，或用 --area 指定一个网格",
                         "Neither a household number nor a grid column; add one or give --area GRID")


def _count(result: ImportResult, table: Table, rows: list[validation.Row],
           plans: list[matching.Plan]) -> list[matching.Plan]:
    """Fill ``result``'s issues and counts from the checked rows and their plans; returns the
    plans of the valid rows (``result.rejected``: how many rows have an error)."""
    col_of = {f: table.headers[j] for j, f in table.columns.items()}
    for r in rows:
        for f, iss in r.issues:
            result.issues.append(RowIssue(r.row, col_of.get(f) if f else None, f, iss.code, iss.message, iss.en,
                                          iss.severity))
    result.issues.sort(key=lambda i: (i.row, i.column or ""))
    result.warnings = sum(1 for i in result.issues if i.severity == "warning")
    result.rejected = sum(1 for r in rows if r.bad)
    good = [p for p in plans if not p.row.bad]
    result.inserted = sum(1 for p in good if p.action == "insert")
    result.updated = sum(1 for p in good if p.action == "update")
    result.unchanged = sum(1 for p in good if p.action == "unchanged")
    result.households_created = len({p.row.hh_key for p in good if p.new_household})
    result.tags_added = sum(len(p.add_tags) for p in good)
    return good


def _write(session: Session, actor: Actor, area: Area | None, result: ImportResult, good: list[matching.Plan],
           task: TaskState) -> None:
    """The write stage, with SQLite's page cache enlarged meanwhile (random index inserts of uuid
    and ID stay in memory) and its plain indexes rebuilt after a first big import."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA cache_size=-65536")
    try:
        n_new = result.inserted
        with bulk.indexes_rebuilt_after(conn, {"residents": n_new, "audit_log": n_new + result.households_created,
                                               "households": result.households_created,
                                               "resident_tags": result.tags_added}):
            writing.write(session, actor, area.id if area is not None else None, result, good, task)
    finally:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA cache_size=-2000")

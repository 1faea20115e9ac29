"""Check-in (导回交换包): merge a returned workbook into the database in one transaction.

The package is read and verified (:mod:`.package`), checked against its checkout record (same
database, same checksum, not checked in yet, no newer package of an overlapping area checked in),
planned (:mod:`.conflicts`), validated (:mod:`.validation`) and written (:mod:`.writing`),
recorded as ``ImportBatch(kind="exchange")`` with audit rows carrying its id. Refusals, bad cells
and unresolved conflicts all raise before anything is written; a cancel raises inside the
transaction, which rolls back.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from gridman.core import checkpoints, db, tasks
from gridman.core.models import Area, Base, ExchangePackage, ImportBatch, utcnow
from gridman.core.services import scope
from gridman.core.services.errors import ConflictError, ValidationError
from gridman.core.services.exchange.canonical import TABLES
from gridman.core.services.exchange.conflicts import MergePlan, find_conflicts, rows_to_look_up
from gridman.core.services.exchange.context import MergeContext
from gridman.core.services.exchange.coverage import coverage_of_package
from gridman.core.services.exchange.package import Package, read_package
from gridman.core.services.exchange.packages import database_id
from gridman.core.services.exchange.results import (
    RESOLUTIONS,
    CheckinResult,
    ConflictsPending,
    ExchangeInvalid,
    refuse,
)
from gridman.core.services.exchange.validation import validate
from gridman.core.services.exchange.writing import write_plan
from gridman.core.services.permissions import Actor, Perm, require
from gridman.core.tasks import TaskState
from gridman.core.xlsxstream import file_sha256


def _check_package(session: Session, actor: Actor, pkg: Package, expect_area: str | None) -> ExchangePackage:
    """The checkout record of the package, if this actor may check it in here and now."""
    meta = pkg.meta
    here = database_id(session)
    if meta.get("source_database_id") != here:
        raise refuse("other_database", f"该交换包来自另一个数据库（{meta.get('source_database_id')}），不能导入本库",
                     f"This package comes from another database ({meta.get('source_database_id')})")
    rec = session.scalar(select(ExchangePackage).where(ExchangePackage.package_id == meta.get("package_id")))
    if rec is None:
        raise refuse("unknown_package", f"本库没有交换包 {meta.get('package_id')} 的导出记录",
                     f"This database never checked out package {meta.get('package_id')}")
    area = session.get(Area, rec.area_id)
    assert area is not None
    if rec.checksum != meta.get("checksum") or area.code != meta.get("area_code"):
        raise refuse("tampered", "交换包的校验值或区划与导出记录不符，文件已被改动，拒绝导入",
                     "The package checksum/area differ from the checkout record; the file was altered")
    if expect_area and expect_area != area.code:
        raise refuse("other_area", f"该交换包属于 {area.name}（{area.code}），不是 {expect_area}",
                     f"This package belongs to {area.name} ({area.code}), not {expect_area}")
    require(actor, Perm.IMPORT, area)
    if rec.checked_in_at is not None:
        raise refuse("already_checked_in", f"交换包 {rec.package_id} 已于 {rec.checked_in_at:%Y-%m-%d %H:%M} 导入"
                     f"（批次 {rec.checkin_batch_id}），不能重复导入",
                     f"Package {rec.package_id} was already checked in (batch {rec.checkin_batch_id})")
    newer = session.execute(
        select(ExchangePackage.package_id, ExchangePackage.created_at, Area.path, Area.name)
        .join(Area, Area.id == ExchangePackage.area_id)
        .where(ExchangePackage.checked_in_at.is_not(None), ExchangePackage.id > rec.id)
    ).all()
    for r in newer:
        if scope.is_under(r.path, area.path) or scope.is_under(area.path, r.path):  # the areas overlap
            raise refuse("older", f"已导入了更新的交换包 {r.package_id}（{r.name}，{r.created_at:%Y-%m-%d %H:%M} 导出），"
                         "这个较旧的交换包不能再导入",
                         f"A newer package {r.package_id} of this area was already checked in; this one is older")
    return rec


def checkin(session: Session, actor: Actor, *, path: str | Path, dry_run: bool = False,
            resolve: str = "keep-central", choices: dict[str, dict[str, str]] | None = None,
            confirm_deletes: bool = False, expect_area: str | None = None,
            task: TaskState | None = None) -> CheckinResult:
    """Merge a returned workbook into the database (see the module docstring). Refusals raise
    :class:`ExchangeRefused`, bad cells :class:`ExchangeInvalid`, unresolved conflicts with
    ``resolve="ask"`` :class:`ConflictsPending` — all before anything is written. ``task`` gets
    progress per sheet and register; a cancel raises :class:`tasks.Cancelled` with nothing written.

    The package is read, checked and planned without the database's write lock (other writers go
    on meanwhile; a dry run never takes it); the lock is taken to write only, and when a register
    the plan read changed in between, the plan is made again (at most PLAN_TRIES times)."""
    t0 = time.perf_counter()
    task = tasks.ensure(task)
    if resolve not in RESOLUTIONS:
        raise ValidationError(f"未知的冲突处理方式 {resolve}", field="resolve", en=f"Unknown resolution {resolve}")
    snapshot = db.read_phase(session)
    pkg = read_package(path, task=task.sub(0.0, 0.35))
    checkpoints.reached("checkin.read")
    for _attempt in range(PLAN_TRIES):
        rec, ctx, plan = _plan(session, actor, pkg, expect_area, resolve, choices, confirm_deletes, task)
        res = CheckinResult(rec.package_id, None, dry_run, {k: dict(v) for k, v in plan.counts.items()},
                            plan.conflicts, plan.deletions, plan.notices)
        if dry_run:
            task.progress(1.0, "试运行完成")
            res.seconds = round(time.perf_counter() - t0, 2)
            return res
        checkpoints.reached("checkin.validate")
        if not db.write_phase(session, snapshot) & PLAN_READS:  # the write lock, from here to the commit
            break
        snapshot = db.read_phase(session)
        task.progress(0.35, "导入期间中心库有改动，重新核对")
    else:
        raise ConflictError("导入期间中心库的相关数据反复被修改，请稍后重新导入。",
                            en="The central data kept changing during the check-in; check in again later.")
    _write(session, actor, path, rec, ctx, plan, res, task)
    checkpoints.reached("checkin.commit")
    task.progress(0.99, "正在提交")
    task.check()
    db.done_after_commit(session, task, "已导入")
    res.seconds = round(time.perf_counter() - t0, 2)
    return res


# What a check-in's plan reads: its registers, the areas, the accounts and the checkout records.
PLAN_READS = frozenset({*TABLES, "areas", "users", "exchange_packages"})
PLAN_TRIES = 3


def _plan(session: Session, actor: Actor, pkg: Package, expect_area: str | None, resolve: str,
          choices: dict[str, dict[str, str]] | None, confirm_deletes: bool,
          task: TaskState) -> tuple[ExchangePackage, MergeContext, MergePlan]:
    """Check the package against its checkout record, find conflicts and validate: raises on a
    refusal, bad cells or (``resolve="ask"``) unresolved conflicts."""
    rec = _check_package(session, actor, pkg, expect_area)
    ctx = MergeContext(session, pkg, coverage_of_package(session, pkg.meta))
    ctx.load(rows_to_look_up(pkg), task.sub(0.35, 0.55))
    plan = find_conflicts(ctx, resolve=resolve, choices=choices, confirm_deletes=confirm_deletes,
                          task=task.sub(0.55, 0.65))
    task.progress(0.65, "检查数据")
    validate(ctx, plan)
    if plan.issues:
        raise ExchangeInvalid(plan.issues)
    if resolve == "ask" and plan.conflicts and not choices:
        raise ConflictsPending(plan.conflicts)
    return rec, ctx, plan


def _write(session: Session, actor: Actor, path: str | Path, rec: ExchangePackage, ctx: MergeContext,
           plan: MergePlan, res: CheckinResult, task: TaskState) -> None:
    """Write the plan under an ``ImportBatch(kind="exchange")`` and mark the package checked in."""
    now = utcnow()
    batches = Base.metadata.tables[ImportBatch.__tablename__]
    batch_id = session.execute(insert(batches).returning(batches.c.id), {
        "kind": "exchange", "user_id": actor.user_id, "started_at": now, "file_name": Path(path).name,
        "file_sha256": file_sha256(path), "package_id": rec.package_id, "area_id": rec.area_id, "status": "done",
    }).scalar_one()
    write_plan(ctx, plan, actor, batch_id, f"离线交换导入 {rec.package_id}", task.sub(0.7, 0.98))
    checkpoints.reached("checkin.write")  # a kill -9 test stops here: rows written, package not marked
    res.batch_id = batch_id
    res.counts = {k: dict(v) for k, v in plan.counts.items()}
    res.notices = plan.notices
    res.deletions = plan.deletions
    session.execute(update(batches).where(batches.c.id == batch_id).values(
        finished_at=utcnow(), counts={"registers": res.counts, "conflicts": len(plan.conflicts),
                                      "conflict_rows": [c.uuid for c in plan.conflicts]}))
    session.execute(update(ExchangePackage).where(ExchangePackage.id == rec.id).values(
        checked_in_at=now, checkin_batch_id=batch_id))

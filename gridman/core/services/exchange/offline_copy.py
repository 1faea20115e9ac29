"""The offline side: open a package into a local gridman database (same uuids and versions) so an
offline site can work in gridman, and export the returned workbook of the same package from it.

The local database remembers the package (an ``ExchangePackage`` with ``meta.role == "local"``):
its metadata, checksum and export-time originals travel back unchanged, so the centre checks the
returned workbook in exactly like one edited in Excel.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from gridman.core import tasks
from gridman.core.models import AuditEntry, Base, ExchangePackage, IncidentStep, utcnow
from gridman.core.outputs import check_output_path
from gridman.core.services import audit
from gridman.core.services.exchange.canonical import AREAS, TABLES, USERS, codec_for, register_select, rows_in
from gridman.core.services.exchange.checkout import (
    HELP_TEXT,
    ORIG_HEADERS,
    ORIG_KINDS,
    meta_rows,
    register_sheet,
)
from gridman.core.services.exchange.context import MergeContext, resolve_references
from gridman.core.services.exchange.coverage import Coverage, coverage_of_package
from gridman.core.services.exchange.package import Package, WbRow, read_package
from gridman.core.services.exchange.packages import database_id
from gridman.core.services.exchange.results import (
    CellIssue,
    CheckoutResult,
    ExchangeInvalid,
    OpenResult,
    refuse,
)
from gridman.core.services.exchange.workbook import (
    AREA_FIELDS,
    CHECKSUMMED_META,
    HELP_SHEET,
    META_SHEET,
    ORIG_SHEET,
    REGISTERS,
    Register,
)
from gridman.core.services.exchange.writing import new_row, number_steps, write_new
from gridman.core.services.exchange.xlsx import SheetRows, write_workbook
from gridman.core.services.permissions import Actor, Perm, require
from gridman.core.tasks import TaskState


def _pack(obj: Any) -> str:
    return base64.b64encode(zlib.compress(json.dumps(obj, ensure_ascii=False).encode(), 6)).decode()


def _unpack(s: str) -> Any:
    return json.loads(zlib.decompress(base64.b64decode(s)))


def _local_record(session: Session) -> ExchangePackage | None:
    for p in session.scalars(select(ExchangePackage)):
        if (p.meta or {}).get("role") == "local":
            return p
    return None


def _max_audit_id(session: Session) -> int:
    return session.scalar(select(func.max(AuditEntry.id))) or 0


def _local_changes_since(session: Session, rec: ExchangePackage) -> int:
    since = max((rec.meta or {}).get("opened_audit_id", 0), (rec.meta or {}).get("exported_audit_id", 0))
    return session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.id > since, AuditEntry.table_name.in_(list(TABLES)))) or 0


def _make_room(session: Session, actor: Actor, meta: dict[str, Any], force: bool) -> bool:
    """Clear the local copy of the same area for a refresh (True), or make sure the database is
    empty (False); refuse to overwrite local changes not yet exported unless ``force``."""
    rec = _local_record(session)
    if rec is None:
        if session.scalar(select(func.count()).select_from(TABLES["residents"])) or session.scalar(
                select(func.count()).select_from(TABLES["incidents"])):
            raise refuse("not_empty", "目标数据库已有数据，不是离线交换用的本地库", "The target database already holds data")
        return False
    old_area = (rec.meta or {}).get("metadata", {}).get("area_code")
    if old_area != meta["area_code"]:
        raise refuse("other_area", f"本地库保存的是 {old_area} 的数据，不能打开 {meta['area_code']} 的交换包",
                     f"This local database holds area {old_area}, not {meta['area_code']}")
    changed = _local_changes_since(session, rec)
    if changed and not force:
        raise refuse("local_changes", f"本地库有 {changed} 处修改尚未导出回传，刷新会丢失它们（确需覆盖请加 --force）",
                     f"The local database has {changed} changes not yet exported; use --force to overwrite")
    _wipe_local(session)
    session.delete(rec)
    session.flush()
    return True


def open_package(session: Session, actor: Actor, *, path: str | Path, force: bool = False,
                 task: TaskState | None = None) -> OpenResult:
    """Create or refresh the local database of an offline site from a package (same uuids and
    versions). Refuses to overwrite local changes not yet exported, unless ``force``. Progress per
    sheet read and register written; a cancel raises inside the transaction (nothing written)."""
    t0 = time.perf_counter()
    task = tasks.ensure(task)
    require(actor, Perm.IMPORT)
    pkg = read_package(path, task=task.sub(0.0, 0.4))
    if pkg.issues:
        raise ExchangeInvalid(pkg.issues)
    meta = pkg.meta
    refreshed = _make_room(session, actor, meta, force)
    task.progress(0.45, "写入区划和账号")
    _load_areas(session, pkg)
    _load_users(session, pkg)
    cov = coverage_of_package(session, meta)
    ctx = MergeContext(session, pkg, cov)
    for a in session.execute(select(AREAS.c.id, AREAS.c.code)):
        ctx.area_ids[a.code] = a.id
    for u in session.execute(select(USERS.c.id, USERS.c.username)):
        ctx.user_ids[u.username] = u.id
    for reg in REGISTERS:
        ctx.db[reg.key] = {}
    issues: list[CellIssue] = []
    resolve_references(ctx, issues, strict=False)
    if issues:
        raise ExchangeInvalid(issues)
    counts = _insert_registers(ctx, task.sub(0.5, 0.98))
    audit.record(session, actor, "import", table="exchange_packages",
                 note=f"打开离线交换包 {meta['package_id']}（{meta['area_name']}）")
    session.flush()
    session.add(ExchangePackage(
        package_id=meta["package_id"], area_id=cov.area.id, created_by=actor.user_id, file_name=Path(path).name,
        checksum=meta["checksum"],
        meta={"role": "local", "metadata": {k: meta.get(k) for k in (*CHECKSUMMED_META, "checksum")},
              "originals": _pack(pkg.raw_originals), "opened_audit_id": _max_audit_id(session)}))
    session.flush()
    task.progress(1.0, "已打开")
    task.check()
    return OpenResult(meta["package_id"], meta["area_code"], refreshed, counts, round(time.perf_counter() - t0, 2))


def _insert_registers(ctx: MergeContext, task: TaskState) -> dict[str, int]:
    now = utcnow()
    notes: list[str] = []
    counts = {}
    for i, reg in enumerate(REGISTERS):
        task.step(i, len(REGISTERS), f"写入 {reg.sheet}")
        rows = [w for w in ctx.pkg.rows[reg.key] if not w.deleted]
        _insert_local(ctx, reg, rows, now, notes)
        counts[reg.key] = len(rows)
    return counts


def _insert_local(ctx: MergeContext, reg: Register, rows: list[WbRow], now: datetime, notes: list[str]) -> None:
    """Rows of a package into the local database with their own uuid and export version."""
    if not rows:
        return
    orig = ctx.pkg.originals.get(reg.key, {})
    params = []
    for w in rows:
        v = new_row(ctx, reg, w, notes, now, version=orig[w.uuid][0] if w.uuid in orig else 1)
        if reg.key == "incident_steps" and v.get("seq") is None:
            v["seq"] = 0
        if reg.key == "residents" and v.get("citizen_id") and "*" in v["citizen_id"]:
            v["citizen_id"] = None  # a masked ID is not an ID (and two may look alike)
        params.append(v)
    if reg.key == "incident_steps" and any(p["seq"] == 0 for p in params):
        number_steps(ctx, [p for p in params if p["seq"] == 0])
    write_new(ctx, reg, params)


def _wipe_local(session: Session) -> None:
    """Remove the exchanged registers (and rows hanging on them) before a refresh."""
    from gridman.core.models import (
        House,
        IncidentAttachment,
        IncidentParty,
        OrganisationMember,
        PopulationEvent,
        ResidentTag,
    )

    for m in (IncidentStep, IncidentParty, IncidentAttachment, OrganisationMember, ResidentTag, PopulationEvent):
        session.execute(delete(Base.metadata.tables[m.__tablename__]))
    for key in ("visit_logs", "incidents", "organisations", "premises", "residents", "households"):
        session.execute(delete(TABLES[key]))
    session.execute(delete(Base.metadata.tables[House.__tablename__]))
    session.execute(delete(TABLES["buildings"]))


def _load_areas(session: Session, pkg: Package) -> None:
    """The package's areas, parents first; areas the local database already has are updated."""
    rows = []
    for u, (ver, _) in pkg.originals.get("_areas", {}).items():
        rows.append((u, ver, dict(zip(AREA_FIELDS, pkg.orig("_areas", u), strict=False))))
    rows.sort(key=lambda r: len(r[2]["code"]))
    existing: dict[str, tuple[int, str, int]] = {
        r.code: (r.id, r.path, r.depth) for r in session.execute(select(AREAS.c.id, AREAS.c.code, AREAS.c.path,
                                                                        AREAS.c.depth))}
    now = utcnow()
    for u, ver, a in rows:
        boundary = bytes.fromhex(a["boundary_hex"]) if a["boundary_hex"] else None
        if a["code"] in existing:
            session.execute(update(AREAS).where(AREAS.c.code == a["code"]).values(
                name=a["name"], boundary=boundary, center_lon=a["center_lon"], center_lat=a["center_lat"],
                household_limit=a["household_limit"]))
            continue
        parent = existing.get(a["parent_code"]) if a["parent_code"] else None
        depth = parent[2] + 1 if parent else 0
        new_id = session.execute(insert(AREAS).returning(AREAS.c.id), [{
            "uuid": u, "version": ver, "created_at": now, "updated_at": now, "code": a["code"], "name": a["name"],
            "level": a["level"], "parent_id": parent[0] if parent else None, "path": "", "depth": depth,
            "boundary": boundary, "center_lon": a["center_lon"], "center_lat": a["center_lat"],
            "household_limit": a["household_limit"],
        }]).scalar_one()
        path = (parent[1] if parent else "/") + f"{new_id}/"
        session.execute(update(AREAS).where(AREAS.c.id == new_id).values(path=path))
        existing[a["code"]] = (new_id, path, depth)


def _load_users(session: Session, pkg: Package) -> None:
    """Accounts the rows refer to, as disabled placeholders (no password travels in a package)."""
    have = set(session.scalars(select(USERS.c.username)))
    now = utcnow()
    rows = []
    for u in pkg.originals.get("_users", {}):
        username, display_name, role = pkg.orig("_users", u)
        if username in have:
            continue
        rows.append({"uuid": u, "version": 1, "created_at": now, "updated_at": now, "username": username,
                     "display_name": display_name, "password_hash": "!", "role": role, "active": False,
                     "is_system": False})
    if rows:
        session.execute(insert(USERS), rows)


class _ReturnedRows:
    """The register rows of a returned workbook, as they are now in the local database."""

    def __init__(self, session: Session, meta: dict[str, Any], originals: dict[str, dict[str, tuple[int, str]]],
                 cov: Coverage) -> None:
        self.s, self.meta, self.originals, self.cov = session, meta, originals, cov
        self.mask = bool(meta.get("ids_masked"))
        self.counts: dict[str, int] = {}
        self._local_uuids: dict[str, set[str]] = {}

    def is_local(self, target: str, u: str) -> bool:
        if target not in self._local_uuids:
            self._local_uuids[target] = set(self.s.scalars(select(TABLES[target].c.uuid)))
        return u in self._local_uuids[target]

    def rows(self, reg: Register) -> Iterator[list[Any]]:
        orig = self.originals.get(reg.key, {})
        cols = self.meta["columns"][reg.key]
        # fields a local row may hold empty although the package had a value: references to rows
        # outside the package (nothing to point at locally) and masked IDs (not stored locally)
        nullable = [(reg.fields.index(c.field), c.field, c.ref) for c in reg.cols if c.kind == "ref"]
        if self.mask and reg.key == "residents":
            nullable.append((reg.fields.index("citizen_id"), "citizen_id", None))
        n = 0
        result = self.s.execute(register_select(reg, rows_in(reg, self.cov)).execution_options(yield_per=5000))
        codec = codec_for(reg, list(result.keys()), False)
        for row in result:
            canon = codec.canon(row)
            u = row[codec.i_uuid]
            ver = None
            if u in orig:
                ver = orig[u][0]
                if any(canon[i] is None for i, _, _ in nullable):
                    ov = dict(zip(cols, json.loads(orig[u][1]), strict=False))
                    for i, f, target in nullable:
                        if canon[i] is None and ov.get(f) and (target is None or not self.is_local(target, ov[f])):
                            canon[i] = ov[f]
            n += 1
            yield codec.cells(row, canon, ver)
        self.counts[reg.key] = n


def export_local(session: Session, actor: Actor, *, out: str | Path, task: TaskState | None = None) -> CheckoutResult:
    """Write the returned workbook of the package this local database was opened from: the same
    package id, metadata, checksum and export-time originals, with the rows as they are now."""
    t0 = time.perf_counter()
    task = tasks.ensure(task)
    require(actor, Perm.EXPORT)
    check_output_path(out, session)
    rec = _local_record(session)
    if rec is None:
        raise refuse("not_local", "此数据库不是由离线交换包打开的本地库", "This database was not opened from a package")
    local = rec.meta or {}
    meta = dict(local["metadata"])
    raw: list[list[Any]] = _unpack(local["originals"])
    originals: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)
    for reg_key, u, ver, vals in raw:
        originals[reg_key][u] = (ver, vals)
    returned = _ReturnedRows(session, meta, originals, coverage_of_package(session, meta))
    sheets: list[SheetRows] = [SheetRows(HELP_SHEET, ["说明"], HELP_TEXT, widths=[120])]
    for reg in REGISTERS:
        sh = register_sheet(reg)
        sh.rows = _reporting(returned.rows(reg), task, REGISTERS.index(reg), reg.sheet)
        sheets.append(sh)
    full = {**meta, "kind": "return", "returned_at": utcnow().replace(microsecond=0).isoformat(sep=" "),
            "returned_by": actor.username, "returned_from_database_id": database_id(session)}
    sheets.append(SheetRows(ORIG_SHEET, ORIG_HEADERS, [list(r) for r in raw], kinds=ORIG_KINDS, state="veryHidden"))
    sheets.append(SheetRows(META_SHEET, ["键", "项目", "值"], meta_rows(full), widths=[22, 20, 60]))
    write_workbook(Path(out), sheets, task=task)
    audit.record(session, actor, "export", table="exchange_packages", row_id=rec.id,
                 note=f"导出回传交换包 {rec.package_id} → {Path(out).name}")
    session.flush()
    rec.meta = {**local, "exported_audit_id": _max_audit_id(session)}
    session.flush()
    return CheckoutResult(rec.package_id, str(out), meta["area_code"], meta["area_name"], returned.counts,
                          meta["checksum"], round(time.perf_counter() - t0, 2))


def _reporting(rows: Iterator[list[Any]], task: TaskState, i: int, sheet: str) -> Iterator[list[Any]]:
    """Progress per register sheet while its rows stream into the workbook."""
    task.step(i, len(REGISTERS), f"导出 {sheet}")
    yield from rows

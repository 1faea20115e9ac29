"""Conflict detection (冲突): every row of a returned workbook is compared with its export-time
values (kept in the package) and with the database now. Rows changed only offline become updates,
rows changed only centrally stay; a row changed on both sides is merged field by field: a field
changed offline only is taken, and only a field changed on both sides to different values is a
conflict (keep-central is the default), new rows are inserts, rows gone offline are deletions — reported
unless confirmed. The result is a :class:`MergePlan`; nothing is written here."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gridman.core.services.exchange.context import DbRow, MergeContext, live_rows, resolve_references
from gridman.core.services.exchange.package import Package, WbRow
from gridman.core.services.exchange.results import CellIssue, Conflict, FieldDiff
from gridman.core.services.exchange.workbook import BY_KEY, REGISTERS, UUID_HEADER, Register
from gridman.core.tasks import TaskState

# rows a confirmed offline deletion may remove; incidents and their steps are records, never deleted
DELETABLE = {"households", "residents", "buildings", "premises", "organisations", "visit_logs"}


@dataclass
class MergePlan:
    inserts: dict[str, list[WbRow]] = field(default_factory=lambda: defaultdict(list))
    updates: dict[str, list[tuple[WbRow, list[str]]]] = field(default_factory=lambda: defaultdict(list))
    deletes: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    issues: list[CellIssue] = field(default_factory=list)


def row_label(reg: Register, vals: dict[str, Any]) -> str:
    """How a row is named to the user (name, 户号, title or code)."""
    for f in ("name", "household_no", "title", "code"):
        if vals.get(f):
            return str(vals[f])
    return reg.sheet


def rows_to_look_up(pkg: Package) -> dict[str, set[str]]:
    """Mark the rows that are provably as exported — same values (compared as the JSON text the
    package keeps) and natural keys that still name the referenced workbook row — and return, per
    register, the uuids the plan must look up in the database (everything else)."""
    live = live_rows(pkg)
    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    want: dict[str, set[str]] = {}
    for reg in REGISTERS:
        orig = pkg.originals.get(reg.key, {})
        same_cols = pkg.meta["columns"][reg.key] == reg.fields
        refkeys = [(c.field, c.ref, BY_KEY[c.ref].natkey) for c in reg.cols if c.kind == "refkey" and c.ref]
        need: set[str] = set()
        for w in pkg.rows[reg.key]:
            if not w.new and not w.deleted and same_cols and enc(list(w.vals.values())) == orig[w.uuid][1] \
                    and _keys_unchanged(w, refkeys, live):
                w.same = True
                continue
            need.add(w.uuid)
        seen = {w.uuid for w in pkg.rows[reg.key] if not w.deleted}
        need |= set(orig) - seen
        want[reg.key] = need
    return want


def _keys_unchanged(w: WbRow, refkeys: list[tuple[str, str, str | None]],
                    live: dict[str, dict[str, WbRow]]) -> bool:
    for f, target, nk in refkeys:
        u, n = w.vals.get(f), w.keys.get(f)
        t = live[target].get(u) if u else None
        if (u is None and n is not None) or (u is not None and (t is None or t.vals.get(nk or "") != n)):
            return False
    return True


class _Finder:
    """The plan of one register: each workbook row sorted into insert / update / conflict / unchanged."""

    def __init__(self, ctx: MergeContext, plan: MergePlan, reg: Register, resolve: str,
                 choices: dict[str, dict[str, str]] | None) -> None:
        self.ctx, self.plan, self.reg, self.resolve, self.choices = ctx, plan, reg, resolve, choices or {}
        self.pkg = ctx.pkg
        self.c = plan.counts[reg.key] = defaultdict(int)
        self.orig = self.pkg.originals.get(reg.key, {})
        self.db = ctx.db[reg.key]
        self.writable = [f for f in reg.fields if not reg.field_cols[f].readonly]
        self.same_cols = self.pkg.meta["columns"][reg.key] == reg.fields

    def new_row(self, w: WbRow) -> None:
        reg = self.reg
        if w.uuid in self.db or w.uuid in self.ctx.ids[reg.key] and w.uuid not in self.orig:
            self.plan.issues.append(CellIssue(reg.sheet, w.row, UUID_HEADER, "该 UUID 属于本交换包以外的记录"))
            return
        if w.deleted:
            return
        self.c["appended" if reg.key == "incident_steps" else "inserted"] += 1
        self.plan.inserts[reg.key].append(w)

    def exported_row(self, w: WbRow) -> None:
        reg, plan, c = self.reg, self.plan, self.c
        if self.same_cols and list(w.vals.values()) == self.pkg.orig(reg.key, w.uuid):
            c["unchanged"] += 1
            return
        o = self.pkg.orig_dict(reg.key, w.uuid)
        off = [f for f in self.writable if w.vals.get(f) != o.get(f)]
        if reg.key == "incident_steps":
            if off:
                plan.notices.append(f"{reg.sheet} 第 {w.row} 行：已有处置记录不可改写，离线修改已忽略")
            c["unchanged"] += 1
            return
        if not off:
            c["unchanged"] += 1
            return
        d = self.db.get(w.uuid)
        if d is None:
            plan.notices.append(f"{reg.sheet} 第 {w.row} 行（{row_label(reg, w.vals)}）已在中心删除，离线修改未导入")
            c["central_deleted"] += 1
            return
        cen = {f for f in reg.fields if d.canon.get(f) != o.get(f)} if d.version != self.orig[w.uuid][0] else set()
        # per field: changed offline only → taken; changed on both sides to the same value → nothing to
        # do; changed on both sides to different values → a true conflict, resolved as asked
        clash = [f for f in off if f in cen and w.vals.get(f) != d.canon.get(f)]
        free = [f for f in off if f not in cen]
        if clash:
            self.conflict(w, d, o, clash, free)
        elif free:
            plan.updates[reg.key].append((w, free))
            c["updated"] += 1
        else:
            c["unchanged"] += 1  # the same change was made on both sides

    def conflict(self, w: WbRow, d: DbRow, o: dict[str, Any], clash: list[str], free: list[str]) -> None:
        """A row with fields changed on both sides to different values: only those are the conflict
        (shown, resolved by ``choices`` or ``resolve``); the offline-only changes ``free`` are taken
        whatever the resolution."""
        reg = self.reg
        diffs = [FieldDiff(f, reg.field_cols[f].header, w.vals.get(f), d.canon.get(f), o.get(f), True)
                 for f in clash]
        conf = Conflict(reg.key, reg.sheet, w.row, w.uuid, row_label(reg, d.canon), diffs, "keep-central")
        chosen = self.choices.get(w.uuid)
        take = list(free)
        if chosen:
            take += [f for f in clash if chosen.get(f) == "offline"]
            conf.resolution = "per-field"
        elif self.resolve == "keep-offline":
            take += clash
            conf.resolution = "keep-offline"
        self.plan.conflicts.append(conf)
        self.c["conflicts"] += 1
        if take:
            self.plan.updates[reg.key].append((w, take))

    def gone_row(self, u: str, confirm_deletes: bool) -> None:
        """An exported row no longer in the workbook (or marked deleted): reported, or deleted when
        confirmed, deletable and unchanged centrally."""
        reg = self.reg
        d = self.db.get(u)
        label = row_label(reg, self.pkg.orig_dict(reg.key, u))
        self.c["deleted_offline"] += 1
        entry = {"register": reg.key, "sheet": reg.sheet, "uuid": u, "label": label, "action": "reported"}
        if d is None:
            entry["action"] = "already_deleted_centrally"
        elif confirm_deletes and reg.key in DELETABLE:
            if d.version != self.orig[u][0]:
                entry["action"] = "kept_changed_centrally"
            else:
                self.plan.deletes[reg.key].append((u, d.id))
                entry["action"] = "deleted"
        elif reg.key not in DELETABLE:
            entry["action"] = "kept_record"
        self.plan.deletions.append(entry)


def find_conflicts(ctx: MergeContext, *, resolve: str, choices: dict[str, dict[str, str]] | None,
                   confirm_deletes: bool, task: TaskState) -> MergePlan:
    """The plan of a check-in: references resolved, every row sorted, conflicts found and resolved
    as asked (``choices`` per uuid and field, else ``resolve``)."""
    plan = MergePlan()
    pkg = ctx.pkg
    plan.issues.extend(pkg.issues)
    resolve_references(ctx, plan.issues)
    for i, reg in enumerate(REGISTERS):
        task.step(i, len(REGISTERS), f"查找冲突 {reg.sheet}")
        finder = _Finder(ctx, plan, reg, resolve, choices)
        seen: set[str] = set()
        for w in pkg.rows[reg.key]:
            if w.same:
                seen.add(w.uuid)
                finder.c["unchanged"] += 1
            elif w.new:
                finder.new_row(w)
            elif not w.deleted:
                seen.add(w.uuid)
                finder.exported_row(w)
        for u in finder.orig:
            if u not in seen:
                finder.gone_row(u, confirm_deletes)
    return plan

"""What a check-in (or an open) looks up in the database: the rows of the package's uuids, the
rows referred to, areas by code and users by name; and the references typed in the workbook
(户号, 楼栋编码, uuids) resolved against the workbook and the database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from gridman.core.services.exchange.canonical import (
    AREAS,
    TABLES,
    USERS,
    Codec,
    codec_for,
    register_select,
    rows_in,
)
from gridman.core.services.exchange.coverage import Coverage
from gridman.core.services.exchange.package import Package, WbRow
from gridman.core.services.exchange.results import CellIssue
from gridman.core.services.exchange.workbook import BY_KEY, REGISTERS, Col, Register
from gridman.core.services.exchange.xlsx import iter_chunks
from gridman.core.tasks import TaskState

WHOLE_AREA_PASS = 20_000  # more uuids than this: one pass over the package's area instead of look-ups


class DbRow:
    """A database row as loaded for a check-in; canonical values and the raw column dict are
    only built for the few rows that need them (changed, conflicting, deleted)."""

    __slots__ = ("id", "version", "_row", "_codec", "_canon")

    def __init__(self, id_: int, version: int, row: Any, codec: Codec) -> None:
        self.id, self.version, self._row, self._codec = id_, version, row, codec
        self._canon: dict[str, Any] | None = None

    @property
    def canon(self) -> dict[str, Any]:
        if self._canon is None:
            self._canon = dict(zip(self._codec.reg.fields, self._codec.canon(self._row), strict=True))
        return self._canon

    @property
    def raw(self) -> dict[str, Any]:
        t = TABLES[self._codec.reg.key]
        return {c.name: self._row[i] for i, c in enumerate(t.c)}  # the select starts with t.c in order


class MergeContext:
    """Everything the conflict finder and the writer look up: database rows by uuid, areas by
    code, users by name."""

    def __init__(self, session: Session, pkg: Package, cov: Coverage) -> None:
        self.s = session
        self.pkg = pkg
        self.cov = cov
        self.mask = bool(pkg.meta.get("ids_masked"))
        self.db: dict[str, dict[str, DbRow]] = {}
        self.ids: dict[str, dict[str, int]] = defaultdict(dict)  # register -> uuid -> id (db and inserted)
        self.natkey_db: dict[str, dict[str, str]] = defaultdict(dict)  # register -> natkey -> uuid
        self.uuid_natkey_db: dict[str, dict[str, Any]] = defaultdict(dict)
        self.area_ids: dict[str, int] = {}
        self.user_ids: dict[str, int] = {}
        self.extras: dict[int, dict[str, Any]] = {}

    def load(self, want_by_reg: dict[str, set[str]], task: TaskState) -> None:
        """Database rows of the given uuids (those the plan must look at), areas, users."""
        for i, reg in enumerate(REGISTERS):
            task.step(i, len(REGISTERS), f"比对 {reg.sheet}")
            self._load_register(reg, want_by_reg.get(reg.key, set()))
        for a in self.s.execute(select(AREAS.c.id, AREAS.c.code).where(AREAS.c.id.in_(self.cov.area_ids))):
            self.area_ids[a.code] = a.id
        names = set()
        for reg in REGISTERS:
            ufs = [c.field for c in reg.cols if c.kind == "user"]
            for w in self.pkg.rows.get(reg.key, []):
                for f in ufs:
                    if w.vals.get(f):
                        names.add(w.vals[f])
        for chunk in iter_chunks(sorted(names)):
            for u in self.s.execute(select(USERS.c.id, USERS.c.username).where(USERS.c.username.in_(chunk))):
                self.user_ids[u.username] = u.id

    def _load_register(self, reg: Register, want: set[str]) -> None:
        rows: dict[str, DbRow] = {}
        ids = self.ids[reg.key]
        nkmap = self.uuid_natkey_db[reg.key]

        def take(q: Any) -> None:
            result = self.s.execute(q)
            keys = list(result.keys())
            codec = codec_for(reg, keys, self.mask)
            iu, ii, iv = codec.i_uuid, codec.i_id, codec.i_ver
            ink = keys.index(reg.natkey) if reg.natkey else None
            for row in result:
                u = row[iu]
                if u not in want:
                    continue
                rows[u] = DbRow(row[ii], row[iv] if iv is not None else 0, row, codec)
                ids[u] = row[ii]
                if ink is not None:
                    nkmap[u] = row[ink]

        if len(want) > WHOLE_AREA_PASS:  # most of the area: one pass over it, then what moved out since
            take(register_select(reg, rows_in(reg, self.cov)).execution_options(yield_per=5000))
        for chunk in iter_chunks(sorted(want - rows.keys())):
            take(register_select(reg, _uuid_in(chunk)))
        self.db[reg.key] = rows

    def lookup_refs(self, reg_key: str, uuids: set[str], natkeys: set[str]) -> None:
        """Database rows of ``reg_key`` referred to from the workbook but not part of it."""
        t = TABLES[reg_key]
        nk = BY_KEY[reg_key].natkey
        need = sorted(u for u in uuids if u not in self.ids[reg_key])
        for chunk in iter_chunks(need):
            cols = [t.c.id, t.c.uuid] + ([t.c[nk]] if nk else [])
            for r in self.s.execute(select(*cols).where(t.c.uuid.in_(chunk))):
                self.ids[reg_key][r.uuid] = r.id
                if nk:
                    self.uuid_natkey_db[reg_key][r.uuid] = r[2]
        if nk:
            for chunk in iter_chunks(sorted(k for k in natkeys if k not in self.natkey_db[reg_key])):
                for r in self.s.execute(select(t.c.id, t.c.uuid, t.c[nk]).where(t.c[nk].in_(chunk))):
                    self.ids[reg_key][r.uuid] = r.id
                    self.natkey_db[reg_key][r[2]] = r.uuid
                    self.uuid_natkey_db[reg_key][r.uuid] = r[2]


def _uuid_in(uuids: list[str]) -> Callable[[Table], Any]:
    return lambda t: t.c.uuid.in_(uuids)


def live_rows(pkg: Package) -> dict[str, dict[str, WbRow]]:
    """The workbook's rows not marked deleted, by register and uuid."""
    return {k: {w.uuid: w for w in rows if not w.deleted} for k, rows in pkg.rows.items()}


class _RefResolver:
    def __init__(self, ctx: MergeContext, issues: list[CellIssue], strict: bool) -> None:
        self.ctx, self.issues, self.strict = ctx, issues, strict
        self.live = live_rows(ctx.pkg)
        self.nk_wb: dict[str, dict[Any, str]] = {
            reg.key: {w.vals.get(reg.natkey): w.uuid for w in self.live[reg.key].values()
                      if w.vals.get(reg.natkey) is not None}
            for reg in REGISTERS if reg.natkey}

    def look_up_database(self) -> None:
        """One batch of database look-ups for every reference the workbook does not resolve itself."""
        want_u: dict[str, set[str]] = defaultdict(set)
        want_k: dict[str, set[str]] = defaultdict(set)
        for reg in REGISTERS:
            for col in reg.cols:
                if col.kind not in ("ref", "refkey"):
                    continue
                assert col.ref is not None
                for w in self.ctx.pkg.rows[reg.key]:
                    if w.same:
                        continue
                    v = w.vals.get(col.field) if col.kind == "ref" else w.keys.get(col.field)
                    if col.kind == "ref" and v and v not in self.live[col.ref]:
                        want_u[col.ref].add(v)
                    if col.kind == "refkey" and v is not None and v not in self.nk_wb.get(col.ref, {}):
                        want_k[col.ref].add(v)
        for k in set(want_u) | set(want_k):
            self.ctx.lookup_refs(k, want_u[k], want_k[k])

    def by_natkey(self, reg: Register, w: WbRow, col: Col) -> None:
        """A reference shown by its natural key: the key typed decides, the hidden uuid follows it."""
        f, target = col.field, col.ref
        assert target is not None
        u, n = w.vals.get(f), w.keys.get(f)
        live, ctx = self.live[target], self.ctx
        nk = BY_KEY[target].natkey
        cur = (live[u].vals.get(nk) if nk else None) if u in live else ctx.uuid_natkey_db[target].get(u) if u else None
        if u and cur == n:
            return
        if n is None:
            # an empty key detaches, except from a row this workbook does not hold
            # (outside the package, or deleted offline: deletions are only reported)
            u = u if u and u not in live and u in ctx.ids[target] else None
        else:
            u = self.nk_wb.get(target, {}).get(n) or ctx.natkey_db[target].get(n)
            if u is None and self.strict:
                hdr = next(c.header for c in reg.cols if c.field == f and c.kind == "refkey")
                self.issues.append(CellIssue(reg.sheet, w.row, hdr, f"“{n}”不存在"))
        w.vals[f] = u

    def check_row(self, reg: Register, w: WbRow, refkeyed: set[str]) -> None:
        cov = self.ctx.cov
        for col in reg.cols:
            f = col.field
            if col.kind == "ref" and f in refkeyed:
                self.by_natkey(reg, w, col)
            elif col.kind == "ref":
                u = w.vals.get(f)
                assert col.ref is not None
                if u and u not in self.live[col.ref] and u not in self.ctx.ids[col.ref]:
                    if not self.strict:
                        w.vals[f] = None  # refers outside the package: nothing to point at locally
                        continue
                    self.issues.append(CellIssue(reg.sheet, w.row, col.header, f"引用的记录 {u} 不存在"))
            elif col.kind == "area":
                v = w.vals.get(f)
                allowed = cov.covered_area_codes if f == "area_id" else cov.covered_grid_codes
                if v is not None and v not in allowed:
                    self.issues.append(CellIssue(reg.sheet, w.row, col.header,
                                                 f"{v} 不是本交换包（{self.ctx.pkg.meta.get('area_name')}）内的"
                                                 f"{'区划' if f == 'area_id' else '网格'}"))
            if col.required and col.kind not in ("refkey", "info") and w.vals.get(f) is None \
                    and not col.readonly and not (col.kind == "ref" and f in refkeyed):
                self.issues.append(CellIssue(reg.sheet, w.row, col.header, "不能为空"))


def resolve_references(ctx: MergeContext, issues: list[CellIssue], *, strict: bool = True) -> None:
    """Turn natural keys typed in visible columns (户号, 楼栋编码) into row uuids and check that
    every reference and area exists (in the workbook or the database) and lies in the package.
    Problems are appended to ``issues``; not ``strict`` (opening a package), references to rows
    outside the package are dropped instead."""
    r = _RefResolver(ctx, issues, strict)
    r.look_up_database()
    for reg in REGISTERS:
        refkeyed = {c.field for c in reg.cols if c.kind == "refkey"}
        for w in ctx.pkg.rows[reg.key]:
            if not w.deleted and not w.same:
                r.check_row(reg, w, refkeyed)

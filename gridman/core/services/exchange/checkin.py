"""Offline sub-districts (离线交换): check an area out into a workbook, take it back, merge, lose nothing.

- :func:`checkout` writes the registers of a street, community or set of grids into an exchange
  workbook (see :mod:`exchange_book` for the format) and records an :class:`ExchangePackage`.
- :func:`open_package` builds (or refreshes) a local gridman database from a package, with the same
  uuids and versions, so an offline site can work in gridman; :func:`export_local` writes the
  returned workbook of the same package from that database.
- :func:`checkin` merges a returned workbook: every row is compared with its export-time values
  (kept in the package) and with the database now. Rows changed only offline are updated, rows
  changed only centrally stay, rows changed on both sides are conflicts (field by field;
  keep-central is the default), new rows are inserted, rows deleted offline are only reported
  unless confirmed, incident steps are only ever appended. One transaction, set-based writes,
  recorded as ``ImportBatch(kind="exchange")`` with audit rows carrying its id;
  :func:`undo_checkin` reverts it while nothing touched its rows since.

Threading: every function works in the session it is given (one unit of work); nothing is shared.
"""

from __future__ import annotations

import base64
import json
import time
import uuid as uuidlib
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Date, DateTime, Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from gridman.core import idcard
from gridman.core.enums import AreaLevel
from gridman.core.models import (
    Area,
    AuditEntry,
    Base,
    ExchangePackage,
    ImportBatch,
    Incident,
    IncidentStep,
    Setting,
    User,
    utcnow,
)
from gridman.core.services import audit
from gridman.core.services.errors import GridmanError, NotFound, ValidationError
from gridman.core.services.exchange_book import (
    AREA_FIELDS,
    CHECKSUMMED_META,
    DELETE_HEADER,
    FORMAT,
    HELP_SHEET,
    META_LABELS,
    META_SHEET,
    ORIG_SHEET,
    REGISTERS,
    UUID_HEADER,
    VERSION_HEADER,
    Book,
    CellError,
    Register,
    SheetRows,
    canon_db,
    canon_fn,
    checksum,
    cleaner_for,
    display_fn,
    enum_label,
    file_sha256,
    iter_chunks,
    to_db,
    write_workbook,
)
from gridman.core.services.permissions import Actor, Perm, require

TABLES: dict[str, Table] = {r.key: Base.metadata.tables[r.key] for r in REGISTERS}
AREAS: Table = Base.metadata.tables["areas"]
USERS: Table = Base.metadata.tables["users"]
USER_FIELDS = ["username", "display_name", "role"]
# rows a confirmed offline deletion may remove; incidents and their steps are records, never deleted
DELETABLE = {"households", "residents", "buildings", "premises", "organisations", "visit_logs"}
SCOPED_BY_AREA = {"organisations": "area_id"}
RESOLUTIONS = ("keep-central", "keep-offline", "ask")


# --- errors and results ------------------------------------------------------------------------


class ExchangeRefused(GridmanError):
    """A check-in (or open) refused as a whole; ``reason`` is a short code, the database is unchanged."""

    def __init__(self, reason: str, message: str, *, en: str) -> None:
        super().__init__(message, en=en)
        self.reason = reason


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
    fields: list[FieldDiff]
    resolution: str = "keep-central"  # what the check-in did


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


# --- scope and settings ------------------------------------------------------------------------


@dataclass
class Scope:
    """What a package covers: its area, the grids whose rows it carries, the areas organisations
    may hang on, and (for a package of chosen grids) their codes."""

    area: Area
    grid_ids: list[int]
    area_ids: list[int]  # organisations may hang on any of these
    grid_codes: list[str] | None  # a set of grids, else None
    _codes: list[str] = field(default_factory=list)  # grid codes in scope
    _all_codes: list[str] = field(default_factory=list)  # area codes in scope


def database_id(session: Session) -> str:
    v = session.scalar(select(Setting.value).where(Setting.key == "database_id"))
    return str(v) if v is not None else ""


def _scope(session: Session, *, area_code: str | None = None, grid_codes: list[str] | None = None) -> Scope:
    if grid_codes:
        grids = list(session.scalars(select(Area).where(Area.code.in_(grid_codes))))
        missing = set(grid_codes) - {g.code for g in grids}
        if missing or any(g.level != AreaLevel.GRID for g in grids):
            raise NotFound(f"找不到网格：{'、'.join(sorted(missing)) or '（编码不是网格）'}",
                           en=f"No such grids: {sorted(missing)}")
        paths = [g.path for g in grids]
        common = paths[0]
        while not all(p.startswith(common) for p in paths):
            common = common[: common.rstrip("/").rfind("/") + 1]
        parent_id = int(common.strip("/").split("/")[-1])
        area = session.get(Area, parent_id) if len(grids) > 1 else grids[0]
        assert area is not None
        ids = [g.id for g in grids]
        sc = Scope(area, ids, ids, sorted(g.code for g in grids))
        sc._codes = [g.code for g in grids]
        sc._all_codes = list(sc._codes)
        return sc
    if not area_code:
        raise ValidationError("请指定区划编码或网格", field="area", en="Give an area code or grids")
    area = session.scalar(select(Area).where(Area.code == area_code))
    if area is None:
        raise NotFound(f"找不到编码为 {area_code} 的区划", en=f"No area {area_code}")
    if area.level not in (AreaLevel.STREET, AreaLevel.COMMUNITY, AreaLevel.GRID):
        raise ValidationError("只能导出街道、社区或网格", field="area", en="Check out a street, community or grids")
    rows = session.execute(select(Area.id, Area.code, Area.level).where(Area.path.like(area.path + "%"))).all()
    sc = Scope(area, [r.id for r in rows if r.level == AreaLevel.GRID], [r.id for r in rows], None)
    sc._codes = [r.code for r in rows if r.level == AreaLevel.GRID]
    sc._all_codes = [r.code for r in rows]
    return sc


def _scope_from_meta(session: Session, meta: dict[str, Any]) -> Scope:
    grids = meta.get("grid_codes") or None
    return _scope(session, area_code=None if grids else meta["area_code"], grid_codes=grids)


# --- reading the database in canonical form -------------------------------------------------------


def _register_select(reg: Register, where_fn: Any) -> Any:
    """SELECT of a register's rows with every exchanged field, refs as uuids, areas as codes,
    users as user names (``m__field``) next to the raw columns."""
    t = TABLES[reg.key]
    cols: list[Any] = list(t.c)
    frm: Any = t
    seen: dict[str, Any] = {}
    for col in reg.cols:
        if col.field in seen or col.kind not in ("area", "ref", "user", "refkey", "info"):
            continue
        if col.kind == "info":
            continue
        if col.kind == "area":
            a = AREAS.alias(f"a_{col.field}")
            frm = frm.outerjoin(a, a.c.id == t.c[col.field])
            cols.append(a.c.code.label(f"m__{col.field}"))
        elif col.kind == "user":
            u = USERS.alias(f"u_{col.field}")
            frm = frm.outerjoin(u, u.c.id == t.c[col.field])
            cols.append(u.c.username.label(f"m__{col.field}"))
        else:
            target = TABLES[col.ref] if col.ref in TABLES else None
            assert target is not None
            r = target.alias(f"r_{col.field}")
            frm = frm.outerjoin(r, r.c.id == t.c[col.field])
            cols.append(r.c.uuid.label(f"m__{col.field}"))
            nk = BY_REG[col.ref].natkey
            if nk:
                cols.append(r.c[nk].label(f"k__{col.field}"))
            if reg.key == "incident_steps":
                cols.append(r.c.title.label("k__incident_title"))
        seen[col.field] = True
    return select(*cols).select_from(frm).where(where_fn(t)).order_by(t.c.id)


BY_REG: dict[str, Register] = {r.key: r for r in REGISTERS}


class _Codec:
    """A register's rows (plain tuples of :func:`_register_select`) → canonical values and cells,
    with the per-column conversions looked up once, not per cell."""

    def __init__(self, reg: Register, keys: list[str], mask_ids: bool) -> None:
        idx = {k: i for i, k in enumerate(keys)}
        self.reg = reg
        self.i_uuid, self.i_id = idx["uuid"], idx["id"]
        self.i_ver = idx.get("version")
        self.canon_ops = [(idx[f"m__{f}" if c.kind in ("area", "ref", "user") else f], canon_fn(c, mask_ids=mask_ids))
                          for f, c in reg.field_cols.items()]
        fpos = {f: i for i, f in enumerate(reg.fields)}
        self.disp_ops: list[tuple[bool, int | None, Any]] = []
        for col in reg.cols:
            if col.kind in ("refkey", "info"):
                self.disp_ops.append((False, idx.get(f"k__{col.field}"), None))
            else:
                self.disp_ops.append((True, fpos[col.field], display_fn(col)))

    def canon(self, row: Any) -> list[Any]:
        return [fn(row[i]) for i, fn in self.canon_ops]

    def cells(self, row: Any, canon: list[Any], version: int | None) -> list[Any]:
        out: list[Any] = [row[self.i_uuid]]
        if self.reg.versioned:
            out.append(version)
        for from_canon, i, fn in self.disp_ops:
            if from_canon:
                v = canon[i]  # type: ignore[index]
                out.append(fn(v) if fn is not None and v is not None else v)
            else:
                out.append(row[i] if i is not None else None)
        out.append(None)
        return out


_CODECS: dict[tuple[str, tuple[str, ...], bool], _Codec] = {}


def _codec(reg: Register, keys: Iterable[str], mask_ids: bool) -> _Codec:
    k = (reg.key, tuple(keys), mask_ids)
    c = _CODECS.get(k)
    if c is None:
        c = _CODECS[k] = _Codec(reg, list(k[1]), mask_ids)
    return c


def _canon_row(reg: Register, m: Any, mask_ids: bool) -> list[Any]:
    """Canonical values of one row mapping (convenience; bulk paths use :class:`_Codec`)."""
    return _codec(reg, m.keys(), mask_ids).canon(tuple(m.values()))


def _scope_where(reg: Register, sc: Scope) -> Any:
    def where(t: Table) -> Any:
        if reg.key == "incident_steps":
            inc = TABLES["incidents"]
            return t.c.incident_id.in_(select(inc.c.id).where(inc.c.grid_id.in_(sc.grid_ids)))
        if reg.key in SCOPED_BY_AREA:
            return t.c[SCOPED_BY_AREA[reg.key]].in_(sc.area_ids)
        return t.c.grid_id.in_(sc.grid_ids)

    return where


def _display_row(reg: Register, m: Any, canon: list[Any], version: int | None) -> list[Any]:
    return _codec(reg, m.keys(), False).cells(tuple(m.values()), canon, version)


def _dumps(vals: list[Any]) -> str:
    return json.dumps(vals, ensure_ascii=False, separators=(",", ":"))


# --- checkout -----------------------------------------------------------------------------------


def _areas_rows(session: Session, sc: Scope) -> list[tuple[str, str, int, str]]:
    ids = [int(x) for x in sc.area.path.strip("/").split("/") if x]
    q = select(Area).where(or_(Area.id.in_(ids), Area.id.in_(sc.area_ids))).order_by(Area.depth, Area.code)
    by_id: dict[int, Area] = {}
    out = []
    for a in session.scalars(q):
        by_id[a.id] = a
    for a in sorted(by_id.values(), key=lambda a: (a.depth, a.code)):
        parent = by_id.get(a.parent_id) if a.parent_id else None
        vals = [a.code, a.name, a.level, parent.code if parent else None, a.center_lon, a.center_lat,
                a.household_limit, a.boundary.hex() if a.boundary else None]
        out.append(("_areas", a.uuid, a.version, _dumps(vals)))
    return out


def _sheet_for(reg: Register) -> SheetRows:
    headers = reg.all_headers()
    kinds, hidden, locked, widths = ["text"], [True], [True], [38]
    lists: dict[int, list[str]] = {}
    if reg.versioned:
        kinds.append("int"), hidden.append(True), locked.append(True), widths.append(6)
    for col in reg.cols:
        kinds.append(col.kind if col.kind in ("int", "float", "date", "datetime") else "text")
        hidden.append(col.hidden)
        locked.append(col.hidden or col.readonly or col.kind == "info")
        widths.append(col.width)
        if col.kind == "enum" and col.enum is not None and not col.readonly:
            lists[len(kinds) - 1] = [enum_label(col.enum, m) for m in col.enum]
        elif col.kind == "choice" and col.choices:
            lists[len(kinds) - 1] = list(col.choices.values())
    kinds.append("text"), hidden.append(False), locked.append(False), widths.append(10)
    lists[len(kinds) - 1] = ["是"]
    return SheetRows(reg.sheet, headers, [], kinds, hidden, locked, widths, lists)


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


def checkout(session: Session, actor: Actor, *, out: str | Path, area_code: str | None = None,
             grid_codes: list[str] | None = None) -> CheckoutResult:
    """Write the exchange workbook of an area and record the package (one unit of work)."""
    t0 = time.perf_counter()
    sc = _scope(session, area_code=area_code, grid_codes=grid_codes)
    require(actor, Perm.EXPORT, sc.area)
    if sc.grid_codes:
        for g in session.scalars(select(Area).where(Area.id.in_(sc.grid_ids))):
            require(actor, Perm.EXPORT, g)
    package_id = str(uuidlib.uuid4())
    mask_ids = not actor.can(Perm.VIEW_ID_NUMBER)
    now = utcnow().replace(microsecond=0)
    meta: dict[str, Any] = {
        "format": FORMAT, "package_id": package_id, "area_code": sc.area.code, "area_name": sc.area.name,
        "area_level": sc.area.level, "grid_codes": sc.grid_codes or [], "source_database_id": database_id(session),
        "exported_at": now.isoformat(sep=" "), "exported_by": actor.username, "ids_masked": mask_ids,
        "columns": {r.key: r.fields for r in REGISTERS},
    }
    originals: list[tuple[str, str, int, str]] = _areas_rows(session, sc)
    usernames: set[str] = set()
    counts: dict[str, int] = {}
    sheets: list[SheetRows] = [SheetRows(HELP_SHEET, ["说明"], HELP_TEXT, widths=[120], protect=True)]
    for reg in REGISTERS:
        sh = _sheet_for(reg)
        user_fields = [c.field for c in reg.cols if c.kind == "user"]

        def gen(reg: Register = reg, user_fields: list[str] = user_fields) -> Iterator[list[Any]]:
            n = 0
            q = _register_select(reg, _scope_where(reg, sc)).execution_options(yield_per=5000)
            result = session.execute(q)
            keys = list(result.keys())
            codec = _codec(reg, keys, mask_ids)
            upos = [keys.index(f"m__{f}") for f in user_fields]
            iu, iv = codec.i_uuid, codec.i_ver
            add = originals.append
            dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
            for row in result:
                canon = codec.canon(row)
                ver = row[iv] if iv is not None else 0
                add((reg.key, row[iu], ver, dumps(canon)))
                for i in upos:
                    if row[i]:
                        usernames.add(row[i])
                n += 1
                yield codec.cells(row, canon, ver if reg.versioned else None)
            counts[reg.key] = n

        sh.rows = gen()
        sheets.append(sh)

    state: dict[str, Any] = {}

    def orig_gen() -> Iterator[list[Any]]:
        for u in session.execute(select(USERS.c.uuid, USERS.c.username, USERS.c.display_name, USERS.c.role)
                                 .where(USERS.c.username.in_(sorted(usernames)))):
            originals.append(("_users", u.uuid, 0, _dumps([u.username, u.display_name, u.role])))
        meta["counts"] = dict(counts)
        state["checksum"] = checksum(meta, originals)
        for r in originals:
            yield list(r)

    def meta_gen() -> Iterator[list[Any]]:
        full = {**meta, "checksum": state["checksum"], "kind": "checkout"}
        for k, v in full.items():
            yield [k, META_LABELS.get(k, k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)]

    sheets.append(SheetRows(ORIG_SHEET, ["表", "UUID", "版本", "值"], orig_gen(), kinds=["text", "text", "int", "text"],
                            state="veryHidden"))
    sheets.append(SheetRows(META_SHEET, ["键", "项目", "值"], meta_gen(), widths=[22, 20, 60]))
    out = Path(out)
    write_workbook(out, sheets)
    pkg = ExchangePackage(package_id=package_id, area_id=sc.area.id, created_by=actor.user_id, created_at=now,
                          file_name=out.name, checksum=state["checksum"],
                          meta={"grid_codes": sc.grid_codes or [], "counts": counts, "ids_masked": mask_ids,
                                "exported_at": meta["exported_at"], "area_code": sc.area.code})
    session.add(pkg)
    session.flush()
    audit.record(session, actor, "export", table="exchange_packages", row_id=pkg.id,
                 note=f"离线交换包 {package_id}（{sc.area.name}）→ {out.name}")
    return CheckoutResult(package_id, str(out), sc.area.code, sc.area.name, counts, state["checksum"],
                          round(time.perf_counter() - t0, 2))


# --- reading a workbook -----------------------------------------------------------------------


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


def _refuse(reason: str, zh: str, en: str) -> ExchangeRefused:
    return ExchangeRefused(reason, zh, en=en)


def read_package(path: str | Path, *, data: bool = True) -> Package:
    """Read and verify a package: metadata, checksum, keys; with ``data`` also every register row,
    cleaned. Structural problems raise :class:`ExchangeRefused`; cell problems are collected."""
    path = Path(path)
    try:
        book = Book(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one refusal
        raise _refuse("unreadable", f"无法读取文件 {path.name}：{exc}", f"Cannot read {path.name}: {exc}") from None
    try:
        if META_SHEET not in book.sheet_names or ORIG_SHEET not in book.sheet_names:
            raise _refuse("not_package", f"{path.name} 不是 gridman 离线交换工作簿（缺少元数据）",
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
                    raise _refuse("tampered", f"元数据“{k}”已被改动", f"Metadata {k} was altered") from None
            meta[k] = v
        if meta.get("format") != FORMAT:
            raise _refuse("not_package", f"{path.name} 不是本版本的离线交换工作簿", f"{path.name}: unknown exchange format")
        raw: list[tuple[str, str, int, str]] = []
        originals: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)
        for r in book.rows(ORIG_SHEET)[1:]:
            if not r or r[0] in ("", None):
                continue
            try:
                reg, u, ver, vals = str(r[0]), str(r[1]), int(float(r[2] or 0)), str(r[3])
                raw.append((reg, u, ver, vals))
                originals[reg][u] = (ver, vals)
            except (ValueError, IndexError, TypeError):
                raise _refuse("tampered", "隐藏的原始值表已被改动", "The hidden originals sheet was altered") from None
        stated = meta.get("checksum")
        cmeta = {k: meta.get(k) for k in CHECKSUMMED_META}
        if not stated or checksum(cmeta, raw) != stated:
            raise _refuse("tampered", f"{path.name} 的元数据或校验值与内容不符，文件已被改动，拒绝导入",
                          f"{path.name}: metadata or checksum do not match the content; the file was altered")
        pkg = Package(meta, dict(originals), raw, {}, [], path)
        if data:
            for reg in REGISTERS:
                pkg.rows[reg.key] = _read_sheet(book, reg, pkg)
        return pkg
    finally:
        book.close()


def _read_sheet(book: Book, reg: Register, pkg: Package) -> list[WbRow]:
    orig = pkg.originals.get(reg.key, {})
    if reg.sheet not in book.sheet_names:
        if orig:
            raise _refuse("keys_gone", f"工作表“{reg.sheet}”被删除，无法比对", f"Sheet {reg.sheet} was removed")
        return []
    rows = book.rows(reg.sheet)
    if not rows:
        return []
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    idx = {h: i for i, h in enumerate(header) if h}
    if UUID_HEADER not in idx or (reg.versioned and VERSION_HEADER not in idx):
        raise _refuse("keys_gone", f"工作表“{reg.sheet}”的 UUID/版本列被删除，无法识别记录，拒绝导入",
                      f"Sheet {reg.sheet}: the UUID/version key columns are gone; rows cannot be identified")
    missing = [c.header for c in reg.cols if c.header not in idx and c.kind != "info"]
    for h in missing:
        pkg.issues.append(CellIssue(reg.sheet, 1, h, "缺少此列"))
    iu = idx[UUID_HEADER]
    iv = idx.get(VERSION_HEADER)
    idel = idx.get(DELETE_HEADER)
    plan = [(c, idx[c.header], cleaner_for(c)) for c in reg.cols if c.header in idx and c.kind != "info"]
    out: list[WbRow] = []
    keyless: list[int] = []
    forged: list[int] = []
    width = len(header)
    for n, r in enumerate(rows[1:], start=2):
        if len(r) < width:
            r = list(r) + [""] * (width - len(r))
        u = r[iu]
        u = str(u).strip() if u not in (None, "") else ""
        ver = r[iv] if iv is not None else ""
        vals: dict[str, Any] = {}
        keys: dict[str, Any] = {}
        empty = True
        for col, i, clean in plan:
            raw = r[i]
            if empty and raw is not None and raw != "":
                empty = False
            try:
                v = clean(raw)
            except CellError as exc:
                pkg.issues.append(CellIssue(reg.sheet, n, col.header, str(exc)))
                v = None
            if col.kind == "refkey":
                keys[col.field] = v
            else:
                vals[col.field] = v
        if empty and not u:
            continue
        if not u:
            if ver not in (None, ""):
                keyless.append(n)
                continue
            u = str(uuidlib.uuid4())
            new = True
        else:
            new = u not in orig
            if reg.versioned and not new:
                try:
                    if int(float(ver)) != orig[u][0]:
                        forged.append(n)
                except (TypeError, ValueError):
                    forged.append(n)
            elif reg.versioned and new and ver not in (None, ""):
                forged.append(n)
        deleted = idel is not None and str(r[idel]).strip() in ("是", "Y", "y", "yes", "删除", "1")
        out.append(WbRow(n, u, new, deleted, vals, keys))
    if keyless:
        raise _refuse("keys_gone", f"工作表“{reg.sheet}”第 {', '.join(map(str, keyless[:10]))} 行的 UUID 被清除，无法识别记录，拒绝导入",
                      f"Sheet {reg.sheet}: rows {keyless[:10]} lost their UUID; rows cannot be identified")
    if forged:
        raise _refuse("tampered", f"工作表“{reg.sheet}”第 {', '.join(map(str, forged[:10]))} 行的 UUID 或版本号被改动，拒绝导入",
                      f"Sheet {reg.sheet}: rows {forged[:10]} have altered UUID/version keys")
    present = {w.uuid for w in out if not w.new}
    missing_n = len(set(orig) - present)
    new_n = sum(1 for w in out if w.new)
    if orig and missing_n > len(orig) / 2 and new_n >= missing_n / 2:
        raise _refuse("keys_gone", f"工作表“{reg.sheet}”中 {missing_n} 条原有记录失去了标识（UUID），拒绝导入",
                      f"Sheet {reg.sheet}: {missing_n} exported rows lost their keys")
    return out


# --- planning a check-in ------------------------------------------------------------------------


class _DbRow:
    """A database row as loaded for a check-in; canonical values and the raw column dict are
    only built for the few rows that need them (changed, conflicting, deleted)."""

    __slots__ = ("id", "version", "_row", "_codec", "_canon")

    def __init__(self, id_: int, version: int, row: Any, codec: _Codec) -> None:
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


@dataclass
class _Plan:
    inserts: dict[str, list[WbRow]] = field(default_factory=lambda: defaultdict(list))
    updates: dict[str, list[tuple[WbRow, list[str]]]] = field(default_factory=lambda: defaultdict(list))
    deletes: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    issues: list[CellIssue] = field(default_factory=list)


class _Ctx:
    """Everything the planner and the writer look up: database rows by uuid, areas by code, users."""

    def __init__(self, session: Session, pkg: Package, sc: Scope) -> None:
        self.s = session
        self.pkg = pkg
        self.sc = sc
        self.mask = bool(pkg.meta.get("ids_masked"))
        self.db: dict[str, dict[str, _DbRow]] = {}
        self.ids: dict[str, dict[str, int]] = defaultdict(dict)  # register -> uuid -> id (db and inserted)
        self.natkey_db: dict[str, dict[str, str]] = defaultdict(dict)  # register -> natkey -> uuid
        self.uuid_natkey_db: dict[str, dict[str, Any]] = defaultdict(dict)
        self.area_ids: dict[str, int] = {}
        self.user_ids: dict[str, int] = {}
        self.extras: dict[int, dict[str, Any]] = {}

    def load(self, want_by_reg: dict[str, set[str]]) -> None:
        """Database rows of the given uuids (those the plan must look at), areas, users."""
        s = self.s
        for reg in REGISTERS:
            want = want_by_reg.get(reg.key, set())
            rows: dict[str, _DbRow] = {}
            ids = self.ids[reg.key]
            nkmap = self.uuid_natkey_db[reg.key]

            def take(q: Any, reg: Register = reg, rows: dict[str, _DbRow] = rows, ids: dict[str, int] = ids,
                     nkmap: dict[str, Any] = nkmap, want: set[str] = want) -> None:
                result = s.execute(q)
                keys = list(result.keys())
                codec = _codec(reg, keys, self.mask)
                iu, ii, iv = codec.i_uuid, codec.i_id, codec.i_ver
                ink = keys.index(reg.natkey) if reg.natkey else None
                for row in result:
                    u = row[iu]
                    if u not in want:
                        continue
                    rows[u] = _DbRow(row[ii], row[iv] if iv is not None else 0, row, codec)
                    ids[u] = row[ii]
                    if ink is not None:
                        nkmap[u] = row[ink]

            if len(want) > 20_000:  # most of the area: one pass over it, then what moved out since
                take(_register_select(reg, _scope_where(reg, self.sc)).execution_options(yield_per=5000))
            for chunk in iter_chunks(sorted(want - rows.keys())):
                take(_register_select(reg, lambda t, chunk=chunk: t.c.uuid.in_(chunk)))
            self.db[reg.key] = rows
        for a in s.execute(select(AREAS.c.id, AREAS.c.code).where(AREAS.c.id.in_(self.sc.area_ids))):
            self.area_ids[a.code] = a.id
        names = set()
        for reg in REGISTERS:
            ufs = [c.field for c in reg.cols if c.kind == "user"]
            for w in self.pkg.rows.get(reg.key, []):
                for f in ufs:
                    if w.vals.get(f):
                        names.add(w.vals[f])
        for chunk in iter_chunks(sorted(names)):
            for u in s.execute(select(USERS.c.id, USERS.c.username).where(USERS.c.username.in_(chunk))):
                self.user_ids[u.username] = u.id

    def lookup_refs(self, reg_key: str, uuids: set[str], natkeys: set[str]) -> None:
        """Database rows of ``reg_key`` referred to from the workbook but not part of it."""
        t = TABLES[reg_key]
        nk = BY_REG[reg_key].natkey
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


def _resolve_refs(ctx: _Ctx, plan: _Plan, *, strict: bool = True) -> None:
    """Turn natural keys typed in visible columns (户号, 楼栋编码) into row uuids and check that
    every reference and area exists (in the workbook or the database) and lies in the package."""
    pkg = ctx.pkg
    live: dict[str, dict[str, WbRow]] = {k: {w.uuid: w for w in rows if not w.deleted} for k, rows in pkg.rows.items()}
    nk_wb: dict[str, dict[Any, str]] = {}
    for reg in REGISTERS:
        if reg.natkey:
            nk_wb[reg.key] = {w.vals.get(reg.natkey): w.uuid for w in live[reg.key].values()
                              if w.vals.get(reg.natkey) is not None}
    # batch database look-ups
    want_u: dict[str, set[str]] = defaultdict(set)
    want_k: dict[str, set[str]] = defaultdict(set)
    for reg in REGISTERS:
        for col in reg.cols:
            if col.kind not in ("ref", "refkey"):
                continue
            for w in pkg.rows[reg.key]:
                if w.same:
                    continue
                if col.kind == "ref" and w.vals.get(col.field) and w.vals[col.field] not in live[col.ref]:
                    want_u[col.ref].add(w.vals[col.field])
                if col.kind == "refkey" and w.keys.get(col.field) is not None \
                        and w.keys[col.field] not in nk_wb.get(col.ref, {}):
                    want_k[col.ref].add(w.keys[col.field])
    for k in set(want_u) | set(want_k):
        ctx.lookup_refs(k, want_u[k], want_k[k])
    grid_codes = set(ctx.sc._codes)
    all_codes = set(ctx.sc._all_codes)
    for reg in REGISTERS:
        refkeyed = {c.field for c in reg.cols if c.kind == "refkey"}
        for w in pkg.rows[reg.key]:
            if w.deleted or w.same:
                continue
            for col in reg.cols:
                f = col.field
                if col.kind == "ref":
                    u = w.vals.get(f)
                    if f in refkeyed:
                        n = w.keys.get(f)
                        cur = live[col.ref][u].vals.get(BY_REG[col.ref].natkey) if u in live[col.ref] else \
                            ctx.uuid_natkey_db[col.ref].get(u) if u else None
                        if u and cur == n:
                            pass
                        elif n is None:
                            # an empty key detaches, except from a row this workbook does not hold
                            # (outside the package, or deleted offline: deletions are only reported)
                            u = u if u and u not in live[col.ref] and u in ctx.ids[col.ref] else None
                        else:
                            u = nk_wb.get(col.ref, {}).get(n) or ctx.natkey_db[col.ref].get(n)
                            if u is None and strict:
                                hdr = next(c.header for c in reg.cols if c.field == f and c.kind == "refkey")
                                plan.issues.append(CellIssue(reg.sheet, w.row, hdr, f"“{n}”不存在"))
                        w.vals[f] = u
                    elif u and u not in live[col.ref] and u not in ctx.ids[col.ref]:
                        if not strict:
                            w.vals[f] = None  # refers outside the package: nothing to point at locally
                            continue
                        plan.issues.append(CellIssue(reg.sheet, w.row, col.header, f"引用的记录 {u} 不存在"))
                elif col.kind == "area":
                    v = w.vals.get(f)
                    allowed = all_codes if f == "area_id" else grid_codes
                    if v is not None and v not in allowed:
                        plan.issues.append(CellIssue(reg.sheet, w.row, col.header,
                                                     f"{v} 不是本交换包（{ctx.pkg.meta.get('area_name')}）内的"
                                                     f"{'区划' if f == 'area_id' else '网格'}"))
                if col.required and col.kind not in ("refkey", "info") and w.vals.get(f) is None \
                        and not col.readonly and not (col.kind == "ref" and f in refkeyed):
                    plan.issues.append(CellIssue(reg.sheet, w.row, col.header, "不能为空"))


def _label(reg: Register, vals: dict[str, Any]) -> str:
    for f in ("name", "household_no", "title", "code"):
        if vals.get(f):
            return str(vals[f])
    return reg.sheet


def _classify(pkg: Package) -> dict[str, set[str]]:
    """Mark the rows that are provably as exported — same values (compared as the JSON text the
    package keeps) and natural keys that still name the referenced workbook row — and return, per
    register, the uuids the plan must look up in the database (everything else)."""
    live = {k: {w.uuid: w for w in rows if not w.deleted} for k, rows in pkg.rows.items()}
    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    want: dict[str, set[str]] = {}
    for reg in REGISTERS:
        orig = pkg.originals.get(reg.key, {})
        same_cols = pkg.meta["columns"][reg.key] == reg.fields
        refkeys = [(c.field, c.ref, BY_REG[c.ref].natkey) for c in reg.cols if c.kind == "refkey"]
        need: set[str] = set()
        for w in pkg.rows[reg.key]:
            if not w.new and not w.deleted and same_cols and enc(list(w.vals.values())) == orig[w.uuid][1]:
                ok = True
                for f, target, nk in refkeys:
                    u, n = w.vals.get(f), w.keys.get(f)
                    t = live[target].get(u) if u else None
                    if (u is None and n is not None) or (u is not None and (t is None or t.vals.get(nk) != n)):
                        ok = False
                        break
                if ok:
                    w.same = True
                    continue
            need.add(w.uuid)
        seen = {w.uuid for w in pkg.rows[reg.key] if not w.deleted}
        need |= set(orig) - seen
        want[reg.key] = need
    return want


def _plan(ctx: _Ctx, *, resolve: str, choices: dict[str, dict[str, str]] | None, confirm_deletes: bool) -> _Plan:
    plan = _Plan()
    pkg = ctx.pkg
    plan.issues.extend(pkg.issues)
    _resolve_refs(ctx, plan)
    for reg in REGISTERS:
        c = plan.counts[reg.key] = defaultdict(int)
        orig = pkg.originals.get(reg.key, {})
        db = ctx.db[reg.key]
        fields = reg.fields
        fcols = reg.field_cols
        writable = [f for f in fields if not fcols[f].readonly]
        same_cols = pkg.meta["columns"][reg.key] == fields
        seen: set[str] = set()
        for w in pkg.rows[reg.key]:
            seen.add(w.uuid)
            if w.same:
                c["unchanged"] += 1
                continue
            if w.new:
                if w.uuid in db or w.uuid in ctx.ids[reg.key] and w.uuid not in orig:
                    plan.issues.append(CellIssue(reg.sheet, w.row, UUID_HEADER, "该 UUID 属于本交换包以外的记录"))
                    continue
                if w.deleted:
                    continue
                if reg.key == "incident_steps":
                    c["appended"] += 1
                else:
                    c["inserted"] += 1
                plan.inserts[reg.key].append(w)
                continue
            over, ovals = orig[w.uuid][0], pkg.orig(reg.key, w.uuid)
            if w.deleted:
                seen.discard(w.uuid)
                continue
            if same_cols and list(w.vals.values()) == ovals:
                c["unchanged"] += 1
                continue
            o = dict(zip(pkg.meta["columns"][reg.key], ovals, strict=False))
            d = db.get(w.uuid)
            off = [f for f in writable if w.vals.get(f) != o.get(f)]
            if reg.key == "incident_steps":
                if off:
                    plan.notices.append(f"{reg.sheet} 第 {w.row} 行：已有处置记录不可改写，离线修改已忽略")
                c["unchanged"] += 1
                continue
            if not off:
                c["unchanged"] += 1
                continue
            if d is None:
                plan.notices.append(f"{reg.sheet} 第 {w.row} 行（{_label(reg, w.vals)}）已在中心删除，离线修改未导入")
                c["central_deleted"] += 1
                continue
            cen = [f for f in fields if d.canon.get(f) != o.get(f)] if d.version != over else []
            if not cen:  # unchanged centrally (or only columns the package does not carry)
                plan.updates[reg.key].append((w, off))
                c["updated"] += 1
                continue
            if all(w.vals.get(f) == d.canon.get(f) for f in off):
                c["unchanged"] += 1  # the same change was made on both sides
                continue
            diffs = [FieldDiff(f, fcols[f].header, w.vals.get(f), d.canon.get(f), o.get(f),
                               f in off and f in cen and w.vals.get(f) != d.canon.get(f))
                     for f in fields if f in off or f in cen]
            conf = Conflict(reg.key, reg.sheet, w.row, w.uuid, _label(reg, d.canon), diffs, "keep-central")
            chosen = (choices or {}).get(w.uuid)
            take: list[str] = []
            if chosen:
                take = [f for f in off if chosen.get(f) == "offline"]
                conf.resolution = "per-field"
            elif resolve == "keep-offline":
                take = off
                conf.resolution = "keep-offline"
            plan.conflicts.append(conf)
            c["conflicts"] += 1
            if take:
                plan.updates[reg.key].append((w, take))
        for u in orig:
            if u in seen:
                continue
            d = db.get(u)
            over, ovals = orig[u][0], pkg.orig(reg.key, u)
            label = _label(reg, dict(zip(pkg.meta["columns"][reg.key], ovals, strict=False)))
            c["deleted_offline"] += 1
            entry = {"register": reg.key, "sheet": reg.sheet, "uuid": u, "label": label, "action": "reported"}
            if d is None:
                entry["action"] = "already_deleted_centrally"
            elif confirm_deletes and reg.key in DELETABLE:
                if d.version != over:
                    entry["action"] = "kept_changed_centrally"
                else:
                    plan.deletes[reg.key].append((u, d.id))
                    entry["action"] = "deleted"
            elif reg.key not in DELETABLE:
                entry["action"] = "kept_record"
            plan.deletions.append(entry)
    return plan


# --- validation of the rows to write --------------------------------------------------------------


def _validate(ctx: _Ctx, plan: _Plan) -> None:
    from gridman.core.services.people import EDITABLE_FIELDS, validate_resident_fields

    pkg = ctx.pkg
    live = {k: [w for w in rows if not w.deleted] for k, rows in pkg.rows.items()}
    touched: dict[str, list[WbRow]] = {k: plan.inserts[k] + [w for w, _ in plan.updates[k]] for k in TABLES}
    # residents: the same rules as registering one (citizen ID, sex and birth date agree, enumerations)
    res_orig = pkg.originals.get("residents", {})
    cols = pkg.meta["columns"]["residents"]
    for w in touched["residents"]:
        fields = {k: to_db(BY_REG["residents"].field_cols[k], v) for k, v in w.vals.items() if k in EDITABLE_FIELDS}
        if w.uuid in res_orig:
            o = dict(zip(cols, pkg.orig("residents", w.uuid), strict=False))
            if ctx.mask and w.vals.get("citizen_id") == o.get("citizen_id"):
                fields.pop("citizen_id", None)
        if fields.get("citizen_id") and "*" in str(fields["citizen_id"]):
            plan.issues.append(CellIssue("实有人口", w.row, "公民身份号码", "身份证号被脱敏，不能作为新值"))
            continue
        try:
            out = validate_resident_fields(fields)
        except ValidationError as exc:
            hdr = next((c.header for c in BY_REG["residents"].cols if c.field == exc.field), exc.field or "")
            plan.issues.append(CellIssue("实有人口", w.row, hdr, exc.message))
            continue
        if w.new:
            for k in ("sex", "birth_date"):
                if w.vals.get(k) is None and out.get(k) is not None:
                    w.vals[k] = canon_db(BY_REG["residents"].field_cols[k], out[k])
    # unique natural keys: within the workbook and against the database
    for key, f, what in (("households", "household_no", "户号"), ("residents", "citizen_id", "身份证号"),
                         ("buildings", "code", "楼栋编码")):
        reg = BY_REG[key]
        hdr = reg.field_cols[f].header
        by_val: dict[Any, WbRow] = {}
        for w in live[key]:
            v = w.vals.get(f)
            if v is None or (ctx.mask and "*" in str(v)):
                continue
            if v in by_val:
                plan.issues.append(CellIssue(reg.sheet, w.row, hdr, f"{what} {idcard.mask(v) if f == 'citizen_id' else v}"
                                             f" 与第 {by_val[v].row} 行重复"))
            by_val[v] = w
        check = {w.vals[f]: w for w in touched[key] if w.vals.get(f) is not None and not (ctx.mask and "*" in str(w.vals[f]))}
        t = TABLES[key]
        wb_uuids = {w.uuid for w in pkg.rows[key]}
        for chunk in iter_chunks(sorted(check)):
            for r in ctx.s.execute(select(t.c.uuid, t.c[f]).where(t.c[f].in_(chunk))):
                w = check[r[1]]
                if r.uuid != w.uuid and r.uuid not in wb_uuids:
                    shown = idcard.mask(r[1]) if f == "citizen_id" else r[1]
                    plan.issues.append(CellIssue(reg.sheet, w.row, hdr, f"{what} {shown} 已被其他记录使用"))
    # steps must name an incident, new incidents of this workbook included
    for w in plan.inserts["incident_steps"]:
        if not w.vals.get("incident_id"):
            plan.issues.append(CellIssue("处置记录", w.row, "事件标识", "不能为空"))


# --- writing -------------------------------------------------------------------------------------


def _db_values(ctx: _Ctx, reg: Register, vals: dict[str, Any], fields: Iterable[str], notes: list[str],
               row: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fcols = reg.field_cols
    for f in fields:
        col = fcols[f]
        v = vals.get(f)
        if col.kind == "area":
            out[f] = ctx.area_ids.get(v) if v is not None else None
        elif col.kind == "ref":
            out[f] = ctx.ids[col.ref].get(v) if v is not None else None
        elif col.kind == "user":
            uid = ctx.user_ids.get(v) if v is not None else None
            if v is not None and uid is None:
                notes.append(f"{reg.sheet} 第 {row} 行：账号 {v} 在中心库不存在，已留空")
            out[f] = uid
        else:
            out[f] = to_db(col, v)
    return out


def _incident_extras(ctx: _Ctx, grid_id: int | None) -> dict[str, Any]:
    """The community and street an incident's grid lies in (copied onto the incident for queues)."""
    if grid_id is None:
        return {}
    hit = ctx.extras.get(grid_id)
    if hit is None:
        path = ctx.s.scalar(select(AREAS.c.path).where(AREAS.c.id == grid_id)) or ""
        ids = [int(x) for x in path.strip("/").split("/") if x]
        lv = dict(ctx.s.execute(select(AREAS.c.id, AREAS.c.level).where(AREAS.c.id.in_(ids))).all())
        hit = ctx.extras[grid_id] = {"community_id": next((i for i in ids if lv.get(i) == "community"), None),
                                     "street_id": next((i for i in ids if lv.get(i) == "street"), None)}
    return dict(hit)


def apply_timeline(session: Session, actor: Actor, incident_ids: Iterable[int], *, batch_id: int | None = None,
                   note: str | None = None) -> list[tuple[int, str, dict[str, list[Any]]]]:
    """Set each incident's level and status to its latest step (by time, then seq).

    The one place the exchange touches the mediation state: steps appended offline and centrally
    stay in the timeline; the case is where its latest step put it. Returns audit tuples.
    """
    ids = sorted(set(incident_ids))
    if not ids:
        return []
    st = IncidentStep.__table__
    it = Incident.__table__
    latest: dict[int, Any] = {}
    for chunk in iter_chunks(ids):
        for r in session.execute(select(st.c.incident_id, st.c.at, st.c.seq, st.c.to_level, st.c.to_status,
                                        st.c.from_level).where(st.c.incident_id.in_(chunk))
                                 .order_by(st.c.incident_id, st.c.at, st.c.seq)):
            latest[r.incident_id] = r
    cur = {}
    for chunk in iter_chunks(ids):
        for r in session.execute(select(it.c.id, it.c.uuid, it.c.level, it.c.status, it.c.version,
                                        it.c.level_entered_at).where(it.c.id.in_(chunk))):
            cur[r.id] = r
    params, audits = [], []
    now = utcnow()
    for iid, s in latest.items():
        c = cur.get(iid)
        if c is None:
            continue
        lv, stt = s.to_level or c.level, s.to_status or c.status
        if (lv, stt) == (c.level, c.status):
            continue
        entered = s.at if lv != c.level else c.level_entered_at
        params.append({"_id": iid, "_v": c.version, "v_level": lv, "v_status": stt, "v_entered": entered, "_now": now})
        ch: dict[str, list[Any]] = {"version": [c.version, c.version + 1]}
        if lv != c.level:
            ch["level"] = [c.level, lv]
            ch["level_entered_at"] = [audit.jsonable(c.level_entered_at), audit.jsonable(entered)]
        if stt != c.status:
            ch["status"] = [c.status, stt]
        audits.append((iid, c.uuid, ch))
    if params:
        session.execute(update(it).where(it.c.id == bindparam("_id"), it.c.version == bindparam("_v")).values(
            level=bindparam("v_level"), status=bindparam("v_status"), level_entered_at=bindparam("v_entered"),
            version=it.c.version + 1, updated_at=bindparam("_now")), params)
        rows = [{"at": now, "user_id": actor.user_id, "username": actor.username, "action": "update",
                 "table_name": "incidents", "row_id": i, "row_uuid": u, "changes": ch, "batch_id": batch_id,
                 "note": note} for i, u, ch in audits]
        session.execute(insert(AuditEntry), rows)
    return audits


def _new_row(ctx: _Ctx, reg: Register, w: WbRow, notes: list[str], now: datetime, *, version: int) -> dict[str, Any]:
    """The column values of a workbook row about to be inserted, with the defaults a new row needs."""
    v = _db_values(ctx, reg, w.vals, reg.fields, notes, w.row)
    v["uuid"] = w.uuid
    if reg.versioned:
        v["version"] = version
        v["created_at"] = now
        v["updated_at"] = now
    if reg.key == "incidents":
        v.update(_incident_extras(ctx, v.get("grid_id")))
        v["level"] = v.get("level") or "grid"
        v["status"] = v.get("status") or "reported"
        v["level_entered_at"] = v.get("reported_at") or now
    if reg.key == "households":
        v["kind"] = v.get("kind") or "family"
    if reg.key == "residents":
        v["status"] = v.get("status") or "active"
    v.pop("incident_title", None)
    return v


def _write_new(ctx: _Ctx, reg: Register, params: list[dict[str, Any]]) -> None:
    """Insert the rows and remember their new ids by uuid."""
    t = TABLES[reg.key]
    for chunk in iter_chunks(params, 2000):
        ctx.s.execute(insert(t), chunk)
    for chunk in iter_chunks([p["uuid"] for p in params]):
        for r in ctx.s.execute(select(t.c.id, t.c.uuid).where(t.c.uuid.in_(chunk))):
            ctx.ids[reg.key][r.uuid] = r.id


def _insert_rows(ctx: _Ctx, reg: Register, rows: list[WbRow], actor: Actor, batch_id: int | None, note: str,
                 notes: list[str], now: datetime, keep_version: bool = False) -> None:
    if not rows:
        return
    params = [_new_row(ctx, reg, w, notes, now, version=1) for w in rows]
    if reg.key == "incident_steps":
        _number_steps(ctx, params)
    _write_new(ctx, reg, params)
    if batch_id is not None or note:
        au = []
        for p in params:
            ch = {k: [None, val] for k, val in p.items() if val is not None and k not in ("created_at", "updated_at")}
            au.append((ctx.ids[reg.key][p["uuid"]], p["uuid"], {k: tuple(x) for k, x in ch.items()}))
        _audit(ctx.s, actor, "insert", reg.key, au, batch_id, note)


def _audit(s: Session, actor: Actor, action: str, table: str, rows: list[tuple[int, str, dict[str, Any]]],
           batch_id: int | None, note: str | None) -> None:
    for chunk in iter_chunks(rows, 5000):
        s.execute(insert(AuditEntry), audit.bulk_rows(actor, action, table, chunk, batch_id=batch_id, note=note))


def _number_steps(ctx: _Ctx, params: list[dict[str, Any]]) -> None:
    """New steps go after every step the incident already has, in time order among themselves."""
    st = IncidentStep.__table__
    inc_ids = sorted({p["incident_id"] for p in params if p.get("incident_id")})
    top: dict[int, int] = {}
    for chunk in iter_chunks(inc_ids):
        for r in ctx.s.execute(select(st.c.incident_id, func.max(st.c.seq)).where(st.c.incident_id.in_(chunk))
                               .group_by(st.c.incident_id)):
            top[r[0]] = r[1] or 0
    params.sort(key=lambda p: (p["incident_id"] or 0, p["at"] or datetime.min))
    for p in params:
        n = top.get(p["incident_id"], 0) + 1
        top[p["incident_id"]] = n
        p["seq"] = n
        p["at"] = p.get("at") or utcnow()


def _update_rows(ctx: _Ctx, reg: Register, items: list[tuple[WbRow, list[str]]], actor: Actor,
                 batch_id: int | None, note: str, notes: list[str], now: datetime) -> None:
    if not items:
        return
    t = TABLES[reg.key]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    au = []
    db = ctx.db[reg.key]
    for w, fs in items:
        d = db[w.uuid]
        vals = _db_values(ctx, reg, w.vals, fs, notes, w.row)
        extra: dict[str, Any] = {}
        if reg.key == "incidents" and "grid_id" in vals:
            extra = _incident_extras(ctx, vals["grid_id"])
        vals.update(extra)
        key = tuple(sorted(vals))
        groups[key].append({"_id": d.id, "_v": d.version, "_now": now, **{f"v_{k}": v for k, v in vals.items()}})
        ch: dict[str, Any] = {k: (audit.jsonable(d.raw.get(k)), audit.jsonable(v)) for k, v in vals.items()}
        ch["version"] = (d.version, d.version + 1)
        au.append((d.id, w.uuid, ch))
    for key, params in groups.items():
        stmt = update(t).where(t.c.id == bindparam("_id"), t.c.version == bindparam("_v")).values(
            {**{k: bindparam(f"v_{k}") for k in key}, "version": t.c.version + 1, "updated_at": bindparam("_now")})
        for chunk in iter_chunks(params, 2000):
            res = ctx.s.execute(stmt, chunk)
            if res.rowcount is not None and 0 <= res.rowcount < len(chunk):
                raise ExchangeRefused("race", "导入过程中有人修改了同一记录，已全部撤回，请重试",
                                      en="Someone changed the same rows during the check-in; nothing was written, retry")
    _audit(ctx.s, actor, "update", reg.key, au, batch_id, note)


def _referenced(s: Session, table: Table, ids: list[int], exclude: dict[str, set[int]]) -> set[int]:
    """Ids of ``table`` still referred to by other rows (foreign keys without ON DELETE CASCADE)."""
    out: set[int] = set()
    for other in Base.metadata.sorted_tables:
        for fk in other.foreign_keys:
            if fk.column.table is not table or (fk.ondelete or "").upper() == "CASCADE":
                continue
            col = fk.parent
            for chunk in iter_chunks(ids):
                q = select(col).where(col.in_(chunk))
                if other.name in exclude and exclude[other.name]:
                    q = q.where(other.c.id.not_in(sorted(exclude[other.name])))
                out.update(r[0] for r in s.execute(q.distinct()))
    return out


def _delete_rows(ctx: _Ctx, plan: _Plan, actor: Actor, batch_id: int | None, note: str) -> None:
    doomed = {k: {i for _, i in v} for k, v in plan.deletes.items()}
    for key in ("visit_logs", "organisations", "premises", "residents", "households", "buildings"):
        items = plan.deletes.get(key) or []
        if not items:
            continue
        t = TABLES[key]
        busy = _referenced(ctx.s, t, [i for _, i in items], doomed)
        ok = [(u, i) for u, i in items if i not in busy]
        for u, i in items:
            if i in busy:
                doomed[key].discard(i)
                for e in plan.deletions:
                    if e["uuid"] == u:
                        e["action"] = "kept_referenced"
                plan.counts[key]["deleted"] -= 0
        if not ok:
            continue
        au = []
        for u, i in ok:
            raw = ctx.db[key][u].raw
            au.append((i, u, {k: (audit.jsonable(v), None) for k, v in raw.items()}))
        _audit(ctx.s, actor, "delete", key, au, batch_id, note)
        for chunk in iter_chunks([i for _, i in ok]):
            ctx.s.execute(delete(t).where(t.c.id.in_(chunk)))
        plan.counts[key]["deleted"] += len(ok)


def _fetch_ref_ids(ctx: _Ctx, plan: _Plan) -> None:
    """Ids of the rows the written rows refer to (rows unchanged offline were never loaded)."""
    want: dict[str, set[str]] = defaultdict(set)
    for reg in REGISTERS:
        refs = [(c.field, c.ref) for c in reg.cols if c.kind == "ref"]
        rows = plan.inserts[reg.key] + [w for w, _ in plan.updates[reg.key]]
        for w in rows:
            for f, target in refs:
                u = w.vals.get(f)
                if u and u not in ctx.ids[target]:
                    want[target].add(u)
    for target, uuids in want.items():
        ctx.lookup_refs(target, uuids, set())


def _write(ctx: _Ctx, plan: _Plan, actor: Actor, batch_id: int | None, note: str) -> None:
    now = utcnow()
    notes: list[str] = []
    _fetch_ref_ids(ctx, plan)
    for reg in REGISTERS:
        _insert_rows(ctx, reg, plan.inserts[reg.key], actor, batch_id, note, notes, now)
        _update_rows(ctx, reg, plan.updates[reg.key], actor, batch_id, note, notes, now)
        if reg.key == "incidents":
            _report_steps_for_new_incidents(ctx, plan)
    _delete_rows(ctx, plan, actor, batch_id, note)
    touched = {ctx.ids["incidents"].get(w.vals.get("incident_id")) for w in plan.inserts["incident_steps"]}
    apply_timeline(ctx.s, actor, [i for i in touched if i], batch_id=batch_id, note=note)
    plan.notices.extend(dict.fromkeys(notes))


def _report_steps_for_new_incidents(ctx: _Ctx, plan: _Plan) -> None:
    """A new incident typed in the workbook without any step gets its 'report' step."""
    with_steps = {w.vals.get("incident_id") for w in plan.inserts["incident_steps"]}
    for w in plan.inserts["incidents"]:
        if w.uuid not in with_steps:
            plan.inserts["incident_steps"].append(WbRow(w.row, str(uuidlib.uuid4()), True, False, {
                "incident_id": w.uuid, "at": w.vals.get("reported_at"), "actor_id": w.vals.get("reporter_id"),
                "action": "report", "to_level": "grid", "to_status": "reported", "note": "离线登记"}, {}))


# --- check-in -----------------------------------------------------------------------------------


def _overlaps(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def _check_package(session: Session, actor: Actor, pkg: Package, expect_area: str | None) -> ExchangePackage:
    meta = pkg.meta
    here = database_id(session)
    if meta.get("source_database_id") != here:
        raise _refuse("other_database", f"该交换包来自另一个数据库（{meta.get('source_database_id')}），不能导入本库",
                      f"This package comes from another database ({meta.get('source_database_id')})")
    rec = session.scalar(select(ExchangePackage).where(ExchangePackage.package_id == meta.get("package_id")))
    if rec is None:
        raise _refuse("unknown_package", f"本库没有交换包 {meta.get('package_id')} 的导出记录",
                      f"This database never checked out package {meta.get('package_id')}")
    area = session.get(Area, rec.area_id)
    assert area is not None
    if rec.checksum != meta.get("checksum") or area.code != meta.get("area_code"):
        raise _refuse("tampered", "交换包的校验值或区划与导出记录不符，文件已被改动，拒绝导入",
                      "The package checksum/area differ from the checkout record; the file was altered")
    if expect_area and expect_area != area.code:
        raise _refuse("other_area", f"该交换包属于 {area.name}（{area.code}），不是 {expect_area}",
                      f"This package belongs to {area.name} ({area.code}), not {expect_area}")
    require(actor, Perm.IMPORT, area)
    if rec.checked_in_at is not None:
        raise _refuse("already_checked_in", f"交换包 {rec.package_id} 已于 {rec.checked_in_at:%Y-%m-%d %H:%M} 导入"
                      f"（批次 {rec.checkin_batch_id}），不能重复导入",
                      f"Package {rec.package_id} was already checked in (batch {rec.checkin_batch_id})")
    newer = session.execute(
        select(ExchangePackage.package_id, ExchangePackage.created_at, Area.path, Area.name)
        .join(Area, Area.id == ExchangePackage.area_id)
        .where(ExchangePackage.checked_in_at.is_not(None), ExchangePackage.id > rec.id)
    ).all()
    for r in newer:
        if _overlaps(r.path, area.path):
            raise _refuse("older", f"已导入了更新的交换包 {r.package_id}（{r.name}，{r.created_at:%Y-%m-%d %H:%M} 导出），"
                          "这个较旧的交换包不能再导入",
                          f"A newer package {r.package_id} of this area was already checked in; this one is older")
    return rec


def checkin(session: Session, actor: Actor, *, path: str | Path, dry_run: bool = False,
            resolve: str = "keep-central", choices: dict[str, dict[str, str]] | None = None,
            confirm_deletes: bool = False, expect_area: str | None = None) -> CheckinResult:
    """Merge a returned workbook into the database (see the module docstring). Refusals raise
    :class:`ExchangeRefused`, bad cells :class:`ExchangeInvalid`, unresolved conflicts with
    ``resolve="ask"`` :class:`ConflictsPending` — all before anything is written."""
    t0 = time.perf_counter()
    if resolve not in RESOLUTIONS:
        raise ValidationError(f"未知的冲突处理方式 {resolve}", field="resolve", en=f"Unknown resolution {resolve}")
    pkg = read_package(path)
    rec = _check_package(session, actor, pkg, expect_area)
    sc = _scope_from_meta(session, pkg.meta)
    ctx = _Ctx(session, pkg, sc)
    ctx.load(_classify(pkg))
    plan = _plan(ctx, resolve=resolve, choices=choices, confirm_deletes=confirm_deletes)
    _validate(ctx, plan)
    if plan.issues:
        raise ExchangeInvalid(plan.issues)
    if resolve == "ask" and plan.conflicts and not choices:
        raise ConflictsPending(plan.conflicts)
    res = CheckinResult(rec.package_id, None, dry_run, {k: dict(v) for k, v in plan.counts.items()},
                        plan.conflicts, plan.deletions, plan.notices)
    if dry_run:
        res.seconds = round(time.perf_counter() - t0, 2)
        return res
    now = utcnow()
    batch_id = session.execute(insert(ImportBatch.__table__).returning(ImportBatch.__table__.c.id), {
        "kind": "exchange", "user_id": actor.user_id, "started_at": now, "file_name": Path(path).name,
        "file_sha256": file_sha256(path), "package_id": rec.package_id, "area_id": rec.area_id, "status": "done",
    }).scalar_one()
    note = f"离线交换导入 {rec.package_id}"
    _write(ctx, plan, actor, batch_id, note)
    res.batch_id = batch_id
    res.counts = {k: dict(v) for k, v in plan.counts.items()}
    res.notices = plan.notices
    res.deletions = plan.deletions
    session.execute(update(ImportBatch.__table__).where(ImportBatch.__table__.c.id == batch_id).values(
        finished_at=utcnow(), counts={"registers": res.counts, "conflicts": len(plan.conflicts),
                                      "conflict_rows": [c.uuid for c in plan.conflicts]}))
    session.execute(update(ExchangePackage.__table__).where(ExchangePackage.__table__.c.id == rec.id).values(
        checked_in_at=now, checkin_batch_id=batch_id))
    res.seconds = round(time.perf_counter() - t0, 2)
    return res


# --- undo ---------------------------------------------------------------------------------------

_UNDO_ORDER = ["incident_steps", "visit_logs", "incidents", "organisations", "premises", "residents",
               "households", "buildings"]


def _from_json(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k not in table.c:
            continue
        typ = table.c[k].type
        if v is not None and isinstance(typ, DateTime) and isinstance(v, str):
            v = datetime.fromisoformat(v)
        elif v is not None and isinstance(typ, Date) and isinstance(v, str):
            v = date.fromisoformat(v)
        out[k] = v
    return out


def undo_checkin(session: Session, actor: Actor, batch_id: int) -> UndoResult:
    """Revert an exchange check-in while none of its rows changed since; else refuse, nothing done."""
    b = session.get(ImportBatch, batch_id)
    if b is None or b.kind != "exchange":
        raise NotFound(f"没有交换导入批次 {batch_id}", en=f"No exchange batch {batch_id}")
    if b.status != "done":
        raise ExchangeRefused("already_undone", f"批次 {batch_id} 已撤销", en=f"Batch {batch_id} was already undone")
    area = session.get(Area, b.area_id) if b.area_id else None
    require(actor, Perm.IMPORT, area)
    entries = session.execute(select(AuditEntry.id, AuditEntry.table_name, AuditEntry.row_id, AuditEntry.row_uuid,
                                     AuditEntry.action, AuditEntry.changes)
                              .where(AuditEntry.batch_id == batch_id).order_by(AuditEntry.id)).all()
    by: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for e in entries:
        by[(e.table_name, e.action)].append(e)
    blocked: list[str] = []
    # rows inserted or updated by the batch must still be at the version it left them at
    for (tname, action), es in by.items():
        if action not in ("insert", "update") or tname not in Base.metadata.tables:
            continue
        t = Base.metadata.tables[tname]
        last: dict[int, int] = {}
        for e in es:
            v = (e.changes or {}).get("version")
            if v:
                last[e.row_id] = v[1]
        ids = sorted({e.row_id for e in es})
        found: dict[int, int] = {}
        for chunk in iter_chunks(ids):
            cols = [t.c.id] + ([t.c.version] if "version" in t.c else [])
            for r in session.execute(select(*cols).where(t.c.id.in_(chunk))):
                found[r[0]] = r[1] if len(r) > 1 else 0
        for i in ids:
            if i not in found:
                blocked.append(f"{tname}#{i} 已被删除")
            elif i in last and found[i] != last[i]:
                blocked.append(f"{tname}#{i} 之后又被修改")
    # steps appended since on the same incidents
    st = IncidentStep.__table__
    mine = sorted(e.row_id for e in by.get(("incident_steps", "insert"), []))
    if mine:
        incs = {r[0] for r in session.execute(select(st.c.incident_id).where(st.c.id.in_(mine)))}
        later = session.scalar(select(func.count()).select_from(st).where(
            st.c.incident_id.in_(sorted(incs)), st.c.id > max(mine), st.c.id.not_in(mine)))
        if later:
            blocked.append(f"{later} 条处置记录在导入之后追加")
    if blocked:
        raise ExchangeRefused("touched", f"批次 {batch_id} 导入的记录之后已被改动，不能撤销：{'；'.join(blocked[:5])}",
                              en=f"Rows of batch {batch_id} changed since; cannot undo: {blocked[:5]}")
    note = f"撤销交换导入批次 {batch_id}"
    reverted: dict[str, int] = defaultdict(int)
    now = utcnow()
    # updates back (newest first), then inserted rows removed (children first), then deletions restored
    for e in reversed(entries):
        if e.action != "update" or e.table_name not in Base.metadata.tables:
            continue
        t = Base.metadata.tables[e.table_name]
        old = _from_json(t, {k: v[0] for k, v in (e.changes or {}).items() if k != "version"})
        session.execute(update(t).where(t.c.id == e.row_id).values(**old, version=t.c.version + 1, updated_at=now))
        _audit(session, actor, "update", e.table_name,
               [(e.row_id, e.row_uuid, {k: (v[1], v[0]) for k, v in (e.changes or {}).items()})], None, note)
        reverted[e.table_name] += 1
    for tname in _UNDO_ORDER:
        es = by.get((tname, "insert"), [])
        if not es:
            continue
        t = Base.metadata.tables[tname]
        ids = [e.row_id for e in es]
        for chunk in iter_chunks(ids):
            session.execute(delete(t).where(t.c.id.in_(chunk)))
        _audit(session, actor, "delete", tname, [(e.row_id, e.row_uuid, {}) for e in es], None, note)
        reverted[tname] += len(es)
    for tname in reversed(_UNDO_ORDER):
        es = by.get((tname, "delete"), [])
        if not es:
            continue
        t = Base.metadata.tables[tname]
        rows = [_from_json(t, {k: v[0] for k, v in (e.changes or {}).items()}) for e in es]
        session.execute(insert(t), rows)
        _audit(session, actor, "insert", tname, [(e.row_id, e.row_uuid, {}) for e in es], None, note)
        reverted[tname] += len(es)
    session.execute(update(ImportBatch.__table__).where(ImportBatch.__table__.c.id == batch_id).values(
        status="undone", undone_at=now))
    session.execute(update(ExchangePackage.__table__).where(ExchangePackage.__table__.c.checkin_batch_id == batch_id)
                    .values(checked_in_at=None, checkin_batch_id=None))
    return UndoResult(batch_id, b.package_id, dict(reverted))


def list_packages(session: Session, actor: Actor) -> list[PackageInfo]:
    require(actor, Perm.READ)
    q = (select(ExchangePackage, Area.code, Area.name, User.username)
         .join(Area, Area.id == ExchangePackage.area_id)
         .outerjoin(User, User.id == ExchangePackage.created_by)
         .order_by(ExchangePackage.created_at, ExchangePackage.id))
    out = []
    for p, code, name, uname in session.execute(q):
        if (p.meta or {}).get("role") == "local":
            continue
        out.append(PackageInfo(p.package_id, code, name, p.created_at, uname, p.file_name, p.checked_in_at,
                               p.checkin_batch_id, (p.meta or {}).get("counts")))
    return out


# --- the offline side: open a package into a local database, export it back ----------------------


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


def open_package(session: Session, actor: Actor, *, path: str | Path, force: bool = False) -> OpenResult:
    """Create or refresh the local database of an offline site from a package (same uuids and
    versions). Refuses to overwrite local changes not yet exported, unless ``force``."""
    t0 = time.perf_counter()
    require(actor, Perm.IMPORT)
    pkg = read_package(path)
    if pkg.issues:
        raise ExchangeInvalid(pkg.issues)
    meta = pkg.meta
    rec = _local_record(session)
    refreshed = False
    if rec is not None:
        old_area = (rec.meta or {}).get("metadata", {}).get("area_code")
        if old_area != meta["area_code"]:
            raise _refuse("other_area", f"本地库保存的是 {old_area} 的数据，不能打开 {meta['area_code']} 的交换包",
                          f"This local database holds area {old_area}, not {meta['area_code']}")
        changed = _local_changes_since(session, rec)
        if changed and not force:
            raise _refuse("local_changes", f"本地库有 {changed} 处修改尚未导出回传，刷新会丢失它们（确需覆盖请加 --force）",
                          f"The local database has {changed} changes not yet exported; use --force to overwrite")
        _wipe_local(session, actor)
        session.delete(rec)
        session.flush()
        refreshed = True
    elif session.scalar(select(func.count()).select_from(TABLES["residents"])) or session.scalar(
            select(func.count()).select_from(TABLES["incidents"])):
        raise _refuse("not_empty", "目标数据库已有数据，不是离线交换用的本地库", "The target database already holds data")
    _load_areas(session, actor, pkg)
    _load_users(session, pkg)
    sc = _scope_from_meta(session, meta)
    ctx = _Ctx(session, pkg, sc)
    for a in session.execute(select(AREAS.c.id, AREAS.c.code)):
        ctx.area_ids[a.code] = a.id
    for u in session.execute(select(USERS.c.id, USERS.c.username)):
        ctx.user_ids[u.username] = u.id
    for reg in REGISTERS:
        ctx.db[reg.key] = {}
    plan = _Plan()
    _resolve_refs(ctx, plan, strict=False)
    if plan.issues:
        raise ExchangeInvalid(plan.issues)
    now = utcnow()
    notes: list[str] = []
    counts = {}
    for reg in REGISTERS:
        rows = [w for w in pkg.rows[reg.key] if not w.deleted]
        _insert_local(ctx, reg, rows, now, notes)
        counts[reg.key] = len(rows)
    audit.record(session, actor, "import", table="exchange_packages",
                 note=f"打开离线交换包 {meta['package_id']}（{meta['area_name']}）")
    session.flush()
    session.add(ExchangePackage(
        package_id=meta["package_id"], area_id=sc.area.id, created_by=actor.user_id, file_name=Path(path).name,
        checksum=meta["checksum"],
        meta={"role": "local", "metadata": {k: meta.get(k) for k in (*CHECKSUMMED_META, "checksum")},
              "originals": _pack(pkg.raw_originals), "opened_audit_id": _max_audit_id(session)}))
    session.flush()
    return OpenResult(meta["package_id"], meta["area_code"], refreshed, counts, round(time.perf_counter() - t0, 2))


def _insert_local(ctx: _Ctx, reg: Register, rows: list[WbRow], now: datetime, notes: list[str]) -> None:
    """Rows of a package into the local database with their own uuid and export version."""
    if not rows:
        return
    orig = ctx.pkg.originals.get(reg.key, {})
    params = []
    for w in rows:
        v = _new_row(ctx, reg, w, notes, now, version=orig[w.uuid][0] if w.uuid in orig else 1)
        if reg.key == "incident_steps" and v.get("seq") is None:
            v["seq"] = 0
        if reg.key == "residents" and v.get("citizen_id") and "*" in v["citizen_id"]:
            v["citizen_id"] = None  # a masked ID is not an ID (and two may look alike)
        params.append(v)
    if reg.key == "incident_steps" and any(p["seq"] == 0 for p in params):
        _number_steps(ctx, [p for p in params if p["seq"] == 0])
    _write_new(ctx, reg, params)


def _wipe_local(session: Session, actor: Actor) -> None:
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
        session.execute(delete(m.__table__))
    for key in ("visit_logs", "incidents", "organisations", "premises", "residents", "households"):
        session.execute(delete(TABLES[key]))
    session.execute(delete(House.__table__))
    session.execute(delete(TABLES["buildings"]))


def _load_areas(session: Session, actor: Actor, pkg: Package) -> None:
    rows = []
    for u, (ver, _) in pkg.originals.get("_areas", {}).items():
        rows.append((u, ver, dict(zip(AREA_FIELDS, pkg.orig("_areas", u), strict=False))))
    rows.sort(key=lambda r: len(r[2]["code"]))
    existing = {r.code: r for r in session.execute(select(AREAS.c.id, AREAS.c.code, AREAS.c.path, AREAS.c.depth))}
    now = utcnow()
    for u, ver, a in rows:
        if a["code"] in existing:
            session.execute(update(AREAS).where(AREAS.c.code == a["code"]).values(
                name=a["name"], boundary=bytes.fromhex(a["boundary_hex"]) if a["boundary_hex"] else None,
                center_lon=a["center_lon"], center_lat=a["center_lat"], household_limit=a["household_limit"]))
            continue
        parent = existing.get(a["parent_code"]) if a["parent_code"] else None
        new_id = session.execute(insert(AREAS).returning(AREAS.c.id), [{
            "uuid": u, "version": ver, "created_at": now, "updated_at": now, "code": a["code"], "name": a["name"],
            "level": a["level"], "parent_id": parent.id if parent else None, "path": "", "depth": (parent.depth + 1) if parent else 0,
            "boundary": bytes.fromhex(a["boundary_hex"]) if a["boundary_hex"] else None,
            "center_lon": a["center_lon"], "center_lat": a["center_lat"], "household_limit": a["household_limit"],
        }]).scalar_one()
        path = (parent.path if parent else "/") + f"{new_id}/"
        session.execute(update(AREAS).where(AREAS.c.id == new_id).values(path=path))
        existing[a["code"]] = type("A", (), {"id": new_id, "code": a["code"], "path": path,
                                             "depth": (parent.depth + 1) if parent else 0})()


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


def export_local(session: Session, actor: Actor, *, out: str | Path) -> CheckoutResult:
    """Write the returned workbook of the package this local database was opened from: the same
    package id, metadata, checksum and export-time originals, with the rows as they are now."""
    t0 = time.perf_counter()
    require(actor, Perm.EXPORT)
    rec = _local_record(session)
    if rec is None:
        raise _refuse("not_local", "此数据库不是由离线交换包打开的本地库", "This database was not opened from a package")
    meta = dict(rec.meta["metadata"])
    raw: list[list[Any]] = _unpack(rec.meta["originals"])
    originals: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)
    for reg_key, u, ver, vals in raw:
        originals[reg_key][u] = (ver, vals)
    sc = _scope_from_meta(session, meta)
    mask = bool(meta.get("ids_masked"))
    counts: dict[str, int] = {}
    sheets: list[SheetRows] = [SheetRows(HELP_SHEET, ["说明"], HELP_TEXT, widths=[120])]
    local_uuids: dict[str, set[str]] = {}

    def is_local(target: str, u: str) -> bool:
        if target not in local_uuids:
            local_uuids[target] = set(session.scalars(select(TABLES[target].c.uuid)))
        return u in local_uuids[target]

    def gen(reg: Register) -> Iterator[list[Any]]:
        orig = originals.get(reg.key, {})
        cols = meta["columns"][reg.key]
        # fields a local row may hold empty although the package had a value: references to rows
        # outside the package (nothing to point at locally) and masked IDs (not stored locally)
        nullable = [(reg.fields.index(c.field), c.field, c.ref) for c in reg.cols if c.kind == "ref"]
        if mask and reg.key == "residents":
            nullable.append((reg.fields.index("citizen_id"), "citizen_id", None))
        n = 0
        result = session.execute(_register_select(reg, _scope_where(reg, sc)).execution_options(yield_per=5000))
        codec = _codec(reg, list(result.keys()), False)
        for row in result:
            canon = codec.canon(row)
            u = row[codec.i_uuid]
            ver = None
            if u in orig:
                ver = orig[u][0]
                if any(canon[i] is None for i, _, _ in nullable):
                    ov = dict(zip(cols, json.loads(orig[u][1]), strict=False))
                    for i, f, target in nullable:
                        if canon[i] is None and ov.get(f) and (target is None or not is_local(target, ov[f])):
                            canon[i] = ov[f]
            n += 1
            yield codec.cells(row, canon, ver)
        counts[reg.key] = n

    for reg in REGISTERS:
        sh = _sheet_for(reg)
        sh.rows = gen(reg)
        sheets.append(sh)
    full = {**meta, "kind": "return", "returned_at": utcnow().replace(microsecond=0).isoformat(sep=" "),
            "returned_by": actor.username, "returned_from_database_id": database_id(session)}
    sheets.append(SheetRows(ORIG_SHEET, ["表", "UUID", "版本", "值"], [list(r) for r in raw],
                            kinds=["text", "text", "int", "text"], state="veryHidden"))
    sheets.append(SheetRows(META_SHEET, ["键", "项目", "值"],
                            [[k, META_LABELS.get(k, k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)]
                             for k, v in full.items()], widths=[22, 20, 60]))
    write_workbook(Path(out), sheets)
    audit.record(session, actor, "export", table="exchange_packages", row_id=rec.id,
                 note=f"导出回传交换包 {rec.package_id} → {Path(out).name}")
    session.flush()
    m2 = dict(rec.meta)
    m2["exported_audit_id"] = _max_audit_id(session)
    rec.meta = m2
    session.flush()
    return CheckoutResult(rec.package_id, str(out), meta["area_code"], meta["area_name"], counts,
                          meta["checksum"], round(time.perf_counter() - t0, 2))

"""Stage 3 of the census import, the rows against the database: grids (code or name, within the
import area and the actor's scope), registered households and buildings, the registered resident
each row updates (same citizen ID, else same household and name), one head per household — and
the plan: what each valid row will do (insert, update which fields, add which tags).

Threading: the caller's thread and session (residents matched are locked ``FOR UPDATE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core.enums import AreaLevel, Relation
from gridman.core.models import Area, Building, Resident, ResidentTag
from gridman.core.services import audit, permissions, scope
from gridman.core.services.census.bulk import chunks, raw_in
from gridman.core.services.census.records import RESIDENT_FIELDS
from gridman.core.services.census.validation import Row
from gridman.core.services.permissions import Actor


class HouseholdRef(NamedTuple):
    id: int
    household_no: str
    grid_id: int
    building_id: int | None


def _grids(session: Session, actor: Actor, area: Area | None) -> tuple[Sequence[Any], set[int]]:
    """The grids of the import area (all if none) and the ids of those in the actor's scope."""
    grids = session.execute(select(Area.id, Area.code, Area.name, Area.path, Area.level)
                            .where(Area.level == AreaLevel.GRID, scope.in_area(Area.id, area))).all()
    return grids, {g.id for g in grids if scope.covers(actor, g)}


def _households(session: Session, rows: list[Row]) -> dict[str, HouseholdRef]:
    """The registered households the file names, by household number."""
    hh_nos = sorted({r.values["household_no"] for r in rows if r.values.get("household_no")})
    existing_hh: dict[str, HouseholdRef] = {}
    conn = session.connection()
    for ch in chunks(hh_nos):
        for h in raw_in(conn, "SELECT id, household_no, grid_id, building_id FROM households "
                              "WHERE household_no IN (__IN__)", ch):
            existing_hh[h[1]] = HouseholdRef(*h)
    return existing_hh


def _buildings(session: Session, rows: list[Row]) -> dict[str, list[Any]]:
    """The buildings the file names, by code and by name (a name may be several)."""
    bnames = {r.values["building"] for r in rows if r.values.get("building")}
    buildings: dict[str, list[Any]] = {}
    if bnames:
        bl = list(bnames)
        for ch in chunks(bl):
            for b in session.execute(select(Building.id, Building.code, Building.name, Building.grid_id)
                                     .where((Building.code.in_(ch)) | (Building.name.in_(ch)))):
                buildings.setdefault(b.code or "", []).append(b)
                if b.name != b.code:
                    buildings.setdefault(b.name, []).append(b)
    return buildings


def resolve(session: Session, actor: Actor, area: Area | None, rows: list[Row], fields_present: set[str]) -> None:
    """Grids (code or name, inside the import area), existing households, buildings; scope checks."""
    grids, allowed = _grids(session, actor, area)
    by_code = {g.code: g for g in grids}
    by_name: dict[str, list[Any]] = {}
    for g in grids:
        by_name.setdefault(g.name, []).append(g)
    default_grid = area.id if area is not None and area.level == AreaLevel.GRID else None
    where = f"“{area.name}”" if area is not None else "数据库"
    existing_hh = _households(session, rows)
    buildings = _buildings(session, rows)
    everywhere = scope.unrestricted(actor)

    def finish(r: Row, g_id: int | None) -> None:
        v = r.values
        if g_id is None:
            r.err("grid" if "grid" in fields_present else "household_no", "grid_required",
                  "新户须填写网格（编码或名称）", "A new household needs a grid (code or name)")
            return
        if g_id not in allowed:
            r.err("grid", "out_of_scope", f"网格不在{where}或您的管辖范围内", "Grid outside the import area or your scope")
            return
        r.grid_id = g_id
        b = v.get("building")
        if b:
            named = buildings.get(b, [])  # in the row's grid, else in one the actor may import into
            cands = ([x for x in named if x.grid_id == g_id]
                     or [x for x in named if everywhere or x.grid_id is None or x.grid_id in allowed])
            if len({x.id for x in cands}) != 1:
                r.err("building", "building_unknown" if not cands else "building_ambiguous",
                      f"找不到楼栋“{b}”" if not cands else f"楼栋“{b}”不唯一，请填写楼栋编码",
                      f"No building {b!r}" if not cands else f"Building {b!r} is ambiguous; use its code")
            else:
                v["building_id"] = cands[0].id
        hno = v.get("household_no")
        if hno and hno in existing_hh:
            v["household_id"] = existing_hh[hno].id

    pending: list[Row] = []
    for r in rows:
        v = r.values
        g_id: int | None = None
        graw = v.get("grid")
        if graw:
            g = by_code.get(graw)
            if g is None:
                cands = by_name.get(graw, [])
                if len(cands) == 1:
                    g = cands[0]
                elif len(cands) > 1:
                    r.err("grid", "grid_ambiguous",
                          f"{where}内有 {len(cands)} 个名为“{graw}”的网格，请填写网格编码（如 {cands[0].code}）",
                          f"{len(cands)} grids are named {graw!r}; use the grid code")
                    continue
            if g is None:
                r.err("grid", "grid_unknown", f"{where}内找不到网格“{graw}”", f"No grid {graw!r} in the import area")
                continue
            g_id = g.id
        hno = v.get("household_no")
        if hno:
            r.hh_key = hno
            h = existing_hh.get(hno)
            if h is not None:
                if h.grid_id not in allowed:  # before the grid check: its answer would describe the household
                    r.err("household_no", "out_of_scope", f"户号 {hno} 不在{where}或您的管辖范围内",
                          f"Household {hno} is outside the import area or your scope")
                    continue
                if g_id is not None and g_id != h.grid_id:
                    r.err("grid", "grid_mismatch", f"户号 {hno} 已登记在另一网格，与本行网格不符",
                          f"Household {hno} is registered in another grid")
                    continue
                g_id = h.grid_id
        if g_id is None and hno:
            pending.append(r)  # a new household's grid may be on another of its rows
            continue
        finish(r, g_id if g_id is not None else default_grid)
    hh_grid: dict[str, int] = {}
    for r in rows:
        if r.hh_key and r.grid_id is not None:
            hh_grid.setdefault(r.hh_key, r.grid_id)
    for r in pending:
        finish(r, hh_grid.get(r.hh_key, default_grid))  # type: ignore[arg-type]
    for r in rows:
        if r.hh_key and r.grid_id is not None and r.grid_id != hh_grid.get(r.hh_key, r.grid_id):
            r.err("grid", "grid_mismatch", f"同一户（{r.hh_key}）的各行网格不一致", f"Rows of household {r.hh_key} name different grids")


RES_COLS = [Resident.__table__.c[f] for f in ("id", "uuid", "version", "household_id", "grid_id", *RESIDENT_FIELDS)]


def match_existing(session: Session, actor: Actor, rows: list[Row]) -> None:
    """Attach each row's existing resident: same citizen ID, else same household + name (no ID).
    A citizen ID registered outside the actor's scope is refused without naming its resident; one
    registered to another name is named only to a role that may (:func:`permissions.names_holder`:
    in scope, and full IDs shown) — the answer would otherwise read a masked ID back."""
    t = Resident.__table__
    ids = sorted({r.values["citizen_id"] for r in rows if r.values.get("citizen_id") and not r.bad})
    conn = session.connection()
    # which IDs are registered at all, on the DBAPI cursor (cheap; usually few); then the full
    # rows of those only, typed and locked, through SQLAlchemy
    ids = sorted({row[0] for ch in chunks(ids)
                  for row in raw_in(conn, "SELECT citizen_id FROM residents WHERE citizen_id IN (__IN__)", ch)})
    by_id: dict[str, dict[str, Any]] = {}
    cols = RES_COLS if scope.unrestricted(actor) else [*RES_COLS, scope.rows(actor, t.c.grid_id).label("in_scope")]
    for ch in chunks(ids):
        for m in session.execute(select(*cols).where(t.c.citizen_id.in_(ch)).with_for_update()).mappings():
            by_id[m["citizen_id"]] = dict(m)
    hh_ids = sorted({r.values["household_id"] for r in rows if r.values.get("household_id")})
    by_hn: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for ch in chunks(hh_ids):
        for m in session.execute(select(*RES_COLS).where(t.c.household_id.in_(ch)).with_for_update()).mappings():
            by_hn.setdefault((m["household_id"], m["name"]), []).append(dict(m))
    claimed: set[int] = set()
    for r in rows:
        if r.bad:
            continue
        v = r.values
        cid = v.get("citizen_id")
        ex = by_id.get(cid) if cid else None
        if ex is not None and not ex.get("in_scope", True):
            r.err("citizen_id", "out_of_scope", "该身份证号已在您的管辖范围之外登记，不能由您导入或修改",
                  "This citizen ID is registered outside your scope")
            continue
        if ex is not None and ex["name"] != v.get("name"):
            if permissions.names_holder(actor, session.get(Area, ex["grid_id"])):
                r.err("citizen_id", "duplicate_in_db", f"身份证号已登记为“{ex['name']}”，与本行姓名“{v.get('name')}”不一致",
                      f"This citizen ID is registered to another name ({ex['name']})")
            else:
                r.err("citizen_id", "duplicate_in_db", f"身份证号已登记在另一姓名下，与本行姓名“{v.get('name')}”不一致",
                      "This citizen ID is registered to another name")
            continue
        if ex is None and v.get("household_id") and v.get("name"):
            cands = [m for m in by_hn.get((v["household_id"], v["name"]), []) if not m["citizen_id"]
                     or m["citizen_id"] == cid]
            if len(cands) > 1:
                r.err("name", "ambiguous_match", f"户 {r.hh_key} 中有 {len(cands)} 位同名“{v['name']}”，请填写身份证号",
                      f"{len(cands)} people named {v['name']} in household {r.hh_key}; give the citizen ID")
                continue
            ex = cands[0] if cands else None
        if ex is not None:
            if ex["id"] in claimed:
                r.err("name", "duplicate_in_file", "与文件中另一行对应同一位已登记人员",
                      "Another row of the file matches the same registered person")
                continue
            claimed.add(ex["id"])
        r.existing = ex


def id_lookups(rows: list[Row]) -> int:
    """How many citizen IDs of the file were looked up in the register."""
    return sum(1 for r in rows if r.values.get("citizen_id"))


def audit_lookup(session: Session, actor: Actor, *, rows: int, citizen_ids: int, file_name: str, status: str) -> None:
    """The audit row of an import that wrote nothing (a dry run, a rejected file): it still told
    the actor which of the file's citizen IDs are registered, so who asked, and how many, is kept."""
    audit.record(session, actor, "import_check", table="residents",
                 changes={"file": file_name, "status": status, "rows": rows, "citizen_ids": citizen_ids},
                 note=f"导入核对（未写入）{file_name}：{rows} 行，{citizen_ids} 个身份证号")


def check_heads(session: Session, rows: list[Row], fields_present: set[str]) -> None:
    """One head per household, counting registered heads the file does not change."""
    if "relation_to_head" not in fields_present:
        return
    groups: dict[str, list[Row]] = {}
    for r in rows:
        if r.hh_key:
            groups.setdefault(r.hh_key, []).append(r)
    hh_ids = sorted({r.values["household_id"] for r in rows if r.values.get("household_id")})
    db_heads: dict[int, list[tuple[int, str]]] = {}
    t = Resident.__table__
    for ch in chunks(hh_ids):
        for h in session.execute(select(t.c.id, t.c.household_id, t.c.name).where(
                t.c.household_id.in_(ch), t.c.relation_to_head == "head", t.c.status == "active")):
            db_heads.setdefault(h.household_id, []).append((h.id, h.name))
    for key, grp in groups.items():
        file_heads = [r for r in grp if r.values.get("relation_to_head") == Relation.HEAD
                      and r.values.get("status", "active") == "active"]
        touched = {r.existing["id"] for r in grp if r.existing}
        hid = next((r.values.get("household_id") for r in grp if r.values.get("household_id")), None)
        kept = [name for rid, name in db_heads.get(hid, []) if rid not in touched] if hid else []
        total = len(file_heads) + len(kept)
        if total > 1:
            rows_txt = "、".join(str(r.row) for r in file_heads)
            extra = f"，另有已登记户主“{'、'.join(kept)}”" if kept else ""
            for r in file_heads:
                r.err("relation_to_head", "two_heads",
                      f"户号 {key} 有 {total} 位户主（第 {rows_txt} 行{extra}），一户只能有一位户主",
                      f"Household {key} would have {total} heads (rows {rows_txt}); one head per household")
        elif total == 0 and hid is None:
            for r in grp:
                r.err("relation_to_head", "no_head", f"新户 {key} 没有户主", f"New household {key} has no head",
                      severity="warning")


@dataclass
class Plan:
    row: Row
    action: str  # insert / update / unchanged
    changes: dict[str, tuple[Any, Any]]
    add_tags: list[int]
    new_household: bool


def plan(session: Session, rows: list[Row], fields_present: set[str]) -> list[Plan]:
    res_fields = [f for f in RESIDENT_FIELDS if f in fields_present or f in ("birth_date", "sex")]
    existing_ids = [r.existing["id"] for r in rows if r.existing and not r.bad]
    have_tags: dict[int, set[int]] = {}
    for ch in chunks(existing_ids):
        for rt in session.execute(select(ResidentTag.resident_id, ResidentTag.tag_id)
                                  .where(ResidentTag.resident_id.in_(ch))):
            have_tags.setdefault(rt.resident_id, set()).add(rt.tag_id)
    out: list[Plan] = []
    for r in rows:
        if r.bad:
            out.append(Plan(r, "rejected", {}, [], False))
            continue
        v = r.values
        tag_ids = [t.id for t in v.get("tags", ())]
        new_hh = bool(r.hh_key) and not v.get("household_id")
        ex = r.existing
        if ex is None:
            out.append(Plan(r, "insert", {}, tag_ids, new_hh))
            continue
        changes: dict[str, tuple[Any, Any]] = {}
        for f in res_fields:
            nv = v.get(f)
            if nv is not None and nv != ex[f]:
                changes[f] = (ex[f], nv)
        if r.grid_id != ex["grid_id"]:
            changes["grid_id"] = (ex["grid_id"], r.grid_id)
        if r.hh_key and (new_hh or v.get("household_id") != ex["household_id"]):
            changes["household_id"] = (ex["household_id"], v.get("household_id"))  # new household: set at write
        add = [t for t in tag_ids if t not in have_tags.get(ex["id"], set())]
        out.append(Plan(r, "update" if changes or add else "unchanged", changes, add, new_hh))
        if not changes and add:
            out[-1].action = "update"
    return out

"""Registers read from the database in canonical form: one SELECT per register with references
as uuids, areas as codes and users as user names, and the codec that turns its rows into canonical
values and workbook cells (the hot path of a checkout: millions of cells)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Select, Table, select

from gridman.core.models import Base
from gridman.core.services.exchange.coverage import Coverage
from gridman.core.services.exchange.workbook import BY_KEY, REGISTERS, Register, canon_fn, display_fn

TABLES: dict[str, Table] = {r.key: Base.metadata.tables[r.key] for r in REGISTERS}
AREAS: Table = Base.metadata.tables["areas"]
USERS: Table = Base.metadata.tables["users"]
# organisations hang on an area of any level; the other registers on a grid (steps on their incident)
SCOPED_BY_AREA = {"organisations": "area_id"}


def register_select(reg: Register, where_fn: Callable[[Table], Any]) -> Select[Any]:
    """SELECT of a register's rows with every exchanged field, refs as uuids, areas as codes,
    users as user names (``m__field``) next to the raw columns."""
    t = TABLES[reg.key]
    cols: list[Any] = list(t.c)
    frm: Any = t
    seen: set[str] = set()
    for col in reg.cols:
        if col.field in seen or col.kind not in ("area", "ref", "user", "refkey"):
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
            assert col.ref in TABLES
            r = TABLES[col.ref].alias(f"r_{col.field}")
            frm = frm.outerjoin(r, r.c.id == t.c[col.field])
            cols.append(r.c.uuid.label(f"m__{col.field}"))
            nk = BY_KEY[col.ref].natkey
            if nk:
                cols.append(r.c[nk].label(f"k__{col.field}"))
            if reg.key == "incident_steps":
                cols.append(r.c.title.label("k__incident_title"))
        seen.add(col.field)
    return select(*cols).select_from(frm).where(where_fn(t)).order_by(t.c.id)


def rows_in(reg: Register, cov: Coverage) -> Callable[[Table], Any]:
    """The WHERE of a register's rows inside a package's coverage."""
    def where(t: Table) -> Any:
        if reg.key == "incident_steps":
            inc = TABLES["incidents"]
            return t.c.incident_id.in_(select(inc.c.id).where(inc.c.grid_id.in_(cov.grid_ids)))
        if reg.key in SCOPED_BY_AREA:
            return t.c[SCOPED_BY_AREA[reg.key]].in_(cov.area_ids)
        return t.c.grid_id.in_(cov.grid_ids)

    return where


class Codec:
    """A register's rows (plain tuples of :func:`register_select`) → canonical values and cells,
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


_CODECS: dict[tuple[str, tuple[str, ...], bool], Codec] = {}


def codec_for(reg: Register, keys: Iterable[str], mask_ids: bool) -> Codec:
    k = (reg.key, tuple(keys), mask_ids)
    c = _CODECS.get(k)
    if c is None:
        c = _CODECS[k] = Codec(reg, list(k[1]), mask_ids)
    return c


def canon_row(reg: Register, m: Any, mask_ids: bool) -> list[Any]:
    """Canonical values of one row mapping (convenience; bulk paths use :class:`Codec`)."""
    return codec_for(reg, m.keys(), mask_ids).canon(tuple(m.values()))


def display_row(reg: Register, m: Any, canon: list[Any], version: int | None) -> list[Any]:
    """The cells of one row mapping (convenience; bulk paths use :class:`Codec`)."""
    return codec_for(reg, m.keys(), False).cells(tuple(m.values()), canon, version)


def dumps(vals: list[Any]) -> str:
    """Canonical values as the compact JSON text the package keeps (and compares as text)."""
    return json.dumps(vals, ensure_ascii=False, separators=(",", ":"))

"""How the offline exchange page shows the service's values: register and field names, canonical
values as labels, check-in totals and the rows of the conflict table. No Qt widgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gridman.core import enums, fields
from gridman.core.services import exchange
from gridman.core.services.exchange import BY_KEY
from gridman.gui.i18n import N_, language, tr

DELETION_ACTIONS = {"reported": N_("仅报告，未删除"), "deleted": N_("已删除"),
                    "already_deleted_centrally": N_("中心已删除"), "kept_changed_centrally": N_("中心已修改，保留"),
                    "kept_record": N_("记录类数据，保留")}


def register_name(key: str) -> str:
    """A register's name (the package counts are keyed by table: visit_logs is 走访记录)."""
    return fields.register_name(key, language())


def _field(reg_key: str, field: str) -> fields.Field | None:
    """The catalogue field a workbook column (named by its model column) shows."""
    key = fields.resolve(reg_key)
    if key is None:
        return None
    return next((fd for fd in fields.REGISTERS[key].view("exchange")
                 if (fd.attr or fd.key) == field and fd.kind != "refkey"), None)


def field_name(reg_key: str, field: str) -> str:
    """The column's label from the field catalogue, in the user's language."""
    fd = _field(reg_key, field)
    return fd.label(language()) if fd is not None else field


def show_value(reg_key: str, field: str, v: Any) -> str:
    """A canonical exchange value as the user reads it (enumeration labels, not codes)."""
    if v is None or v == "":
        return tr("（空）")
    col = BY_KEY[reg_key].field_cols.get(field) if reg_key in BY_KEY else None
    if col is not None and col.kind == "enum" and col.enum is not None:
        return enums.label(str(v), language(), col.enum)
    if col is not None and col.kind == "choice":
        fd = _field(reg_key, field)
        return fd.choice_label(str(v), language()) if fd is not None else str(v)
    if col is not None and col.kind == "ref":
        return str(v)[:8] + "…"
    return str(v)


def totals(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    keys = ("inserted", "updated", "unchanged", "conflicts", "deleted_offline", "deleted", "appended", "central_deleted")
    return {k: sum(v.get(k, 0) for v in counts.values()) for k in keys}


@dataclass
class ConflictRow:
    """One row of the conflict table: a field the offline side changed in a row changed on both sides."""

    uuid: str
    register: str
    label: str
    field: str
    original: Any
    central: Any
    offline: Any
    clash: bool


def conflict_rows(conflicts: list[exchange.Conflict]) -> list[ConflictRow]:
    """The fields to choose for: those changed offline (a field changed only centrally stays as it
    is, whatever is chosen, so it is not offered)."""
    out: list[ConflictRow] = []
    for c in conflicts:
        for d in c.fields:
            if d.offline != d.original:
                out.append(ConflictRow(c.uuid, c.register, c.label, d.field, d.original, d.central, d.offline,
                                       d.clash))
    return out

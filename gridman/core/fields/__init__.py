"""The field catalogue: every register's fields declared once (key, Chinese and English label,
type, enumeration, sensitivity, width, import synonyms, exchange header), and every front that
shows or reads a register derives its columns from here — the register pages
(``registers.COLUMNS``), the exports and their import templates (``export.LISTS``), the census
import's header mapping (``cleaning.HEADER_SYNONYMS`` / ``FIELD_LABELS``), the offline exchange
workbook (``exchange.workbook.REGISTERS``) and the GUI's register names.

Adding a register: declare a :class:`RegisterFields` in :mod:`.catalogue` (its fields, and per
view the keys it shows: ``list``, ``export``, ``exchange``, ``census``) and add it to
``catalogue.ALL`` in dependency order. The register page then needs its query in
``services.registers._query`` and the export its query in ``services.export``; the exchange
workbook and the GUI names follow from the declaration. ``tests/test_fields.py`` checks every
declaration against the models.

Names: one key per register (``visits``, not ``visit_logs``); :func:`get` also accepts a
register's ``aliases`` (and its table name), so old spellings keep working on the command line.

Qt-free; plain immutable data, safe to share between threads.
"""

from __future__ import annotations

from gridman.core.fields.catalogue import ALL, HOUSEHOLD_KINDS, STEP_ACTIONS
from gridman.core.fields.spec import KINDS, VIEWS, Field, RegisterFields

REGISTERS: dict[str, RegisterFields] = {r.key: r for r in ALL}
ALIASES: dict[str, str] = {a: r.key for r in ALL for a in (*r.aliases, r.table) if a != r.key}


def resolve(name: str) -> str | None:
    """The register key ``name`` (a key, an alias or a table name) means, or None."""
    return name if name in REGISTERS else ALIASES.get(name)


def get(name: str) -> RegisterFields:
    """The register ``name`` (key, alias or table name) means. Raises KeyError."""
    key = resolve(name)
    if key is None:
        raise KeyError(name)
    return REGISTERS[key]


def with_view(view: str) -> list[RegisterFields]:
    """The registers that have view ``view``, in catalogue (dependency) order."""
    return [r for r in ALL if r.views.get(view)]


def register_name(name: str, lang: str = "zh_CN") -> str:
    """A register's user-visible name (实有人口 / Residents); the name itself if unknown."""
    key = resolve(name)
    return REGISTERS[key].title(lang) if key else name


__all__ = ["ALIASES", "ALL", "HOUSEHOLD_KINDS", "KINDS", "REGISTERS", "STEP_ACTIONS", "VIEWS", "Field",
           "RegisterFields", "get", "register_name", "resolve", "with_view"]

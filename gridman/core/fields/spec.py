"""What a field and a register are in the catalogue (the declarations are in :mod:`.catalogue`).

A :class:`Field` is one piece of a register's data as users see it: its stable ``key``, its
Chinese and English label, how its values look (``kind``, ``enum``/``choices``), who may see it
in full (``sensitive``), how wide its column is, which other headers an import recognises
(``synonyms``) and what the offline exchange workbook calls it. A :class:`RegisterFields` is a
register's fields plus its *views*: which fields, in which order, the register page, the export
(and its import template), the offline exchange and the census import show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from enum import StrEnum
from typing import Any

# text | code (text kept as typed: numbers, 户号) | int | float | date | datetime | bool
# enum (a StrEnum: code stored, label shown) | choice (a small code → label table)
# idno (公民身份号码) | tags (a resident's tags) | area (an area id shown as its code)
# ref (a row id, exchanged as the row's uuid) | refkey (a row id shown as the row's natural key)
# user (a user id shown as the user name) | info (shown in the exchange, never read back)
KINDS = frozenset({"text", "code", "int", "float", "date", "datetime", "bool", "enum", "choice", "idno", "tags",
                   "area", "ref", "refkey", "user", "info"})
VIEWS = ("list", "export", "exchange", "census")
SAME = "="  # Field.column default: the model column is named like the key


@dataclass(frozen=True)
class Field:
    """One field of a register. ``column`` is the model column holding it (default: ``key``;
    None for a computed field such as a grid's name or a household's head). ``sensitive`` is
    the value of the :class:`~gridman.core.services.permissions.Perm` needed to see it in full.
    ``required``: an import (and its template) needs it; ``not_blank``: an exchanged row needs it;
    ``readonly``: the exchange shows it but ignores offline edits; ``hidden``: a key column of
    the exchange workbook the user does not see. ``identity``: the field says who a person is
    (name, citizen ID, household) — an import refuses a row whose identity field is bad, while a
    bad value of any other (secondary) field is imported empty with a warning."""

    key: str
    zh: str
    en: str
    kind: str = "text"
    enum: type[StrEnum] | None = None
    choices: Mapping[str, str] | None = None  # code → Chinese label (kind "choice")
    column: str | None = SAME
    ref: str | None = None  # referenced register (ref / refkey)
    sensitive: str | None = None
    width: int = 12
    synonyms: tuple[str, ...] = ()
    exchange: str | None = None  # the exchange workbook's header, when it must differ from ``zh``
    required: bool = False
    not_blank: bool = False
    readonly: bool = False
    hidden: bool = False
    identity: bool = False
    note: str = ""  # template note (how to fill it)

    @property
    def attr(self) -> str | None:
        """The model column (None: computed)."""
        return self.key if self.column == SAME else self.column

    @property
    def exchange_header(self) -> str:
        return self.exchange or self.zh

    def label(self, lang: str = "zh_CN") -> str:
        return self.en if lang.startswith("en") else self.zh

    def choice_label(self, code: str, lang: str = "zh_CN") -> str:
        """The label of a ``choice`` code (the code itself if unknown)."""
        zh = (self.choices or {}).get(code, code)
        return CHOICE_EN.get(zh, zh) if lang.startswith("en") else zh


# English labels of the small ``choice`` tables (keyed by their Chinese label).
CHOICE_EN: dict[str, str] = {}


@dataclass(frozen=True)
class RegisterFields:
    """A register (台账): its ``key`` (the one name, used by the CLI, exports and the GUI), its
    ``table``, its titles, its fields and, per view, the keys of the fields shown in order."""

    key: str
    table: str
    zh: str  # the register's name (实有人口)
    en: str
    ledger: str  # the export's title (实有人口台账)
    fields: tuple[Field, ...]
    views: Mapping[str, tuple[str, ...]]
    aliases: tuple[str, ...] = ()
    importable: bool = False  # the census import reads its export template back
    natkey: str | None = None  # the field other registers show for a reference to it (户号, 楼栋编码)
    versioned: bool = True  # exchange: rows carry a version (append-only records do not)
    by_key: dict[str, Field] = dc_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_key", {f.key: f for f in self.fields})

    def field(self, key: str) -> Field:
        return self.by_key[key]

    def view(self, name: str) -> tuple[Field, ...]:
        """The fields of view ``name`` (list / export / exchange / census), in order; () if none."""
        return tuple(self.by_key[k] for k in self.views.get(name, ()))

    def title(self, lang: str = "zh_CN") -> str:
        return self.en if lang.startswith("en") else self.zh


def f(key: str, zh: str, en: str, kind: str = "text", **kw: Any) -> Field:
    """Shorthand for the declarations."""
    return Field(key, zh, en, kind, **kw)

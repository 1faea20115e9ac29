"""The one rule for text stored in any table: control characters out, lengths bounded.

Every text value written to a gridman table — by the GUI, the CLI, the census import, the offline
exchange, a bulk Core ``insert``/``update`` or an ORM flush — passes :func:`clean_value`:

- C0 control characters other than newline and tab (NUL, ESC, BEL, CR…), DEL and the C1 controls
  are removed (a terminal or a spreadsheet would act on them; ``\\r\\n`` becomes ``\\n``);
- a text longer than its column (``String(n)``), or than :data:`TEXT_MAX` for unbounded
  ``Text`` columns (notes, descriptions), is refused with a :class:`ValidationError` naming the
  field by its catalogue label, in the user's language.

Installed once per :class:`~gridman.core.db.Database` (:func:`install`): an engine
``before_execute`` hook covers every INSERT and UPDATE statement (so Core bulk writes too), and
a ``before_flush`` hook cleans the ORM objects themselves, so what the session holds and what the
audit log records is what was stored. Qt-free; the hooks are stateless and thread-safe.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, String, Table, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Insert, Update, ValuesBase

from gridman.core.errors import ValidationError

TEXT_MAX = 20_000  # characters of an unbounded Text column (a note, a description, an agreement)
_CONTROL = re.compile(r"\r\n|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` without control characters (newline and tab kept; CRLF → LF)."""
    if text.isprintable():  # the common case, in C
        return text
    return _CONTROL.sub(lambda m: "\n" if m.group() == "\r\n" else "", text)


@functools.lru_cache(maxsize=256)
def _limits(table: Table) -> dict[str, int]:
    """Column key → the longest text it takes, for the text columns of ``table``."""
    return {c.key: c.type.length or TEXT_MAX for c in table.columns if isinstance(c.type, String)}


def _label(table: str, column: str) -> tuple[str, str]:
    from gridman.core import fields

    key = fields.resolve(table)
    if key is not None:
        for f in fields.REGISTERS[key].fields:
            if f.attr == column:
                return f.zh, f.en
    return column, column


def clean_value(table: Table, column: str, value: Any) -> Any:
    """``value`` as it may be stored in ``table.column`` (see the module docstring)."""
    if not isinstance(value, str):
        return value
    limit = _limits(table).get(column)
    if limit is None:
        return value
    value = clean(value)
    if len(value) > limit:
        zh, en = _label(table.name, column)
        raise ValidationError(f"“{zh}”太长：{len(value)} 个字符，最多 {limit} 个，请缩短后再保存", field=column,
                              en=f"{en} is too long: {len(value)} characters, at most {limit}; shorten it and save again")
    return value


def _needs_cleaning(table: Table, rows: list[Mapping[str, Any]]) -> bool:
    """Whether any text of ``rows`` breaks the rule — decided column by column over all rows at
    once (one ``isprintable`` over the joined texts), so a bulk write of clean rows costs little."""
    for key, limit in _limits(table).items():
        texts = [v for r in rows if isinstance(v := r.get(key), str)]
        if texts and (max(map(len, texts)) > limit or not "".join(texts).isprintable()):
            return True
    return False


def _clean_params(table: Table, params: Any) -> Any:
    if isinstance(params, Mapping):
        if not _needs_cleaning(table, [params]):
            return params  # the common case: nothing to change, no copy
        return {k: clean_value(table, k, v) if isinstance(v, str) else v for k, v in params.items()}
    if isinstance(params, list | tuple):
        if all(isinstance(p, Mapping) for p in params) and not _needs_cleaning(table, list(params)):
            return params
        return [_clean_params(table, p) for p in params]
    return params


def _clean_statement(stmt: ValuesBase, table: Table) -> ValuesBase:
    """An INSERT/UPDATE whose ``.values(…)`` hold text: the same statement with cleaned values."""
    values = getattr(stmt, "_values", None)
    if not values:
        return stmt
    changed: dict[Any, Any] = {}
    for key, bind in values.items():
        v = getattr(bind, "value", None)
        if isinstance(v, str):
            name = key if isinstance(key, str) else getattr(key, "key", None)
            if name is not None and clean_value(table, name, v) != v:
                changed[key] = clean_value(table, name, v)
    return stmt.values(changed) if changed else stmt


def _before_execute(conn: Any, clauseelement: Any, multiparams: Any, params: Any, execution_options: Any
                    ) -> tuple[Any, Any, Any]:
    if isinstance(clauseelement, Insert | Update) and isinstance(clauseelement.table, Table):
        table = clauseelement.table
        if _limits(table):
            clauseelement = _clean_statement(clauseelement, table)
            multiparams = _clean_params(table, multiparams)
            params = _clean_params(table, params)
    return clauseelement, multiparams, params


@functools.lru_cache(maxsize=256)
def _text_attrs(mapper: Any) -> tuple[tuple[str, str], ...]:
    """(attribute, column key) of the text columns a mapper maps."""
    table = mapper.local_table
    if not isinstance(table, Table):
        return ()
    limits = _limits(table)
    return tuple((mapper.get_property_by_column(c).key, c.key) for c in table.columns
                 if c.key in limits and c in mapper._columntoproperty)


def _before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    from sqlalchemy import inspect

    for obj in (*session.new, *session.dirty):
        state = inspect(obj)
        loaded = state.dict  # only what is loaded: never a query from here
        for attr, col in _text_attrs(state.mapper):
            v = loaded.get(attr)
            if isinstance(v, str):
                new = clean_value(state.mapper.local_table, col, v)
                if new != v:
                    setattr(obj, attr, new)


def install(engine: Engine, factory: sessionmaker[Session]) -> None:
    """Apply the rule to every statement of ``engine`` and every flush of ``factory``'s sessions."""
    event.listen(engine, "before_execute", _before_execute, retval=True)
    event.listen(factory, "before_flush", _before_flush)

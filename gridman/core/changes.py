"""What a unit of work changed: tables ("kinds") and row ids, as a typed record (Anki's ``OpChanges``).

One mechanism for every write: the audit log. Every change a unit of work makes is audited —
ORM flushes by the session hook (:mod:`gridman.core.services.audit`), bulk paths that bypass the
ORM (census import, exchange check-in, geometry moves, overdue escalation) by their own
``audit_log`` inserts. So :func:`start` notes the newest audit id when ``Database.work`` opens,
the commit notes the newest again (one index look-up), and :func:`of` — asked after the commit by
whoever wants to know (the GUI's op runner; not the CLI) — reads the audit rows between the two,
grouped by table and action, into :class:`Changes`: a big import pays nothing for it unless a view
listens. No service writes a change notice by hand, and none can forget one.

Ids are listed up to :data:`MAX_IDS` rows per table and action; beyond that (a big import) the
ids are ``None``: "some rows, too many to name" — a view then reloads what shows that table.
Rows of a child table (a resident's tags, an incident's steps) are reported under their parent
too (:data:`PARENTS`), so a register refreshes the parent row.

On PostgreSQL another user's unit of work committing meanwhile may add its rows to the list
(audit ids are not per transaction); that only refreshes a little more. On SQLite a unit of work
holds the write lock from its start, so the list is exact.

Qt-free. Threading: ``of`` runs in the worker thread of the unit of work; a ``Changes`` is
immutable and may be handed to the GUI thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from gridman.core.models import AuditEntry

MAX_IDS = 5000
ROW_ACTIONS = ("insert", "update", "delete")
# child table → (parent table, foreign key column): a change of the child is a change of the parent row
PARENTS: dict[str, tuple[str, str]] = {
    "resident_tags": ("residents", "resident_id"),
    "incident_steps": ("incidents", "incident_id"),
    "incident_parties": ("incidents", "incident_id"),
    "incident_attachments": ("incidents", "incident_id"),
    "organisation_members": ("organisations", "organisation_id"),
}
# A row that points at another row of the same table changes what that row shows: a merged
# duplicate appears in the timeline of the case it was merged into.
REFERENCES: dict[str, str] = {"incidents": "merged_into_id"}
_MARK = "changes_since"
_RESULT = "changes"
_UPTO = "changes_upto"

Ids = frozenset[int] | None  # None: some rows, too many to list
_NONE: frozenset[int] = frozenset()
_NO_FIELDS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TableChanges:
    """The rows of one table a unit of work inserted, updated or deleted, and the fields it
    updated (``None`` where unknown: too many rows, or a child table's change seen from its parent)."""

    inserted: Ids = _NONE
    updated: Ids = _NONE
    deleted: Ids = _NONE
    fields: frozenset[str] | None = _NO_FIELDS

    @property
    def ids(self) -> Ids:
        """Every row touched; None when some are not listed."""
        if self.inserted is None or self.updated is None or self.deleted is None:
            return None
        return self.inserted | self.updated | self.deleted

    @property
    def reshaped(self) -> bool:
        """Rows were inserted or deleted (a list showing this table gains or loses rows)."""
        return self.inserted is None or self.deleted is None or bool(self.inserted) or bool(self.deleted)

    def merged(self, other: TableChanges) -> TableChanges:
        def union(a: Any, b: Any) -> Any:
            return None if a is None or b is None else a | b

        return TableChanges(union(self.inserted, other.inserted), union(self.updated, other.updated),
                            union(self.deleted, other.deleted), union(self.fields, other.fields))


@dataclass(frozen=True)
class Changes:
    """What changed, by table name. ``everything``: the whole database may have changed (a
    restore from backup) — every view reloads. Falsy when nothing changed."""

    tables: Mapping[str, TableChanges] = field(default_factory=lambda: MappingProxyType({}))
    everything: bool = False

    @classmethod
    def all(cls) -> Changes:
        return cls(everything=True)

    @classmethod
    def of(cls, table: str, ids: Iterable[int] | None = None, *, reshaped: bool = True) -> Changes:
        """A notice written by hand (the compatibility path for views that still emit kinds):
        ``ids`` touched in ``table`` (None: unknown), fields unknown."""
        got = None if ids is None else frozenset(int(i) for i in ids)
        tc = TableChanges(inserted=got if reshaped else _NONE, updated=got, fields=None)
        return cls(MappingProxyType({table: tc}))

    def __bool__(self) -> bool:
        return self.everything or bool(self.tables)

    def touches(self, *tables: str) -> bool:
        return self.everything or any(t in self.tables for t in tables)

    def ids(self, table: str) -> Ids:
        """The rows of ``table`` touched (empty if none; None if unknown or ``everything``)."""
        if self.everything:
            return None
        tc = self.tables.get(table)
        return _NONE if tc is None else tc.ids

    def reshaped(self, table: str) -> bool:
        """Rows of ``table`` were inserted or deleted (or may have been)."""
        if self.everything:
            return True
        tc = self.tables.get(table)
        return tc is not None and tc.reshaped

    def touches_fields(self, table: str, fields: Iterable[str] | None = None, *,
                       ignore: Iterable[str] = ()) -> bool:
        """Rows of ``table`` were inserted or deleted, or an update changed one of ``fields``
        (any field when None) other than those in ``ignore``. Unknown fields count as touched."""
        if self.everything:
            return True
        tc = self.tables.get(table)
        if tc is None:
            return False
        if tc.reshaped or tc.fields is None:
            return True
        changed = tc.fields - frozenset(ignore)
        return bool(changed if fields is None else changed & frozenset(fields))

    def merged(self, other: Changes) -> Changes:
        out = dict(self.tables)
        for t, tc in other.tables.items():
            out[t] = out[t].merged(tc) if t in out else tc
        return Changes(MappingProxyType(out), self.everything or other.everything)

    def describe(self) -> str:
        """A short line for logs and tests: ``residents:u3 incidents:i1``."""
        if self.everything:
            return "everything"

        def n(ids: Ids) -> str:
            return "*" if ids is None else str(len(ids))

        return " ".join(f"{t}:i{n(tc.inserted)}u{n(tc.updated)}d{n(tc.deleted)}" for t, tc in sorted(self.tables.items()))


# --- collecting from the audit log -------------------------------------------------------------


def start(session: Session) -> None:
    """Note where this unit of work starts in the audit log (and, at its commit, where it ends).
    Called by ``Database.work`` after the transaction has begun (SQLite: holding the write lock)."""
    session.info[_MARK] = _newest(session)
    session.info.pop(_UPTO, None)
    session.info.pop(_RESULT, None)
    if not event.contains(Session, "before_commit", _at_commit):  # once per process, for every session
        event.listen(Session, "before_commit", _at_commit)


def _newest(session: Session) -> int:
    """The newest audit id (Core on the session's connection: cheaper than an ORM query)."""
    return int(session.connection().scalar(_NEWEST) or 0)


newest = _newest  # public: db.read_phase marks a long job's snapshot with it
_NEWEST = select(func.coalesce(func.max(AuditEntry.__table__.c.id), 0))


def _at_commit(session: Session) -> None:
    """Note the newest audit id of a unit of work :func:`start` marked (reads, migrations and tests'
    own sessions are left alone)."""
    if _MARK in session.info:
        session.flush()
        session.info[_UPTO] = _newest(session)


def of(session: Session) -> Changes:
    """What the committed unit of work ``session`` changed (empty if it wrote nothing, was rolled
    back or was not tracked). Asked after ``with db.work(actor) as s:`` has ended: the first call
    reads the audit rows in a short read of its own (the session is closed again afterwards)."""
    got = session.info.get(_RESULT)
    if isinstance(got, Changes):
        return got
    since, upto = session.info.get(_MARK), session.info.get(_UPTO)
    if since is None or upto is None:
        return Changes()
    try:
        got = collect(session, since, upto)
    finally:
        session.close()
    session.info[_RESULT] = got
    return got


def collect(session: Session, since: int, upto: int) -> Changes:
    """The audit rows with ids in ``(since, upto]`` (one unit of work's), as :class:`Changes`."""
    a = AuditEntry
    if upto <= since:
        return Changes()  # nothing audited: nothing written
    # both bounds, so that the database reads the id range (SQLite otherwise scans an index)
    mine = (a.id > since, a.id <= upto, a.table_name.isnot(None), a.action.in_(ROW_ACTIONS))
    counts = session.execute(select(a.table_name, a.action, func.count()).where(*mine)
                             .group_by(a.table_name, a.action)).all()
    acc: dict[str, dict[str, Any]] = {}
    for table, action, n in counts:
        table = str(table)
        slot = acc.setdefault(table, {"insert": set(), "update": set(), "delete": set(), "fields": set()})
        if n > MAX_IDS:
            slot[action] = None
            if action == "update":
                slot["fields"] = None
            _parent(acc, table, None)
            continue
        want_changes = action == "update" or table in PARENTS or table in REFERENCES
        cols = (a.row_id, a.changes) if want_changes else (a.row_id,)
        for row in session.execute(select(*cols).where(*mine, a.table_name == table, a.action == action)):
            if slot[action] is not None and row[0] is not None:
                slot[action].add(int(row[0]))
            ch = row[1] if want_changes else None
            if action == "update" and slot["fields"] is not None:
                if isinstance(ch, dict):
                    slot["fields"].update(ch)
                else:
                    slot["fields"] = None
            if table in PARENTS:
                _parent(acc, table, _parent_id(ch, PARENTS[table][1], action))
            if table in REFERENCES and slot["update"] is not None:
                ref = _parent_id(ch, REFERENCES[table], action)
                if ref is not None:
                    slot["update"].add(ref)
    return Changes(MappingProxyType({
        t: TableChanges(*(None if s[k] is None else frozenset(s[k]) for k in ("insert", "update", "delete", "fields")))
        for t, s in acc.items()}))


def _parent_id(changes: Any, key: str, action: str) -> int | None:
    if isinstance(changes, dict) and isinstance(changes.get(key), list) and len(changes[key]) == 2:
        old, new = changes[key]
        v = old if action == "delete" else new
        return int(v) if isinstance(v, int) else None
    return None


def _parent(acc: dict[str, dict[str, Any]], child: str, parent_id: int | None) -> None:
    """Report a change of a ``child`` row as an update of its parent row (id unknown → None)."""
    table = PARENTS.get(child, (None, ""))[0]
    if table is None:
        return
    slot = acc.setdefault(table, {"insert": set(), "update": set(), "delete": set(), "fields": set()})
    if parent_id is None:
        slot["update"] = None
    elif slot["update"] is not None:
        slot["update"].add(parent_id)
    if slot["fields"] is not None:
        slot["fields"].add(child)

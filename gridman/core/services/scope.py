"""Scope: which areas, grids and rows an actor may see or change — decided here and nowhere else.

The area tree is stored with a materialised id path (``/1/5/9/``): an area's subtree is every area
whose path starts with its path. That match is written once, in :func:`under` (SQL) and
:func:`is_under` (Python); every register, export, queue, dashboard figure, area tree, exchange
list and GUI filter builds its conditions from the functions below.

The rules (the product's, stated once):

- an **administrator**, and a **clerk** with no area, see everything;
- a **grid warden** sees the grids currently assigned to them (``Actor.grid_ids``), the rows on
  those grids, and the organisations and packages that sit on those grids — not the rest of the
  community their account may name;
- **community staff**, a **street supervisor** and a **clerk** with an area see that area's
  subtree; a scoped role without an area sees nothing;
- the area *tree* also shows the ancestors leading down to what the actor sees, so it can be
  drawn, but their rows stay out of scope.

Rows hang on a grid (residents, households, buildings, premises, visits, incidents: ``grid_col``)
or on an area of any level (organisations on a grid or a community, exchange packages on any
area: ``area_col``). Both use the same rules; the functions take the row's column so one rule
serves every table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true

from gridman.core.enums import AreaLevel, Role
from gridman.core.models import Area, WardenAssignment

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gridman.core.services.permissions import Actor


class AreaLike(Protocol):
    """Anything with an area's id, materialised path and level (an ``Area``, a result row, …)."""

    @property
    def id(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def level(self) -> str: ...


@dataclass(frozen=True)
class AreaRef:
    """An area as plain data, for actors and callers that hold no ORM object."""

    id: int
    path: str
    level: str


# --- the subtree match: written here only ----------------------------------------------------------


def under(path_col: Any, root_path: str) -> ColumnElement[bool]:
    """SQL: the area with path column ``path_col`` lies in the subtree rooted at ``root_path``
    (itself included). Paths hold only digits and slashes, so nothing needs escaping."""
    return path_col.like(root_path + "%")


def is_under(path: str, root_path: str) -> bool:
    """Python: the area with ``path`` lies in the subtree rooted at ``root_path`` (itself included)."""
    return path.startswith(root_path)


def path_ids(path: str) -> list[int]:
    """The ids along a materialised path, root first (the area itself last)."""
    return [int(x) for x in path.strip("/").split("/") if x]


def subtree_ids(root_path: str, *, level: AreaLevel | str | None = None) -> Select[int]:
    """SELECT of the ids of every area in the subtree at ``root_path``, optionally of one level."""
    q = select(Area.id).where(under(Area.path, root_path))
    if level is not None:
        q = q.where(Area.level == AreaLevel(level).value)
    return q


def subtree_areas(root_path: str, *, level: AreaLevel | str | None = None) -> Select[Area]:
    """SELECT of every ``Area`` in the subtree at ``root_path``, optionally of one level."""
    q = select(Area).where(under(Area.path, root_path))
    if level is not None:
        q = q.where(Area.level == AreaLevel(level).value)
    return q


def in_area(col: Any, area: AreaLike | None, *, community_col: Any = None,
            street_col: Any = None) -> ColumnElement[bool]:
    """Rows whose area/grid column ``col`` lies in ``area``'s subtree (everything if ``area`` is None).

    A grid is matched by equality. Tables that carry denormalised community/street columns
    (incidents) pass them, so a community or a street is one index range instead of a subquery.
    """
    if area is None:
        return true()
    level = str(area.level)
    if level == AreaLevel.GRID:
        return col == area.id
    if level == AreaLevel.COMMUNITY and community_col is not None:
        return community_col == area.id
    if level == AreaLevel.STREET and street_col is not None:
        return street_col == area.id
    return col.in_(subtree_ids(area.path))


# --- the actor's scope -------------------------------------------------------------------------------


def current_assignment(today: date) -> ColumnElement[bool]:
    """SQL: the warden assignments in force on ``today`` (started, not ended) — a warden's grids
    (``Actor.grid_ids``), the users register's and the dashboard's wardens per grid."""
    return and_(WardenAssignment.start_date <= today,
                or_(WardenAssignment.end_date.is_(None), WardenAssignment.end_date >= today))


def unrestricted(actor: Actor) -> bool:
    """Does the actor see the whole database (administrator, clerk without an area)?"""
    return actor.role == Role.ADMIN or (actor.role == Role.CLERK and actor.area_path is None)


def actor_area(actor: Actor) -> AreaRef | None:
    """The area an area-scoped actor's scope is rooted at (None for wardens and the unrestricted)."""
    if unrestricted(actor) or actor.role == Role.WARDEN or actor.area_path is None or actor.area_id is None:
        return None
    # an Actor built without its area's level falls back to the subtree subquery in :func:`in_area`
    return AreaRef(actor.area_id, actor.area_path, actor.area_level or "")


def rows(actor: Actor, col: Any, area: AreaLike | None = None, *, community_col: Any = None,
         street_col: Any = None) -> ColumnElement[bool]:
    """The rows (by their grid or area column ``col``) the actor may see — narrowed to ``area``'s
    subtree when one is chosen. The one filter every register, export, queue and figure uses."""
    conds: list[ColumnElement[bool]] = []
    if not unrestricted(actor):
        if actor.role == Role.WARDEN:
            conds.append(col.in_(sorted(actor.grid_ids)) if actor.grid_ids else false())
        else:
            root = actor_area(actor)
            if root is None:
                return false()
            conds.append(in_area(col, root, community_col=community_col, street_col=street_col))
    if area is not None:
        conds.append(in_area(col, area, community_col=community_col, street_col=street_col))
    if not conds:
        return true()
    return conds[0] if len(conds) == 1 else and_(*conds)


def area_ref(session: Session, area_id: int) -> AreaLike | None:
    """The area with id ``area_id`` (None if there is none); from the session's identity map when
    it was loaded before, so repeated filters cost no query."""
    return session.get(Area, area_id)


def rows_by_id(session: Session, actor: Actor, col: Any, area_id: int | None, *, community_col: Any = None,
               street_col: Any = None) -> ColumnElement[bool]:
    """:func:`rows` for a caller holding the chosen area's id (None: the actor's whole scope).
    An id that names no area selects nothing."""
    if area_id is None:
        return rows(actor, col, community_col=community_col, street_col=street_col)
    area = area_ref(session, area_id)
    if area is None:
        return false()
    return rows(actor, col, area, community_col=community_col, street_col=street_col)


def covers(actor: Actor, area: AreaLike) -> bool:
    """Is ``area`` (any level) inside the actor's scope (may they see and act on it)?"""
    if unrestricted(actor):
        return True
    if actor.role == Role.WARDEN:
        return area.id in actor.grid_ids
    if actor.area_path is None:
        return False
    return is_under(area.path, actor.area_path)


R = TypeVar("R", bound=AreaLike)


def tree_rows(actor: Actor, nodes: Sequence[R]) -> list[R]:
    """Of ``nodes`` (areas with id and path), those the actor's area tree shows: what they see, and
    the ancestors that lead down to it."""
    if unrestricted(actor):
        return list(nodes)
    if actor.role == Role.WARDEN:  # their grids and the ancestors above them
        grid_paths = [n.path for n in nodes if n.id in actor.grid_ids]
        return [n for n in nodes if any(is_under(gp, n.path) for gp in grid_paths)]
    root = actor.area_path
    if root is None:
        return []
    return [n for n in nodes if is_under(n.path, root) or is_under(root, n.path)]


def visible_grid_ids(actor: Actor, area: AreaLike | None = None) -> Select[int]:
    """SELECT of the ids of the grids the actor sees (within ``area`` when given)."""
    q = select(Area.id).where(Area.level == AreaLevel.GRID.value, rows(actor, Area.id, area))
    return q


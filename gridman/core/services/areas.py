"""The area tree: create areas, find them by code, walk subtrees (path-based)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridman.core import divisions, enums
from gridman.core.enums import AreaLevel
from gridman.core.models import Area
from gridman.core.services import scope
from gridman.core.services.errors import NotFound, ValidationError
from gridman.core.services.permissions import Actor, Perm, require

# Which levels may sit directly under which (a community may sit under a district: Guiyang).
ALLOWED_PARENTS: dict[AreaLevel, set[AreaLevel | None]] = {
    AreaLevel.CITY: {None},
    AreaLevel.DISTRICT: {AreaLevel.CITY, None},
    AreaLevel.STREET: {AreaLevel.DISTRICT},
    AreaLevel.COMMUNITY: {AreaLevel.STREET, AreaLevel.DISTRICT},
    AreaLevel.GRID: {AreaLevel.COMMUNITY},
}


def by_code(session: Session, code: str) -> Area:
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None:
        raise NotFound(f"找不到编码为 {code} 的区划或网格", en=f"No area with code {code}")
    return area


def create_area(session: Session, actor: Actor, *, code: str, name: str, level: AreaLevel | str,
                parent: Area | None = None, boundary: bytes | None = None,
                center: tuple[float, float] | None = None) -> Area:
    """Create one node; ``path`` is set from the parent's."""
    require(actor, Perm.MANAGE_AREAS, parent)
    level = AreaLevel(level)
    parent_level = AreaLevel(parent.level) if parent else None
    if parent_level not in ALLOWED_PARENTS[level]:
        raise ValidationError(
            f"{name}：{level.value} 不能直接设在 {parent_level or '顶层'} 之下",
            field="parent", en=f"{name}: a {level.value} cannot sit under {parent_level or 'the top'}",
        )
    if not code.isdigit():
        raise ValidationError(f"区划编码 {code!r} 只能是数字", field="code", en=f"Area code {code!r} must be digits")
    if parent is not None and level == AreaLevel.GRID and not code.startswith(parent.code):
        raise ValidationError(
            f"网格编码 {code} 应以所属社区编码 {parent.code} 开头", field="code",
            en=f"Grid code {code} must extend its community's code {parent.code}",
        )
    if session.scalar(select(func.count()).where(Area.code == code)):
        raise ValidationError(f"区划编码 {code} 已存在", field="code", en=f"Area code {code} already exists")
    area = Area(code=code, name=name, level=level.value, parent=parent, boundary=boundary,
                depth=(parent.depth + 1) if parent else 0)
    if center:
        area.center_lon, area.center_lat = center
    session.add(area)
    session.flush()
    area.path = (parent.path if parent else "/") + f"{area.id}/"
    session.flush()
    return area


def infer_parent(session: Session, code: str, level: AreaLevel | str) -> Area | None:
    """The existing area ``code`` belongs under: the nearest of the codes its parent may have
    (:func:`gridman.core.divisions.parent_codes` — 340102 → 340100, 340104001 → 340104) whose level
    may hold ``level``; None if there is none."""
    allowed = {p.value for p in ALLOWED_PARENTS[AreaLevel(level)] if p is not None}
    candidates = divisions.parent_codes(code)
    found = {a.code: a for a in session.scalars(select(Area).where(Area.code.in_(candidates)))} if candidates else {}
    return next((found[c] for c in candidates if c in found and found[c].level in allowed), None)


def add_area(session: Session, actor: Actor, *, code: str, name: str, level: AreaLevel | str,
             parent_code: str | None = None) -> Area:
    """Add one area by hand (``gridman areas add``): under ``parent_code`` if given, else under the
    area its code belongs to (:func:`infer_parent`); a city, or a district without a city, may be
    at the top. Refused, naming the expected parent, when a level that needs a parent finds none."""
    level = AreaLevel(level)
    code, name = code.strip(), name.strip()
    if not name:
        raise ValidationError("请填写区划名称", field="name", en="Give the area's name")
    parent = by_code(session, parent_code) if parent_code else infer_parent(session, code, level)
    if parent is None and None not in ALLOWED_PARENTS[level]:
        want = divisions.parent_codes(code)
        raise ValidationError(
            f"找不到 {code} 的上级区划{('（应为 ' + want[0] + '）') if want else ''}：请先添加上级，或用 --parent 指定",
            field="parent",
            en=f"No parent area found for {code}{(' (expected ' + want[0] + ')') if want else ''}: add it first "
               "or give --parent")
    return create_area(session, actor, code=code, name=name, level=level, parent=parent)


def ancestors(session: Session, area: Area) -> list[Area]:
    """From the root down to ``area``'s parent."""
    ids = scope.path_ids(area.path)[:-1]
    if not ids:
        return []
    found = {a.id: a for a in session.scalars(select(Area).where(Area.id.in_(ids)))}
    return [found[i] for i in ids]


def ancestor_of_level(session: Session, area: Area, level: AreaLevel | str) -> Area | None:
    level = AreaLevel(level)
    if area.level == level:
        return area
    for a in ancestors(session, area):
        if a.level == level:
            return a
    return None


@dataclass(frozen=True)
class AreaNode:
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    depth: int


def tree(session: Session, actor: Actor, root: Area | None = None) -> list[AreaNode]:
    """The part of the area tree (under ``root`` if given) the actor may see, as plain rows ordered
    by code: what :func:`scope.tree_rows` shows — the actor's scope and the ancestors leading to it."""
    q = select(Area.id, Area.code, Area.name, Area.level, Area.parent_id, Area.depth, Area.path).order_by(Area.code)
    if root is not None:
        q = q.where(scope.under(Area.path, root.path))
    rows = scope.tree_rows(actor, session.execute(q).all())
    return [AreaNode(r.id, r.code, r.name, r.level, r.parent_id, r.depth) for r in rows]


@dataclass(frozen=True)
class AreaChoice:
    """An area as a picker shows it."""

    id: int
    code: str
    name: str
    level: str

    def label(self, lang: str = "zh_CN") -> str:
        """``笔架山街道（街道）``: the name and the level, in the user's language."""
        return f"{self.name}（{enums.label(self.level, lang, AreaLevel)}）"


def choices(session: Session, actor: Actor, *, levels: tuple[AreaLevel | str, ...]) -> list[AreaChoice]:
    """The areas of ``levels`` inside the actor's scope, ordered by code (pickers of an area to
    report on or export: each one the actor may act on)."""
    q = (select(Area.id, Area.code, Area.name, Area.level)
         .where(Area.level.in_([AreaLevel(lv).value for lv in levels]), scope.rows(actor, Area.id))
         .order_by(Area.code))
    return [AreaChoice(i, c, n, lv) for i, c, n, lv in session.execute(q)]


def choice(session: Session, area_id: int | None) -> AreaChoice | None:
    """The area ``area_id`` as a :class:`AreaChoice` (None for no area or an unknown id)."""
    a = session.get(Area, area_id) if area_id else None
    return AreaChoice(a.id, a.code, a.name, a.level) if a is not None else None

"""Who may handle a case: the candidates for 分派, and users named by their username."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core.enums import Role
from gridman.core.models import User, WardenAssignment
from gridman.core.services.errors import NotFound
from gridman.core.services.mediation.cases import load
from gridman.core.services.mediation.rules import LEVEL_ROLE, may_act
from gridman.core.services.permissions import Actor, actor_for


def user_id(session: Session, username: str) -> int:
    """The id of the user signed in as ``username`` (CLI options name users by username)."""
    uid = session.scalar(select(User.id).where(User.username == username))
    if uid is None:
        raise NotFound(f"用户 {username} 不存在", en=f"No user {username}")
    return int(uid)


def handler_candidates(session: Session, actor: Actor, incident_ids: Sequence[int]) -> list[tuple[int, str, str]]:
    """Users (id, display name, role) to whom ``actor`` could assign EVERY one of these cases now:
    active accounts of the role of each case's level whose scope covers the case."""
    incs = [load(session, actor, int(i), lock=False) for i in incident_ids]
    if not incs:
        return []
    grid_ids = {i.grid_id for i in incs}
    area_ids = {i.community_id for i in incs} | {i.street_id for i in incs}
    roles = {LEVEL_ROLE[i.level] for i in incs}
    if len(roles) != 1:
        return []  # cases at different levels have no common handler
    role = roles.pop()
    q = select(User).where(User.active.is_(True), User.is_system.is_(False), User.role == role.value)
    if role == Role.WARDEN:
        q = q.where(User.id.in_(select(WardenAssignment.user_id).where(WardenAssignment.grid_id.in_(grid_ids),
                                                                       WardenAssignment.end_date.is_(None))))
    else:
        q = q.where(User.area_id.in_({a for a in area_ids if a is not None}))
    out = []
    for user in session.scalars(q.order_by(User.display_name)):
        cand = actor_for(session, user)
        if all(may_act(session, cand, inc, inc.level) for inc in incs):
            out.append((user.id, user.display_name, user.role))
    return out


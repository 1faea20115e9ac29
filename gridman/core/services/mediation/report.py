"""上报: registering a new incident in a grid, at the reporter's level, with its deadlines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridman.core.enums import AreaLevel, DisputeKind, IncidentCategory, MediationLevel, Priority, label
from gridman.core.models import Area, Building, Incident, IncidentParty, Resident
from gridman.core.services import scope
from gridman.core.services.errors import NotFound, ValidationError
from gridman.core.services.mediation.attachments import store as store_attachment
from gridman.core.services.mediation.cases import append_step, flush, now_or
from gridman.core.services.mediation.records import ActionResult, AttachmentInput, PartyInput
from gridman.core.services.mediation.rules import Action, S, enum_value, start_level, text
from gridman.core.services.permissions import Actor, Perm, require
from gridman.core.services.time_limits import CASE, Deadlines


def _party_rows(session: Session, actor: Actor, parties: Sequence[PartyInput]) -> list[IncidentParty]:
    """The parties; a registered resident only from the actor's scope (one outside it is refused
    as if it did not exist: its name would otherwise be copied into the case)."""
    rows: list[IncidentParty] = []
    for i, p in enumerate(parties, 1):
        name = text(p.name, "parties", f"第 {i} 个当事人的姓名", max_len=60)
        if p.resident_id is not None:
            r = session.scalar(select(Resident).where(Resident.id == p.resident_id,
                                                      scope.rows(actor, Resident.grid_id)))
            if r is None:
                raise ValidationError(f"第 {i} 个当事人：人员 {p.resident_id} 不存在", field="parties",
                                      en=f"Party {i}: no resident {p.resident_id}")
            name = r.name
        if not name:
            raise ValidationError(f"第 {i} 个当事人：请选择登记人员或填写姓名", field="parties",
                                  en=f"Party {i}: choose a resident or give a name")
        rows.append(IncidentParty(resident_id=p.resident_id, name=name, role=p.role or "party",
                                  phone=text(p.phone, "parties", "电话", max_len=30)))
    return rows


def _check_place(session: Session, actor: Actor, building_id: int | None, lon: float | None,
                 lat: float | None) -> None:
    """The place: a building only from the actor's scope (one outside it is refused as if it did
    not exist, like a party), a whole point in range."""
    if building_id is not None and session.scalar(select(Building.id).where(
            Building.id == building_id, scope.rows(actor, Building.grid_id))) is None:
        raise ValidationError(f"建筑 {building_id} 不存在", field="building_id", en=f"No building {building_id}")
    if (lon is None) != (lat is None):
        raise ValidationError("地点坐标需同时填写经度和纬度", field="lon", en="Give both lon and lat")
    if lon is not None and lat is not None and not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValidationError(f"坐标 ({lon}, {lat}) 超出范围", field="lon", en=f"Point ({lon}, {lat}) out of range")


def report(session: Session, actor: Actor, *, grid_id: int, category: str, title: str,
           description: str | None = None, subcategory: str | None = None, priority: str = "normal",
           source: str | None = None, occurred_at: datetime | None = None,
           parties: Sequence[PartyInput] = (), building_id: int | None = None, lon: float | None = None,
           lat: float | None = None, location_text: str | None = None,
           attachments: Sequence[AttachmentInput] = (), now: datetime | None = None) -> ActionResult:
    """Register an incident (上报) in a grid; starts at the reporter's level with its deadlines."""
    now = now_or(now)
    grid = session.get(Area, grid_id)
    if grid is None or grid.level != AreaLevel.GRID:
        raise NotFound(f"网格 {grid_id} 不存在", en=f"No grid {grid_id}")
    require(actor, Perm.REPORT_INCIDENT, grid)
    cat = enum_value(IncidentCategory, category, "category", "事件类别")
    if cat is None:
        raise ValidationError("请选择事件类别", field="category", en="category is required")
    sub = enum_value(DisputeKind, subcategory, "subcategory", "纠纷类型")
    if sub is not None and cat != IncidentCategory.DISPUTE:
        raise ValidationError("只有矛盾纠纷才有纠纷类型", field="subcategory",
                              en="Only disputes have a dispute kind")
    prio = enum_value(Priority, priority, "priority", "优先级") or Priority.NORMAL.value
    title_v = text(title, "title", "事件标题", required=True, max_len=200)
    _check_place(session, actor, building_id, lon, lat)
    party_rows = _party_rows(session, actor, parties)
    parents = {a.level: a for a in session.scalars(select(Area).where(Area.id.in_(scope.path_ids(grid.path))))}
    level = start_level(actor)
    deadlines = Deadlines.load(session)
    inc = Incident(
        grid_id=grid.id, community_id=parents["community"].id if "community" in parents else None,
        street_id=parents["street"].id if "street" in parents else None, category=cat, subcategory=sub,
        title=title_v, description=text(description, "description", "事件描述"), priority=prio,
        source=source, occurred_at=occurred_at, reported_at=now, reporter_id=actor.user_id,
        building_id=building_id, lon=lon, lat=lat, location_text=text(location_text, "location_text", "地点", max_len=200),
        status=S.REPORTED.value, level=level, level_entered_at=now,
        due_at=deadlines.due(level, cat, now), case_due_at=deadlines.due(CASE, cat, now),
        created_at=now, updated_at=now,
    )
    inc.parties = party_rows
    session.add(inc)
    flush(session)
    for att in attachments:
        store_attachment(session, actor, inc, att, now)
    note = f"{actor.display_name}上报，{label(MediationLevel(level))}层级办理"
    return append_step(session, actor, inc, Action.REPORT, from_level=None, from_status=None, now=now, note=note)


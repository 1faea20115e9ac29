"""Three-level mediation (三级调处): one state machine from report to verified closure.

An incident enters at the **grid** (or at the reporter's own level if that is higher), is accepted
(受理), handled (处理: notes, visits, mediation sessions), and either resolved (调解成功, with the
agreement) or not (调解不成). It can be escalated one level up (grid → community → street), handed
down one level with instructions, or referred (分流) to a professional mediation committee or a
department, where it stays tracked until the outcome is recorded. A resolved case is verified and
closed (核查结案) by the level above the one that resolved it (setting ``mediation.verify_by``), then
the resident evaluates it; 不满意 or a failed verification reopens it at the level that handled it.
A duplicate report is merged into an open case; both timelines are kept.

Rules every action obeys:

- it appends exactly one :class:`IncidentStep` (who, when, from/to level and status, note) and
  bumps the incident's ``version``;
- it is refused with :class:`InvalidTransition` if the case's status does not allow it, and with
  :class:`PermissionDenied` if the actor may not act at the case's level (:func:`require_level`,
  the one place those rules live) — in both cases before anything is written;
- it takes ``expected_version`` (the version the user saw): a different current version raises
  :class:`ConflictError`. The row is read ``FOR UPDATE`` (PostgreSQL; SQLite serialises writers
  with ``BEGIN IMMEDIATE``), so of two people acting at once the second waits, then gets the conflict.

``due_at`` is the deadline at the current level and is recomputed at every level change;
``case_due_at`` is the whole case's deadline. Invariant the queue relies on: ``due_at`` is set
exactly while the case is active (not closed, not merged).

Threading: functions take an open session (``with db.work(actor) as s:``); no global state.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gridman.core import config
from gridman.core.enums import (
    AreaLevel,
    DisputeKind,
    IncidentCategory,
    IncidentStatus,
    MediationLevel,
    Priority,
    ReferralTarget,
    Role,
    Satisfaction,
    label,
    parse,
)
from gridman.core.models import (
    Area,
    AuditEntry,
    Building,
    Incident,
    IncidentAttachment,
    IncidentParty,
    IncidentStep,
    Resident,
    Setting,
    User,
    new_uuid,
    utcnow,
)
from gridman.core.services import audit
from gridman.core.services.errors import (
    ConflictError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from gridman.core.services.permissions import Actor, Perm, actor_for, grid_scope_filter, require
from gridman.core.services.time_limits import CASE, Deadlines

S = IncidentStatus
LEVELS: tuple[str, ...] = (MediationLevel.GRID.value, MediationLevel.COMMUNITY.value, MediationLevel.STREET.value)
# Not closed and not merged: what the supervisor's queue shows (``due_at`` is set exactly for these).
ACTIVE_STATUSES: tuple[str, ...] = tuple(
    s.value for s in (S.REPORTED, S.ACCEPTED, S.IN_PROGRESS, S.RESOLVED, S.FAILED, S.REFERRED))
# What the overdue sweep escalates (a referred case is with another body; a resolved one awaits verification).
SWEEP_STATUSES: tuple[str, ...] = tuple(s.value for s in (S.REPORTED, S.ACCEPTED, S.IN_PROGRESS, S.FAILED))

LEVEL_ROLE: dict[str, Role] = {"grid": Role.WARDEN, "community": Role.COMMUNITY_STAFF,
                               "street": Role.STREET_SUPERVISOR}
ROLE_LEVEL: dict[Role, str] = {Role.COMMUNITY_STAFF: "community", Role.STREET_SUPERVISOR: "street"}

VERIFY_SETTING = "mediation.verify_by"  # "level_above" (default) or "same_level"
OVERDUE_NOTE = "超期"


class Action(StrEnum):
    REPORT = "report"  # 上报
    ACCEPT = "accept"  # 受理
    ASSIGN = "assign"  # 分派 (give the case to a handler of its level)
    HANDLE = "handle"  # 处理 (note / visit / mediation session)
    RESOLVE = "resolve"  # 调解成功
    FAIL = "fail"  # 调解不成
    ESCALATE = "escalate"  # 上报上级
    HAND_DOWN = "hand_down"  # 交办下级
    REFER = "refer"  # 分流
    REFERRAL_OUTCOME = "referral_outcome"  # 分流结果
    VERIFY = "verify"  # 核查结案
    VERIFY_FAIL = "verify_fail"  # 核查不通过
    EVALUATE = "evaluate"  # 满意度评价
    REOPEN = "reopen"  # 重新办理
    MERGE = "merge"  # 合并重复事件
    ATTACH = "attach"  # 添加附件
    OVERDUE = "overdue"  # 街道层级超期标记 (by the sweep)


ACTION_LABELS: dict[str, tuple[str, str]] = {
    Action.REPORT: ("上报", "report"),
    Action.ACCEPT: ("受理", "accept"),
    Action.ASSIGN: ("分派", "assign"),
    Action.HANDLE: ("处理", "handle"),
    Action.RESOLVE: ("调解成功", "resolve"),
    Action.FAIL: ("调解不成", "record a failed mediation"),
    Action.ESCALATE: ("上报上级", "escalate"),
    Action.HAND_DOWN: ("交办下级", "hand down"),
    Action.REFER: ("分流", "refer"),
    Action.REFERRAL_OUTCOME: ("登记分流结果", "record the referral outcome"),
    Action.VERIFY: ("核查结案", "verify and close"),
    Action.VERIFY_FAIL: ("核查不通过", "fail verification"),
    Action.EVALUATE: ("满意度评价", "evaluate"),
    Action.REOPEN: ("重新办理", "reopen"),
    Action.MERGE: ("合并", "merge"),
    Action.ATTACH: ("添加附件", "attach a file"),
    Action.OVERDUE: ("超期标记", "flag overdue"),
}

# The statuses each action may start from (the state machine).
ALLOWED_FROM: dict[Action, frozenset[str]] = {
    Action.ACCEPT: frozenset({S.REPORTED}),
    Action.ASSIGN: frozenset({S.REPORTED, S.ACCEPTED, S.IN_PROGRESS, S.FAILED}),
    Action.HANDLE: frozenset({S.ACCEPTED, S.IN_PROGRESS, S.FAILED}),
    Action.RESOLVE: frozenset({S.ACCEPTED, S.IN_PROGRESS}),
    Action.FAIL: frozenset({S.ACCEPTED, S.IN_PROGRESS}),
    Action.ESCALATE: frozenset({S.REPORTED, S.ACCEPTED, S.IN_PROGRESS, S.FAILED}),
    Action.HAND_DOWN: frozenset({S.REPORTED, S.ACCEPTED, S.IN_PROGRESS, S.FAILED}),
    Action.REFER: frozenset({S.ACCEPTED, S.IN_PROGRESS, S.FAILED}),
    Action.REFERRAL_OUTCOME: frozenset({S.REFERRED}),
    Action.VERIFY: frozenset({S.RESOLVED}),
    Action.VERIFY_FAIL: frozenset({S.RESOLVED}),
    Action.EVALUATE: frozenset({S.CLOSED}),
    Action.REOPEN: frozenset({S.CLOSED}),
    Action.MERGE: frozenset({S.REPORTED, S.ACCEPTED, S.IN_PROGRESS, S.FAILED, S.REFERRED}),
    Action.ATTACH: frozenset(ACTIVE_STATUSES) | {S.CLOSED},
}

HANDLE_KINDS = {"note": "办理记录", "visit": "走访", "session": "调解会"}


def _lbl(action: str, lang: str = "zh") -> str:
    zh, en = ACTION_LABELS.get(action, (action, action))
    return en if lang == "en" else zh


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionResult:
    """What an action returns: the case's new state and the step it appended."""

    incident_id: int
    action: str
    version: int
    level: str
    status: str
    due_at: datetime | None
    case_due_at: datetime | None
    step_seq: int


@dataclass(frozen=True)
class StepView:
    incident_id: int
    seq: int
    at: datetime
    action: str
    action_label: str
    actor_id: int | None
    actor_name: str | None
    from_level: str | None
    to_level: str | None
    from_status: str | None
    to_status: str | None
    target: str | None
    note: str | None


@dataclass(frozen=True)
class PartyView:
    name: str
    role: str
    resident_id: int | None
    phone: str | None


@dataclass(frozen=True)
class AttachmentView:
    id: int
    filename: str
    sha256: str
    size: int
    mime: str | None


@dataclass(frozen=True)
class IncidentView:
    """One case with its timeline (``steps`` include those of duplicates merged into it)."""

    id: int
    version: int
    grid_id: int
    grid_name: str
    category: str
    category_label: str
    subcategory: str | None
    title: str
    description: str | None
    level: str
    level_label: str
    status: str
    status_label: str
    priority: str
    reported_at: datetime
    due_at: datetime | None
    case_due_at: datetime | None
    overdue: bool
    handler_id: int | None
    handled_level: str | None
    agreement_text: str | None
    agreement_terms: str | None
    referral_target: str | None
    referral_outcome: str | None
    closed_at: datetime | None
    closed_on_time: bool | None
    satisfaction: str | None
    merged_into_id: int | None
    merged_ids: list[int]
    building_id: int | None
    lon: float | None
    lat: float | None
    location_text: str | None
    parties: list[PartyView] = field(default_factory=list)
    attachments: list[AttachmentView] = field(default_factory=list)
    steps: list[StepView] = field(default_factory=list)


@dataclass(frozen=True)
class PartyInput:
    """A party (当事人): a resident of the register (``resident_id``) or a free-text person (``name``)."""

    name: str | None = None
    resident_id: int | None = None
    role: str = "party"  # applicant / respondent / party
    phone: str | None = None


@dataclass(frozen=True)
class AttachmentInput:
    filename: str
    data: bytes
    mime: str | None = None


@dataclass(frozen=True)
class SweepResult:
    """What :func:`escalate_overdue` did: ``escalated`` cases moved one level up, ``flagged``
    street-level cases got an overdue mark (there is no level above the street)."""

    now: datetime
    escalated: int
    flagged: int
    escalated_ids: list[int]
    flagged_ids: list[int]


# --- permissions: the one place the level rules live ---------------------------------------


def level_above(level: str) -> str | None:
    i = LEVELS.index(level)
    return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


def level_below(level: str) -> str | None:
    i = LEVELS.index(level)
    return LEVELS[i - 1] if i > 0 else None


def verify_by_setting(session: Session) -> str:
    with session.no_autoflush:
        row = session.get(Setting, VERIFY_SETTING)
    v = row.value if row is not None else None
    return v if v in ("level_above", "same_level") else "level_above"


def set_verify_by(session: Session, actor: Actor, value: str) -> None:
    """Who verifies and closes: ``level_above`` the resolving level (default) or the ``same_level``."""
    require(actor, Perm.MANAGE_POLICY)
    if value not in ("level_above", "same_level"):
        raise ValidationError(f"核查层级设置 {value!r} 无效（level_above 或 same_level）", field=VERIFY_SETTING,
                              en=f"Invalid verification setting {value!r} (level_above or same_level)")
    row = session.get(Setting, VERIFY_SETTING)
    if row is None:
        session.add(Setting(key=VERIFY_SETTING, value=value))
    else:
        row.value = value
    session.flush()


def verifying_level(session: Session, inc: Incident) -> str:
    """The level that verifies, closes, evaluates and reopens a case: above the level that handled
    it (the street verifies its own), or the same level if so configured."""
    handled = inc.handled_level or inc.level
    if verify_by_setting(session) == "same_level":
        return handled
    return level_above(handled) or handled


def acting_level(session: Session, inc: Incident, action: Action) -> str:
    if action in (Action.VERIFY, Action.VERIFY_FAIL, Action.EVALUATE, Action.REOPEN):
        return verifying_level(session, inc)
    return inc.level


def may_act(session: Session, actor: Actor, inc: Incident, level: str) -> bool:
    try:
        require_level(session, actor, inc, level)
    except PermissionDenied:
        return False
    return True


def require_level(session: Session, actor: Actor, inc: Incident, level: str, action: str | None = None) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` may act on ``inc`` at ``level``.

    Administrators act anywhere. Otherwise the actor needs ``Perm.HANDLE_INCIDENT``, the role of
    that level (grid: warden of the case's grid; community: staff of its community; street:
    supervisor of its street) and the case's grid inside their scope. Clerks report, never handle.
    """
    if actor.is_admin:
        return
    what = _lbl(action) if action else "办理"
    what_en = _lbl(action, "en") if action else "handle"
    require(actor, Perm.HANDLE_INCIDENT)
    need = LEVEL_ROLE[level]
    grid = session.get(Area, inc.grid_id)
    if actor.role != need:
        raise PermissionDenied(
            f"{actor.display_name}（{label(actor.role)}）不能对事件 #{inc.id}“{what}”："
            f"此操作属于{label(MediationLevel(level))}层级，应由{label(need)}办理。",
            en=f"{actor.display_name} ({label(actor.role, 'en')}) may not {what_en} case #{inc.id}: "
               f"this belongs to the {level} level ({label(need, 'en')}).",
        )
    if grid is None or not actor.covers(grid):
        where = grid.name if grid is not None else str(inc.grid_id)
        raise PermissionDenied(
            f"{actor.display_name}（{label(actor.role)}）不能对事件 #{inc.id}“{what}”：该事件所在的“{where}”"
            "不在其负责范围内。",
            en=f"{actor.display_name} ({label(actor.role, 'en')}) may not {what_en} case #{inc.id}: "
               f"{where} is outside their area.",
        )


def allowed_actions(session: Session, actor: Actor, incident: Incident | int) -> list[str]:
    """The actions ``actor`` may take on the case now, in the state machine's order — what a front
    offers as buttons. The same checks the actions make (status, level above/below, evaluated
    once, the acting level's role and area), without writing anything; an action listed here can
    still fail on its inputs (a missing reason) or a concurrent change (ConflictError)."""
    inc = incident if isinstance(incident, Incident) else _load(session, actor, int(incident), lock=False)
    if not actor.is_admin and not actor.can(Perm.HANDLE_INCIDENT):
        return []
    out: list[str] = []
    for action in ACTIONS:
        if inc.status not in ALLOWED_FROM[action]:
            continue
        if action == Action.ESCALATE and level_above(inc.level) is None:
            continue
        if action == Action.HAND_DOWN and level_below(inc.level) is None:
            continue
        if action == Action.EVALUATE and inc.satisfaction is not None:
            continue
        if may_act(session, actor, inc, acting_level(session, inc, action)):
            out.append(action.value)
    return out


# --- plumbing -------------------------------------------------------------------------------


def _status_label(status: str) -> str:
    return label(status, enum=IncidentStatus)


def _invalid(inc: Incident, action: Action, reason: str | None = None, en: str | None = None) -> InvalidTransition:
    if reason is None:
        allowed = "、".join(_status_label(s) for s in sorted(ALLOWED_FROM.get(action, ())))
        reason = f"事件 #{inc.id} 当前状态为“{_status_label(inc.status)}”，不能“{_lbl(action)}”（只能在{allowed}时进行）。"
        en = f"Case #{inc.id} is {inc.status}; cannot {_lbl(action, 'en')} from that status."
    return InvalidTransition(reason, en=en)


def _load(session: Session, actor: Actor, incident_id: int, *, lock: bool = True) -> Incident:
    q = select(Incident).where(Incident.id == incident_id).execution_options(populate_existing=True)
    if lock:
        q = q.with_for_update()
    inc = session.scalar(q)
    if inc is None:
        raise NotFound(f"事件 #{incident_id} 不存在", en=f"No incident #{incident_id}")
    if not actor.is_admin:
        grid = session.get(Area, inc.grid_id)
        require(actor, Perm.READ, grid)
    return inc


def _check_version(inc: Incident, expected_version: int | None) -> None:
    if expected_version is not None and inc.version != expected_version:
        raise ConflictError(
            f"事件 #{inc.id} 已被其他人处理（版本 {expected_version} → {inc.version}），请重新加载后再操作。",
            en=f"Case #{inc.id} was changed by someone else (version {expected_version} → {inc.version}); "
               "reload and try again.",
        )


def _begin(session: Session, actor: Actor, incident_id: int, action: Action,
           expected_version: int | None) -> Incident:
    """Load (locked), check the version, the transition and the actor's level — nothing written yet."""
    inc = _load(session, actor, incident_id)
    _check_version(inc, expected_version)
    if inc.status not in ALLOWED_FROM[action]:
        raise _invalid(inc, action)
    return inc


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise ConflictError("该事件已被其他人修改，请重新加载后再操作。",
                            en="Someone else changed this case meanwhile; reload and try again.") from exc


def _append_step(session: Session, actor: Actor, inc: Incident, action: Action, *, from_level: str | None,
                 from_status: str | None, now: datetime, note: str | None = None,
                 target: str | None = None) -> ActionResult:
    """The one way a step is written: append, bump the version (updated_at is always set, so the
    row is always UPDATEd and SQLAlchemy's version counter always moves), flush."""
    with session.no_autoflush:  # one flush per action: one UPDATE, one version bump
        seq = (session.scalar(select(func.max(IncidentStep.seq)).where(IncidentStep.incident_id == inc.id)) or 0) + 1
    inc.updated_at = now
    session.add(IncidentStep(
        uuid=new_uuid(), incident_id=inc.id, seq=seq, at=now, actor_id=actor.user_id,
        actor_name=actor.display_name, action=action.value, from_level=from_level, to_level=inc.level,
        from_status=from_status, to_status=inc.status, target=target, note=note,
    ))
    _flush(session)
    return ActionResult(inc.id, action.value, inc.version, inc.level, inc.status, inc.due_at, inc.case_due_at, seq)


def _text(value: str | None, field_name: str, zh: str, *, required: bool = False, max_len: int | None = None) -> str | None:
    v = (value or "").strip() or None
    if required and v is None:
        raise ValidationError(f"请填写{zh}", field=field_name, en=f"{field_name} is required")
    if v is not None and max_len is not None and len(v) > max_len:
        raise ValidationError(f"{zh}不能超过 {max_len} 个字（现有 {len(v)} 个）", field=field_name,
                              en=f"{field_name} is longer than {max_len} characters")
    return v


def _enum(enum: type[StrEnum], value: str | None, field_name: str, zh: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        return parse(enum, value).value
    except ValueError:
        allowed = "、".join(f"{m.value}（{label(m)}）" for m in enum)
        raise ValidationError(f"{zh} {value!r} 无效，可选：{allowed}", field=field_name,
                              en=f"Invalid {field_name} {value!r}; one of {', '.join(m.value for m in enum)}") from None


def _now(now: datetime | None) -> datetime:
    return now if now is not None else utcnow()


def _enter_level(inc: Incident, level: str, now: datetime, deadlines: Deadlines) -> None:
    """A (new) period at ``level`` starts now: fresh deadline, no handler yet."""
    inc.level = level
    inc.level_entered_at = now
    inc.due_at = deadlines.due(level, inc.category, now)


# --- attachments ----------------------------------------------------------------------------


def attachments_root(session: Session) -> Path:
    """``attachments/`` beside an SQLite file; in the data directory for PostgreSQL."""
    url = session.get_bind().engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        return Path(url.database).resolve().parent / "attachments"
    return config.data_dir() / "attachments"


def attachment_path(session: Session, sha256: str) -> Path:
    return attachments_root(session) / sha256[:2] / sha256


def _store_attachment(session: Session, actor: Actor, inc: Incident, att: AttachmentInput, now: datetime) -> str:
    """Write the file under its content hash (atomically, once) and add the row. A rolled-back
    transaction may leave an unreferenced file behind: harmless, it is content-addressed."""
    name = _text(att.filename, "filename", "附件文件名", required=True, max_len=200)
    assert name is not None
    name = os.path.basename(name)
    if len(att.data) > 50 * 2**20:
        raise ValidationError(f"附件 {name} 超过 50 MB", field="attachments", en=f"Attachment {name} exceeds 50 MB")
    digest = hashlib.sha256(att.data).hexdigest()
    dest = attachment_path(session, digest)
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{digest}.{os.getpid()}.tmp")
        tmp.write_bytes(att.data)
        os.replace(tmp, dest)
    session.add(IncidentAttachment(
        incident_id=inc.id, sha256=digest, filename=name, mime=att.mime or mimetypes.guess_type(name)[0],
        size=len(att.data), added_by=actor.user_id, added_at=now,
    ))
    return digest


# --- report ---------------------------------------------------------------------------------


def start_level(actor: Actor) -> str:
    """Grid unless the reporter's own level is higher (community staff, street supervisors)."""
    return ROLE_LEVEL.get(actor.role, "grid")


def report(session: Session, actor: Actor, *, grid_id: int, category: str, title: str,
           description: str | None = None, subcategory: str | None = None, priority: str = "normal",
           source: str | None = None, occurred_at: datetime | None = None,
           parties: Sequence[PartyInput] = (), building_id: int | None = None, lon: float | None = None,
           lat: float | None = None, location_text: str | None = None,
           attachments: Sequence[AttachmentInput] = (), now: datetime | None = None) -> ActionResult:
    """Register an incident (上报) in a grid; starts at the reporter's level with its deadlines."""
    now = _now(now)
    grid = session.get(Area, grid_id)
    if grid is None or grid.level != AreaLevel.GRID:
        raise NotFound(f"网格 {grid_id} 不存在", en=f"No grid {grid_id}")
    require(actor, Perm.REPORT_INCIDENT, grid)
    cat = _enum(IncidentCategory, category, "category", "事件类别")
    if cat is None:
        raise ValidationError("请选择事件类别", field="category", en="category is required")
    sub = _enum(DisputeKind, subcategory, "subcategory", "纠纷类型")
    if sub is not None and cat != IncidentCategory.DISPUTE:
        raise ValidationError("只有矛盾纠纷才有纠纷类型", field="subcategory",
                              en="Only disputes have a dispute kind")
    prio = _enum(Priority, priority, "priority", "优先级") or Priority.NORMAL.value
    title_v = _text(title, "title", "事件标题", required=True, max_len=200)
    if building_id is not None and session.get(Building, building_id) is None:
        raise ValidationError(f"建筑 {building_id} 不存在", field="building_id", en=f"No building {building_id}")
    if (lon is None) != (lat is None):
        raise ValidationError("地点坐标需同时填写经度和纬度", field="lon", en="Give both lon and lat")
    if lon is not None and not (-180 <= lon <= 180 and -90 <= lat <= 90):  # type: ignore[operator]
        raise ValidationError(f"坐标 ({lon}, {lat}) 超出范围", field="lon", en=f"Point ({lon}, {lat}) out of range")
    party_rows: list[IncidentParty] = []
    for i, p in enumerate(parties, 1):
        name = _text(p.name, "parties", f"第 {i} 个当事人的姓名", max_len=60)
        if p.resident_id is not None:
            r = session.get(Resident, p.resident_id)
            if r is None:
                raise ValidationError(f"第 {i} 个当事人：人员 {p.resident_id} 不存在", field="parties",
                                      en=f"Party {i}: no resident {p.resident_id}")
            name = r.name
        if not name:
            raise ValidationError(f"第 {i} 个当事人：请选择登记人员或填写姓名", field="parties",
                                  en=f"Party {i}: choose a resident or give a name")
        party_rows.append(IncidentParty(resident_id=p.resident_id, name=name, role=p.role or "party",
                                        phone=_text(p.phone, "parties", "电话", max_len=30)))
    parents = {a.level: a for a in session.scalars(
        select(Area).where(Area.id.in_([int(x) for x in grid.path.strip("/").split("/") if x])))}
    level = start_level(actor)
    deadlines = Deadlines.load(session)
    inc = Incident(
        grid_id=grid.id, community_id=parents["community"].id if "community" in parents else None,
        street_id=parents["street"].id if "street" in parents else None, category=cat, subcategory=sub,
        title=title_v, description=_text(description, "description", "事件描述"), priority=prio,
        source=source, occurred_at=occurred_at, reported_at=now, reporter_id=actor.user_id,
        building_id=building_id, lon=lon, lat=lat, location_text=_text(location_text, "location_text", "地点", max_len=200),
        status=S.REPORTED.value, level=level, level_entered_at=now,
        due_at=deadlines.due(level, cat, now), case_due_at=deadlines.due(CASE, cat, now),
        created_at=now, updated_at=now,
    )
    inc.parties = party_rows
    session.add(inc)
    _flush(session)
    for att in attachments:
        _store_attachment(session, actor, inc, att, now)
    note = f"{actor.display_name}上报，{label(MediationLevel(level))}层级办理"
    return _append_step(session, actor, inc, Action.REPORT, from_level=None, from_status=None, now=now, note=note)


# --- the actions ----------------------------------------------------------------------------


def accept(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
           note: str | None = None, now: datetime | None = None) -> ActionResult:
    """受理: the level's staff take the case on; they become its handler."""
    inc = _begin(session, actor, incident_id, Action.ACCEPT, expected_version)
    require_level(session, actor, inc, inc.level, Action.ACCEPT)
    now = _now(now)
    fl, fs = inc.level, inc.status
    inc.status = S.ACCEPTED.value
    inc.handler_id = actor.user_id
    return _append_step(session, actor, inc, Action.ACCEPT, from_level=fl, from_status=fs, now=now,
                        note=_text(note, "note", "备注"))


def assign(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
           handler_id: int, note: str | None = None, now: datetime | None = None) -> ActionResult:
    """分派: staff of the case's level give it to a handler who may act at that level (a warden of
    its grid, staff of its community, a supervisor of its street). The status does not change."""
    inc = _begin(session, actor, incident_id, Action.ASSIGN, expected_version)
    require_level(session, actor, inc, inc.level, Action.ASSIGN)
    user = session.get(User, handler_id)
    if user is None or not user.active or user.is_system:
        raise ValidationError(f"办理人 {handler_id} 不存在或已停用", field="handler",
                              en=f"No active user {handler_id}")
    if not may_act(session, actor_for(session, user), inc, inc.level):
        raise ValidationError(
            f"{user.display_name}（{label(user.role, enum=Role)}）不能办理事件 #{inc.id}"
            f"（{label(MediationLevel(inc.level))}层级，所在网格不在其负责范围内或角色不符）",
            field="handler", en=f"{user.display_name} may not handle case #{inc.id} at the {inc.level} level")
    now = _now(now)
    inc.handler_id = user.id
    return _append_step(session, actor, inc, Action.ASSIGN, from_level=inc.level, from_status=inc.status, now=now,
                        note=_text(note, "note", "备注"), target=user.username)


def handler_candidates(session: Session, actor: Actor, incident_ids: Sequence[int]) -> list[tuple[int, str, str]]:
    """Users (id, display name, role) to whom ``actor`` could assign EVERY one of these cases now:
    active accounts of the role of each case's level whose scope covers the case."""
    incs = [_load(session, actor, int(i), lock=False) for i in incident_ids]
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
        from gridman.core.models import WardenAssignment

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


def handle(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None, note: str,
           kind: str = "note", now: datetime | None = None) -> ActionResult:
    """处理: a note, a visit or a mediation session on the timeline; the case is in progress."""
    if kind not in HANDLE_KINDS:
        raise ValidationError(f"办理方式 {kind!r} 无效（note/visit/session）", field="kind",
                              en=f"Invalid kind {kind!r} (note/visit/session)")
    note_v = _text(note, "note", "办理情况", required=True)
    inc = _begin(session, actor, incident_id, Action.HANDLE, expected_version)
    require_level(session, actor, inc, inc.level, Action.HANDLE)
    now = _now(now)
    fl, fs = inc.level, inc.status
    inc.status = S.IN_PROGRESS.value
    if inc.handler_id is None:
        inc.handler_id = actor.user_id
    return _append_step(session, actor, inc, Action.HANDLE, from_level=fl, from_status=fs, now=now, note=note_v,
                        target=kind)


def resolve(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
            agreement_text: str | None = None, agreement_terms: str | None = None, note: str | None = None,
            now: datetime | None = None) -> ActionResult:
    """调解成功: settled at this level; a dispute needs the mediation agreement's text."""
    inc = _begin(session, actor, incident_id, Action.RESOLVE, expected_version)
    text_v = _text(agreement_text, "agreement_text", "调解协议内容",
                   required=inc.category == IncidentCategory.DISPUTE)
    require_level(session, actor, inc, inc.level, Action.RESOLVE)
    now = _now(now)
    fl, fs = inc.level, inc.status
    inc.status = S.RESOLVED.value
    inc.handled_level = inc.level
    inc.agreement_text = text_v
    inc.agreement_terms = _text(agreement_terms, "agreement_terms", "协议条款")
    inc.resolved_at = now
    return _append_step(session, actor, inc, Action.RESOLVE, from_level=fl, from_status=fs, now=now,
                        note=_text(note, "note", "备注") or text_v)


def fail(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None, note: str,
         now: datetime | None = None) -> ActionResult:
    """调解不成: recorded with the reason; next the case is escalated, referred or handled again."""
    note_v = _text(note, "note", "调解不成的原因", required=True)
    inc = _begin(session, actor, incident_id, Action.FAIL, expected_version)
    require_level(session, actor, inc, inc.level, Action.FAIL)
    now = _now(now)
    fl, fs = inc.level, inc.status
    inc.status = S.FAILED.value
    inc.handled_level = inc.level
    return _append_step(session, actor, inc, Action.FAIL, from_level=fl, from_status=fs, now=now, note=note_v)


def escalate(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None, note: str,
             now: datetime | None = None) -> ActionResult:
    """上报上级: one level up (grid → community → street) with a reason; a new deadline there."""
    note_v = _text(note, "note", "上报理由", required=True)
    inc = _begin(session, actor, incident_id, Action.ESCALATE, expected_version)
    up = level_above(inc.level)
    if up is None:
        raise InvalidTransition(
            f"事件 #{inc.id} 已在街道层级，不能再向上提级（街道是最高层级，可分流至专业调委会或相关部门）。",
            en=f"Case #{inc.id} is already at street level, the highest; refer it instead.",
        )
    require_level(session, actor, inc, inc.level, Action.ESCALATE)
    now = _now(now)
    fl, fs = inc.level, inc.status
    _enter_level(inc, up, now, Deadlines.load(session))
    inc.status = S.REPORTED.value
    inc.handler_id = None
    return _append_step(session, actor, inc, Action.ESCALATE, from_level=fl, from_status=fs, now=now, note=note_v)


def hand_down(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None, note: str,
              now: datetime | None = None) -> ActionResult:
    """交办下级: one level down with instructions; a new deadline there."""
    note_v = _text(note, "note", "交办意见", required=True)
    inc = _begin(session, actor, incident_id, Action.HAND_DOWN, expected_version)
    down = level_below(inc.level)
    if down is None:
        raise InvalidTransition(f"事件 #{inc.id} 已在网格层级，没有更下一级可以交办。",
                                en=f"Case #{inc.id} is at grid level; there is no level below.")
    require_level(session, actor, inc, inc.level, Action.HAND_DOWN)
    now = _now(now)
    fl, fs = inc.level, inc.status
    _enter_level(inc, down, now, Deadlines.load(session))
    inc.status = S.REPORTED.value
    inc.handler_id = None
    return _append_step(session, actor, inc, Action.HAND_DOWN, from_level=fl, from_status=fs, now=now, note=note_v)


def refer(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None, target: str,
          note: str | None = None, now: datetime | None = None) -> ActionResult:
    """分流: to a professional mediation committee or a department; tracked until the outcome."""
    tgt = _enum(ReferralTarget, target, "target", "分流去向")
    if tgt is None:
        raise ValidationError("请选择分流去向", field="target", en="Choose where to refer the case")
    inc = _begin(session, actor, incident_id, Action.REFER, expected_version)
    require_level(session, actor, inc, inc.level, Action.REFER)
    now = _now(now)
    fl, fs = inc.level, inc.status
    inc.status = S.REFERRED.value
    inc.referral_target = tgt
    inc.referral_outcome = None
    return _append_step(session, actor, inc, Action.REFER, from_level=fl, from_status=fs, now=now,
                        note=_text(note, "note", "备注") or f"分流至{label(ReferralTarget(tgt))}", target=tgt)


def record_referral_outcome(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
                            outcome: str, settled: bool, now: datetime | None = None) -> ActionResult:
    """分流结果: settled → resolved (then verified and closed as usual); not settled → failed,
    back with the referring level to escalate, refer elsewhere or handle again."""
    outcome_v = _text(outcome, "outcome", "分流办理结果", required=True)
    inc = _begin(session, actor, incident_id, Action.REFERRAL_OUTCOME, expected_version)
    require_level(session, actor, inc, inc.level, Action.REFERRAL_OUTCOME)
    now = _now(now)
    fl, fs = inc.level, inc.status
    inc.referral_outcome = outcome_v
    inc.handled_level = inc.level
    if settled:
        inc.status = S.RESOLVED.value
        inc.resolved_at = now
    else:
        inc.status = S.FAILED.value
    return _append_step(session, actor, inc, Action.REFERRAL_OUTCOME, from_level=fl, from_status=fs, now=now,
                        note=outcome_v, target=inc.referral_target)


def verify(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
           note: str | None = None, now: datetime | None = None) -> ActionResult:
    """核查结案: the verifying level confirms the resolution; the case is closed."""
    inc = _load(session, actor, incident_id)
    _check_version(inc, expected_version)
    if inc.status != S.RESOLVED:
        raise InvalidTransition(
            f"事件 #{inc.id} 尚未调解成功（当前“{_status_label(inc.status)}”），不能核查结案。",
            en=f"Case #{inc.id} is not resolved ({inc.status}); it cannot be verified and closed.",
        )
    require_level(session, actor, inc, verifying_level(session, inc), Action.VERIFY)
    now = _now(now)
    fl, fs = inc.level, inc.status
    inc.status = S.CLOSED.value
    inc.closed_at = now
    inc.closed_on_time = inc.case_due_at is None or now <= inc.case_due_at
    inc.due_at = None
    inc.satisfaction = None
    return _append_step(session, actor, inc, Action.VERIFY, from_level=fl, from_status=fs, now=now,
                        note=_text(note, "note", "核查意见") or "核查属实，予以结案")


def _reopen_at_handled_level(session: Session, inc: Incident, now: datetime) -> None:
    _enter_level(inc, inc.handled_level or inc.level, now, Deadlines.load(session))
    inc.status = S.IN_PROGRESS.value
    inc.closed_at = None
    inc.closed_on_time = None
    inc.resolved_at = None


def verify_fail(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None, note: str,
                now: datetime | None = None) -> ActionResult:
    """核查不通过: back in progress at the level that handled it, with a fresh deadline."""
    note_v = _text(note, "note", "核查不通过的原因", required=True)
    inc = _begin(session, actor, incident_id, Action.VERIFY_FAIL, expected_version)
    require_level(session, actor, inc, verifying_level(session, inc), Action.VERIFY_FAIL)
    now = _now(now)
    fl, fs = inc.level, inc.status
    _reopen_at_handled_level(session, inc, now)
    return _append_step(session, actor, inc, Action.VERIFY_FAIL, from_level=fl, from_status=fs, now=now, note=note_v)


def evaluate(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None, satisfaction: str,
             note: str | None = None, now: datetime | None = None) -> ActionResult:
    """满意度评价 of a closed case; 不满意 reopens it at the level that handled it."""
    sat = _enum(Satisfaction, satisfaction, "satisfaction", "满意度")
    if sat is None:
        raise ValidationError("请选择满意度（满意/基本满意/不满意）", field="satisfaction",
                              en="Choose satisfied / basic / unsatisfied")
    inc = _begin(session, actor, incident_id, Action.EVALUATE, expected_version)
    if inc.satisfaction is not None:
        raise InvalidTransition(f"事件 #{inc.id} 已评价为“{label(Satisfaction(inc.satisfaction))}”，不能重复评价。",
                                en=f"Case #{inc.id} was already evaluated ({inc.satisfaction}).")
    require_level(session, actor, inc, verifying_level(session, inc), Action.EVALUATE)
    now = _now(now)
    fl, fs = inc.level, inc.status
    inc.satisfaction = sat
    extra = ""
    if sat == Satisfaction.UNSATISFIED:
        _reopen_at_handled_level(session, inc, now)
        extra = f"；群众不满意，退回{label(MediationLevel(inc.level))}层级重新办理"
    return _append_step(session, actor, inc, Action.EVALUATE, from_level=fl, from_status=fs, now=now,
                        note=(_text(note, "note", "评价意见") or label(Satisfaction(sat))) + extra, target=sat)


def reopen(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None, note: str,
           now: datetime | None = None) -> ActionResult:
    """重新办理 a closed case at the level that handled it (e.g. the dispute flared up again)."""
    note_v = _text(note, "note", "重新办理的原因", required=True)
    inc = _begin(session, actor, incident_id, Action.REOPEN, expected_version)
    require_level(session, actor, inc, verifying_level(session, inc), Action.REOPEN)
    now = _now(now)
    fl, fs = inc.level, inc.status
    _reopen_at_handled_level(session, inc, now)
    inc.satisfaction = None
    return _append_step(session, actor, inc, Action.REOPEN, from_level=fl, from_status=fs, now=now, note=note_v)


def merge(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None, into_id: int,
          note: str | None = None, now: datetime | None = None) -> ActionResult:
    """合并: this report duplicates the open case ``into_id``. It is marked merged (its timeline
    stays), and the target's timeline shows it (:func:`show`)."""
    if into_id == incident_id:
        raise InvalidTransition(f"事件 #{incident_id} 不能合并到自身。", en="A case cannot be merged into itself.")
    inc = _begin(session, actor, incident_id, Action.MERGE, expected_version)
    target = _load(session, actor, into_id)
    if target.status not in ACTIVE_STATUSES:
        raise InvalidTransition(
            f"只能合并到未办结的事件：事件 #{into_id} 当前为“{_status_label(target.status)}”。",
            en=f"Merge only into an open case; #{into_id} is {target.status}.",
        )
    require_level(session, actor, inc, inc.level, Action.MERGE)
    now = _now(now)
    fl, fs = inc.level, inc.status
    inc.status = S.MERGED.value
    inc.merged_into_id = target.id
    inc.due_at = None
    return _append_step(session, actor, inc, Action.MERGE, from_level=fl, from_status=fs, now=now,
                        note=_text(note, "note", "备注") or f"与事件 #{target.id} 重复，已合并", target=str(target.id))


def attach(session: Session, actor: Actor, incident_id: int, *, expected_version: int | None,
           files: Sequence[AttachmentInput], note: str | None = None, now: datetime | None = None) -> ActionResult:
    """添加附件 (photos, scanned agreements) to a case at the actor's level."""
    if not files:
        raise ValidationError("请选择附件", field="attachments", en="No files given")
    inc = _begin(session, actor, incident_id, Action.ATTACH, expected_version)
    require_level(session, actor, inc, inc.level, Action.ATTACH)
    now = _now(now)
    names = []
    for f in files:
        _store_attachment(session, actor, inc, f, now)
        names.append(os.path.basename(f.filename))
    return _append_step(session, actor, inc, Action.ATTACH, from_level=inc.level, from_status=inc.status, now=now,
                        note=_text(note, "note", "备注") or "添加附件：" + "、".join(names))


# One entry point for fronts that name the action as text (the CLI, the GUI's action buttons).
ACTIONS: dict[str, Any] = {
    Action.ACCEPT: accept, Action.ASSIGN: assign, Action.HANDLE: handle, Action.RESOLVE: resolve, Action.FAIL: fail,
    Action.ESCALATE: escalate, Action.HAND_DOWN: hand_down, Action.REFER: refer,
    Action.REFERRAL_OUTCOME: record_referral_outcome, Action.VERIFY: verify, Action.VERIFY_FAIL: verify_fail,
    Action.EVALUATE: evaluate, Action.REOPEN: reopen, Action.MERGE: merge, Action.ATTACH: attach,
}


def act(session: Session, actor: Actor, incident_id: int, action: str, *, expected_version: int | None,
        **kw: Any) -> ActionResult:
    """Dispatch ``action`` (code like ``hand_down``/``hand-down``) to its function."""
    key = action.replace("-", "_")
    fn = ACTIONS.get(key)
    if fn is None:
        raise ValidationError(f"未知操作 {action!r}，可选：{', '.join(a.replace('_', '-') for a in ACTIONS)}",
                              field="action", en=f"Unknown action {action!r}")
    return fn(session, actor, incident_id, expected_version=expected_version, **kw)


# --- reading --------------------------------------------------------------------------------


def _step_view(st: IncidentStep) -> StepView:
    return StepView(st.incident_id, st.seq, st.at, st.action, _lbl(st.action), st.actor_id, st.actor_name,
                    st.from_level, st.to_level, st.from_status, st.to_status, st.target, st.note)


def show(session: Session, actor: Actor, incident_id: int, *, now: datetime | None = None) -> IncidentView:
    """One case with its parties, attachments and timeline — merged duplicates' steps included,
    in time order (each step says which case it belongs to)."""
    inc = _load(session, actor, incident_id, lock=False)
    now = _now(now)
    merged_ids = list(session.scalars(select(Incident.id).where(Incident.merged_into_id == inc.id).order_by(Incident.id)))
    steps = session.scalars(
        select(IncidentStep).where(IncidentStep.incident_id.in_([inc.id, *merged_ids]))
        .order_by(IncidentStep.at, IncidentStep.incident_id, IncidentStep.seq)
    ).all()
    grid = session.get(Area, inc.grid_id)
    # steps written without the actor's name (imported or generated histories): the user's name now
    unnamed = {st.actor_id for st in steps if st.actor_name is None and st.actor_id is not None}
    names = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(unnamed))).all()) if unnamed else {}
    parties = session.scalars(select(IncidentParty).where(IncidentParty.incident_id == inc.id)
                              .order_by(IncidentParty.id)).all()
    atts = session.scalars(select(IncidentAttachment).where(IncidentAttachment.incident_id == inc.id)
                           .order_by(IncidentAttachment.id)).all()
    return IncidentView(
        id=inc.id, version=inc.version, grid_id=inc.grid_id, grid_name=grid.name if grid else "",
        category=inc.category, category_label=label(inc.category, enum=IncidentCategory), subcategory=inc.subcategory,
        title=inc.title, description=inc.description, level=inc.level,
        level_label=label(inc.level, enum=MediationLevel), status=inc.status, status_label=_status_label(inc.status),
        priority=inc.priority, reported_at=inc.reported_at, due_at=inc.due_at, case_due_at=inc.case_due_at,
        overdue=inc.due_at is not None and inc.due_at < now, handler_id=inc.handler_id,
        handled_level=inc.handled_level, agreement_text=inc.agreement_text, agreement_terms=inc.agreement_terms,
        referral_target=inc.referral_target, referral_outcome=inc.referral_outcome, closed_at=inc.closed_at,
        closed_on_time=inc.closed_on_time, satisfaction=inc.satisfaction, merged_into_id=inc.merged_into_id,
        merged_ids=merged_ids, building_id=inc.building_id, lon=inc.lon, lat=inc.lat,
        location_text=inc.location_text,
        parties=[PartyView(p.name, p.role, p.resident_id, p.phone) for p in parties],
        attachments=[AttachmentView(a.id, a.filename, a.sha256, a.size, a.mime) for a in atts],
        steps=[replace(v, actor_name=names.get(v.actor_id)) if v.actor_name is None and v.actor_id else v
               for v in (_step_view(s) for s in steps)],
    )


# --- the overdue sweep ----------------------------------------------------------------------


def escalate_overdue(session: Session, actor: Actor, *, now: datetime | None = None) -> SweepResult:
    """Escalate every overdue case (``due_at < now``, status reported/accepted/in progress/failed)
    at grid or community level one level up, with the reason "超期" on its timeline and a fresh
    deadline at the new level; flag overdue street-level cases once per period at that level.

    Idempotent: an escalated case's new deadline lies after ``now``, and a street case carries an
    ``overdue`` step after it entered the level, so a second run with the same ``now`` does nothing.
    Limited to the actor's area (the GUI runs it for whoever is signed in; the scheduled CLI as the
    administrator).

    Set-based for speed (10,000 cases in well under 5 s): one SELECT of the candidates (locked on
    PostgreSQL), then executemany of the UPDATEs (each guarded by the version read), the steps and
    the audit rows. ORM objects the caller holds for these cases are expired afterwards.
    """
    require(actor, Perm.HANDLE_INCIDENT)
    now = _now(now)
    t = Incident.__table__
    st = IncidentStep.__table__
    deadlines = Deadlines.load(session)
    max_seq = select(func.max(st.c.seq)).where(st.c.incident_id == t.c.id).scalar_subquery()
    base = and_(t.c.status.in_(SWEEP_STATUSES), t.c.due_at < now, grid_scope_filter(actor, t.c.grid_id))
    q_up = (select(t.c.id, t.c.uuid, t.c.level, t.c.status, t.c.category, t.c.version, t.c.due_at,
                   t.c.handler_id, max_seq.label("max_seq"))
            .where(base, t.c.level.in_(("grid", "community"))).order_by(t.c.id))
    already = exists().where(st.c.incident_id == t.c.id, st.c.action == Action.OVERDUE.value,
                             st.c.at > t.c.level_entered_at)  # a flag comes ≥ 1 day after entry
    q_flag = (select(t.c.id, t.c.uuid, t.c.level, t.c.status, t.c.version, t.c.due_at, max_seq.label("max_seq"))
              .where(base, t.c.level == "street", ~already).order_by(t.c.id))
    if session.get_bind().dialect.name == "postgresql":
        q_up = q_up.with_for_update(of=t)
        q_flag = q_flag.with_for_update(of=t)
    ups = session.execute(q_up).all()
    flags = session.execute(q_flag).all()

    due_cache: dict[tuple[str, str], datetime] = {}
    upd_rows: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []
    audit_rows: list[tuple[int, str | None, dict[str, Any]]] = []
    for r in ups:
        new_level = level_above(r.level)
        assert new_level is not None
        key = (new_level, r.category)
        due = due_cache.get(key)
        if due is None:
            due = due_cache[key] = deadlines.due(new_level, r.category, now)
        upd_rows.append({"b_id": r.id, "b_version": r.version, "n_level": new_level, "n_due": due,
                         "n_version": r.version + 1})
        note = (f"{OVERDUE_NOTE}：{label(MediationLevel(r.level))}层级办理时限 {r.due_at:%Y-%m-%d %H:%M} 已过，"
                f"自动上报{label(MediationLevel(new_level))}")
        step_rows.append({"uuid": new_uuid(), "incident_id": r.id, "seq": (r.max_seq or 0) + 1, "at": now,
                          "actor_id": actor.user_id, "actor_name": actor.display_name,
                          "action": Action.ESCALATE.value, "from_level": r.level, "to_level": new_level,
                          "from_status": r.status, "to_status": S.REPORTED.value, "target": None, "note": note})
        audit_rows.append((r.id, r.uuid, {"level": (r.level, new_level), "status": (r.status, S.REPORTED.value),
                                          "due_at": (r.due_at, due), "handler_id": (r.handler_id, None),
                                          "level_entered_at": (None, now)}))
    flag_rows: list[dict[str, Any]] = []
    for r in flags:
        flag_rows.append({"b_id": r.id, "b_version": r.version, "n_version": r.version + 1})
        step_rows.append({"uuid": new_uuid(), "incident_id": r.id, "seq": (r.max_seq or 0) + 1, "at": now,
                          "actor_id": actor.user_id, "actor_name": actor.display_name,
                          "action": Action.OVERDUE.value, "from_level": r.level, "to_level": r.level,
                          "from_status": r.status, "to_status": r.status, "target": None,
                          "note": f"{OVERDUE_NOTE}：街道层级办理时限 {r.due_at:%Y-%m-%d %H:%M} 已过，已标记督办"})

    guard = and_(t.c.id == bindparam("b_id"), t.c.version == bindparam("b_version"))
    sane = session.get_bind().dialect.supports_sane_multi_rowcount
    if upd_rows:
        res = session.execute(
            update(t).where(guard).values(level=bindparam("n_level"), status=S.REPORTED.value, handler_id=None,
                                          level_entered_at=now, due_at=bindparam("n_due"),
                                          version=bindparam("n_version"), updated_at=now),
            upd_rows,
        )
        if sane and res.rowcount != len(upd_rows):
            raise ConflictError("超期上报期间有事件被其他人修改，请重试。",
                                en="Cases changed during the overdue sweep; run it again.")
    if flag_rows:
        res = session.execute(update(t).where(guard).values(version=bindparam("n_version"), updated_at=now), flag_rows)
        if sane and res.rowcount != len(flag_rows):
            raise ConflictError("超期标记期间有事件被其他人修改，请重试。",
                                en="Cases changed during the overdue sweep; run it again.")
    if step_rows:
        session.execute(insert(st), step_rows)
        arows = audit.bulk_rows(actor, "update", t.name, audit_rows, note="escalate-overdue")
        arows += audit.bulk_rows(actor, "update", t.name,
                                 [(r.id, r.uuid, {"overdue_flag": (None, now)}) for r in flags],
                                 note="escalate-overdue")
        session.execute(insert(AuditEntry.__table__), arows)
    session.expire_all()
    return SweepResult(now, len(ups), len(flags), [r.id for r in ups], [r.id for r in flags])


def overdue_counts(session: Session, actor: Actor, *, now: datetime | None = None) -> dict[str, int]:
    """Active overdue cases per level in the actor's area (for a status bar)."""
    now = _now(now)
    rows = session.execute(
        select(Incident.level, func.count()).where(
            Incident.status.in_(ACTIVE_STATUSES), Incident.due_at < now, grid_scope_filter(actor, Incident.grid_id)
        ).group_by(Incident.level)
    ).all()
    return {lv: n for lv, n in rows}


def file_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[AttachmentInput]:
    """Attachment inputs read from files (CLI, GUI file dialogs)."""
    out = []
    for p in paths:
        path = Path(p)
        try:
            out.append(AttachmentInput(path.name, path.read_bytes()))
        except OSError as exc:
            raise ValidationError(f"无法读取附件 {path}：{exc.strerror}", field="attachments",
                                  en=f"Cannot read {path}: {exc.strerror}") from exc
    return out

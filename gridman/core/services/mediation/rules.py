"""The rules of three-level mediation (三级调处), declared once: levels, statuses, the actions,
which status each may start from, which level acts, and the inputs each requires.

Every front reads these declarations instead of keeping its own copy: the case view's action
dialog builds its fields from :func:`action_spec`, the CLI's ``incidents act`` maps its options
from the same :class:`Input` records, and the service validates every value with :func:`clean`.

Pure data and checks; the only database reads are the verification setting and the case's grid
(in :func:`require_level`). Threading: functions take an open session; no global state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from gridman.core.enums import (
    IncidentCategory,
    IncidentStatus,
    MediationLevel,
    ReferralTarget,
    Role,
    Satisfaction,
    label,
    parse,
)
from gridman.core.models import Area, Incident
from gridman.core.services import settings
from gridman.core.services.errors import PermissionDenied, ValidationError
from gridman.core.services.permissions import Actor, Perm, require

S = IncidentStatus
LEVELS: tuple[str, ...] = (MediationLevel.GRID.value, MediationLevel.COMMUNITY.value, MediationLevel.STREET.value)
# Not closed and not merged: what the supervisor's queue shows (``due_at`` is set exactly for these).
ACTIVE_STATUSES: tuple[str, ...] = tuple(
    s.value for s in (S.REPORTED, S.ACCEPTED, S.IN_PROGRESS, S.RESOLVED, S.FAILED, S.REFERRED))
# What the overdue sweep escalates (a referred case is with another body; a resolved one awaits verification).
SWEEP_STATUSES: tuple[str, ...] = tuple(s.value for s in (S.REPORTED, S.ACCEPTED, S.IN_PROGRESS, S.FAILED))
# Still open at its level: what may be escalated, handed down, assigned or merged.
_OPEN = frozenset({S.REPORTED, S.ACCEPTED, S.IN_PROGRESS, S.FAILED})
_WORKING = frozenset({S.ACCEPTED, S.IN_PROGRESS, S.FAILED})

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


# --- inputs ------------------------------------------------------------------------------------


class Kind(StrEnum):
    """What kind of value an input takes (a front picks its widget or option parser from it)."""

    TEXT = "text"  # free text, several lines
    LINE = "line"  # free text, one line
    CHOICE = "choice"  # one of ``Input.choices()``
    USER = "user"  # a user id (the CLI takes a username)
    CASE = "case"  # another incident's id
    LEVEL = "level"  # a mediation level: the target of a move, checked against the rule
    FLAG = "flag"  # yes / no
    FILES = "files"  # attachments (``AttachmentInput`` records)


@dataclass(frozen=True)
class Choice:
    value: str
    zh: str
    en: str


@dataclass(frozen=True)
class Input:
    """One input of an action: ``key`` is the keyword argument of the service function."""

    key: str
    zh: str
    en: str
    kind: Kind = Kind.TEXT
    required: bool = False
    required_for: frozenset[str] = frozenset()  # incident categories for which it is required
    enum: type[StrEnum] | None = None
    options: tuple[Choice, ...] = ()
    default: str | None = None
    max_len: int | None = None
    cli: str = "--note"  # the option of ``gridman incidents act``

    def needed(self, category: str | None = None) -> bool:
        """Is a value required (for a case of ``category``; None: whatever the category)?"""
        return self.required or (category is not None and category in self.required_for)

    def label(self, lang: str = "zh") -> str:
        return self.en if lang.startswith("en") else self.zh

    def choices(self) -> tuple[Choice, ...]:
        if self.enum is not None:
            return tuple(Choice(m.value, label(m), label(m, "en")) for m in self.enum)
        return self.options


@dataclass(frozen=True)
class ActionSpec:
    """One action of the state machine: labels, the statuses it starts from, which level acts
    (the case's own, or the level that verifies), the level move, and its inputs in form order."""

    action: Action
    zh: str
    en: str
    from_statuses: frozenset[str] = frozenset()
    verifying: bool = False  # acted on by the verifying level (see :func:`verifying_level`)
    move: int = 0  # +1 one level up, -1 one level down
    inputs: tuple[Input, ...] = ()
    quick: bool = False  # a front may run it at a click, without asking (all its inputs are optional)

    def label(self, lang: str = "zh") -> str:
        return self.en if lang.startswith("en") else self.zh

    def input(self, key: str) -> Input:
        for i in self.inputs:
            if i.key == key:
                return i
        raise KeyError(key)


def _note(zh: str = "备注", en: str = "note", *, required: bool = False) -> Input:
    return Input("note", zh, en, Kind.TEXT, required=required)


HANDLE_KINDS: dict[str, str] = {"note": "办理记录", "visit": "走访", "session": "调解会"}
_HANDLE_KIND_EN = {"note": "note", "visit": "visit", "session": "mediation session"}
_TO_LEVEL = Input("to_level", "目标层级", "target level", Kind.LEVEL, cli="--to")

_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(Action.REPORT, "上报", "report"),
    ActionSpec(Action.ACCEPT, "受理", "accept", frozenset({S.REPORTED}), inputs=(_note(),), quick=True),
    ActionSpec(Action.ASSIGN, "分派", "assign", _OPEN, inputs=(
        Input("handler_id", "办理人", "handler", Kind.USER, required=True, cli="--to"), _note())),
    ActionSpec(Action.HANDLE, "处理", "handle", _WORKING, inputs=(
        Input("kind", "办理方式", "kind", Kind.CHOICE, default="note", cli="--kind", options=tuple(
            Choice(k, zh, _HANDLE_KIND_EN[k]) for k, zh in HANDLE_KINDS.items())),
        _note("办理情况", "what was done", required=True))),
    ActionSpec(Action.RESOLVE, "调解成功", "resolve", frozenset({S.ACCEPTED, S.IN_PROGRESS}), inputs=(
        Input("agreement_text", "调解协议内容", "agreement", Kind.TEXT, cli="--agreement",
              required_for=frozenset({IncidentCategory.DISPUTE.value})),
        Input("agreement_terms", "协议条款", "agreement terms", Kind.LINE, cli="--terms"), _note())),
    ActionSpec(Action.FAIL, "调解不成", "record a failed mediation", frozenset({S.ACCEPTED, S.IN_PROGRESS}),
               inputs=(_note("调解不成的原因", "reason", required=True),)),
    ActionSpec(Action.ESCALATE, "上报上级", "escalate", _OPEN, move=1,
               inputs=(_TO_LEVEL, _note("上报理由", "reason", required=True))),
    ActionSpec(Action.HAND_DOWN, "交办下级", "hand down", _OPEN, move=-1,
               inputs=(_TO_LEVEL, _note("交办意见", "instructions", required=True))),
    ActionSpec(Action.REFER, "分流", "refer", _WORKING, inputs=(
        Input("target", "分流去向", "referral target", Kind.CHOICE, required=True, enum=ReferralTarget, cli="--to"),
        _note())),
    ActionSpec(Action.REFERRAL_OUTCOME, "登记分流结果", "record the referral outcome", frozenset({S.REFERRED}),
               inputs=(Input("settled", "已调解成功", "settled", Kind.FLAG, required=True, cli="--settled"),
                       Input("outcome", "分流办理结果", "outcome", Kind.TEXT, required=True, cli="--note"))),
    ActionSpec(Action.VERIFY, "核查结案", "verify and close", frozenset({S.RESOLVED}), verifying=True,
               inputs=(_note("核查意见", "verification note"),)),
    ActionSpec(Action.VERIFY_FAIL, "核查不通过", "fail verification", frozenset({S.RESOLVED}), verifying=True,
               inputs=(_note("核查不通过的原因", "reason", required=True),)),
    ActionSpec(Action.EVALUATE, "满意度评价", "evaluate", frozenset({S.CLOSED}), verifying=True, inputs=(
        Input("satisfaction", "满意度", "satisfaction", Kind.CHOICE, required=True, enum=Satisfaction,
              cli="--satisfaction"), _note("评价意见", "comment"))),
    ActionSpec(Action.REOPEN, "重新办理", "reopen", frozenset({S.CLOSED}), verifying=True,
               inputs=(_note("重新办理的原因", "reason", required=True),)),
    ActionSpec(Action.MERGE, "合并", "merge", _OPEN | {S.REFERRED}, inputs=(
        Input("into_id", "合并到案件", "merge into case", Kind.CASE, required=True, cli="--into"), _note())),
    ActionSpec(Action.ATTACH, "添加附件", "attach a file", frozenset(ACTIVE_STATUSES) | {S.CLOSED}, inputs=(
        Input("files", "附件", "files", Kind.FILES, required=True, cli="--attach"), _note())),
    ActionSpec(Action.OVERDUE, "超期标记", "flag overdue"),
)
SPECS: dict[str, ActionSpec] = {s.action.value: s for s in _SPECS}
# The actions a user takes on an existing case, in the state machine's order (what fronts offer).
CASE_ACTIONS: tuple[Action, ...] = tuple(s.action for s in _SPECS if s.from_statuses)
# The statuses each action may start from (the state machine).
ALLOWED_FROM: dict[Action, frozenset[str]] = {a: SPECS[a].from_statuses for a in CASE_ACTIONS}
ACTION_LABELS: dict[str, tuple[str, str]] = {s.action.value: (s.zh, s.en) for s in _SPECS}


def action_key(action: str) -> str:
    """``hand-down`` / ``hand_down`` → ``hand_down``; unknown names raise ValidationError."""
    key = str(action).replace("-", "_")
    if key not in SPECS or key not in ALLOWED_FROM:
        names = ", ".join(a.value.replace("_", "-") for a in CASE_ACTIONS)
        raise ValidationError(f"未知操作 {action!r}，可选：{names}", field="action",
                              en=f"Unknown action {action!r}; one of {names}")
    return key


def action_spec(action: str) -> ActionSpec:
    """The declaration of ``action`` (code like ``hand_down`` or ``hand-down``)."""
    return SPECS[action_key(action)]


def action_label(action: str, lang: str = "zh") -> str:
    zh, en = ACTION_LABELS.get(str(action), (str(action), str(action)))
    return en if lang.startswith("en") else zh


def status_label(status: str, lang: str = "zh_CN") -> str:
    return label(status, lang, enum=IncidentStatus)


# --- checking one value --------------------------------------------------------------------------


def _missing(inp: Input) -> ValidationError:
    if inp.kind in (Kind.TEXT, Kind.LINE):
        return ValidationError(f"请填写{inp.zh}", field=inp.key, en=f"{inp.en} is required")
    if inp.kind == Kind.FLAG:
        return ValidationError(f"请说明是否{inp.zh}", field=inp.key, en=f"Say whether {inp.en}")
    opts = inp.choices()
    if opts:
        return ValidationError(f"请选择{inp.zh}（{'/'.join(c.zh for c in opts)}）", field=inp.key,
                               en=f"Choose the {inp.en} ({' / '.join(c.en for c in opts)})")
    return ValidationError(f"请选择{inp.zh}", field=inp.key, en=f"Choose the {inp.en}")


def _choice(inp: Input, value: Any) -> str:
    if inp.enum is not None:
        try:
            return parse(inp.enum, str(value)).value
        except ValueError:
            pass
    else:
        t = str(value).strip().lower()
        for c in inp.options:
            if t in (c.value, c.zh, c.en.lower()):
                return c.value
    allowed = "、".join(f"{c.value}（{c.zh}）" for c in inp.choices())
    raise ValidationError(f"{inp.zh} {value!r} 无效，可选：{allowed}", field=inp.key,
                          en=f"Invalid {inp.en} {value!r}; one of {', '.join(c.value for c in inp.choices())}")


def clean(inp: Input, value: Any, *, category: str | None = None) -> Any:
    """``value`` checked and normalised for ``inp`` (text stripped, a choice parsed from its code
    or label); None when empty and not required. Raises :class:`ValidationError` with the label."""
    if isinstance(value, str):
        value = value.strip()
    empty = value is None or value == "" or (inp.kind == Kind.FILES and not value)
    if empty:
        if inp.default is not None:
            return inp.default
        if inp.needed(category):
            raise _missing(inp)
        return None
    if inp.kind in (Kind.TEXT, Kind.LINE):
        if inp.max_len is not None and len(value) > inp.max_len:
            raise ValidationError(f"{inp.zh}不能超过 {inp.max_len} 个字（现有 {len(value)} 个）", field=inp.key,
                                  en=f"{inp.en} is longer than {inp.max_len} characters")
        return value
    if inp.kind == Kind.CHOICE:
        return _choice(inp, value)
    if inp.kind == Kind.LEVEL:
        if value not in LEVELS:
            raise ValidationError(f"{inp.zh} {value!r} 无效（grid/community/street）", field=inp.key,
                                  en=f"Invalid {inp.en} {value!r} (grid/community/street)")
        return value
    if inp.kind in (Kind.USER, Kind.CASE):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{inp.zh} {value!r} 无效", field=inp.key, en=f"Invalid {inp.en} {value!r}") from None
    if inp.kind == Kind.FLAG:
        return bool(value)
    return list(value) if isinstance(value, Sequence) else value


def check(action: Action, values: Mapping[str, Any], *, category: str | None = None) -> dict[str, Any]:
    """Every input of ``action`` checked with :func:`clean` (``category``: the case's, for inputs
    required only for some categories). Returns the cleaned values by key."""
    spec = SPECS[action.value]
    return {i.key: clean(i, values.get(i.key), category=category) for i in spec.inputs}


def text(value: str | None, field_name: str, zh: str, *, required: bool = False,
         max_len: int | None = None) -> str | None:
    """A free-text value that is not an action input (report form fields, file names)."""
    return clean(Input(field_name, zh, field_name, Kind.LINE, required=required, max_len=max_len), value)


def enum_value(enum: type[StrEnum], value: str | None, field_name: str, zh: str) -> str | None:
    return clean(Input(field_name, zh, field_name, Kind.CHOICE, enum=enum), value)


# --- levels ----------------------------------------------------------------------------------


def level_above(level: str) -> str | None:
    i = LEVELS.index(level)
    return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


def level_below(level: str) -> str | None:
    i = LEVELS.index(level)
    return LEVELS[i - 1] if i > 0 else None


def move_target(action: Action, level: str) -> str | None:
    """Where ``action`` moves a case at ``level`` (None: no level there, or not a move)."""
    move = SPECS[action.value].move
    return level_above(level) if move > 0 else level_below(level) if move < 0 else None


def start_level(actor: Actor) -> str:
    """Grid unless the reporter's own level is higher (community staff, street supervisors)."""
    return ROLE_LEVEL.get(actor.role, "grid")


def verify_by_setting(session: Session) -> str:
    v = settings.get(session, VERIFY_SETTING)
    return v if v in ("level_above", "same_level") else "level_above"


def set_verify_by(session: Session, actor: Actor, value: str) -> None:
    """Who verifies and closes: ``level_above`` the resolving level (default) or the ``same_level``."""
    require(actor, Perm.MANAGE_POLICY)
    if value not in ("level_above", "same_level"):
        raise ValidationError(f"核查层级设置 {value!r} 无效（level_above 或 same_level）", field=VERIFY_SETTING,
                              en=f"Invalid verification setting {value!r} (level_above or same_level)")
    settings.put(session, VERIFY_SETTING, value)


def verifying_level(session: Session, inc: Incident) -> str:
    """The level that verifies, closes, evaluates and reopens a case: above the level that handled
    it (the street verifies its own), or the same level if so configured."""
    handled = inc.handled_level or inc.level
    if verify_by_setting(session) == "same_level":
        return handled
    return level_above(handled) or handled


def acting_level(session: Session, inc: Incident, action: Action) -> str:
    return verifying_level(session, inc) if SPECS[action.value].verifying else inc.level


# --- who may act: the one place the level rules live ---------------------------------------------


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
    what = action_label(action) if action else "办理"
    what_en = action_label(action, "en") if action else "handle"
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


def offered(session: Session, actor: Actor, inc: Incident) -> list[str]:
    """The actions ``actor`` may take on ``inc`` now, in the state machine's order: the same checks
    the actions make (status, a level above/below, evaluated once, the acting level's role and
    area), without writing anything."""
    if not actor.is_admin and not actor.can(Perm.HANDLE_INCIDENT):
        return []
    out: list[str] = []
    for action in CASE_ACTIONS:
        spec = SPECS[action.value]
        if inc.status not in spec.from_statuses:
            continue
        if spec.move and move_target(action, inc.level) is None:
            continue
        if action == Action.EVALUATE and inc.satisfaction is not None:
            continue
        if may_act(session, actor, inc, acting_level(session, inc, action)):
            out.append(action.value)
    return out

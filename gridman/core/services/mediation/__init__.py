"""Three-level mediation (三级调处), by stage:

- :mod:`.rules` — levels, statuses, the actions, what each starts from and requires (declared once);
- :mod:`.records` — the plain records the services take and return;
- :mod:`.cases` — loading a case for an action, writing its one step;
- :mod:`.report` — 上报, a new case;
- :mod:`.actions` — the state machine's operations and :func:`act`;
- :mod:`.bulk` — :func:`act_many`, one action on many cases, a savepoint each;
- :mod:`.handlers` — who may be assigned a case; users by username;
- :mod:`.reading` — one case with its timeline;
- :mod:`.attachments` — files of a case;
- :mod:`.sweep` — the overdue sweep and overdue counts.

``from gridman.core.services import mediation; mediation.accept(...)`` keeps working: the public
names are re-exported here.
"""

from __future__ import annotations

from gridman.core.services.mediation.actions import (
    ACTIONS,
    accept,
    act,
    allowed_actions,
    assign,
    attach,
    escalate,
    evaluate,
    fail,
    hand_down,
    handle,
    merge,
    record_referral_outcome,
    refer,
    reopen,
    resolve,
    verify,
    verify_fail,
)
from gridman.core.services.mediation.attachments import attachment_path, attachments_root, file_inputs
from gridman.core.services.mediation.bulk import act_many
from gridman.core.services.mediation.handlers import handler_candidates, user_id
from gridman.core.services.mediation.reading import show
from gridman.core.services.mediation.records import (
    ActionResult,
    AttachmentInput,
    AttachmentView,
    BulkResult,
    IncidentView,
    PartyInput,
    PartyView,
    Skipped,
    StepView,
    SweepResult,
)
from gridman.core.services.mediation.report import report
from gridman.core.services.mediation.rules import (
    ACTION_LABELS,
    ACTIVE_STATUSES,
    ALLOWED_FROM,
    CASE_ACTIONS,
    HANDLE_KINDS,
    LEVEL_ROLE,
    LEVELS,
    SPECS,
    SWEEP_STATUSES,
    Action,
    ActionSpec,
    Choice,
    Input,
    Kind,
    acting_level,
    action_label,
    action_spec,
    level_above,
    level_below,
    may_act,
    require_level,
    set_verify_by,
    start_level,
    verify_by_setting,
    verifying_level,
)
from gridman.core.services.mediation.sweep import escalate_overdue, overdue_counts

__all__ = [
    "ACTIONS", "ACTION_LABELS", "ACTIVE_STATUSES", "ALLOWED_FROM", "CASE_ACTIONS", "HANDLE_KINDS", "LEVELS",
    "LEVEL_ROLE", "SPECS", "SWEEP_STATUSES", "Action", "ActionResult", "ActionSpec", "AttachmentInput",
    "AttachmentView", "BulkResult", "Choice", "IncidentView", "Input", "Kind", "PartyInput", "PartyView", "Skipped",
    "StepView", "SweepResult", "accept", "act", "act_many", "acting_level", "action_label", "action_spec",
    "allowed_actions", "assign", "attach", "attachment_path", "attachments_root", "escalate", "escalate_overdue",
    "evaluate", "fail", "file_inputs", "hand_down", "handle", "handler_candidates", "level_above", "level_below",
    "may_act", "merge", "overdue_counts", "record_referral_outcome", "refer", "reopen", "report", "require_level",
    "resolve", "set_verify_by", "show", "start_level", "user_id", "verify", "verify_by_setting", "verify_fail",
    "verifying_level",
]

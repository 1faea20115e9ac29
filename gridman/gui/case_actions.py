"""The actions offered on the *selected rows* of the incidents list (事件) — the hook other
features plug list actions into with :func:`register`.

``actions_for(actor, incidents)`` returns them; the incidents view shows exactly these as
buttons ("查看案件" for one selected case). The mediation actions themselves (accept, escalate, hand
down, refer, resolve, verify, evaluate, reopen, merge…) are offered in the case view
(gridman.gui.views.mediation_gui.CaseView), which asks ``mediation.allowed_actions`` each time the
case loads, and as bulk actions in the supervisor's queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gridman.core.services.permissions import Actor


@dataclass(frozen=True)
class CaseAction:
    key: str  # "open", "accept", "escalate", …
    text: str  # already translated
    run: Callable[[Any], None]  # called with the host widget (incidents view or case view)
    enabled: bool = True


# providers: (actor, selected incident ids, host) -> actions
Provider = Callable[[Actor, list[int], Any], list[CaseAction]]
_providers: list[Provider] = []


def register(provider: Provider) -> None:
    """Add a provider of case actions (the mediation GUI calls this at import)."""
    if provider not in _providers:
        _providers.append(provider)


def actions_for(actor: Actor, incident_ids: list[int], host: Any) -> list[CaseAction]:
    from gridman.gui.i18n import tr

    out: list[CaseAction] = []
    if len(incident_ids) == 1:
        out.append(CaseAction("open", tr("查看案件"), lambda h: h.open_case(incident_ids[0])))
    for p in _providers:
        out.extend(p(actor, incident_ids, host))
    return out

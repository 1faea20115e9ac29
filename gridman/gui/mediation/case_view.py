"""One case in a window: its facts, parties, attachments, whole timeline, and a button for each
action the signed-in user may take now.

No rule lives here: the buttons are ``mediation.allowed_actions``, the inputs each action asks
for are its declaration (:class:`ActionDialog`), and every action goes through ``mediation.act``
with the version the user saw (``expected_version``), on the op runner; after a write the runner
broadcasts ``changed("incidents", ids)`` and the views showing cases refresh.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gridman.core import enums
from gridman.core.changes import Changes
from gridman.core.services import mediation
from gridman.core.services.permissions import Actor
from gridman.gui.errors import show_error
from gridman.gui.i18n import language, local_time, pick, tr
from gridman.gui.mediation.action_dialog import ActionDialog
from gridman.gui.mediation.widgets import action_text, show_failure
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    Signal,
)
from gridman.gui.registers.table_model import hours_text, time_left_colour


class CaseView(QDialog):
    """One case: facts, parties, attachments, the full timeline, and a button for each action the
    signed-in user may take now (asked from the service each time the case is loaded)."""

    acted = Signal(str)  # the action taken

    def __init__(self, runner: OpRunner, actor: Actor, incident_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.incident_id = runner, actor, incident_id
        self.view: mediation.IncidentView | None = None
        self.allowed: list[str] = []
        self.action_dialog: ActionDialog | None = None
        self.setObjectName("caseView")
        self.setWindowTitle(tr("案件"))
        self.setMinimumSize(860, 600)
        lay = QVBoxLayout(self)
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.header)
        self.steps = QTableWidget(0, 5)
        self.steps.setObjectName("timeline")
        self.steps.setHorizontalHeaderLabels([tr("时间"), tr("办理人"), tr("操作"), tr("流转"), tr("说明")])
        self.steps.horizontalHeader().setStretchLastSection(True)
        self.steps.verticalHeader().setVisible(False)
        self.steps.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.steps.setWordWrap(True)
        lay.addWidget(self.steps, 1)
        self.actions_label = QLabel(tr("可执行的操作："))
        self.actions_row = QHBoxLayout()
        self.actions_row.addWidget(self.actions_label)
        self.action_buttons: dict[str, QPushButton] = {}
        self.actions_row.addStretch(1)
        lay.addLayout(self.actions_row)
        bb = QDialogButtonBox()
        self.reload_button = bb.addButton(tr("重新加载"), QDialogButtonBox.ButtonRole.ActionRole)
        self.reload_button.clicked.connect(self.reload)
        close = bb.addButton(QDialogButtonBox.StandardButton.Close)
        close.setText(tr("关闭"))
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        runner.changes.connect(self._changed)
        self.reload()

    def _changed(self, ch: Changes) -> None:
        """Reload when a write touched this case (a merge touches the case kept as well)."""
        if not ch.touches("incidents") or not self.isVisible():
            return
        ids = ch.ids("incidents")
        if ids is None or self.incident_id in ids:
            self.reload()

    def reload(self) -> None:
        actor, iid = self.actor, self.incident_id

        def job(s, _t):  # type: ignore[no-untyped-def]
            return mediation.show(s, actor, iid), mediation.allowed_actions(s, actor, iid)

        self.runner.run(job, on_done=self._loaded, on_error=lambda e: show_error(self, e), label="case")

    def _loaded(self, result: tuple[mediation.IncidentView, list[str]]) -> None:
        v, allowed = result
        self.view, self.allowed = v, allowed
        lang = language()
        self.setWindowTitle(tr("案件 {id}：{title}").format(id=v.id, title=v.title))
        parties = pick("、", ", ").join(p.name + (tr("（登记人员）") if p.resident_id else "") for p in v.parties) or tr("无")
        extra = ""
        if v.agreement_text:
            extra += "<br>" + tr("调解协议：{text}").format(text=v.agreement_text)
        if v.referral_target:
            extra += "<br>" + tr("分流去向：{target}").format(
                target=enums.label(v.referral_target, lang, enums.ReferralTarget))
        if v.satisfaction:
            extra += "<br>" + tr("满意度：{s}").format(s=enums.label(v.satisfaction, lang, enums.Satisfaction))
        if v.attachments:
            extra += "<br>" + tr("附件：{names}").format(names="、".join(a.filename for a in v.attachments))
        left = None
        if v.due_at is not None:
            left = (v.due_at - datetime.now(UTC).replace(tzinfo=None)).total_seconds() / 3600
        colour = time_left_colour(left)
        due = local_time(v.due_at)
        if left is not None:
            due += f" <span style='background:{colour.name() if colour else '#fff'}'>&nbsp;{hours_text(left)}&nbsp;</span>"
        self.header.setText(
            tr("<b>{title}</b><br>类别：{cat}　层级：{level}　状态：{status}　网格：{grid}<br>"
               "上报：{reported}　期限：{due}<br>当事人：{parties}<br>{desc}").format(
                title=v.title, cat=enums.label(v.category, lang, enums.IncidentCategory),
                level=enums.label(v.level, lang, enums.MediationLevel),
                status=enums.label(v.status, lang, enums.IncidentStatus), grid=v.grid_name,
                reported=local_time(v.reported_at), due=due, parties=parties, desc=v.description or "") + extra)
        self.steps.setRowCount(len(v.steps))
        for i, s in enumerate(v.steps):
            flow = ""
            if s.to_level and s.from_level and s.to_level != s.from_level:
                flow = f"{enums.label(s.from_level, lang, enums.MediationLevel)} → " \
                       f"{enums.label(s.to_level, lang, enums.MediationLevel)}"
            elif s.to_status:
                flow = enums.label(s.to_status, lang, enums.IncidentStatus)
            act = action_text(s.action)
            if s.incident_id != v.id:
                act += f"（#{s.incident_id}）"
            for j, t in enumerate((local_time(s.at), s.actor_name or "", act, flow, s.note or "")):
                self.steps.setItem(i, j, QTableWidgetItem(t))
        self.steps.resizeColumnsToContents()
        self.steps.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.steps.resizeRowsToContents()
        self._build_buttons()

    def _build_buttons(self) -> None:
        for b in self.action_buttons.values():
            self.actions_row.removeWidget(b)
            b.deleteLater()
        self.action_buttons = {}
        for i, a in enumerate(self.allowed):
            b = QPushButton(action_text(a))
            b.setObjectName(f"act_{a}")
            b.clicked.connect(lambda _c=False, a=a: self.start_action(a))
            self.actions_row.insertWidget(1 + i, b)
            self.action_buttons[a] = b
        self.actions_label.setText(tr("可执行的操作：") if self.allowed else tr("当前没有您可执行的操作。"))

    def start_action(self, action: str) -> ActionDialog | None:
        """A quick action (受理) runs at once; every other one asks for its declared inputs first."""
        if mediation.action_spec(action).quick:
            self.run_action(action, {})
            return None
        category = self.view.category if self.view is not None else None
        d = ActionDialog(action, runner=self.runner, actor=self.actor, incident_ids=[self.incident_id],
                         category=category, parent=self)
        d.accepted.connect(lambda: self.run_action(action, d.values()))
        self.action_dialog = d
        d.open()
        return d

    def run_action(self, action: str, kw: dict[str, Any]) -> None:
        if self.view is None:
            return
        actor, iid, version = self.actor, self.incident_id, self.view.version

        def job(s, _t):  # type: ignore[no-untyped-def]
            return mediation.act(s, actor, iid, action, expected_version=version, **kw)

        for b in self.action_buttons.values():
            b.setEnabled(False)
        self.runner.run(job, mode="write", on_done=lambda r: self._done(action, r, kw), on_error=self._failed,
                        label=f"case-{action}")

    def _done(self, action: str, res: mediation.ActionResult, kw: dict[str, Any]) -> None:
        # the runner broadcasts what the action changed; that reloads this view (see _changed)
        self.acted.emit(action)

    def _failed(self, exc: BaseException) -> None:
        box = show_failure(self, exc)
        if box is not None:
            self.conflict_box = box
        self.reload()


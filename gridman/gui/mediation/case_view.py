"""Mediation (三级调处) in the window: the case view with only the actions the user may take now,
the inputs each action needs, the supervisor's queue (待办) and the report form (事件上报).

No rule lives here: which actions are offered comes from ``mediation.allowed_actions``, every
action goes through ``mediation.act`` with the version the user saw (``expected_version``), the
queue is ``mediation_queue.queue``. All of it runs on the op runner; after a write the runner
broadcasts ``changed("incidents", ids)`` and the views showing cases refresh.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridman.core import enums
from gridman.core.services import mediation, mediation_queue, registers
from gridman.core.services.errors import ConflictError, GridmanError, PermissionDenied
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.errors import describe, show_error, show_info
from gridman.gui.i18n import N_, language, pick, tr
from gridman.gui.models.register_model import hours_text, time_left_colour
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QAbstractItemView,
    QBrush,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QObject,
    QPushButton,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from gridman.gui.views.stale import ReloadWhenVisible

log = logging.getLogger("gridman.gui.mediation")
CONFLICT_TEXT = N_("该案件已被他人修改，请重新加载")
ACTION_TEXTS = {
    "accept": N_("受理"), "assign": N_("分派"), "handle": N_("办理记录"), "resolve": N_("调解成功"), "fail": N_("调解不成"),
    "escalate": N_("上报上级"), "hand_down": N_("交办下级"), "refer": N_("分流"),
    "referral_outcome": N_("登记分流结果"), "verify": N_("核查结案"), "verify_fail": N_("核查不通过"),
    "evaluate": N_("满意度评价"), "reopen": N_("重新办理"), "merge": N_("合并"), "attach": N_("添加附件"),
    "report": N_("上报"), "overdue": N_("超期标记"),
}
NOTE_LABELS = {
    "handle": N_("办理情况"), "fail": N_("调解不成的原因"), "escalate": N_("上报理由"), "hand_down": N_("交办意见"),
    "verify_fail": N_("核查不通过的原因"), "reopen": N_("重新办理的原因"), "referral_outcome": N_("分流办理结果"),
}
REQUIRED_NOTE = {"handle", "fail", "escalate", "hand_down", "verify_fail", "reopen", "referral_outcome"}


def _local(dt: datetime | None) -> str:
    if dt is None:
        return "—"
    return dt.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M")


def _buttons(ok_text: str) -> QDialogButtonBox:
    bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    bb.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    bb.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("取消"))
    return bb


class ActionDialog(QDialog):
    """The inputs one action needs (reason, agreement, committee, satisfaction, merge target, files);
    ``values()`` are the keyword arguments of the service function."""

    def __init__(self, action: str, *, runner: OpRunner, actor: Actor, incident_id: int,
                 parent: QWidget | None = None, incident_ids: list[int] | None = None) -> None:
        super().__init__(parent)
        self.action = action
        self.setObjectName(f"action_{action}")
        self.setWindowTitle(tr(ACTION_TEXTS.get(action, action)))
        self.setMinimumWidth(460)
        form = QFormLayout(self)
        self.note = QTextEdit()
        self.note.setFixedHeight(80)
        self.agreement = self.terms = self.target = self.satisfaction = self.into = self.settled = None
        self.handler: QComboBox | None = None
        self.files: list[str] = []
        if action == "assign":
            self.handler = QComboBox()
            self.handler.setObjectName("assignHandler")
            form.addRow(tr("办理人"), self.handler)
            ids = incident_ids or [incident_id]

            def candidates(s, _t):  # type: ignore[no-untyped-def]
                return mediation.handler_candidates(s, actor, ids)

            runner.run(candidates, on_done=self._handlers, label="assign-candidates")
        if action == "resolve":
            self.agreement = QTextEdit()
            self.agreement.setFixedHeight(90)
            self.terms = QLineEdit()
            form.addRow(tr("调解协议内容"), self.agreement)
            form.addRow(tr("协议条款"), self.terms)
        if action == "refer":
            self.target = QComboBox()
            for t in enums.ReferralTarget:
                self.target.addItem(enums.label(t, language()), t.value)
            form.addRow(tr("分流去向"), self.target)
        if action == "evaluate":
            self.satisfaction = QComboBox()
            for v in enums.Satisfaction:
                self.satisfaction.addItem(enums.label(v, language()), v.value)
            form.addRow(tr("满意度"), self.satisfaction)
        if action == "referral_outcome":
            self.settled = QCheckBox(tr("已调解成功"))
            form.addRow("", self.settled)
        if action == "merge":
            self.into = QComboBox()
            self.into.setObjectName("mergeTarget")
            form.addRow(tr("合并到案件"), self.into)
            area = None

            def job(s, _t):  # type: ignore[no-untyped-def]
                return mediation_queue.queue(s, actor, area, limit=200, with_counts=False, with_total=False).rows

            runner.run(job, on_done=lambda rows: self._targets(rows, incident_id), label="merge-targets")
        if action == "attach":
            self.pick = QPushButton(tr("选择文件…"))
            self.pick.clicked.connect(self._pick_files)
            self.files_label = QLabel(tr("未选择文件"))
            form.addRow(self.pick, self.files_label)
        form.addRow(tr(NOTE_LABELS.get(action, N_("备注"))), self.note)
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00020;")
        self.message.setWordWrap(True)
        form.addRow(self.message)
        self.buttons = _buttons(tr("确定"))
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

    def _handlers(self, rows: list[tuple[int, str, str]]) -> None:
        if self.handler is None:
            return
        for uid, name, role in rows:
            self.handler.addItem(f"{name}（{enums.label(role, language(), enums.Role)}）", uid)
        if not rows:
            self.message.setText(tr("没有可以办理这些案件的人员（所选案件须在同一层级）"))

    def _targets(self, rows: list[mediation_queue.QueueRow], own: int) -> None:
        if self.into is None:
            return
        for r in rows:
            if r.id != own:
                self.into.addItem(f"#{r.id} {r.title}（{r.grid_name}）", r.id)

    def _pick_files(self) -> None:
        fns, _ = QFileDialog.getOpenFileNames(self, tr("选择附件"), "", tr("图片和文件 (*.jpg *.jpeg *.png *.pdf *.*)"))
        if fns:
            self.set_files(fns)

    def set_files(self, files: list[str]) -> None:
        self.files = list(files)
        self.files_label.setText("、".join(Path(f).name for f in files))

    def _ok(self) -> None:
        if self.action in REQUIRED_NOTE and not self.note.toPlainText().strip():
            self.message.setText(tr("请填写{what}").format(what=tr(NOTE_LABELS[self.action])))
            return
        if self.action == "resolve" and self.agreement is not None and not self.agreement.toPlainText().strip() \
                and getattr(self, "dispute", True):
            self.message.setText(tr("请填写调解协议内容"))
            return
        if self.action == "assign" and (self.handler is None or self.handler.currentData() is None):
            self.message.setText(tr("请选择办理人"))
            return
        if self.action == "merge" and (self.into is None or self.into.currentData() is None):
            self.message.setText(tr("请选择要合并到的案件"))
            return
        if self.action == "attach" and not self.files:
            self.message.setText(tr("请选择附件"))
            return
        self.accept()

    def values(self) -> dict[str, Any]:
        note = self.note.toPlainText().strip()
        a = self.action
        if a == "referral_outcome":
            return {"outcome": note, "settled": bool(self.settled and self.settled.isChecked())}
        kw: dict[str, Any] = {"note": note} if (note or a in REQUIRED_NOTE) else {}
        if a == "resolve":
            kw["agreement_text"] = self.agreement.toPlainText().strip() or None  # type: ignore[union-attr]
            kw["agreement_terms"] = self.terms.text().strip() or None  # type: ignore[union-attr]
        elif a == "refer":
            kw["target"] = self.target.currentData()  # type: ignore[union-attr]
        elif a == "evaluate":
            kw["satisfaction"] = self.satisfaction.currentData()  # type: ignore[union-attr]
        elif a == "merge":
            kw["into_id"] = int(self.into.currentData())  # type: ignore[union-attr]
        elif a == "assign":
            kw["handler_id"] = int(self.handler.currentData())  # type: ignore[union-attr]
        elif a == "attach":
            kw["files"] = mediation.file_inputs(self.files)
        return kw


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
        runner.changed.connect(self._changed)
        self.reload()

    def _changed(self, kind: str, ids: object) -> None:
        if kind in ("incidents", "all") and (ids is None or self.incident_id in (ids or [])) and self.isVisible():
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
        due = _local(v.due_at)
        if left is not None:
            due += f" <span style='background:{colour.name() if colour else '#fff'}'>&nbsp;{hours_text(left)}&nbsp;</span>"
        self.header.setText(
            tr("<b>{title}</b><br>类别：{cat}　层级：{level}　状态：{status}　网格：{grid}<br>"
               "上报：{reported}　期限：{due}<br>当事人：{parties}<br>{desc}").format(
                title=v.title, cat=enums.label(v.category, lang, enums.IncidentCategory),
                level=enums.label(v.level, lang, enums.MediationLevel),
                status=enums.label(v.status, lang, enums.IncidentStatus), grid=v.grid_name,
                reported=_local(v.reported_at), due=due, parties=parties, desc=v.description or "") + extra)
        self.steps.setRowCount(len(v.steps))
        for i, s in enumerate(v.steps):
            flow = ""
            if s.to_level and s.from_level and s.to_level != s.from_level:
                flow = f"{enums.label(s.from_level, lang, enums.MediationLevel)} → " \
                       f"{enums.label(s.to_level, lang, enums.MediationLevel)}"
            elif s.to_status:
                flow = enums.label(s.to_status, lang, enums.IncidentStatus)
            act = tr(ACTION_TEXTS[s.action]) if s.action in ACTION_TEXTS else s.action
            if s.incident_id != v.id:
                act += f"（#{s.incident_id}）"
            for j, t in enumerate((_local(s.at), s.actor_name or "", act, flow, s.note or "")):
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
            b = QPushButton(tr(ACTION_TEXTS.get(a, a)))
            b.setObjectName(f"act_{a}")
            b.clicked.connect(lambda _c=False, a=a: self.start_action(a))
            self.actions_row.insertWidget(1 + i, b)
            self.action_buttons[a] = b
        self.actions_label.setText(tr("可执行的操作：") if self.allowed else tr("当前没有您可执行的操作。"))

    def start_action(self, action: str) -> ActionDialog | None:
        """Accept needs no input; every other action asks for its inputs first."""
        if action == "accept":
            self.run_action(action, {})
            return None
        d = ActionDialog(action, runner=self.runner, actor=self.actor, incident_id=self.incident_id, parent=self)
        if self.view is not None and self.view.category != enums.IncidentCategory.DISPUTE.value:
            d.dispute = False  # type: ignore[attr-defined]
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
        self.runner.run(job, mode="write", on_done=lambda r: self._done(action, r), on_error=self._failed,
                        label=f"case-{action}")

    def _done(self, action: str, res: mediation.ActionResult) -> None:
        ids = [self.incident_id]
        if action == "merge" and self.view is not None:
            ids.append(int(res.incident_id))
        self.acted.emit(action)
        self.runner.changed.emit("incidents", ids)  # reloads this view too (see _changed)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, ConflictError):
            self.conflict_box = show_info(self, tr(CONFLICT_TEXT), title=tr("无法完成操作"))
        else:
            show_error(self, exc)
        self.reload()


# --- the supervisor's queue --------------------------------------------------------------------

PAGE = 200  # rows per "load more"
MAX_ROWS = 1000  # the service's largest page
QUEUE_COLUMNS = (N_("编号"), N_("标题"), N_("类别"), N_("层级"), N_("状态"), N_("网格"), N_("办理人"), N_("剩余时间"),
                 N_("期限"))


class QueueView(ReloadWhenVisible, QWidget):
    """待办: the area's active cases, overdue first, time left coloured; counts per status;
    filters in SQL; bulk accept / bulk escalate of the selected cases where the service allows."""

    open_case = Signal(int)

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.area_id: int | None = None
        self.rows: list[mediation_queue.QueueRow] = []
        self.counts: dict[str, int] = {}
        self.total = 0
        self._dirty = True
        self._gen = 0
        self.limit = PAGE
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setObjectName("queueSearch")
        self.search.setClearButtonEnabled(True)
        self.search.setPlaceholderText(tr("搜索标题、描述"))
        self.status = QComboBox()
        self.status.addItem(tr("全部状态"), None)
        for s in mediation.ACTIVE_STATUSES:
            self.status.addItem(enums.label(s, language(), enums.IncidentStatus), s)
        self.category = QComboBox()
        self.category.addItem(tr("全部类别"), None)
        for c in enums.IncidentCategory:
            self.category.addItem(enums.label(c, language()), c.value)
        self.level = QComboBox()
        self.level.addItem(tr("全部层级"), None)
        for lv in enums.MediationLevel:
            self.level.addItem(enums.label(lv, language()), lv.value)
        self.handler = QComboBox()
        self.handler.addItem(tr("全部办理人"), None)
        if actor.user_id is not None:
            self.handler.addItem(tr("我办理的"), actor.user_id)
        self.overdue = QCheckBox(tr("只看超期"))
        bar.addWidget(self.search, 2)
        for w in (self.status, self.category, self.level, self.handler, self.overdue):
            bar.addWidget(w)
        lay.addLayout(bar)
        self.counts_label = QLabel()
        self.counts_label.setObjectName("queueCounts")
        self.counts_label.setWordWrap(True)
        lay.addWidget(self.counts_label)
        self.table = QTableWidget(0, len(QUEUE_COLUMNS))
        self.table.setObjectName("queueTable")
        self.table.setHorizontalHeaderLabels([tr(c) for c in QUEUE_COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda idx: self._open(idx.row()))
        lay.addWidget(self.table, 1)
        bottom = QHBoxLayout()
        self.more_label = QLabel()
        bottom.addWidget(self.more_label)
        self.more_button = QPushButton(tr("加载更多"))
        self.more_button.setObjectName("queueMore")
        self.more_button.clicked.connect(self.load_more)
        bottom.addWidget(self.more_button)
        bottom.addStretch(1)
        self.open_button = QPushButton(tr("查看案件"))
        self.open_button.clicked.connect(lambda: self._open(self.table.currentRow()))
        self.bulk_accept = QPushButton(tr("批量受理"))
        self.bulk_accept.setObjectName("bulkAccept")
        self.bulk_accept.clicked.connect(lambda: self.bulk("accept"))
        self.bulk_escalate = QPushButton(tr("批量上报上级"))
        self.bulk_escalate.setObjectName("bulkEscalate")
        self.bulk_escalate.clicked.connect(lambda: self.bulk("escalate"))
        self.bulk_assign = QPushButton(tr("批量分派"))
        self.bulk_assign.setObjectName("bulkAssign")
        self.bulk_assign.clicked.connect(lambda: self.bulk("assign"))
        for b in (self.open_button, self.bulk_accept, self.bulk_assign, self.bulk_escalate):
            bottom.addWidget(b)
        can = actor.is_admin or actor.can(Perm.HANDLE_INCIDENT)
        for b in (self.bulk_accept, self.bulk_assign, self.bulk_escalate):
            b.setVisible(can)
        lay.addLayout(bottom)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(300)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        for cb in (self.status, self.category, self.level, self.handler):
            cb.currentIndexChanged.connect(lambda _i: self.refresh())
        self.overdue.toggled.connect(lambda _b: self.refresh())

    def filters(self) -> dict[str, Any]:
        return {"status": self.status.currentData(), "category": self.category.currentData(),
                "level": self.level.currentData(), "handler": self.handler.currentData(),
                "overdue": True if self.overdue.isChecked() else None, "text": self.search.text().strip() or None}

    def load_more(self) -> None:
        """The next rows (in SQL: a larger LIMIT; the queue keeps its order)."""
        self.limit = min(self.limit + PAGE, MAX_ROWS)
        self.refresh(keep_limit=True)

    def refresh(self, *, keep_limit: bool = False) -> None:
        self._dirty = False
        self._gen += 1
        if not keep_limit:
            self.limit = PAGE
        gen, actor, area, f, limit = self._gen, self.actor, self.area_id, self.filters(), self.limit

        def job(s, _t):  # type: ignore[no-untyped-def]
            try:
                return mediation_queue.queue(s, actor, area, limit=limit, **f)
            except PermissionDenied:  # an area outside the actor's scope (an ancestor shown for context)
                if area is None:
                    raise
                return mediation_queue.queue(s, actor, None, limit=limit, **f)

        self.runner.run(job, on_done=lambda r: self._loaded(gen, r), on_error=lambda e: show_error(self, e),
                        label="queue")

    def _loaded(self, gen: int, res: mediation_queue.QueueResult) -> None:
        if gen != self._gen:
            return
        lang = language()
        self.rows, self.counts, self.total = res.rows, res.counts or {}, res.total or 0
        for r in res.rows:  # handlers met in the queue become choices of the handler filter
            if r.handler_id is not None and self.handler.findData(r.handler_id) < 0:
                self.handler.blockSignals(True)
                self.handler.addItem(r.handler_name or f"#{r.handler_id}", r.handler_id)
                self.handler.blockSignals(False)
        parts = [f"{enums.label(s, lang, enums.IncidentStatus)} {n}" for s, n in self.counts.items()]
        self.counts_label.setText(tr("各状态案件数：") + "　".join(parts))
        self.more_label.setText(tr("共 {n} 件，显示前 {m} 件").format(n=self.total, m=len(res.rows)))
        self.more_button.setVisible(self.total > len(res.rows) and self.limit < MAX_ROWS)
        self.table.setRowCount(len(res.rows))
        for i, r in enumerate(res.rows):
            left = (r.due_at - res.now).total_seconds() / 3600 if r.due_at else None
            cells = (str(r.id), r.title, enums.label(r.category, lang, enums.IncidentCategory),
                     enums.label(r.level, lang, enums.MediationLevel),
                     enums.label(r.status, lang, enums.IncidentStatus), r.grid_name, r.handler_name or "",
                     hours_text(left), _local(r.due_at))
            for j, t in enumerate(cells):
                it = QTableWidgetItem(t)
                it.setData(Qt.ItemDataRole.UserRole, r.id)
                if j == 7:
                    c = time_left_colour(left)
                    if c is not None:
                        it.setBackground(QBrush(c))
                self.table.setItem(i, j, it)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)

    def selected_ids(self) -> list[int]:
        return sorted({self.rows[i.row()].id for i in self.table.selectionModel().selectedRows()
                       if i.row() < len(self.rows)})

    def row_of(self, incident_id: int) -> int:
        return next((i for i, r in enumerate(self.rows) if r.id == incident_id), -1)

    def _open(self, row: int) -> None:
        if 0 <= row < len(self.rows):
            self.open_case.emit(self.rows[row].id)

    def bulk(self, action: str, *, note: str | None = None, handler_id: int | None = None) -> None:
        """Apply ``action`` to each selected case the service allows it on; the others are reported."""
        ids = self.selected_ids()
        if not ids:
            show_info(self, tr("请先在列表中选择案件。"))
            return
        if action == "escalate" and note is None:
            d = ActionDialog("escalate", runner=self.runner, actor=self.actor, incident_id=0, parent=self)
            d.accepted.connect(lambda: self.bulk("escalate", note=d.values()["note"]))
            self.bulk_dialog = d
            d.open()
            return
        if action == "assign" and handler_id is None:
            d = ActionDialog("assign", runner=self.runner, actor=self.actor, incident_id=0, parent=self,
                             incident_ids=ids)
            d.accepted.connect(lambda: self.bulk("assign", note=d.values().get("note"),
                                                 handler_id=d.values()["handler_id"]))
            self.bulk_dialog = d
            d.open()
            return
        actor = self.actor
        versions = {r.id: r.version for r in self.rows}
        kw: dict[str, Any] = {"note": note} if note else {}
        if handler_id is not None:
            kw["handler_id"] = handler_id

        def job(s, _t):  # type: ignore[no-untyped-def]
            # each case in a savepoint: one refused or changed case does not undo the others
            done, skipped = [], []
            for iid in ids:
                if action not in mediation.allowed_actions(s, actor, iid):
                    skipped.append(iid)
                    continue
                try:
                    with s.begin_nested():
                        mediation.act(s, actor, iid, action, expected_version=versions.get(iid), **kw)
                except GridmanError:
                    skipped.append(iid)
                    continue
                done.append(iid)
            return done, skipped

        self.runner.run(job, mode="write", on_done=self._bulk_done, on_error=self._bulk_failed, label=f"bulk-{action}")

    def _bulk_done(self, result: tuple[list[int], list[int]]) -> None:
        done, skipped = result
        self.last_bulk = result
        text = tr("已处理 {n} 件。").format(n=len(done))
        if skipped:
            text += tr("{m} 件当前不能执行此操作，已跳过：{ids}").format(m=len(skipped),
                                                               ids="、".join(f"#{i}" for i in skipped))
        self.bulk_box = show_info(self, text)
        self.runner.changed.emit("incidents", done)

    def _bulk_failed(self, exc: BaseException) -> None:
        if isinstance(exc, ConflictError):
            self.bulk_box = show_info(self, tr(CONFLICT_TEXT), title=tr("无法完成操作"))
        else:
            show_error(self, exc)
        self.refresh()


# --- the report form ---------------------------------------------------------------------------


class ReportForm(QDialog):
    """事件上报: category/subcategory, title, description, parties (residents of the register found
    by search, or free text), the place (a building or a point clicked on the map), priority,
    photos. ``reported(id)`` after the service accepted it."""

    reported = Signal(int)
    pick_on_map = Signal()

    def __init__(self, runner: OpRunner, actor: Actor, *, grid_id: int | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.setObjectName("reportForm")
        self.setWindowTitle(tr("上报事件"))
        self.setMinimumWidth(620)
        self.point: tuple[float, float] | None = None
        self.photos: list[str] = []
        self.parties: list[mediation.PartyInput] = []
        form = QFormLayout(self)
        self.grid = QComboBox()
        self.category = QComboBox()
        for c in enums.IncidentCategory:
            self.category.addItem(enums.label(c, language()), c.value)
        self.subcategory = QComboBox()
        self.subcategory.addItem(tr("（无）"), None)
        for k in enums.DisputeKind:
            self.subcategory.addItem(enums.label(k, language()), k.value)
        self.category.currentIndexChanged.connect(self._category_changed)
        self.title = QLineEdit()
        self.title.setObjectName("reportTitle")
        self.description = QTextEdit()
        self.description.setFixedHeight(80)
        self.priority = QComboBox()
        for p in enums.Priority:
            self.priority.addItem(enums.label(p, language()), p.value)
        self.priority.setCurrentIndex(max(self.priority.findData("normal"), 0))
        form.addRow(tr("网格"), self.grid)
        form.addRow(tr("类别"), self.category)
        form.addRow(tr("纠纷类型"), self.subcategory)
        form.addRow(tr("标题"), self.title)
        form.addRow(tr("描述"), self.description)
        form.addRow(tr("优先级"), self.priority)
        # parties
        prow = QHBoxLayout()
        self.party_search = QLineEdit()
        self.party_search.setObjectName("partySearch")
        self.party_search.setPlaceholderText(tr("输入姓名或证件号搜索登记人员"))
        self.party_results = QComboBox()
        self.party_results.setObjectName("partyResults")
        self.party_results.setMinimumWidth(200)
        self.add_resident = QPushButton(tr("添加登记人员"))
        self.add_resident.setObjectName("addResident")
        self.add_resident.clicked.connect(self._add_resident)
        prow.addWidget(self.party_search, 1)
        prow.addWidget(self.party_results, 1)
        prow.addWidget(self.add_resident)
        form.addRow(tr("当事人"), prow)
        frow = QHBoxLayout()
        self.party_free = QLineEdit()
        self.party_free.setPlaceholderText(tr("未登记的当事人姓名"))
        self.add_free = QPushButton(tr("添加"))
        self.add_free.clicked.connect(self._add_free)
        frow.addWidget(self.party_free, 1)
        frow.addWidget(self.add_free)
        form.addRow("", frow)
        self.party_list = QListWidget()
        self.party_list.setObjectName("partyList")
        self.party_list.setFixedHeight(64)
        form.addRow("", self.party_list)
        # place
        lrow = QHBoxLayout()
        self.building = QComboBox()
        self.building.setObjectName("building")
        self.building.addItem(tr("（不选楼栋）"), None)
        self.map_button = QPushButton(tr("在地图上选点"))
        self.map_button.clicked.connect(self.pick_on_map.emit)
        self.point_label = QLabel()
        lrow.addWidget(self.building, 1)
        lrow.addWidget(self.map_button)
        lrow.addWidget(self.point_label)
        form.addRow(tr("地点"), lrow)
        self.location_text = QLineEdit()
        form.addRow(tr("地点说明"), self.location_text)
        arow = QHBoxLayout()
        self.photo_button = QPushButton(tr("添加照片…"))
        self.photo_button.clicked.connect(self._pick_photos)
        self.photo_label = QLabel(tr("无照片"))
        arow.addWidget(self.photo_button)
        arow.addWidget(self.photo_label, 1)
        form.addRow(tr("照片"), arow)
        self.message = QLabel()
        self.message.setStyleSheet("color: #b00020;")
        self.message.setWordWrap(True)
        form.addRow(self.message)
        self.buttons = _buttons(tr("上报"))
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(250)
        self._search_timer.timeout.connect(self._search_residents)
        self.party_search.textChanged.connect(lambda _t: self._search_timer.start())
        self.grid.currentIndexChanged.connect(lambda _i: self._load_buildings())
        self._category_changed()
        want = grid_id
        runner.run(lambda s, _t: registers.grid_choices(s, actor), on_done=lambda g: self._grids(g, want),
                   label="grids")

    def _grids(self, grids: list[tuple[int, str]], want: int | None) -> None:
        for i, n in grids:
            self.grid.addItem(n, i)
        if want is not None and self.grid.findData(want) >= 0:
            self.grid.setCurrentIndex(self.grid.findData(want))

    def _category_changed(self) -> None:
        dispute = self.category.currentData() == enums.IncidentCategory.DISPUTE.value
        self.subcategory.setEnabled(dispute)
        if not dispute:
            self.subcategory.setCurrentIndex(0)

    def _load_buildings(self) -> None:
        gid, actor = self.grid.currentData(), self.actor
        if gid is None:
            return

        def job(s, _t):  # type: ignore[no-untyped-def]
            p = registers.page(s, actor, "buildings", filters=registers.Filters(area_id=gid), limit=300)
            return [(i, f"{r[0]}（{r[2] or ''}）") for i, r in zip(p.ids, p.rows, strict=True)]

        self.runner.run(job, on_done=self._buildings, label="buildings")

    def _buildings(self, rows: list[tuple[int, str]]) -> None:
        self.building.clear()
        self.building.addItem(tr("（不选楼栋）"), None)
        for i, t in rows:
            self.building.addItem(t, i)

    def _search_residents(self) -> None:
        text, actor = self.party_search.text().strip(), self.actor
        if len(text) < 1:
            self.party_results.clear()
            return

        def job(s, _t):  # type: ignore[no-untyped-def]
            p = registers.page(s, actor, "residents", filters=registers.Filters(text=text, status="active"), limit=20)
            return [(i, f"{r[0]}　{r[2] or ''}　{r[7] or ''}") for i, r in zip(p.ids, p.rows, strict=True)]

        self.runner.run(job, on_done=self._residents_found, label="party-search")

    def _residents_found(self, rows: list[tuple[int, str]]) -> None:
        self.party_results.clear()
        for i, t in rows:
            self.party_results.addItem(t, i)

    def _add_resident(self) -> None:
        rid = self.party_results.currentData()
        if rid is None:
            return
        self.parties.append(mediation.PartyInput(resident_id=int(rid)))
        self.party_list.addItem(QListWidgetItem(self.party_results.currentText() + tr("（登记人员）")))

    def _add_free(self) -> None:
        name = self.party_free.text().strip()
        if name:
            self.parties.append(mediation.PartyInput(name=name))
            self.party_list.addItem(QListWidgetItem(name))
            self.party_free.clear()

    def set_point(self, lon: float, lat: float) -> None:
        self.point = (lon, lat)
        self.point_label.setText(f"{lon:.5f}, {lat:.5f}")

    def _pick_photos(self) -> None:
        fns, _ = QFileDialog.getOpenFileNames(self, tr("选择照片"), "", tr("图片 (*.jpg *.jpeg *.png *.gif *.bmp)"))
        if fns:
            self.set_photos(fns)

    def set_photos(self, files: list[str]) -> None:
        self.photos = list(files)
        self.photo_label.setText("、".join(Path(f).name for f in files) or tr("无照片"))

    def save(self) -> None:
        actor = self.actor
        grid_id = self.grid.currentData()
        if grid_id is None:
            self.message.setText(tr("请选择网格"))
            return
        kw = dict(grid_id=int(grid_id), category=self.category.currentData(), subcategory=self.subcategory.currentData(),
                  title=self.title.text(), description=self.description.toPlainText(),
                  priority=self.priority.currentData(), parties=list(self.parties),
                  building_id=self.building.currentData(), location_text=self.location_text.text() or None,
                  lon=self.point[0] if self.point else None, lat=self.point[1] if self.point else None)
        photos = list(self.photos)

        def job(s, _t):  # type: ignore[no-untyped-def]
            return mediation.report(s, actor, attachments=mediation.file_inputs(photos), **kw)

        self.save_button.setEnabled(False)
        self.runner.run(job, mode="write", on_done=self._done, on_error=self._failed, label="report")

    def _done(self, res: mediation.ActionResult) -> None:
        self.incident_id = res.incident_id
        self.runner.changed.emit("incidents", [res.incident_id])
        self.reported.emit(res.incident_id)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.save_button.setEnabled(True)
        self.message.setText(describe(exc)[0])


# --- the overdue sweep ------------------------------------------------------------------------


class OverdueSweeper(QObject):
    """Runs ``mediation.escalate_overdue`` for the signed-in user in the background at start-up
    and every ``interval_ms`` (10 minutes), and broadcasts the cases it moved."""

    overdue = Signal(object)  # {level: overdue active cases} after each run (the status bar shows it)

    def __init__(self, runner: OpRunner, actor: Actor, *, interval_ms: int = 600_000, parent: Any = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.last: mediation.SweepResult | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.sweep)

    def start(self, *, delay_ms: int = 1500) -> None:
        if not (self.actor.is_admin or self.actor.can(Perm.HANDLE_INCIDENT)):
            return
        QTimer.singleShot(delay_ms, self.sweep)
        self.timer.start()

    def sweep(self) -> None:
        actor = self.actor
        self.runner.run(lambda s, _t: mediation.escalate_overdue(s, actor), mode="write", on_done=self._done,
                        on_error=self._failed, label="escalate-overdue")

    def _failed(self, exc: BaseException) -> None:
        # a background chore: a conflict or a refusal is logged, the next run tries again
        log.warning("overdue sweep failed: %s", exc)

    def _done(self, res: mediation.SweepResult) -> None:
        self.last = res
        moved = res.escalated_ids + res.flagged_ids
        if moved:
            self.runner.changed.emit("incidents", moved)
        actor = self.actor
        self.runner.run(lambda s, _t: mediation.overdue_counts(s, actor), on_done=self.overdue.emit,
                        on_error=self._failed, label="overdue-counts")

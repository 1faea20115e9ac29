"""事件 list: overdue first, time left coloured; read-only until the mediation actions plug in
through gridman.gui.case_actions."""

from __future__ import annotations

from dataclasses import replace

from gridman.core import enums
from gridman.core.services import registers
from gridman.core.services.permissions import Actor
from gridman.gui import case_actions
from gridman.gui.errors import show_error
from gridman.gui.i18n import N_, language, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from gridman.gui.views.register_view import RegisterView


class IncidentsView(RegisterView):
    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(runner, actor, "incidents", parent)
        self.search.setPlaceholderText(tr("搜索事件标题、描述、地点（Ctrl+F）"))
        bar = self.layout().itemAt(0).layout()
        self.status = QComboBox()
        self.status.setObjectName("statusFilter")
        self.status.addItem(tr("未办结"), "open")
        self.status.addItem(tr("全部状态"), None)
        for s in enums.IncidentStatus:
            self.status.addItem(enums.label(s, language()), s.value)
        self.category = QComboBox()
        self.category.addItem(tr("全部类别"), None)
        for c in enums.IncidentCategory:
            self.category.addItem(enums.label(c, language()), c.value)
        self.level = QComboBox()
        self.level.addItem(tr("全部层级"), None)
        for lv in enums.MediationLevel:
            self.level.addItem(enums.label(lv, language()), lv.value)
        self.overdue = QCheckBox(tr("只看超期"))
        for i, w in enumerate((self.status, self.category, self.level, self.overdue)):
            bar.insertWidget(1 + i, w)
        for cb in (self.status, self.category, self.level):
            cb.currentIndexChanged.connect(lambda _i: self.apply_filters())
        self.overdue.toggled.connect(lambda _b: self.apply_filters())
        self.table.selectionModel().selectionChanged.connect(lambda *_a: self.update_actions())
        self.open_row.connect(lambda _k, i: self.open_case(i))
        self._action_buttons: list[QPushButton] = []
        self.update_actions()

    def current_filters(self) -> registers.Filters:
        f = super().current_filters()
        return replace(f, status=self.status.currentData(), category=self.category.currentData(),
                       level=self.level.currentData(), overdue_only=self.overdue.isChecked())

    def show_filtered(self, *, category: str | None = None, status: str | None = "open") -> None:
        """Open the list narrowed to a category (dashboard bar clicks)."""
        for cb, v in ((self.category, category), (self.status, status)):
            cb.blockSignals(True)
            cb.setCurrentIndex(max(cb.findData(v), 0))
            cb.blockSignals(False)
        self.apply_filters()

    def update_actions(self) -> None:
        for b in self._action_buttons:
            b.deleteLater()
        self._action_buttons = []
        ids = self.selected_ids() if self.table.selectionModel() else []
        for a in case_actions.actions_for(self.actor, ids, self):
            b = self.add_action(a.text, lambda _c=False, a=a: a.run(self), name=f"case_{a.key}")
            b.setEnabled(a.enabled)
            self._action_buttons.append(b)

    def open_case(self, incident_id: int):  # type: ignore[no-untyped-def]
        from gridman.gui.views.mediation_gui import CaseView

        d = CaseView(self.runner, self.actor, incident_id, self)
        d.open()
        return d


class CaseDialog(QDialog):
    """The case view: facts, parties and the full timeline; action buttons from case_actions."""

    def __init__(self, runner: OpRunner, actor: Actor, incident_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.incident_id = runner, actor, incident_id
        self.setWindowTitle(tr("案件"))
        self.setMinimumSize(760, 520)
        lay = QVBoxLayout(self)
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.header)
        self.steps = QTableWidget(0, 5)
        self.steps.setHorizontalHeaderLabels([tr("时间"), tr("办理人"), tr("操作"), tr("流转"), tr("说明")])
        self.steps.horizontalHeader().setStretchLastSection(True)
        self.steps.verticalHeader().setVisible(False)
        self.steps.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        lay.addWidget(self.steps)
        self.actions_row = QHBoxLayout()
        lay.addLayout(self.actions_row)
        for a in case_actions.actions_for(actor, [incident_id], self):
            if a.key == "open":
                continue
            b = QPushButton(a.text)
            b.setEnabled(a.enabled)
            b.clicked.connect(lambda _c=False, a=a: a.run(self))
            self.actions_row.addWidget(b)
        self.actions_row.addStretch(1)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        bb.button(QDialogButtonBox.StandardButton.Close).setText(tr("关闭"))
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        self.reload()

    def reload(self) -> None:
        actor, iid = self.actor, self.incident_id
        self.runner.run(lambda s, _t: registers.incident_view(s, actor, iid), on_done=self._loaded,
                        on_error=lambda e: show_error(self, e), label="case")

    def _loaded(self, v: registers.IncidentView) -> None:
        lang = language()
        self.setWindowTitle(tr("案件 {id}：{title}").format(id=v.id, title=v.title))
        parties = "、".join(p[0] for p in v.parties) or tr("无")
        self.header.setText(
            tr("<b>{title}</b><br>类别：{cat}　层级：{level}　状态：{status}　网格：{grid}<br>"
               "上报：{reported}　期限：{due}<br>当事人：{parties}<br>{desc}").format(
                title=v.title, cat=enums.label(v.category, lang, enums.IncidentCategory),
                level=enums.label(v.level, lang, enums.MediationLevel),
                status=enums.label(v.status, lang, enums.IncidentStatus), grid=v.grid_name,
                reported=v.reported_at.strftime("%Y-%m-%d %H:%M"),
                due=v.due_at.strftime("%Y-%m-%d %H:%M") if v.due_at else "—", parties=parties,
                desc=v.description or ""))
        self.steps.setRowCount(len(v.steps))
        for i, s in enumerate(v.steps):
            flow = ""
            if s.to_level and s.from_level and s.to_level != s.from_level:
                flow = f"{enums.label(s.from_level, lang, enums.MediationLevel)} → " \
                       f"{enums.label(s.to_level, lang, enums.MediationLevel)}"
            elif s.to_status:
                flow = enums.label(s.to_status, lang, enums.IncidentStatus)
            for j, t in enumerate((s.at.strftime("%Y-%m-%d %H:%M"), s.actor_name or "", tr(STEP_ACTIONS[s.action]) if s.action in STEP_ACTIONS
                                   else s.action, flow, s.note or "")):
                self.steps.setItem(i, j, QTableWidgetItem(t))
        self.steps.resizeColumnsToContents()
        self.steps.horizontalHeader().setStretchLastSection(True)


STEP_ACTIONS = {"report": N_("上报"), "accept": N_("受理"), "escalate": N_("上报上级"), "hand_down": N_("下派"), "refer": N_("分流"),
                "resolve": N_("调解成功"), "fail": N_("调解不成"), "verify": N_("核查"), "evaluate": N_("评价"), "close": N_("结案"),
                "reopen": N_("重新办理"), "merge": N_("合并"), "assign": N_("指派"), "handle": N_("办理"), "note": N_("备注")}

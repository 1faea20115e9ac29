"""事件 list: every case of the area (closed ones too), overdue first, time left coloured. A case
opens in the case view (:class:`gridman.gui.mediation.case_view.CaseView`), which offers the
actions the user may take now; with one row selected the list offers "查看案件"."""

from __future__ import annotations

from dataclasses import replace

from gridman.core import enums
from gridman.core.services import registers
from gridman.core.services.permissions import Actor
from gridman.gui.i18n import tr
from gridman.gui.mediation.widgets import enum_filter
from gridman.gui.ops import OpRunner
from gridman.gui.qt import QCheckBox, QWidget
from gridman.gui.registers.view import RegisterView


class IncidentsView(RegisterView):
    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(runner, actor, "incidents", parent)
        self.search.setPlaceholderText(tr("搜索事件标题、描述、地点（Ctrl+F）"))
        bar = self.layout().itemAt(0).layout()
        self.status = enum_filter(tr("全部状态"), enums.IncidentStatus)
        self.status.setObjectName("statusFilter")
        self.status.insertItem(0, tr("未办结"), "open")
        self.status.setCurrentIndex(0)
        self.category = enum_filter(tr("全部类别"), enums.IncidentCategory)
        self.level = enum_filter(tr("全部层级"), enums.MediationLevel)
        self.overdue = QCheckBox(tr("只看超期"))
        for i, w in enumerate((self.status, self.category, self.level, self.overdue)):
            bar.insertWidget(1 + i, w)
        for cb in (self.status, self.category, self.level):
            cb.currentIndexChanged.connect(lambda _i: self.apply_filters())
        self.overdue.toggled.connect(lambda _b: self.apply_filters())
        self.table.selectionModel().selectionChanged.connect(lambda *_a: self.update_actions())
        self.open_row.connect(lambda _k, i: self.open_case(i))
        self.open_button = self.add_action(tr("查看案件"), lambda _c=False: self._open_selected(), name="case_open")
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
        """"查看案件" for exactly one selected case (the mediation actions live in the case view)."""
        ids = self.selected_ids() if self.table.selectionModel() else []
        self.open_button.setVisible(len(ids) == 1)

    def _open_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            self.open_case(ids[0])

    def open_case(self, incident_id: int):  # type: ignore[no-untyped-def]
        from gridman.gui.mediation.case_view import CaseView

        d = CaseView(self.runner, self.actor, incident_id, self)
        d.open()
        return d

"""办理时限与节假日: the time-limit policy editor (per level and category, calendar or working
days) with the holiday calendar, over ``time_limits.set_policy``/``set_holiday``."""

from __future__ import annotations

from datetime import date
from typing import Any

from gridman.core import enums
from gridman.core.services import time_limits
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.admin.tables import plain_table as _table
from gridman.gui.errors import describe
from gridman.gui.i18n import N_, language, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

LEVEL_NAMES = {"grid": N_("网格"), "community": N_("社区"), "street": N_("街道"), "case": N_("全案")}


class PolicyEditor(QWidget):
    """办理时限: the limit per level and category (days, calendar or working days); holidays."""

    def __init__(self, runner: OpRunner, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor = runner, actor
        self.setObjectName("policyEditor")
        lay = QHBoxLayout(self)
        left = QVBoxLayout()
        self.policies = _table([tr("层级"), tr("事件类别"), tr("时限（天）"), tr("计算方式")], "policyTable")
        self.policies.itemSelectionChanged.connect(self._picked)
        left.addWidget(self.policies, 1)
        form = QFormLayout()
        self.level = QComboBox()
        for lv in time_limits.POLICY_LEVELS:
            self.level.addItem(tr(LEVEL_NAMES[lv]), lv)
        self.category = QComboBox()
        self.category.addItem(tr("所有类别（默认）"), None)
        for c in enums.IncidentCategory:
            self.category.addItem(enums.label(c, language()), c.value)
        self.days = QSpinBox()
        self.days.setRange(1, 365)
        self.days.setSuffix(tr(" 天"))
        self.working = QCheckBox(tr("按工作日计算（跳过周末和法定节假日）"))
        save = QPushButton(tr("保存时限"))
        save.setObjectName("savePolicy")
        save.clicked.connect(self.save_policy)
        form.addRow(tr("层级"), self.level)
        form.addRow(tr("事件类别"), self.category)
        form.addRow(tr("时限"), self.days)
        form.addRow("", self.working)
        form.addRow("", save)
        left.addLayout(form)
        lay.addLayout(left, 3)
        right = QVBoxLayout()
        self.holidays = _table([tr("日期"), tr("类型"), tr("名称")], "holidayTable")
        right.addWidget(self.holidays, 1)
        hform = QFormLayout()
        self.h_day = QLineEdit()
        self.h_day.setPlaceholderText(tr("例如 2026-10-01"))
        self.h_workday = QCheckBox(tr("调休上班日"))
        self.h_name = QLineEdit()
        hsave = QPushButton(tr("保存节假日"))
        hsave.setObjectName("saveHoliday")
        hsave.clicked.connect(self.save_holiday)
        hform.addRow(tr("日期"), self.h_day)
        hform.addRow("", self.h_workday)
        hform.addRow(tr("名称"), self.h_name)
        hform.addRow("", hsave)
        right.addLayout(hform)
        lay.addLayout(right, 2)
        self.message = QLabel()
        self.message.setWordWrap(True)
        left.addWidget(self.message)
        enabled = actor.can(Perm.MANAGE_POLICY)
        for w in (save, hsave):
            w.setEnabled(enabled)
        self.rows: list[time_limits.Limit] = []
        self.refresh()

    def refresh(self) -> None:
        self.runner.run(lambda s, _t: (time_limits.list_policies(s), time_limits.list_holidays(s)),
                        on_done=self._loaded, label="policies")

    def mark_dirty(self) -> None:
        self.refresh()

    def _loaded(self, result: tuple[list[time_limits.Limit], list[tuple[date, bool, str | None]]]) -> None:
        rows, hols = result
        self.rows = rows
        lang = language()
        self.policies.setRowCount(len(rows))
        for i, r in enumerate(rows):
            cells = (tr(LEVEL_NAMES.get(r.level, r.level)),
                     enums.label(r.category, lang, enums.IncidentCategory) if r.category else tr("所有类别（默认）"),
                     str(r.days), tr("工作日") if r.working_days else tr("自然日"))
            for j, t in enumerate(cells):
                self.policies.setItem(i, j, QTableWidgetItem(t))
        self.policies.resizeColumnsToContents()
        if rows and not self.policies.selectionModel().hasSelection():
            self.policies.selectRow(0)
        self.holidays.setRowCount(len(hols))
        for i, (d, wd, n) in enumerate(hols):
            for j, t in enumerate((d.isoformat(), tr("调休上班") if wd else tr("放假"), n or "")):
                self.holidays.setItem(i, j, QTableWidgetItem(t))
        self.holidays.resizeColumnsToContents()

    def _picked(self) -> None:
        rows = self.policies.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.rows):
            return
        r = self.rows[rows[0].row()]
        self.level.setCurrentIndex(max(self.level.findData(r.level), 0))
        self.category.setCurrentIndex(max(self.category.findData(r.category), 0))
        self.days.setValue(r.days)
        self.working.setChecked(r.working_days)

    def save_policy(self) -> None:
        actor = self.actor
        kw = {"level": self.level.currentData(), "category": self.category.currentData(), "days": self.days.value(),
              "working_days": self.working.isChecked()}
        self.runner.run(lambda s, _t: time_limits.set_policy(s, actor, **kw), mode="write", on_done=self._saved,
                        on_error=lambda e: self.message.setText(describe(e)[0]), label="set-policy")

    def save_holiday(self) -> None:
        actor = self.actor
        try:
            day = date.fromisoformat(self.h_day.text().strip())
        except ValueError:
            self.message.setText(tr("日期格式应为 年-月-日，例如 2026-10-01"))
            return
        kw = {"day": day, "is_workday": self.h_workday.isChecked(), "name": self.h_name.text().strip() or None}
        self.runner.run(lambda s, _t: time_limits.set_holiday(s, actor, **kw), mode="write", on_done=self._saved,
                        on_error=lambda e: self.message.setText(describe(e)[0]), label="set-holiday")

    def _saved(self, _r: Any) -> None:
        self.message.setText(tr("已保存。新的时限从案件下一次进入该层级时起适用。"))
        self.refresh()

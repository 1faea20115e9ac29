"""A register page: search and filters (applied in SQL) over a lazily fetched table.

A broadcast change reaches :meth:`RegisterView.apply_changes`: a visible register refreshes the
changed rows in place (or re-queries what it has loaded, keeping its scroll position and the
selection by id); a hidden one keeps the changes and applies them when it is next shown."""

from __future__ import annotations

from dataclasses import replace

from gridman.core import enums, fields
from gridman.core.changes import Changes
from gridman.core.services import registers
from gridman.core.services.permissions import Actor
from gridman.gui.i18n import language, tr
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QModelIndex,
    QPushButton,
    QSpinBox,
    Qt,
    QTableView,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from gridman.gui.registers.table_model import ID_ROLE, RegisterModel
from gridman.gui.settings import app_settings
from gridman.gui.views.stale import ReloadWhenVisible


def kind_title(kind: str) -> str:
    """The register's name from the field catalogue (实有人口 / Residents)."""
    return fields.register_name(kind, language())


class RegisterView(ReloadWhenVisible, QWidget):
    """Search box, filters and the table of one register. ``open_row(kind, id)`` on double-click."""

    open_row = Signal(str, int)

    def __init__(self, runner: OpRunner, actor: Actor, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.kind = runner, actor, kind
        self.area_id: int | None = None
        self._dirty = True
        self._pending = Changes()  # changes that arrived while hidden
        self._kept: tuple[int, int, list[int], int | None] | None = None
        self.model = RegisterModel(runner, actor, kind, parent=self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setClearButtonEnabled(True)
        self.search.setPlaceholderText(tr("搜索姓名、证件号、电话、地址（Ctrl+F）") if kind == "residents"
                                       else tr("搜索（Ctrl+F）"))
        self.search.setMinimumWidth(220)
        bar.addWidget(self.search, 2)
        self.pop_type = self.tag = self.age_min = self.age_max = self.status = None
        if kind == "residents":
            self.pop_type = QComboBox()
            self.pop_type.addItem(tr("全部人口类型"), None)
            for p in enums.PopulationType:
                self.pop_type.addItem(enums.label(p, language()), p.value)
            self.tag = QComboBox()
            self.tag.addItem(tr("全部标签"), None)
            self.age_min, self.age_max = QSpinBox(), QSpinBox()
            for sb, pre, any_ in ((self.age_min, tr("年龄 ≥"), tr("最小年龄不限")),
                                  (self.age_max, tr("年龄 ≤"), tr("最大年龄不限"))):
                sb.setRange(-1, 130)
                sb.setSpecialValueText(any_)
                sb.setValue(-1)
                sb.setPrefix(pre + " ")
                sb.setMinimumWidth(120)
            self.status = QComboBox()
            self.status.addItem(tr("在住"), "active")
            self.status.addItem(tr("全部状态"), None)
            for w in (self.pop_type, self.tag, self.age_min, self.age_max, self.status):
                bar.addWidget(w)
            self._load_tags()
        self.count_label = QLabel()
        self.count_label.setMinimumWidth(110)
        bar.addWidget(self.count_label)
        self.actions_bar = QHBoxLayout()
        bar.addLayout(self.actions_bar)
        lay.addLayout(bar)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicatorShown(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.doubleClicked.connect(self._double_clicked)
        lay.addWidget(self.table)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.apply_filters)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        for w in (self.pop_type, self.tag, self.status):
            if w is not None:
                w.currentIndexChanged.connect(lambda _i: self.apply_filters())
        for w in (self.age_min, self.age_max):
            if w is not None:
                w.valueChanged.connect(lambda _v: self._debounce.start())
        self.model.counted.connect(self._show_count)
        self.model.loaded.connect(self._show_count)
        self.model.about_to_reload.connect(self._keep_position)
        self.model.reloaded.connect(self._restore_position)
        self._restore_columns()

    def _load_tags(self) -> None:
        actor = self.actor

        def fill(tags: list[tuple[str, str, str]]) -> None:
            for code, zh, en in tags:
                self.tag.addItem(en if language() == "en" else zh, code)  # type: ignore[union-attr]

        self.runner.run(lambda s, _t: registers.tag_choices(s, actor), on_done=fill, label="tags")

    def current_filters(self) -> registers.Filters:
        f = registers.Filters(area_id=self.area_id, text=self.search.text())
        if self.kind == "residents":
            tag = self.tag.currentData()  # type: ignore[union-attr]
            amin, amax = self.age_min.value(), self.age_max.value()  # type: ignore[union-attr]
            f = replace(f, population_type=self.pop_type.currentData(),  # type: ignore[union-attr]
                        tags=(tag,) if tag else (), age_min=amin if amin >= 0 else None,
                        age_max=amax if amax >= 0 else None, status=self.status.currentData())  # type: ignore[union-attr]
        return f

    def apply_filters(self) -> None:
        self._debounce.stop()
        self.model.set_filters(self.current_filters())
        self._dirty = False

    def refresh(self) -> None:
        self._pending = Changes()
        self.apply_filters()

    # --- changes broadcast by the op runner ---------------------------------------------------
    def apply_changes(self, ch: Changes) -> None:
        """Show what a write changed, without losing the user's place."""
        if self._dirty:
            return  # a full reload is due anyway
        if not self.isVisible():
            self._pending = self._pending.merged(ch)
            return
        self.model.apply_changes(ch)

    def showEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        super().showEvent(event)
        if self._pending and not self._dirty:
            pending, self._pending = self._pending, Changes()
            self.model.apply_changes(pending)

    def _keep_position(self) -> None:
        sel = self.table.selectionModel()
        current = self.table.currentIndex()
        self._kept = (self.table.verticalScrollBar().value(), self.table.horizontalScrollBar().value(),
                      [self.model.row_id(i.row()) for i in sel.selectedRows()] if sel is not None else [],
                      self.model.row_id(current.row()) if current.isValid() else None)

    def _restore_position(self) -> None:
        if self._kept is None:
            return
        v, h, selected, current = self._kept
        self._kept = None
        where = {rid: i for i, rid in enumerate(self.model.ids)}
        sel = self.table.selectionModel()
        flags = sel.SelectionFlag.Select | sel.SelectionFlag.Rows
        if current in where:
            sel.setCurrentIndex(self.model.index(where[current], 0), sel.SelectionFlag.NoUpdate)
        for rid in selected:
            if rid in where:
                sel.select(self.model.index(where[rid], 0), flags)
        self.table.doItemsLayout()  # scroll ranges for the new rows, before restoring the position
        self.table.verticalScrollBar().setValue(v)
        self.table.horizontalScrollBar().setValue(h)

    def _show_count(self, *_a: object) -> None:
        n = self.model.total
        if n is None:
            self.count_label.setText(tr("已显示 {n} 条").format(n=self.model.rowCount()))
        else:
            self.count_label.setText(tr("共 {n} 条").format(n=n))

    def _double_clicked(self, index: QModelIndex) -> None:
        rid = self.model.data(index, ID_ROLE)
        if rid is not None:
            self.open_row.emit(self.kind, int(rid))

    def selected_ids(self) -> list[int]:
        return [self.model.row_id(i.row()) for i in self.table.selectionModel().selectedRows()]

    def add_action(self, text: str, slot, *, name: str | None = None) -> QPushButton:  # type: ignore[no-untyped-def]
        b = QPushButton(text)
        if name:
            b.setObjectName(name)
        b.clicked.connect(slot)
        self.actions_bar.addWidget(b)
        return b

    # column widths persist per register
    def _restore_columns(self) -> None:
        st = app_settings().value(f"columns/{self.kind}")
        if st is not None:
            self.table.horizontalHeader().restoreState(st)
        else:
            widths = {"name": 90, "title": 220, "address": 220, "findings": 260, "citizen_id": 170,
                      "household_no": 160, "tags": 160, "reported_at": 130, "due_at": 130, "visited_at": 130,
                      "time_left": 120, "id": 60, "username": 170, "display_name": 150, "area": 170,
                      "grids": 200, "role": 110, "contact_name": 90, "kind": 110, "resident": 90, "visitor": 90}
            for i, c in enumerate(self.model.columns):
                self.table.setColumnWidth(i, widths.get(c.key, 100))

    def save_columns(self) -> None:
        app_settings().setValue(f"columns/{self.kind}", self.table.horizontalHeader().saveState())

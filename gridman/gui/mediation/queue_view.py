"""待办: the supervisor's queue of active cases, overdue first, with bulk actions.

Filters run in SQL (``mediation_queue.queue``); bulk accept / assign / escalate of the selected
cases is one ``mediation.act_many`` on the op runner (a savepoint per case; the skipped cases are
listed with the service's reason)."""

from __future__ import annotations

from typing import Any

from gridman.core import enums
from gridman.core.services import mediation
from gridman.core.services.errors import PermissionDenied
from gridman.core.services.mediation import queue as mediation_queue
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.errors import show_error, show_info
from gridman.gui.i18n import N_, language, local_time, pick, tr
from gridman.gui.mediation.action_dialog import ActionDialog
from gridman.gui.mediation.widgets import enum_filter, show_failure
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QAbstractItemView,
    QBrush,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from gridman.gui.registers.table_model import hours_text, time_left_colour
from gridman.gui.views.stale import ReloadWhenVisible

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
        self.status = enum_filter(tr("全部状态"), enums.IncidentStatus, mediation.ACTIVE_STATUSES)
        self.category = enum_filter(tr("全部类别"), enums.IncidentCategory)
        self.level = enum_filter(tr("全部层级"), enums.MediationLevel)
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
                     hours_text(left), local_time(r.due_at))
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

    def bulk(self, action: str, **inputs: Any) -> None:
        """``action`` on every selected case (``mediation.act_many``: a savepoint per case; the ones
        the service refuses are skipped and listed with its reason). Without ``inputs`` an action
        that needs any asks for them first, in the dialog built from its declaration."""
        ids = self.selected_ids()
        if not ids:
            show_info(self, tr("请先在列表中选择案件。"))
            return
        versions = {r.id: r.version for r in self.rows if r.id in ids}
        if not inputs and not mediation.action_spec(action).quick:
            # the cases are the ones selected now: a reload while the dialog is open (another
            # user's change) must not change what the user confirms
            d = ActionDialog(action, runner=self.runner, actor=self.actor, incident_ids=ids, parent=self)
            d.accepted.connect(lambda: self._run_bulk(action, ids, versions, d.values()))
            self.bulk_dialog = d
            d.open()
            return
        self._run_bulk(action, ids, versions, inputs)

    def _run_bulk(self, action: str, ids: list[int], versions: dict[int, int], inputs: dict[str, Any]) -> None:
        actor = self.actor

        def job(s, _t):  # type: ignore[no-untyped-def]
            return mediation.act_many(s, actor, action, ids, expected_versions=versions, **inputs)

        self.runner.run(job, mode="write", on_done=self._bulk_done, on_error=self._bulk_failed, label=f"bulk-{action}")

    def _bulk_done(self, result: mediation.BulkResult) -> None:
        self.last_bulk = result
        text = tr("已处理 {n} 件。").format(n=len(result.done))
        if result.skipped:
            reasons = "\n".join(f"#{sk.incident_id}：{pick(sk.reason, sk.reason_en)}" for sk in result.skipped)
            text += tr("{m} 件当前不能执行此操作，已跳过：{ids}").format(m=len(result.skipped), ids="\n" + reasons)
        self.bulk_box = show_info(self, text)

    def _bulk_failed(self, exc: BaseException) -> None:
        box = show_failure(self, exc)
        if box is not None:
            self.bulk_box = box
        self.refresh()


"""离线交换: the page of the offline exchange (issue 7) inside 导入导出.

Three tabs over ``services.exchange`` — no merge rule lives here:

- 导出交换包 (check out): the area selected in the tree, another street/community/grid of the
  user's scope, or a set of grids → a save-file dialog → ``exchange.checkout`` on the op runner
  (progress, and Cancel: nothing written) → the package id, rows per register and the file.
- 导回交换包 (check in): a returned workbook → a dry run → a summary (inserted / updated / unchanged /
  deletions reported / steps appended) and, when rows changed on both sides, a field-by-field
  conflict table with a choice per field (keep central is the default) → apply (one transaction in
  the service) → the result. Both runs show the service's progress and can be cancelled. ``ExchangeRefused`` and ``ExchangeInvalid`` are shown as a dialog and a
  sheet/row/column/reason table; nothing is written then (the service raises before writing).
- 交换包记录 (packages): checked out / checked in, who, when, counts, and undo of a check-in.

Permissions are the service's: ``Perm.EXPORT`` for check-out, ``Perm.IMPORT`` for check-in and
undo; the tabs a role may not use are disabled, and the service refuses anyway.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from gridman.core import enums
from gridman.core.services import exchange
from gridman.core.services.areas import tree
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.errors import describe, show_error
from gridman.gui.i18n import language, local_time, tr
from gridman.gui.job_progress import JobProgress
from gridman.gui.offline_exchange.values import (
    DELETION_ACTIONS,
    ConflictRow,
    conflict_rows,
    field_name,
    register_name,
    show_value,
    totals,
)
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFont,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    Signal,
)


class OfflineExchangePage(QWidget):
    """The 离线交换 page: check out, check in with conflicts, packages and undo."""

    checked_out = Signal(object)  # CheckoutResult
    checked_in = Signal(object)  # CheckinResult (applied)
    undone = Signal(object)  # UndoResult

    def __init__(self, runner: OpRunner, actor: Actor, window: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("offlineExchange")
        self.runner, self.actor, self.window_ = runner, actor, window
        self.area_id: int | None = getattr(window, "area_id", None)
        self.areas: list[Any] = []
        self.checkout_result: exchange.CheckoutResult | None = None
        self.dry: exchange.CheckinResult | None = None
        self.applied: exchange.CheckinResult | None = None
        self.rows: list[ConflictRow] = []
        self.dry_path = ""
        self.last_error: BaseException | None = None
        self.packages: list[exchange.PackageInfo] = []
        self.boxes: list[Any] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("exchangeTabs")
        lay.addWidget(self.tabs)
        self._build_checkout()
        self._build_checkin()
        self._build_packages()
        can_out, can_in = actor.can(Perm.EXPORT), actor.can(Perm.IMPORT)
        self.tabs.setTabEnabled(0, can_out)
        self.tabs.setTabEnabled(1, can_in)
        self.tabs.setTabEnabled(2, can_out or can_in)
        self.undo_button.setVisible(can_in)
        if not can_out:
            self.tabs.setTabToolTip(0, tr("您的角色没有导出数据的权限"))
        if not can_in:
            self.tabs.setTabToolTip(1, tr("您的角色没有导入数据的权限"))
        self.tabs.setCurrentIndex(0 if can_out else 1 if can_in else 2)
        self.tabs.currentChanged.connect(self._tab_changed)
        if can_out:
            self.load_areas()
        if can_out or can_in:
            self.load_packages()

    # --- check out ------------------------------------------------------------------------------
    def _build_checkout(self) -> None:
        w = QWidget()
        outer = QVBoxLayout(w)
        form = QFormLayout()
        outer.addLayout(form)
        outer.addStretch(1)
        self.area_box = QComboBox()
        self.area_box.setObjectName("checkoutArea")
        self.area_box.setMinimumContentsLength(24)
        self.area_box.currentIndexChanged.connect(self._area_chosen)
        self.use_tree = QPushButton(tr("使用左侧选中的区域"))
        self.use_tree.clicked.connect(self.follow_tree)
        row = QHBoxLayout()
        row.addWidget(self.area_box, 1)
        row.addWidget(self.use_tree)
        form.addRow(tr("区域"), row)
        self.only_grids = QCheckBox(tr("只导出勾选的网格"))
        self.only_grids.toggled.connect(lambda on: self.grid_list.setEnabled(on))
        self.grid_list = QListWidget()
        self.grid_list.setObjectName("checkoutGrids")
        self.grid_list.setMaximumHeight(110)
        self.grid_list.setEnabled(False)
        form.addRow(self.only_grids, self.grid_list)
        self.out_edit = QLineEdit()
        self.out_edit.setObjectName("checkoutFile")
        browse = QPushButton(tr("另存为…"))
        browse.clicked.connect(self._browse_out)
        row = QHBoxLayout()
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse)
        form.addRow(tr("保存到"), row)
        self.checkout_button = QPushButton(tr("导出交换包"))
        self.checkout_button.setObjectName("checkoutButton")
        self.checkout_button.clicked.connect(self.run_checkout)
        self.checkout_label = QLabel(tr("把一个街道、社区或几个网格的台账导出为交换工作簿，交给没有联网的站点填写，再导回。"))
        self.checkout_label.setObjectName("checkoutResult")
        self.checkout_label.setWordWrap(True)
        self.checkout_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.checkout_job = JobProgress("checkoutCancel", label=self.checkout_label)
        self.checkout_job.setMaximumWidth(400)
        row = QHBoxLayout()
        row.addWidget(self.checkout_button)
        row.addWidget(self.checkout_job)
        row.addStretch(1)
        form.addRow(row)
        form.addRow(self.checkout_label)
        self.tabs.addTab(w, tr("导出交换包"))

    def load_areas(self) -> None:
        actor = self.actor
        self.runner.run(lambda s, _t: tree(s, actor), on_done=self._areas_loaded, on_error=self._failed,
                        label="exchange-areas")

    def _areas_loaded(self, nodes: list[Any]) -> None:
        self.areas = nodes
        lang = language()
        self.area_box.blockSignals(True)
        self.area_box.clear()
        for n in nodes:
            if n.level in ("street", "community", "grid"):
                indent = "　" * {"street": 0, "community": 1, "grid": 2}[n.level]
                self.area_box.addItem(f"{indent}{n.name}（{enums.label(n.level, lang, enums.AreaLevel)}）", n.id)
        self.area_box.blockSignals(False)
        self.follow_tree()

    def set_area(self, area_id: int | None) -> None:
        """The area selected in the tree (the main window calls this); taken when the user has
        not run a check-out yet or asks for it."""
        self.area_id = area_id
        if self.checkout_result is None:
            self.follow_tree()

    def follow_tree(self) -> None:
        i = self.area_box.findData(self.area_id) if self.area_id is not None else -1
        if i < 0 and self.area_box.count():
            i = max(self.area_box.currentIndex(), 0)
        if i >= 0:
            self.area_box.setCurrentIndex(i)
            self._area_chosen(i)

    def select_checkout_area(self, code: str) -> None:
        node = next(n for n in self.areas if n.code == code)
        self.area_box.setCurrentIndex(self.area_box.findData(node.id))

    def _area_chosen(self, _i: int) -> None:
        aid = self.area_box.currentData()
        node = next((n for n in self.areas if n.id == aid), None)
        self.grid_list.clear()
        if node is None:
            return
        children: dict[int | None, list[Any]] = {}
        for n in self.areas:
            children.setdefault(n.parent_id, []).append(n)
        stack, grids = [node], []
        while stack:
            n = stack.pop()
            if n.level == "grid":
                grids.append(n)
            stack.extend(children.get(n.id, []))
        for g in sorted(grids, key=lambda g: g.code):
            it = QListWidgetItem(f"{g.name}（{g.code}）")
            it.setData(Qt.ItemDataRole.UserRole, g.code)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Unchecked)
            self.grid_list.addItem(it)
        self.only_grids.setEnabled(node.level != "grid")
        if node.level == "grid":
            self.only_grids.setChecked(False)
        self.out_edit.setText(str(Path.home() / f"{tr('离线交换')}-{node.name}-{date.today():%Y%m%d}.xlsx"))

    def checked_grids(self) -> list[str]:
        out = []
        for i in range(self.grid_list.count()):
            it = self.grid_list.item(i)
            if it.checkState() == Qt.CheckState.Checked:
                out.append(it.data(Qt.ItemDataRole.UserRole))
        return out

    def _browse_out(self) -> None:
        fn, _ = QFileDialog.getSaveFileName(self, tr("保存交换包"), self.out_edit.text(), tr("Excel 工作簿 (*.xlsx)"))
        if fn:
            self.out_edit.setText(fn if fn.lower().endswith(".xlsx") else fn + ".xlsx")

    def run_checkout(self) -> None:
        aid = self.area_box.currentData()
        node = next((n for n in self.areas if n.id == aid), None)
        out = self.out_edit.text().strip()
        if node is None or not out:
            self.checkout_label.setText(tr("请选择区域和保存位置。"))
            return
        grids = self.checked_grids() if self.only_grids.isChecked() else []
        if self.only_grids.isChecked() and not grids:
            self.checkout_label.setText(tr("请至少勾选一个网格。"))
            return
        actor, code = self.actor, node.code
        self.checkout_button.setEnabled(False)
        self.checkout_label.setText(tr("正在导出交换包…"))

        def job(s, task):  # type: ignore[no-untyped-def]
            if grids:
                return exchange.checkout(s, actor, out=out, grid_codes=grids, task=task)
            return exchange.checkout(s, actor, out=out, area_code=code, task=task)

        self.checkout_job.start(self.runner.run(job, mode="write", on_done=self._checked_out,
                                                on_error=self._checkout_failed, on_cancelled=self._checkout_cancelled,
                                                on_progress=self.checkout_job.progressed, label="exchange-checkout"))

    def _checkout_ended(self) -> None:
        self.checkout_button.setEnabled(True)
        self.checkout_job.stop()

    def cancel_checkout(self) -> None:
        """Ask the running check-out to stop; the service then writes no file and no record."""
        self.checkout_job.cancel()

    def _checkout_failed(self, exc: BaseException) -> None:
        self._checkout_ended()
        self.checkout_label.setText(describe(exc)[0])
        self._failed(exc)

    def _checked_out(self, r: exchange.CheckoutResult) -> None:
        self.checkout_result = r
        self._checkout_ended()
        per = "　".join(f"{register_name(k)} {n:,}" for k, n in r.counts.items())
        self.checkout_label.setText(
            tr("已导出交换包 {pid}（{area}），用时 {sec} 秒。").format(pid=r.package_id, area=r.area_name, sec=r.seconds)
            + "\n" + tr("各台账行数：") + per + "\n" + tr("文件：{path}").format(path=r.path))
        self.checked_out.emit(r)
        self.load_packages()

    # --- check in -------------------------------------------------------------------------------
    def _build_checkin(self) -> None:
        w = QWidget()
        lay = QVBoxLayout(w)
        row = QHBoxLayout()
        row.addWidget(QLabel(tr("交换工作簿")))
        self.in_edit = QLineEdit()
        self.in_edit.setObjectName("checkinFile")
        self.in_edit.setPlaceholderText(tr("选择离线站点交回的交换工作簿（.xlsx）"))
        row.addWidget(self.in_edit, 1)
        browse = QPushButton(tr("浏览…"))
        browse.clicked.connect(self._browse_in)
        row.addWidget(browse)
        self.check_button = QPushButton(tr("检查（试运行）"))
        self.check_button.setObjectName("dryRunButton")
        self.check_button.clicked.connect(self.run_dry)
        row.addWidget(self.check_button)
        lay.addLayout(row)
        self.checkin_label = QLabel(tr("先试运行：显示将新增、更新、保持不变的行和冲突，不写入数据库；确认后再导入。"))
        self.checkin_label.setObjectName("checkinSummary")
        self.checkin_label.setWordWrap(True)
        self.checkin_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.checkin_job = JobProgress("checkinCancel", label=self.checkin_label)
        lay.addWidget(self.checkin_job)
        lay.addWidget(self.checkin_label)
        self.stack = QStackedWidget()
        lay.addWidget(self.stack, 1)
        self.stack.addWidget(QWidget())  # 0: nothing yet
        # 1: conflicts and the apply controls
        p = QWidget()
        pl = QVBoxLayout(p)
        pl.setContentsMargins(0, 0, 0, 0)
        self.conflict_title = QLabel()
        self.conflict_title.setWordWrap(True)
        pl.addWidget(self.conflict_title)
        self.conflicts = QTableWidget(0, 7)
        self.conflicts.setObjectName("conflictTable")
        self.conflicts.setHorizontalHeaderLabels([tr("台账"), tr("记录"), tr("字段"), tr("导出时的值"), tr("中心现值"),
                                                  tr("离线值"), tr("采用")])
        self.conflicts.verticalHeader().setVisible(False)
        self.conflicts.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.conflicts.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        hh = self.conflicts.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(False)
        pl.addWidget(self.conflicts, 1)
        row = QHBoxLayout()
        self.all_central = QPushButton(tr("全部保留中心数据"))
        self.all_central.setObjectName("allCentral")
        self.all_central.clicked.connect(lambda: self.choose_all("keep-central"))
        self.all_offline = QPushButton(tr("全部采用离线数据"))
        self.all_offline.setObjectName("allOffline")
        self.all_offline.clicked.connect(lambda: self.choose_all("offline"))
        row.addWidget(self.all_central)
        row.addWidget(self.all_offline)
        row.addStretch(1)
        pl.addLayout(row)
        self.confirm_deletes = QCheckBox()
        self.confirm_deletes.setObjectName("confirmDeletes")
        pl.addWidget(self.confirm_deletes)
        self.deletions = QLabel()
        self.deletions.setWordWrap(True)
        pl.addWidget(self.deletions)
        row = QHBoxLayout()
        row.addStretch(1)
        self.apply_button = QPushButton(tr("确认导入"))
        self.apply_button.setObjectName("applyCheckin")
        self.apply_button.clicked.connect(self.run_apply)
        row.addWidget(self.apply_button)
        pl.addLayout(row)
        self.stack.addWidget(p)
        # 2: validation problems
        p = QWidget()
        pl = QVBoxLayout(p)
        pl.setContentsMargins(0, 0, 0, 0)
        self.issues = QTableWidget(0, 4)
        self.issues.setObjectName("issueTable")
        self.issues.setHorizontalHeaderLabels([tr("工作表"), tr("行"), tr("列"), tr("问题")])
        self.issues.verticalHeader().setVisible(False)
        self.issues.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.issues.horizontalHeader().setStretchLastSection(True)
        pl.addWidget(self.issues)
        self.stack.addWidget(p)
        # 3: result
        self.stack.addWidget(QWidget())
        self.tabs.addTab(w, tr("导回交换包"))

    def _browse_in(self) -> None:
        fn, _ = QFileDialog.getOpenFileName(self, tr("选择交换工作簿"), self.in_edit.text(), tr("Excel 工作簿 (*.xlsx)"))
        if fn:
            self.in_edit.setText(fn)

    def _checkin_busy(self, on: bool, text: str = "") -> None:
        self.check_button.setEnabled(not on)
        self.apply_button.setEnabled(not on)
        if not on:
            self.checkin_job.stop()
        if text:
            self.checkin_label.setText(text)

    def cancel_checkin(self) -> None:
        """Ask the running dry run or check-in to stop; nothing is written then."""
        self.checkin_job.cancel()

    def _checkout_cancelled(self, exc: BaseException) -> None:
        """A cancelled check-out ends without a result or an error: put its controls back."""
        self._checkout_ended()
        self.checkout_label.setText(describe(exc)[0])

    def _checkin_cancelled(self, exc: BaseException) -> None:
        self._checkin_busy(False, describe(exc)[0])

    def run_dry(self) -> None:
        path = self.in_edit.text().strip()
        if not path:
            self.checkin_label.setText(tr("请选择交换工作簿。"))
            return
        actor = self.actor
        self.dry = self.applied = None
        self.dry_path = path
        self.stack.setCurrentIndex(0)
        self._checkin_busy(True, tr("正在检查交换工作簿…"))
        # a dry run writes nothing: a read session, rolled back
        self.checkin_job.start(self.runner.run(
            lambda s, t: exchange.checkin(s, actor, path=path, dry_run=True, task=t), on_done=self._dry_done,
            on_error=self._checkin_failed, on_cancelled=self._checkin_cancelled,
            on_progress=self.checkin_job.progressed, label="exchange-dry-run"))

    def _summary(self, r: exchange.CheckinResult) -> str:
        t = totals(r.counts)
        text = tr("新增 {ins} 行，更新 {upd} 行，无变化 {same} 行，冲突 {conf} 行，离线删除 {dele} 行（已删除 {gone} 行），"
                  "追加处置记录 {steps} 条。").format(ins=t["inserted"], upd=t["updated"], same=t["unchanged"],
                                               conf=t["conflicts"], dele=t["deleted_offline"], gone=t["deleted"],
                                               steps=t["appended"])
        per = [tr("{register}：新增 {ins}，更新 {upd}，冲突 {conf}").format(
            register=register_name(k), ins=v.get("inserted", 0), upd=v.get("updated", 0), conf=v.get("conflicts", 0))
            for k, v in r.counts.items() if any(v.get(x) for x in ("inserted", "updated", "conflicts"))]
        if per:
            text += "\n" + "；".join(per)
        if t["central_deleted"]:
            text += "\n" + tr("{n} 行已在中心删除，其离线修改未导入。").format(n=t["central_deleted"])
        return text

    def _dry_done(self, r: exchange.CheckinResult) -> None:
        self._checkin_busy(False)
        self.dry = r
        self.checkin_label.setText(tr("试运行结果（未写入）：交换包 {pid}").format(pid=r.package_id) + "\n" + self._summary(r))
        self.rows = conflict_rows(r.conflicts)
        self._fill_conflicts()
        reported = [d for d in r.deletions if d["action"] in ("reported", "kept_record")]
        self.confirm_deletes.setText(tr("同时删除离线删除的 {n} 行（不勾选则只报告，不删除；事件和处置记录从不删除）").format(
            n=len(reported)))
        self.confirm_deletes.setChecked(False)
        self.confirm_deletes.setVisible(bool(reported))
        if r.deletions:
            lines = [f"{register_name(d['register'])}：{d['label']}（{tr(DELETION_ACTIONS.get(d['action'], d['action']))}）"
                     for d in r.deletions[:8]]
            more = len(r.deletions) - len(lines)
            self.deletions.setText(tr("离线删除的行：") + "；".join(lines)
                                   + (tr("……另有 {n} 行").format(n=more) if more > 0 else ""))
        else:
            self.deletions.setText("")
        self.stack.setCurrentIndex(1)

    def _fill_conflicts(self) -> None:
        rows = self.rows
        has = bool(rows)
        self.conflict_title.setText(
            tr("{n} 个字段在离线和中心两边都被修改，请逐项选择（默认保留中心数据）：").format(n=len(rows)) if has
            else tr("没有冲突。"))
        for w in (self.conflicts, self.all_central, self.all_offline):
            w.setVisible(has)
        self.conflicts.setRowCount(len(rows))
        self.boxes = []
        bold = QFont()
        bold.setBold(True)
        for i, cr in enumerate(rows):
            cells = (register_name(cr.register), cr.label, field_name(cr.register, cr.field),
                     show_value(cr.register, cr.field, cr.original), show_value(cr.register, cr.field, cr.central),
                     show_value(cr.register, cr.field, cr.offline))
            for j, t in enumerate(cells):
                it = QTableWidgetItem(t)
                if cr.clash and j == 2:
                    it.setFont(bold)
                    it.setToolTip(tr("两边改成了不同的值"))
                self.conflicts.setItem(i, j, it)
            cb = QComboBox()
            cb.addItem(tr("保留中心数据"), "keep-central")
            cb.addItem(tr("采用离线数据"), "offline")
            self.conflicts.setCellWidget(i, 6, cb)
            self.boxes.append(cb)
        self.conflicts.resizeColumnsToContents()
        hh = self.conflicts.horizontalHeader()
        for c in range(7):
            # the three values share the spare width; the others keep their contents' width
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch if c in (3, 4, 5)
                                    else QHeaderView.ResizeMode.ResizeToContents)

    def choose(self, row: int, choice: str) -> None:
        cb = self.boxes[row]
        cb.setCurrentIndex(cb.findData(choice))

    def choose_all(self, choice: str) -> None:
        for i in range(len(self.boxes)):
            self.choose(i, choice)

    def choices(self) -> dict[str, dict[str, str]]:
        """uuid → field → "offline" | "central" (the service takes offline values only where asked)."""
        out: dict[str, dict[str, str]] = {}
        for cr, cb in zip(self.rows, self.boxes, strict=True):
            out.setdefault(cr.uuid, {})[cr.field] = "offline" if cb.currentData() == "offline" else "central"
        return out

    def run_apply(self) -> None:
        path = self.dry_path  # the workbook the user saw checked, even if the path field changed since
        if self.dry is None or not path:
            return
        actor, choices, confirm = self.actor, self.choices(), self.confirm_deletes.isChecked()
        self._checkin_busy(True, tr("正在导入交换包…"))
        self.checkin_job.start(self.runner.run(
            lambda s, t: exchange.checkin(s, actor, path=path, choices=choices or None, confirm_deletes=confirm,
                                          task=t),
            mode="write", on_done=self._applied, on_error=self._checkin_failed, on_cancelled=self._checkin_cancelled,
            on_progress=self.checkin_job.progressed, label="exchange-checkin"))

    def _applied(self, r: exchange.CheckinResult) -> None:
        self._checkin_busy(False)
        self.applied = r
        self.dry = None
        text = tr("已导入交换包 {pid}（批次 {batch}），用时 {sec} 秒。").format(pid=r.package_id, batch=r.batch_id,
                                                                        sec=r.seconds) + "\n" + self._summary(r)
        if r.conflicts:
            text += "\n" + tr("冲突 {n} 行已按所选处理。").format(n=len(r.conflicts))
        if r.notices:
            text += "\n" + tr("提示：") + "；".join(r.notices[:5])
        self.checkin_label.setText(text)
        self.stack.setCurrentIndex(3)
        self.checked_in.emit(r)
        self.load_packages()

    def _checkin_failed(self, exc: BaseException) -> None:
        self._checkin_busy(False)
        self.last_error = exc
        msg = describe(exc)[0]
        if isinstance(exc, exchange.ExchangeInvalid):
            self.checkin_label.setText(tr("交换工作簿有 {n} 处错误，未导入任何数据。请在工作簿中改正下列单元格后重新导回：").format(
                n=len(exc.issues)))
            self.issues.setRowCount(len(exc.issues))
            for i, iss in enumerate(exc.issues):
                reg = next((r.key for r in exchange.REGISTERS if r.sheet == iss.sheet), None)
                sheet = register_name(reg) if reg else iss.sheet
                for j, t in enumerate((sheet, str(iss.row), tr(iss.column), iss.reason)):
                    self.issues.setItem(i, j, QTableWidgetItem(t))
            self.issues.resizeColumnsToContents()
            self.issues.horizontalHeader().setStretchLastSection(True)
            self.stack.setCurrentIndex(2)
        else:
            self.checkin_label.setText(tr("未导入：") + msg)
            self.stack.setCurrentIndex(0)
        self.error_box = show_error(self, exc, title=tr("交换包未导入"))

    # --- packages and undo ----------------------------------------------------------------------
    def _build_packages(self) -> None:
        w = QWidget()
        lay = QVBoxLayout(w)
        self.package_table = QTableWidget(0, 7)
        self.package_table.setObjectName("packageTable")
        self.package_table.setHorizontalHeaderLabels([tr("交换包"), tr("区域"), tr("导出人"), tr("导出时间"),
                                                      tr("行数"), tr("状态"), tr("文件")])
        self.package_table.verticalHeader().setVisible(False)
        self.package_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.package_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.package_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.package_table.horizontalHeader().setStretchLastSection(True)
        self.package_table.itemSelectionChanged.connect(self._package_selected)
        lay.addWidget(self.package_table, 1)
        row = QHBoxLayout()
        self.undo_button = QPushButton(tr("撤销导入"))
        self.undo_button.setObjectName("undoCheckin")
        self.undo_button.setEnabled(False)
        self.undo_button.clicked.connect(self.undo_selected)
        refresh = QPushButton(tr("刷新"))
        refresh.clicked.connect(self.load_packages)
        self.package_label = QLabel()
        self.package_label.setWordWrap(True)
        row.addWidget(self.undo_button)
        row.addWidget(refresh)
        row.addWidget(self.package_label, 1)
        lay.addLayout(row)
        self.tabs.addTab(w, tr("交换包记录"))

    def _tab_changed(self, i: int) -> None:
        if i == 2:
            self.load_packages()

    def load_packages(self) -> None:
        actor = self.actor

        # the service lists the packages of the user's scope, with who checked each in
        self.runner.run(lambda s, _t: exchange.list_packages(s, actor), on_done=self._packages_loaded,
                        on_error=self._failed, label="exchange-packages")

    def _packages_loaded(self, pkgs: list[exchange.PackageInfo]) -> None:
        self.packages = list(reversed(pkgs))  # newest first
        t = self.package_table
        t.setRowCount(len(self.packages))
        for i, p in enumerate(self.packages):
            if p.checked_in_at is not None:
                state = tr("已导回：{when}，{who}，批次 {batch}").format(
                    when=local_time(p.checked_in_at), who=p.checked_in_by or "—",
                    batch=p.checkin_batch_id)
            else:
                state = tr("已导出，待导回")
            n = sum((p.counts or {}).values())
            cells = (p.package_id[:8], f"{p.area_name}（{p.area_code}）", p.created_by or "—",
                     local_time(p.created_at), f"{n:,}", state, p.file_name or "")
            for j, text in enumerate(cells):
                it = QTableWidgetItem(text)
                if j == 0:
                    it.setToolTip(p.package_id)
                if j == 4 and p.counts:
                    it.setToolTip("\n".join(f"{register_name(k)}：{v:,}" for k, v in p.counts.items()))
                t.setItem(i, j, it)
        t.resizeColumnsToContents()
        t.horizontalHeader().setSectionResizeMode(6, QHeaderView.ResizeMode.Stretch)
        self._package_selected()

    def selected_package(self) -> exchange.PackageInfo | None:
        rows = self.package_table.selectionModel().selectedRows()
        return self.packages[rows[0].row()] if rows else None

    def select_package(self, package_id: str) -> None:
        i = next(i for i, p in enumerate(self.packages) if p.package_id == package_id)
        self.package_table.selectRow(i)

    def _package_selected(self) -> None:
        p = self.selected_package()
        self.undo_button.setEnabled(p is not None and p.checkin_batch_id is not None and self.actor.can(Perm.IMPORT))

    def undo_selected(self, *, confirm: bool = True) -> QMessageBox | None:
        p = self.selected_package()
        if p is None or p.checkin_batch_id is None:
            return None
        if confirm:
            box = QMessageBox(QMessageBox.Icon.Question, tr("撤销导入"),
                              tr("撤销交换包 {pid} 的导入（批次 {batch}）？导入新增的行将被删除，更新的行恢复原值。").format(
                                  pid=p.package_id[:8], batch=p.checkin_batch_id),
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
            box.button(QMessageBox.StandardButton.Yes).setText(tr("撤销"))
            box.button(QMessageBox.StandardButton.No).setText(tr("取消"))
            box.setObjectName("undoConfirm")
            yes, batch = box.button(QMessageBox.StandardButton.Yes), p.checkin_batch_id
            box.buttonClicked.connect(lambda b: self._run_undo(batch) if b is yes else None)
            self.undo_box = box
            box.open()
            return box
        self._run_undo(p.checkin_batch_id)
        return None

    def _run_undo(self, batch_id: int) -> None:
        actor = self.actor
        self.undo_button.setEnabled(False)
        self.package_label.setText(tr("正在撤销…"))

        def failed(exc: BaseException) -> None:
            self.last_error = exc
            self.package_label.setText(tr("未撤销：") + describe(exc)[0])
            self.error_box = show_error(self, exc, title=tr("不能撤销"))
            self._package_selected()

        self.runner.run(lambda s, _t: exchange.undo_checkin(s, actor, batch_id), mode="write", on_done=self._undone,
                        on_error=failed, label="exchange-undo")

    def _undone(self, r: exchange.UndoResult) -> None:
        n = sum(r.reverted.values())
        self.package_label.setText(tr("已撤销批次 {batch}：恢复 {n} 行。").format(batch=r.batch_id, n=n))
        self.undone.emit(r)
        self.load_packages()

    # --- common -----------------------------------------------------------------------------
    def _failed(self, exc: BaseException) -> None:
        self.last_error = exc
        self.error_box = show_error(self, exc)

    # the view protocol
    def mark_dirty(self) -> None:
        pass

    def refresh(self) -> None:
        self.load_packages()

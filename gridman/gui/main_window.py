"""The main window: area tree with counts on the left, the views of the selected area on the
right (map, residents, other registers, incidents, dashboard, administration), menus, toolbar,
shortcuts and a status bar showing who is signed in. Size, splitter, open view and column
widths persist between runs (QSettings).

Everything shown is limited to the signed-in actor's scope (the services filter by it). The
window never touches the database on the GUI thread: views ask the op runner. After each write
the runner broadcasts :class:`~gridman.core.changes.Changes`; the window hands it to the views
whose content it can alter (:mod:`gridman.gui.interests`): registers refresh the changed rows in
place, the tree, map and dashboard reload only when their figures may have changed.

The status bar shows the progress of a running job that reports it (census import, exchange,
exports…) with a Cancel button that stops the job, leaving nothing written.
"""

from __future__ import annotations

from typing import Any

from gridman.core import enums
from gridman.core.changes import Changes
from gridman.core.db import Database
from gridman.core.services import dashboard
from gridman.core.services.areas import tree
from gridman.core.services.permissions import Actor, Perm
from gridman.gui import interests
from gridman.gui.admin import AdminView
from gridman.gui.dialogs.household_form import HouseholdDialog, HouseholdForm
from gridman.gui.dialogs.resident_form import ResidentDialog
from gridman.gui.errors import show_error, show_info
from gridman.gui.i18n import language, set_language, tr
from gridman.gui.mediation.incidents_view import IncidentsView
from gridman.gui.mediation.queue_view import QueueView
from gridman.gui.mediation.sweeper import OverdueSweeper
from gridman.gui.ops import Op, OpRunner
from gridman.gui.qt import (
    QAction,
    QActionGroup,
    QKeySequence,
    QLabel,
    QMainWindow,
    QModelIndex,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStandardItem,
    QStandardItemModel,
    Qt,
    QTabWidget,
    QTreeView,
    QWidget,
    Signal,
)
from gridman.gui.registers.view import RegisterView, kind_title
from gridman.gui.settings import app_settings
from gridman.gui.views.lazy import LazyView

AREA_ROLE = Qt.ItemDataRole.UserRole + 2
OTHER_REGISTERS = ("households", "buildings", "premises", "organisations", "visits")


class MainWindow(QMainWindow):
    tree_loaded = Signal()
    language_switched = Signal(object)  # the window that replaced this one

    def __init__(self, database: Database, actor: Actor, *, runner: OpRunner | None = None) -> None:
        super().__init__()
        self.db = database
        self.actor = actor
        self.runner = runner or OpRunner(database, actor, parent=self)
        self.runner.actor = actor
        self.runner.error.connect(self._show_error)
        self.runner.changes.connect(self.apply_changes)
        self.area_id: int | None = None
        self.area_items: dict[int, QStandardItem] = {}
        self.area_parent: dict[int, int | None] = {}
        self.dialogs: list[Any] = []
        self.setWindowTitle(tr("gridman 网格化服务管理") + " — " + actor.display_name)
        # tree
        self.tree = QTreeView()
        self.tree.setObjectName("areaTree")
        self.model = QStandardItemModel()
        self.model.setHorizontalHeaderLabels([tr("区划 / 网格"), tr("户数"), tr("人数"), tr("未办结")])
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.selectionModel().currentChanged.connect(self._tree_current)
        # views
        self.tabs = QTabWidget()
        self.tabs.setObjectName("views")
        # pyqtgraph views are built when first shown (keeps start-up fast)
        self.map = LazyView(self._make_map)
        self.residents = RegisterView(self.runner, actor, "residents")
        self.others = QTabWidget()
        self.registers: dict[str, RegisterView] = {"residents": self.residents}
        for kind in OTHER_REGISTERS:
            v = RegisterView(self.runner, actor, kind)
            self.registers[kind] = v
            self.others.addTab(v, kind_title(kind))
        self.incidents = IncidentsView(self.runner, actor)
        self.registers["incidents"] = self.incidents
        self.dashboard = LazyView(self._make_dashboard)
        self.admin = AdminView(self.runner, actor)
        self.queue = QueueView(self.runner, actor)
        self.queue.setObjectName("queue")
        self.queue.open_case.connect(self.open_case)
        self.exchange = LazyView(self._make_exchange)
        self.views: list[tuple[str, QWidget, str]] = [
            ("map", self.map, tr("地图")),
            ("residents", self.residents, tr("实有人口")),
            ("registers", self.others, tr("户·房·场所·组织")),
            ("incidents", self.incidents, tr("事件")),
            ("dashboard", self.dashboard, tr("统计看板")),
            ("admin", self.admin, tr("系统管理")),
            ("queue", self.queue, tr("待办")),
            ("exchange", self.exchange, tr("导入导出")),
        ]
        for _key, w, title in self.views:
            self.tabs.addTab(w, title)
        self.tabs.setTabEnabled(5, actor.can(Perm.MANAGE_USERS) or actor.can(Perm.BACKUP))
        self.splitter = QSplitter()
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        # wiring
        for v in self.registers.values():
            v.open_row.connect(self.open_row)
            v.model.failed.connect(lambda e: show_error(self, e))
        if actor.can(Perm.WRITE):
            self.residents.add_action(tr("登记新户"), self.register_household, name="registerHousehold")
            self.registers["households"].add_action(tr("登记新户"), self.register_household)
        self.admin.restored.connect(self.reload_tree)
        if actor.can(Perm.REPORT_INCIDENT):
            self.incidents.add_action(tr("上报事件"), self.report_incident, name="reportIncident")
        if actor.can(Perm.EXPORT):
            for kind, view in self.registers.items():
                view.add_action(tr("导出…"), lambda _c=False, k=kind: self.export_list(k), name=f"export_{kind}")
        self.sweeper = OverdueSweeper(self.runner, actor, parent=self)
        self.sweeper.overdue.connect(self._show_overdue)
        self.sweeper.start()
        self._build_actions()
        self._build_status()
        self._restore()
        self.reload_tree()

    def _make_map(self) -> QWidget:
        from gridman.gui.map.view import MapView

        v = MapView(self.runner, self.actor)
        v.grid_clicked.connect(self.select_area)
        return v

    def _make_exchange(self) -> QWidget:
        from gridman.gui.import_export.page import ImportExportPage
        from gridman.gui.offline_exchange import OfflineExchangePage

        v = ImportExportPage(self.runner, self.actor, self)
        v.set_exchange_widget(OfflineExchangePage(self.runner, self.actor, self))
        return v

    def _make_dashboard(self) -> QWidget:
        from gridman.gui.views.dashboard_view import DashboardView

        v = DashboardView(self.runner, self.actor)
        v.open_list.connect(self.open_list)
        return v

    # --- menus, toolbar, shortcuts ------------------------------------------------------------
    def _build_actions(self) -> None:
        mb = self.menuBar()
        m_file = mb.addMenu(tr("文件(&F)"))
        self.act_register = QAction(tr("登记新户…"), self)
        self.act_register.setShortcut(QKeySequence("Ctrl+N"))
        self.act_register.triggered.connect(self.register_household)
        self.act_register.setEnabled(self.actor.can(Perm.WRITE))
        self.act_backup = QAction(tr("立即备份"), self)
        self.act_backup.triggered.connect(self.admin.backup_now)
        self.act_backup.setEnabled(self.actor.can(Perm.BACKUP) and self.db.sqlite_path is not None)
        self.act_quit = QAction(tr("退出"), self)
        self.act_quit.setShortcut(QKeySequence("Ctrl+Q"))
        self.act_quit.triggered.connect(self.close)
        self.act_report = QAction(tr("上报事件…"), self)
        self.act_report.setShortcut(QKeySequence("Ctrl+R"))
        self.act_report.triggered.connect(self.report_incident)
        self.act_report.setEnabled(self.actor.can(Perm.REPORT_INCIDENT))
        for a in (self.act_register, self.act_report, self.act_backup):
            m_file.addAction(a)
        m_file.addSeparator()
        m_file.addAction(self.act_quit)
        m_view = mb.addMenu(tr("视图(&V)"))
        self.view_actions: list[QAction] = []
        for i, (_key, _w, title) in enumerate(self.views):
            a = QAction(title, self)
            a.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            a.triggered.connect(lambda _c=False, i=i: self.show_view(i))
            m_view.addAction(a)
            self.view_actions.append(a)
        m_view.addSeparator()
        self.act_refresh = QAction(tr("刷新"), self)
        self.act_refresh.setShortcut(QKeySequence("F5"))
        self.act_refresh.triggered.connect(self.refresh)
        self.act_find = QAction(tr("搜索"), self)
        self.act_find.setShortcut(QKeySequence("Ctrl+F"))
        self.act_find.triggered.connect(self.focus_search)
        m_view.addAction(self.act_refresh)
        m_view.addAction(self.act_find)
        m_set = mb.addMenu(tr("设置(&S)"))
        self.act_password = QAction(tr("修改密码…"), self)
        self.act_password.triggered.connect(self.change_password)
        self.act_password.setEnabled(self.actor.user_id is not None)
        m_set.addAction(self.act_password)
        m_lang = m_set.addMenu(tr("界面语言"))
        group = QActionGroup(self)
        self.lang_actions: dict[str, QAction] = {}
        for code, text in (("zh_CN", "中文"), ("en", "English")):  # i18n-exempt: each language in its own words
            a = QAction(text, self, checkable=True)
            a.setChecked(language() == code)
            a.triggered.connect(lambda _c=False, code=code: self.set_ui_language(code))
            group.addAction(a)
            m_lang.addAction(a)
            self.lang_actions[code] = a
        m_help = mb.addMenu(tr("帮助(&H)"))
        about = QAction(tr("关于 gridman"), self)
        about.triggered.connect(lambda: show_info(self, tr("gridman 网格化服务管理系统\n人 · 地 · 情 · 事 · 组织")))
        m_help.addAction(about)
        tb = self.addToolBar(tr("工具栏"))
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        for a in (self.act_register, self.act_report, self.act_refresh):
            tb.addAction(a)
        tb.addSeparator()
        for a in self.view_actions:
            tb.addAction(a)
        for a in (self.act_refresh, self.act_find, self.act_quit, *self.view_actions):
            self.addAction(a)

    def _build_status(self) -> None:
        a = self.actor
        role = enums.label(a.role, language(), enums.Role)
        if a.role == "warden":
            where = tr("{n} 个网格").format(n=len(a.grid_ids))
        else:
            where = a.area_name or tr("全市")
        self.user_label = QLabel(tr("当前用户：{name}（{role}）　管辖：{area}").format(name=a.display_name, role=role,
                                                                                 area=where))
        self.user_label.setObjectName("userLabel")
        self.area_label = QLabel()
        self.busy_label = QLabel()
        self.overdue_label = QLabel()
        self.overdue_label.setObjectName("overdueLabel")
        self.overdue_label.setStyleSheet("color: #b3261e;")
        self.progress = QProgressBar()
        self.progress.setObjectName("jobProgress")
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(160)
        self.progress.setTextVisible(True)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("jobMessage")
        self.cancel_button = QPushButton(tr("取消"))
        self.cancel_button.setObjectName("cancelJob")
        self.cancel_button.clicked.connect(self.cancel_job)
        self.progress_op: Op | None = None
        sb = self.statusBar()
        sb.addWidget(self.area_label, 1)
        sb.addPermanentWidget(self.progress_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)
        self._show_progress(None)
        sb.addPermanentWidget(self.overdue_label)
        sb.addPermanentWidget(self.busy_label)
        sb.addPermanentWidget(self.user_label)
        self.runner.busy_changed.connect(self._busy)
        self.runner.progress.connect(self._job_progress)
        self.runner.op_finished.connect(self._job_finished)

    # --- tree -------------------------------------------------------------------------------
    def reload_tree(self) -> None:
        actor = self.actor

        def job(s, _t):  # type: ignore[no-untyped-def]
            return tree(s, actor), dashboard.grid_figures(s, actor)

        self.runner.run(job, on_done=self._tree_loaded, label="tree")

    def _tree_loaded(self, result: tuple[list[Any], dashboard.GridFigures]) -> None:
        nodes, fig = result
        keep = self.area_id
        self.model.removeRows(0, self.model.rowCount())
        self.area_items = {}
        lang = language()
        sums: dict[int, list[int]] = {}
        parent_of = {n.id: n.parent_id for n in nodes}
        self.area_parent = dict(parent_of)
        for n in nodes:
            if n.level == "grid":
                v = [fig.households.get(n.id, 0), fig.residents.get(n.id, 0), fig.open_incidents.get(n.id, 0)]
                p: int | None = n.id
                while p is not None:
                    acc = sums.setdefault(p, [0, 0, 0])
                    for i in range(3):
                        acc[i] += v[i]
                    p = parent_of.get(p)
        for n in nodes:
            name = QStandardItem(n.name)
            name.setToolTip(f"{n.name}（{enums.label(n.level, lang, enums.AreaLevel)}）")
            name.setData(n.id, AREA_ROLE)
            name.setEditable(False)
            counts = sums.get(n.id, [0, 0, 0])
            row = [name] + [QStandardItem(f"{c:,}") for c in counts]
            for it in row[1:]:
                it.setEditable(False)
                it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            parent = self.area_items.get(n.parent_id) if n.parent_id else None
            (parent if parent is not None else self.model.invisibleRootItem()).appendRow(row)
            self.area_items[n.id] = name
        self.tree.expandToDepth(2)
        for c in range(1, 4):
            self.tree.resizeColumnToContents(c)
        self.tree.resizeColumnToContents(0)
        self.tree.setColumnWidth(0, min(max(self.tree.columnWidth(0) + 8, 190), 215))
        want = keep if keep in self.area_items else self._default_area(nodes)
        if want is not None:
            self.select_area(want)
        self.tree_loaded.emit()

    def _default_area(self, nodes: list[Any]) -> int | None:
        saved = app_settings().value(f"main/area/{self.actor.username}")
        if saved is not None and int(saved) in self.area_items:
            return int(saved)
        if self.actor.role == "warden" and self.actor.grid_ids:
            return min(self.actor.grid_ids)
        if self.actor.area_id in self.area_items:
            return self.actor.area_id
        return nodes[0].id if nodes else None

    def select_area(self, area_id: int) -> None:
        item = self.area_items.get(area_id)
        if item is None:
            return
        idx = self.model.indexFromItem(item)
        self.tree.setCurrentIndex(idx)
        self.tree.scrollTo(idx)

    def _tree_current(self, current: QModelIndex, _prev: QModelIndex) -> None:
        if not current.isValid():
            return
        idx = current.siblingAtColumn(0)
        area_id = idx.data(AREA_ROLE)
        if area_id is None or area_id == self.area_id:
            return
        self.area_id = int(area_id)
        self.area_label.setText(tr("当前区域：{name}").format(name=idx.data()))
        # an area outside the actor's own scope (an ancestor shown for context) narrows to the scope
        for v in (self.residents, *self.registers.values(), self.dashboard, self.queue, self.admin, self.exchange):
            v.set_area(self.area_id)
        # the map keeps a selected grid in its community's context, highlighted
        is_grid = self._is_grid(self.area_id)
        self.map.set_area(self.area_parent.get(self.area_id) if is_grid else self.area_id)
        self.map.set_selected(self.area_id if is_grid else None)

    # --- views ------------------------------------------------------------------------------
    def show_view(self, i: int) -> None:
        if self.tabs.isTabEnabled(i):
            self.tabs.setCurrentIndex(i)

    def current_view(self) -> QWidget:
        w = self.tabs.currentWidget()
        return self.others.currentWidget() if w is self.others else w

    def focus_search(self) -> None:
        w = self.current_view()
        if not isinstance(w, RegisterView):
            self.show_view(1)
            w = self.residents
        w.search.setFocus()
        w.search.selectAll()

    def refresh(self) -> None:
        w = self.current_view()
        if hasattr(w, "refresh"):
            w.refresh()
        self.reload_tree()

    def apply_changes(self, ch: Changes) -> None:
        """Each view refreshes only if it shows what changed (a hidden one when next shown)."""
        if interests.tree_needs(ch):
            self.reload_tree()
        for needs, view in ((interests.map_needs, self.map), (interests.dashboard_needs, self.dashboard),
                            (interests.admin_needs, self.admin), (interests.queue_needs, self.queue)):
            if needs(ch):
                view.mark_dirty()
        for kind, reg in self.registers.items():
            if interests.register_needs(kind, ch):
                reg.apply_changes(ch)

    def open_list(self, kind: str, filt: dict[str, Any]) -> None:
        if kind == "incidents":
            self.show_view(3)
            self.incidents.show_filtered(category=filt.get("category"), status=None)
        elif kind == "residents":
            self.show_view(1)
            v = self.residents
            if "tag" in filt:
                v.tag.setCurrentIndex(max(v.tag.findData(filt["tag"]), 0))  # type: ignore[union-attr]
            if "age" in filt:
                lo, hi = filt["age"]
                v.age_min.setValue(lo)  # type: ignore[union-attr]
                v.age_max.setValue(-1 if hi is None else hi)  # type: ignore[union-attr]
            v.apply_filters()

    def open_row(self, kind: str, row_id: int) -> QWidget | None:
        d: Any = None
        if kind == "residents":
            d = ResidentDialog(self.runner, self.actor, row_id, self)
        elif kind == "households":
            d = HouseholdDialog(self.runner, self.actor, row_id, self)
            d.open_resident.connect(lambda rid: self.open_row("residents", rid))
        elif kind in OTHER_REGISTERS:
            from gridman.gui.dialogs.row_detail import RowDetailDialog

            model = self.registers[kind].model
            if row_id in model.ids:
                d = RowDetailDialog(model, model.ids.index(row_id), kind_title(kind), self)
        if d is not None:
            self.dialogs = [x for x in self.dialogs if x.isVisible()] + [d]
            d.open()
        return d

    def open_case(self, incident_id: int):  # type: ignore[no-untyped-def]
        d = self.incidents.open_case(incident_id)
        self.dialogs = [x for x in self.dialogs if x.isVisible()] + [d]
        return d

    def export_list(self, kind: str):  # type: ignore[no-untyped-def]
        """导出 the list as shown: the selected area and the filters the user set."""
        from gridman.gui.import_export.export_dialogs import export_filters

        filters = export_filters(kind, self.registers[kind].current_filters())
        return self.exchange.build().open_export(kind, filters)

    def report_incident(self):  # type: ignore[no-untyped-def]
        """事件上报; "在地图上选点" switches to the map and takes the next click as the place."""
        from gridman.gui.mediation.report_form import ReportForm

        grid = self.area_id if self.area_id is not None and self._is_grid(self.area_id) else None
        d = ReportForm(self.runner, self.actor, grid_id=grid, parent=self)
        d.pick_on_map.connect(lambda: self._pick_point(d))
        self.dialogs = [x for x in self.dialogs if x.isVisible()] + [d]
        d.setModal(False)  # the user clicks the place on the map while the form stays open
        d.show()
        return d

    def _pick_point(self, form) -> None:  # type: ignore[no-untyped-def]
        self.show_view(0)
        view = self.map.build()
        self.area_label.setText(tr("请在地图上点击事件地点"))

        def take(lon: float, lat: float) -> None:
            view.point_clicked.disconnect(take)
            form.set_point(lon, lat)
            form.raise_()

        view.point_clicked.connect(take)

    def register_household(self) -> HouseholdForm:
        grid = self.area_id if self.area_id is not None and self._is_grid(self.area_id) else None
        d = HouseholdForm(self.runner, self.actor, grid_id=grid, parent=self)
        self.dialogs = [x for x in self.dialogs if x.isVisible()] + [d]
        d.open()
        return d

    def change_password(self):  # type: ignore[no-untyped-def]
        from gridman.gui.dialogs.change_password import ChangePasswordDialog

        dlg = ChangePasswordDialog(self.runner, self.actor, self)
        dlg.open()
        return dlg

    def _is_grid(self, area_id: int) -> bool:
        item = self.area_items.get(area_id)
        return item is not None and not item.hasChildren() and item.parent() is not None

    def set_ui_language(self, code: str) -> MainWindow:
        """Switch the interface language now: the window is rebuilt in the new language (same
        user, database, runner, layout and selected area) and this one retires."""
        set_language(code)
        app_settings().setValue("ui/language", language())
        self.save_settings()
        new = MainWindow(self.db, self.actor, runner=self.runner)
        if self.runner.parent() is self:
            self.runner.setParent(new)
        new.setGeometry(self.geometry())
        new.show()
        self._retire()
        self.language_switched.emit(new)
        return new

    def _retire(self) -> None:
        for sig, slot in ((self.runner.error, self._show_error),
                          (self.runner.changes, self.apply_changes), (self.runner.busy_changed, self._busy),
                          (self.runner.progress, self._job_progress), (self.runner.op_finished, self._job_finished)):
            sig.disconnect(slot)
        self._retired = True
        self.hide()
        # delete once the jobs this window started have delivered their results
        self.runner.busy_changed.connect(self._delete_when_idle)
        self._delete_when_idle(self.runner.pending)

    def _delete_when_idle(self, pending: int) -> None:
        if pending == 0 and getattr(self, "_retired", False):
            self.runner.busy_changed.disconnect(self._delete_when_idle)
            self._retired = False
            self.deleteLater()

    def _show_error(self, exc: BaseException) -> None:
        show_error(self, exc)

    def _show_overdue(self, counts: dict[str, int]) -> None:
        lang = language()
        parts = [f"{enums.label(lv, lang, enums.MediationLevel)} {counts[lv]}" for lv in ("grid", "community", "street")
                 if counts.get(lv)]
        self.overdue_label.setText(tr("超期未办结：") + "　".join(parts) if parts else "")

    def _busy(self, n: int) -> None:
        self.busy_label.setText(tr("正在读取…") if n and self.progress_op is None else "")

    # --- progress and cancel of long jobs ---------------------------------------------------
    def _job_progress(self, op: Op, fraction: float, message: str) -> None:
        if self.progress_op is None or self.progress_op.finished or op is self.progress_op:
            if op is not self.progress_op:
                self._show_progress(op)
            self.progress.setValue(int(fraction * 1000))
            self.progress_label.setText(message)

    def _job_finished(self, op: Op) -> None:
        if op is self.progress_op:
            self._show_progress(None)

    def _show_progress(self, op: Op | None) -> None:
        self.progress_op = op
        self.progress.setVisible(op is not None)
        self.progress_label.setVisible(op is not None)
        self.progress_label.setText("")
        self.cancel_button.setVisible(op is not None)
        self.cancel_button.setEnabled(op is not None)
        self.cancel_button.setText(tr("取消"))
        if op is not None:
            self.busy_label.setText("")

    def cancel_job(self) -> None:
        """Stop the job whose progress is shown (it stops at its next check; nothing written)."""
        if self.progress_op is not None and not self.progress_op.finished:
            self.progress_op.cancel()
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText(tr("正在取消…"))

    # --- settings ---------------------------------------------------------------------------
    def _restore(self) -> None:
        st = app_settings()
        geo = st.value("main/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1400, 860)
        sp = st.value("main/splitter")
        if sp is not None:
            self.splitter.restoreState(sp)
        else:
            self.splitter.setSizes([400, 1000])
        view = st.value("main/view", 1)  # the residents register unless the user left another view open
        if self.tabs.isTabEnabled(int(view)):
            self.tabs.setCurrentIndex(int(view))
        sub = st.value("main/register_tab")
        if sub is not None:
            self.others.setCurrentIndex(int(sub))

    def save_settings(self) -> None:
        st = app_settings()
        st.setValue("main/geometry", self.saveGeometry())
        st.setValue("main/splitter", self.splitter.saveState())
        st.setValue("main/view", self.tabs.currentIndex())
        st.setValue("main/register_tab", self.others.currentIndex())
        if self.area_id is not None:
            st.setValue(f"main/area/{self.actor.username}", self.area_id)
        for v in self.registers.values():
            v.save_columns()
        if self.admin.users is not None:
            self.admin.users.save_columns()
        st.sync()

    def closeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        if not getattr(self, "_retired", False) and self.isVisible():
            self.save_settings()
        super().closeEvent(event)

"""The main window (a first version: the area tree with counts; views grow with issue 6)."""

from __future__ import annotations

from sqlalchemy import func, select

from gridman.core.db import Database
from gridman.core.enums import label
from gridman.core.models import Area, Household, Incident, Resident
from gridman.core.services.areas import tree
from gridman.core.services.permissions import system_actor
from gridman.gui.qt import (
    QLabel,
    QMainWindow,
    QSettings,
    QSplitter,
    QStandardItem,
    QStandardItemModel,
    Qt,
    QTreeView,
    QVBoxLayout,
    QWidget,
)


class MainWindow(QMainWindow):
    def __init__(self, database: Database, *, lang: str = "zh_CN") -> None:
        super().__init__()
        self.db = database
        self.lang = lang
        self.setWindowTitle("gridman 网格化管理")
        self.tree = QTreeView()
        self.tree.setHeaderHidden(False)
        self.model = QStandardItemModel()
        self.model.setHorizontalHeaderLabels(["区划 / 网格", "户数", "人数"])
        self.tree.setModel(self.model)
        self.summary = QLabel()
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        right = QWidget()
        lay = QVBoxLayout(right)
        lay.addWidget(self.summary)
        self.splitter = QSplitter()
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(right)
        self.setCentralWidget(self.splitter)
        self.statusBar().showMessage(f"数据库：{database.url}")
        self._load_tree()
        self._restore()

    def _load_tree(self) -> None:
        with self.db.session() as s:
            actor = system_actor(s)
            nodes = tree(s, actor)
            hh = dict(s.execute(select(Household.grid_id, func.count()).group_by(Household.grid_id)).all())
            rs = dict(s.execute(select(Resident.grid_id, func.count()).group_by(Resident.grid_id)).all())
            n_inc = s.scalar(select(func.count()).select_from(Incident))
            n_areas = s.scalar(select(func.count()).select_from(Area))
        items: dict[int, list[QStandardItem]] = {}
        for n in nodes:
            row = [QStandardItem(f"{n.name}（{label(n.level, self.lang)}）"), QStandardItem(str(hh.get(n.id, ""))),
                   QStandardItem(str(rs.get(n.id, "")))]
            parent = items.get(n.parent_id) if n.parent_id else None
            (parent[0] if parent else self.model.invisibleRootItem()).appendRow(row)
            items[n.id] = row
        self.tree.expandToDepth(2)
        self.summary.setText(f"区划与网格：{n_areas}\n事件：{n_inc}")

    def _restore(self) -> None:
        st = QSettings("gridman", "gridman")
        geo = st.value("main/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1200, 800)
        sp = st.value("main/splitter")
        if sp is not None:
            self.splitter.restoreState(sp)

    def closeEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        st = QSettings("gridman", "gridman")
        st.setValue("main/geometry", self.saveGeometry())
        st.setValue("main/splitter", self.splitter.saveState())
        super().closeEvent(event)

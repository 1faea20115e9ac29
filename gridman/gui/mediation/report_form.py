"""事件上报: the report form — category, title, parties from the register or by name, the place
(a building or a point picked on the map), priority, photos. Saved by ``mediation.report``."""

from __future__ import annotations

from pathlib import Path

from gridman.core import enums
from gridman.core.services import mediation, registers
from gridman.core.services.permissions import Actor
from gridman.gui.errors import describe
from gridman.gui.i18n import language, tr
from gridman.gui.mediation.widgets import ok_cancel
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextEdit,
    QTimer,
    QWidget,
    Signal,
)


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
        self._parties_rows(form)
        self._place_rows(form)
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
        self.buttons = ok_cancel(tr("上报"))
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

    def _parties_rows(self, form: QFormLayout) -> None:
        """当事人: residents of the register found by search, or a name typed in."""
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

    def _place_rows(self, form: QFormLayout) -> None:
        """地点: a building of the grid or a point picked on the map, and a description."""
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
        self.reported.emit(res.incident_id)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.save_button.setEnabled(True)
        self.message.setText(describe(exc)[0])


"""导入导出: the page that opens the census import wizard, the export of any list (with the filters
the user set), the monthly report and blank templates, and holds the offline exchange (离线交换)
page in its box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gridman.core.services import export
from gridman.core.services.permissions import Actor, Perm
from gridman.gui.errors import show_error, show_info
from gridman.gui.i18n import tr
from gridman.gui.import_export.census_wizard import ImportWizard
from gridman.gui.import_export.export_dialogs import ExportDialog, MonthlyReportDialog, list_kinds, list_title
from gridman.gui.ops import OpRunner
from gridman.gui.qt import (
    QComboBox,
    QDialog,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class ImportExportPage(QWidget):
    """The 导入导出 page. ``exchange_slot`` is where the offline exchange (离线交换) page goes:
    ``set_exchange_widget(widget)`` puts it there."""

    def __init__(self, runner: OpRunner, actor: Actor, window: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner, self.actor, self.window_ = runner, actor, window
        lay = QVBoxLayout(self)
        box = QGroupBox(tr("人口数据导入"))
        bl = QHBoxLayout(box)
        self.import_button = QPushButton(tr("打开导入向导…"))
        self.import_button.setObjectName("openImportWizard")
        self.import_button.clicked.connect(self.open_wizard)
        self.import_button.setEnabled(actor.can(Perm.IMPORT))
        bl.addWidget(self.import_button)
        bl.addWidget(QLabel(tr("从 Excel 或 CSV 批量导入户籍与人口；先校验预览，再导入，可撤销。")), 1)
        lay.addWidget(box)
        box = QGroupBox(tr("导出与报表"))
        bl = QHBoxLayout(box)
        self.export_button = QPushButton(tr("导出列表…"))
        self.export_button.clicked.connect(lambda: self.open_export("residents"))
        self.monthly_button = QPushButton(tr("月度报表…"))
        self.monthly_button.clicked.connect(self.open_monthly)
        self.template_kind = QComboBox()
        for k in list_kinds():
            self.template_kind.addItem(list_title(k), k)
        self.template_button = QPushButton(tr("保存空白模板…"))
        self.template_button.clicked.connect(self.save_template)
        for b in (self.export_button, self.monthly_button):
            b.setEnabled(actor.can(Perm.EXPORT))
        for w in (self.export_button, self.monthly_button, self.template_kind, self.template_button):
            bl.addWidget(w)
        bl.addStretch(1)
        lay.addWidget(box)
        self.exchange_box = QGroupBox(tr("离线交换"))
        self.exchange_box.setObjectName("exchangeSlot")
        self.exchange_layout = QVBoxLayout(self.exchange_box)
        self.exchange_placeholder = QLabel(tr("在网格与社区、街道之间交换离线数据包（导出、导入、冲突处理）。"))
        self.exchange_placeholder.setWordWrap(True)
        self.exchange_layout.addWidget(self.exchange_placeholder)
        lay.addWidget(self.exchange_box)
        lay.addStretch(1)  # until the exchange page arrives, the boxes stay at the top
        self._layout = lay
        self.dialogs: list[QDialog] = []

    def set_exchange_widget(self, w: QWidget) -> None:
        """Put the offline exchange page (issue 7) into its box; it takes the remaining height."""
        self.exchange_placeholder.hide()
        self.exchange_widget = w
        self.exchange_layout.addWidget(w)
        last = self._layout.itemAt(self._layout.count() - 1)
        if last is not None and last.spacerItem() is not None:
            self._layout.takeAt(self._layout.count() - 1)
        self._layout.setStretchFactor(self.exchange_box, 1)

    # the view protocol (forwarded to the exchange page: its check-out follows the tree)
    def set_area(self, area_id: int | None) -> None:
        page = getattr(self, "exchange_widget", None)
        if page is not None and hasattr(page, "set_area"):
            page.set_area(area_id)

    def mark_dirty(self) -> None:
        pass

    def refresh(self) -> None:
        page = getattr(self, "exchange_widget", None)
        if page is not None and hasattr(page, "refresh"):
            page.refresh()

    def _keep(self, d: QDialog) -> QDialog:
        self.dialogs = [x for x in self.dialogs if x.isVisible()] + [d]
        d.open()
        return d

    def open_wizard(self) -> ImportWizard:
        return self._keep(ImportWizard(self.runner, self.actor, self))  # type: ignore[return-value]

    def open_export(self, kind: str, filters: dict[str, Any] | None = None) -> ExportDialog:
        area = getattr(self.window_, "area_id", None)
        return self._keep(ExportDialog(self.runner, self.actor, kind=kind, area_id=area, filters=filters,
                                       parent=self))  # type: ignore[return-value]

    def open_monthly(self) -> MonthlyReportDialog:
        return self._keep(MonthlyReportDialog(self.runner, self.actor, self))  # type: ignore[return-value]

    def save_template(self) -> None:
        kind = self.template_kind.currentData()
        fn, _ = QFileDialog.getSaveFileName(self, tr("保存模板"), str(Path.home() / f"{kind}_template.xlsx"),
                                            tr("Excel 工作簿 (*.xlsx)"))
        if fn:
            self.runner.run(lambda _s, _t: export.write_template(kind, fn, bind=self.runner.db), mode="none",
                            on_done=lambda p: show_info(self, tr("模板已保存：{path}").format(path=p)),
                            on_error=lambda e: show_error(self, e), label="template")

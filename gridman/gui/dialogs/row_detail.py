"""Read-only details of one register row (buildings, premises, organisations, visit logs): the
row as the register shows it, field by field. Their edit forms come with their services."""

from __future__ import annotations

from gridman.gui.i18n import pick, tr
from gridman.gui.qt import QDialog, QDialogButtonBox, QFormLayout, QLabel, Qt, QWidget
from gridman.gui.registers.table_model import RegisterModel


class RowDetailDialog(QDialog):
    def __init__(self, model: RegisterModel, row: int, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(460)
        form = QFormLayout(self)
        self.values: dict[str, str] = {}
        for col, c in enumerate(model.columns):
            text = model.display(row, col)
            self.values[c.key] = text
            value = QLabel(text or "—")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(pick(c.zh, c.en), value)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        bb.button(QDialogButtonBox.StandardButton.Close).setText(tr("关闭"))
        bb.rejected.connect(self.reject)
        form.addRow(bb)

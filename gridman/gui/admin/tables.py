"""The read-only table widget the administration pages list their rows in."""

from __future__ import annotations

from gridman.gui.qt import QAbstractItemView, QTableWidget


def plain_table(headers: list[str], name: str) -> QTableWidget:
    """A read-only, row-selecting table with ``headers`` and the object name ``name``."""
    t = QTableWidget(0, len(headers))
    t.setObjectName(name)
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.horizontalHeader().setStretchLastSection(True)
    return t

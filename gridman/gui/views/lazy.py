"""A placeholder that builds its real view the first time it is shown (the map and dashboard
import pyqtgraph, which a user who opens the registers first should not wait for)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gridman.gui.qt import QVBoxLayout, QWidget


class LazyView(QWidget):
    def __init__(self, factory: Callable[[], QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self.view: Any = None
        self._area: int | None = None
        self._selected: int | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    @property
    def built(self) -> bool:
        return self.view is not None

    def build(self) -> Any:
        if self.view is None:
            self.view = self._factory()
            self._layout.addWidget(self.view)
            self.view.area_id = self._area
            if hasattr(self.view, "set_selected"):
                self.view.set_selected(self._selected)
        return self.view

    def showEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        self.build()
        super().showEvent(event)

    # the view protocol of the main window, forwarded once built
    def set_area(self, area_id: int | None) -> None:
        self._area = area_id
        if self.view is not None:
            self.view.set_area(area_id)

    def set_selected(self, item_id: int | None) -> None:
        self._selected = item_id
        if self.view is not None and hasattr(self.view, "set_selected"):
            self.view.set_selected(item_id)

    def mark_dirty(self) -> None:
        if self.view is not None:
            self.view.mark_dirty()

    def refresh(self) -> None:
        if self.view is not None:
            self.view.refresh()

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes QWidget lacks: the real view's (data, loaded, grid_at…)
        if name.startswith("_") or name in ("view", "build", "built"):
            raise AttributeError(name)
        view = self.__dict__.get("view") if "view" in self.__dict__ else None
        if view is None:
            view = self.build()
        return getattr(view, name)

"""The view protocol the main window drives, shared by the area views (map, dashboard, registers,
queue): a change of area or of data marks a view stale; a visible view reloads at once, a hidden
one when it is next shown — so a change never reloads views nobody is looking at."""

from __future__ import annotations

from typing import Any


class ReloadWhenVisible:
    """Mixin for a QWidget with ``refresh()``; put it before QWidget in the bases."""

    area_id: int | None
    _dirty: bool

    def set_area(self, area_id: int | None) -> None:
        self.area_id = area_id
        self.mark_dirty()

    def mark_dirty(self) -> None:
        self._dirty = True
        if self.isVisible():  # type: ignore[attr-defined]
            self.refresh()  # type: ignore[attr-defined]

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)  # type: ignore[misc]
        if self._dirty:
            self.refresh()  # type: ignore[attr-defined]

"""Persistent UI settings (window size, splitters, open view, column widths, language).

INI format in the user's config dir; tests redirect it with
``QSettings.setPath(IniFormat, UserScope, tmpdir)``.
"""

from __future__ import annotations

from gridman.gui.qt import QSettings


def app_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "gridman", "gridman")


def saved_language() -> str:
    return str(app_settings().value("ui/language", "zh_CN"))

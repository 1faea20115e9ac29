"""系统管理 (administration), one module per feature: the page and its backup box (``view``),
users and roles (``users``), time limits and holidays (``policy``), the grid check (``grid_check``)
and the boundary import dialog (``boundary_import``)."""

from __future__ import annotations

from gridman.gui.admin.view import AdminView, admin_tabs

__all__ = ["AdminView", "admin_tabs"]

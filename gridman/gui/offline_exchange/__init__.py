"""离线交换 in the GUI: the offline exchange page (check out, check in with conflicts, packages and
undo) over :mod:`gridman.core.services.exchange`."""

from __future__ import annotations

from gridman.gui.offline_exchange.page import OfflineExchangePage

__all__ = ["OfflineExchangePage"]

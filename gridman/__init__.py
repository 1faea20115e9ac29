"""gridman — 网格化管理: community grid management (人 地 情 事 组织, three-level mediation)."""

from __future__ import annotations

__version__ = "0.1.0"

"""The exceptions services raise — defined in :mod:`gridman.core.errors`, below the database layer
(which raises :class:`ConflictError` too); the services and their callers import them from here."""

from __future__ import annotations

from gridman.core.errors import (
    ConflictError,
    GridmanError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationError,
)

__all__ = ["ConflictError", "GridmanError", "InvalidTransition", "NotFound", "PermissionDenied", "ValidationError"]

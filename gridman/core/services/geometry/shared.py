"""What every geometry job shares: the cap on listed rows, chunking of id lists, WKB → shapely."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import shapely

from gridman.core.enums import OPEN_STATUSES

SAMPLE_CAP = 200  # lists in reports (outside points, uncovered buildings…) are capped at this many rows
OPEN = tuple(s.value for s in OPEN_STATUSES)  # incidents that still follow their grid

T = TypeVar("T")


def chunks(seq: Sequence[T], n: int = 5000) -> Iterable[Sequence[T]]:
    """``seq`` in slices of ``n`` (IN lists and executemany batches stay bounded)."""
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def wkb_geometry(wkb: bytes | None) -> Any:
    """A stored boundary as a shapely geometry (None when the area has none)."""
    return shapely.from_wkb(wkb) if wkb else None

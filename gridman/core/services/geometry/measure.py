"""Measures of one area (面积、周长、中心点) in metres, in the Gauss–Krüger zone of the area."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import shapely
from sqlalchemy.orm import Session

from gridman.core import geo
from gridman.core.services.errors import ValidationError
from gridman.core.services.geometry.shared import wkb_geometry
from gridman.core.services.permissions import Actor, Perm, require_area


@dataclass(frozen=True)
class AreaMeasure(geo.Measure):
    """The measures of :class:`gridman.core.geo.Measure` with the area they are of."""

    code: str
    name: str
    level: str


def measure_area(session: Session, actor: Actor, *, area_id: int) -> AreaMeasure:
    """Area (m², km²), perimeter (m) and centroid of one area, in its Gauss–Krüger zone."""
    area = require_area(session, actor, Perm.READ, area_id)
    g = wkb_geometry(area.boundary)
    if g is None:
        raise ValidationError(f"{area.name}（{area.code}）没有边界", field="boundary",
                              en=f"{area.name} ({area.code}) has no boundary")
    m = geo.measure(geo.polygonal(shapely.make_valid(g)) if not g.is_valid else g)
    return AreaMeasure(**asdict(m), code=area.code, name=area.name, level=area.level)

"""Grid boundaries (网格边界), one module per job:

- :mod:`.geojson` — file io: read/write GeoJSON, code and name properties, coordinate systems;
- :mod:`.boundary_files` — GeoJSON, TopoJSON, shapefiles (.shp/.zip, .prj, .cpg/GBK) and KML/KMZ read
  as one FeatureCollection with the coordinate system they declare;
- :mod:`.boundary_import` — create/update areas from those features (all or nothing, cancellable);
- :mod:`.checks` — the grid check of a subtree (overlaps, gaps, staffing, size);
- :mod:`.moves` — which rows change grid when boundaries change, and writing that plan;
- :mod:`.assignment` — point → grid assignment of a subtree or the city (cancellable);
- :mod:`.reshaping` — edit boundaries, split and merge grids (preview, then apply);
- :mod:`.measure` and :mod:`.coverage` — measures of an area, service coverage of facilities.

Boundaries live in ``Area.boundary`` as WKB in WGS-84/CGCS2000 longitude–latitude, with
``center_lon/center_lat`` as the label point, so they work unchanged on SQLite and PostgreSQL
(PostGIS is not needed). Every computation in metres goes through :mod:`gridman.core.geo`
(Gauss–Krüger zone of the area). Heavy work is vectorised with shapely 2 and numpy. Services take
area ids; the names below are the package's API.
"""

from __future__ import annotations

from gridman.core.services.geometry.assignment import AssignReport, MoveRow, PointNote, assign
from gridman.core.services.geometry.boundary_files import FILE_FILTER, BoundaryFile, read_boundaries
from gridman.core.services.geometry.boundary_import import FeatureProblem, ImportResult, import_geojson
from gridman.core.services.geometry.checks import (
    CheckIssue,
    CheckReport,
    Repair,
    check_subtree,
    first_root_area_id,
    household_limit_default,
    root_area_ids,
)
from gridman.core.services.geometry.coverage import (
    CommunityCoverage,
    CoverageReport,
    UncoveredBuilding,
    coverage,
)
from gridman.core.services.geometry.geojson import (
    CODE_KEYS,
    CRS_CHOICES,
    NAME_KEYS,
    boundaries_from_geojson,
    export_geojson,
    facilities_from_geojson,
    geojson_text,
    read_geojson,
)
from gridman.core.services.geometry.measure import AreaMeasure, measure_area
from gridman.core.services.geometry.moves import MovePlan, plan_moves, write_moves
from gridman.core.services.geometry.reshaping import (
    BoundaryChangeReport,
    ShapeChange,
    edit_boundaries,
    merge_grids,
    split_grid,
)
from gridman.core.services.geometry.shared import SAMPLE_CAP

__all__ = [
    "CODE_KEYS", "CRS_CHOICES", "FILE_FILTER", "BoundaryFile", "read_boundaries", "NAME_KEYS", "SAMPLE_CAP", "AreaMeasure", "AssignReport", "BoundaryChangeReport",
    "CheckIssue", "CheckReport", "CommunityCoverage", "CoverageReport", "FeatureProblem", "ImportResult", "MovePlan",
    "MoveRow", "PointNote", "Repair", "ShapeChange", "UncoveredBuilding", "assign", "boundaries_from_geojson",
    "check_subtree", "coverage", "edit_boundaries", "export_geojson", "facilities_from_geojson", "first_root_area_id", "geojson_text",
    "household_limit_default", "import_geojson", "measure_area", "merge_grids", "plan_moves", "read_geojson",
    "root_area_ids", "split_grid", "write_moves",
]

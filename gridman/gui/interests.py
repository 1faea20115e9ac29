"""What each view of the main window shows, in tables and fields — so that a broadcast
:class:`~gridman.core.changes.Changes` reloads only the views whose content it can alter
(Anki's ``OpChanges`` flags, calibre's ``refresh_ids``).

A resident's name edit reloads no tree, map or dashboard (they show counts, not names); an
incident's status change recolours the map's open incidents and the tree's "未办结" count; a new
household changes every count. Pure functions, no Qt: tested directly.
"""

from __future__ import annotations

from gridman.core.changes import Changes

# the fields a per-grid count depends on (tree counts, map figures): which grid, and whether counted
RESIDENT_COUNTED = frozenset({"grid_id", "status"})
HOUSEHOLD_COUNTED = frozenset({"grid_id"})
INCIDENT_COUNTED = frozenset({"grid_id", "status"})
# the map also classes grids by elderly share and overdue cases, and places buildings and open incidents
RESIDENT_MAPPED = RESIDENT_COUNTED | {"birth_date"}
INCIDENT_MAPPED = INCIDENT_COUNTED | {"due_at", "lon", "lat", "building_id"}
# the dashboard's charts group residents and incidents by nearly everything except free text
RESIDENT_TEXT = frozenset({"name", "phone", "citizen_id", "current_address", "registered_address", "note",
                           "work_unit", "ethnicity", "education", "relation_to_head", "former_name"})
INCIDENT_TEXT = frozenset({"title", "description", "location_text", "agreement_text", "agreement_terms"})

# register kind → the table its rows are, and the tables whose changes alter the rows it shows
REGISTER_TABLE = {"visits": "visit_logs"}
REGISTER_RELATED: dict[str, tuple[str, ...]] = {
    "residents": ("households", "areas"),  # household number, grid name
    "households": ("residents", "areas"),  # head and member counts
    "buildings": ("areas",),
    "premises": ("areas", "buildings"),
    "organisations": ("areas",),
    "visits": ("households", "residents", "users", "areas"),
    "incidents": ("areas",),
    "users": ("areas", "warden_assignments"),
}


def register_table(kind: str) -> str:
    return REGISTER_TABLE.get(kind, kind)


def register_needs(kind: str, ch: Changes) -> bool:
    return ch.touches(register_table(kind), *REGISTER_RELATED.get(kind, ()))


def tree_needs(ch: Changes) -> bool:
    """The area tree: area names and nesting, households / residents / open incidents per grid."""
    return (ch.touches("areas") or ch.touches_fields("residents", RESIDENT_COUNTED)
            or ch.touches_fields("households", HOUSEHOLD_COUNTED) or ch.touches_fields("incidents", INCIDENT_COUNTED))


def map_needs(ch: Changes) -> bool:
    """The map: boundaries, per-grid figures (incl. wardens, elderly, overdue), buildings, open incidents."""
    return (ch.touches("areas", "buildings", "warden_assignments") or ch.touches_fields("residents", RESIDENT_MAPPED)
            or ch.touches_fields("households", HOUSEHOLD_COUNTED) or ch.touches_fields("incidents", INCIDENT_MAPPED))


def dashboard_needs(ch: Changes) -> bool:
    """The dashboard: incidents per month and category, rates, population pyramid, tags, wardens."""
    return (ch.touches("areas", "warden_assignments") or ch.touches_fields("residents", ignore=RESIDENT_TEXT)
            or ch.touches_fields("households", HOUSEHOLD_COUNTED) or ch.touches_fields("incidents", ignore=INCIDENT_TEXT))


def queue_needs(ch: Changes) -> bool:
    """The to-do queue of mediation cases."""
    return ch.touches("incidents", "time_limit_policies", "holidays")


def admin_needs(ch: Changes) -> bool:
    """Administration: users, their grids, time-limit policies and holidays."""
    return ch.touches("users", "warden_assignments", "time_limit_policies", "holidays", "areas")

"""All tables of gridman. Import from here: ``from gridman.core.models import Resident``."""

from __future__ import annotations

from gridman.core.models.areas import Area
from gridman.core.models.audit import AuditEntry, ExchangePackage, ImportBatch, Setting
from gridman.core.models.base import Base, SyncMixin, new_uuid, utcnow
from gridman.core.models.incidents import (
    Holiday,
    Incident,
    IncidentAttachment,
    IncidentParty,
    IncidentStep,
    TimeLimitPolicy,
)
from gridman.core.models.orgs import Organisation, OrganisationMember
from gridman.core.models.people import Household, ResidencePermitLog, Resident, ResidentTag, Tag
from gridman.core.models.places import Building, Facility, House, Premise
from gridman.core.models.situations import PopulationEvent, SentimentReport, VisitLog
from gridman.core.models.staff import CliSession, User, WardenAssignment

__all__ = [
    "Area", "AuditEntry", "Base", "Building", "CliSession", "ExchangePackage", "Facility", "Holiday", "House", "Household",
    "ImportBatch", "Incident", "IncidentAttachment", "IncidentParty", "IncidentStep", "Organisation",
    "OrganisationMember", "PopulationEvent", "Premise", "ResidencePermitLog", "Resident", "ResidentTag",
    "SentimentReport", "Setting", "SyncMixin", "Tag", "TimeLimitPolicy", "User", "VisitLog",
    "WardenAssignment", "new_uuid", "utcnow",
]

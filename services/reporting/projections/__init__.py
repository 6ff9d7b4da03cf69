"""Read-model projections. One `match` case per event type used; every other event only advances the checkpoint."""

from services.reporting.projections.audit import AuditTrailProjection
from services.reporting.projections.datamanagement import DataManagementProjection
from services.reporting.projections.randomizations import RandomizationsProjection
from services.reporting.projections.safety import SafetyProjection
from services.reporting.projections.screening import ScreeningLogProjection
from services.reporting.projections.subjects import SubjectsProjection
from services.reporting.projections.visits import VisitsProjection
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.projections import Projection

__all__ = [
    "AuditTrailProjection",
    "DataManagementProjection",
    "RandomizationsProjection",
    "SafetyProjection",
    "ScreeningLogProjection",
    "SubjectsProjection",
    "VisitsProjection",
    "all_projections",
]


def all_projections(protocol: ProtocolDefinition) -> list[Projection]:
    return [
        SubjectsProjection(protocol),
        ScreeningLogProjection(),
        RandomizationsProjection(protocol),
        SafetyProjection(),
        VisitsProjection(protocol),
        AuditTrailProjection(),
        DataManagementProjection(),
    ]

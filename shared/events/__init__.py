"""The event catalogue and its CloudEvents envelope: the single place events are defined."""

from shared.events.catalogue import (
    ConsentRecorded,
    ConsentWithdrawn,
    CriterionKind,
    CriterionOutcome,
    CriterionResult,
    EnrollmentClosed,
    RandomizationInvalidated,
    RandomizationListCommitted,
    SubjectRandomized,
    SubjectScreened,
)
from shared.events.envelope import (
    DomainEvent,
    EventEnvelope,
    EventMetadata,
    RecordedEvent,
    UndecodableEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
    decode_envelope,
    register,
    registered_types,
)

__all__ = [
    "ConsentRecorded",
    "ConsentWithdrawn",
    "CriterionKind",
    "CriterionOutcome",
    "CriterionResult",
    "DomainEvent",
    "EnrollmentClosed",
    "EventEnvelope",
    "EventMetadata",
    "RandomizationInvalidated",
    "RandomizationListCommitted",
    "RecordedEvent",
    "SubjectRandomized",
    "SubjectScreened",
    "UndecodableEvent",
    "UnknownEventType",
    "UnsupportedSchemaVersion",
    "decode_envelope",
    "register",
    "registered_types",
]

"""Pure rules of the scalp photographs: one is recorded at the surgery or a follow-up visit of a participating
subject (a follow-up's after the surgery), in one of the standard views, and each image once; the blinded
assessor's counts are made on a follow-up visit's photographs, once per visit."""

from datetime import date

from services.visits.domain import FollowUpState, SubjectHasCompleted, UnknownVisit, VisitBeforeSurgery, participating
from shared.contracts.events import DomainEvent, EndpointAssessed, RecordedEvent, ScalpPhotographRecorded
from shared.contracts.photographs import PHOTOGRAPH_VISITS, EndpointAssessmentRecord, PhotographRecord
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.rules import Refusal, RuleViolation, check_site

VIEWS = "photograph_view"


class UnknownView(RuleViolation):
    rule, kind, title = "photograph.view", Refusal.INVALID, "Not one of the standard views"


class PhotographAlreadyRecorded(RuleViolation):
    rule, title = "photograph.once", "This photograph is recorded already"


def record_photograph(
    state: FollowUpState,
    record: PhotographRecord,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
) -> list[DomainEvent]:
    check_site(protocol, site, subject, enrolling=False)
    participating(state, subject)
    visits = (*PHOTOGRAPH_VISITS, *(v.code for v in protocol.schedule.follow_up))
    if record.visit not in visits:
        raise UnknownVisit(f"photographs are taken at {', '.join(visits)}, not {record.visit}", field="visit")
    if record.view not in {c.code for c in protocol.forms.code_lists[VIEWS]}:
        raise UnknownView(f"{record.view} is not a standard view", field="view")
    if record.visit not in PHOTOGRAPH_VISITS and state.procedure is None:
        raise VisitBeforeSurgery(f"photographs at {record.visit} come after a recorded surgery")
    if state.completed:
        raise SubjectHasCompleted(f"{subject} has completed the study")
    if record.sha256 in state.photographs:
        raise PhotographAlreadyRecorded(f"this image is recorded for {subject} already", field="sha256")
    return [ScalpPhotographRecorded(**record.model_dump())]


def kept_as(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    """The answer to an upload: the photograph as kept."""
    recorded = next(e.data for e in events if isinstance(e.data, ScalpPhotographRecorded))
    return recorded.model_dump(include={"sha256", "width", "height", "size_bytes"})


class NothingToAssess(RuleViolation):
    rule, title = "assessment.photographs", "No photographs at this visit to assess"


class AlreadyAssessed(RuleViolation):
    rule, title = "assessment.once", "This visit is assessed already"


def assess_endpoint(
    state: FollowUpState,
    record: EndpointAssessmentRecord,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
) -> list[DomainEvent]:
    """The blinded assessor's counts at a follow-up visit, made on the photographs recorded at it (all of them,
    named in the fact); once per visit. Nothing about the subject's arm is read or answered."""
    check_site(protocol, site, subject, enrolling=False)
    if record.visit not in {v.code for v in protocol.schedule.follow_up}:
        raise UnknownVisit(f"{record.visit} is not a follow-up visit", field="visit")
    photographs = tuple(sorted(sha for sha, visit in state.photographs.items() if visit == record.visit))
    if not photographs:
        raise NothingToAssess(f"{subject} has no photographs at {record.visit}")
    if record.visit in state.assessed:
        raise AlreadyAssessed(f"{subject}'s {record.visit} is assessed already")
    return [EndpointAssessed(**record.model_dump(), photographs=photographs)]

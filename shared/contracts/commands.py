"""Commands from the gateway to the services over NATS request/reply, and their replies.

Subjects are `trial.cmd.<service>.<action>`; every replica of a service listens in the queue
group named after the service, so any number of them share the load.
"""

from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.access import Right
from shared.contracts.amendments import AmendmentDeployment
from shared.contracts.collected import CollectedForm
from shared.contracts.forms import (
    AccessChangeRecord,
    AdverseEventFollowUp,
    AdverseEventForm,
    AlertAcknowledgement,
    CasebookLock,
    CasebookUnlock,
    ConsentForm,
    ConsentRefusalForm,
    ConsentWithdrawalForm,
    DatabaseLock,
    FormVerificationRecord,
    ProcedureForm,
    QueryOpening,
    QueryStep,
    RandomizationInvalidationForm,
    RandomizationRequest,
    ScreeningForm,
    Signing,
    VisitRecord,
    WithdrawalForm,
)
from shared.contracts.photographs import EndpointAssessmentRecord, PhotographRecord
from shared.contracts.protocol import SiteCode, SubjectId
from shared.contracts.rules import Refusal, RuleViolation

COMMAND_PREFIX = "trial.cmd"


def command_subject(service: str, action: str) -> str:
    return f"{COMMAND_PREFIX}.{service}.{action}"


_RIGHTS: dict[str, Right] = {}


def command(service: str, action: str, right: Right) -> str:
    """A command's NATS subject, declared with the right it needs: the gateway checks it per route, the service
    again on the attested caller (`right_of`)."""
    subject = command_subject(service, action)
    _RIGHTS[subject] = right
    return subject


def right_of(subject: str) -> Right:
    """The right a command needs (KeyError for a subject that is no command)."""
    return _RIGHTS[subject]


F = TypeVar("F", bound=BaseModel)

RECORD_CONSENT = command("screening", "record_consent", Right.POST_SITE_FORMS)
WITHDRAW_CONSENT = command("screening", "withdraw_consent", Right.POST_SITE_FORMS)
DECLINE_CONSENT = command("screening", "decline_consent", Right.POST_SITE_FORMS)
SCREEN_SUBJECT = command("screening", "screen_subject", Right.POST_SITE_FORMS)
RANDOMIZE_SUBJECT = command("randomization", "randomize_subject", Right.POST_SITE_FORMS)
INVALIDATE_RANDOMIZATION = command("randomization", "invalidate_randomization", Right.INVALIDATE_RANDOMIZATION)
EXPORT_ALLOCATION_LIST = command("randomization", "export_allocation_list", Right.READ_ALLOCATION_LIST)
REPORT_ADVERSE_EVENT = command("safety", "report_adverse_event", Right.POST_SITE_FORMS)
UPDATE_ADVERSE_EVENT = command("safety", "update_adverse_event", Right.POST_SITE_FORMS)
ACKNOWLEDGE_ALERT = command("safety", "acknowledge_alert", Right.ACKNOWLEDGE_ALERTS)
RECORD_PROCEDURE = command("visits", "record_procedure", Right.POST_SITE_FORMS)
RECORD_VISIT = command("visits", "record_visit", Right.POST_SITE_FORMS)
RECORD_FORM = command("visits", "record_form", Right.POST_SITE_FORMS)
RECORD_PHOTOGRAPH = command("visits", "record_photograph", Right.POST_SITE_FORMS)
ASSESS_ENDPOINT = command("visits", "assess_endpoint", Right.ASSESS_ENDPOINTS)
WITHDRAW_SUBJECT = command("visits", "withdraw_subject", Right.POST_SITE_FORMS)
OPEN_QUERY = command("datamanagement", "open_query", Right.OPEN_QUERIES)
ANSWER_QUERY = command("datamanagement", "answer_query", Right.ANSWER_QUERIES)
CLOSE_QUERY = command("datamanagement", "close_query", Right.OPEN_QUERIES)
REOPEN_QUERY = command("datamanagement", "reopen_query", Right.OPEN_QUERIES)
VERIFY_FORM = command("datamanagement", "verify_form", Right.VERIFY_FORMS)
LOCK_CASEBOOK = command("datamanagement", "lock_casebook", Right.LOCK_CASEBOOKS)
UNLOCK_CASEBOOK = command("datamanagement", "unlock_casebook", Right.LOCK_CASEBOOKS)
LOCK_DATABASE = command("datamanagement", "lock_database", Right.LOCK_CASEBOOKS)
SIGN = command("datamanagement", "sign", Right.SIGN_CASEBOOKS)
CHANGE_ACCESS = command("datamanagement", "change_access", Right.MANAGE_ACCESS)
DEPLOY_AMENDMENT = command("datamanagement", "deploy_amendment", Right.DEPLOY_AMENDMENTS)


class ActorContext(BaseModel):
    """Who asks, when, and the ids that tie the resulting events to the request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: UUID = Field(description="derived from the Idempotency-Key: a retry is the same command")
    correlation_id: str = Field(min_length=1, max_length=100)
    actor: str = Field(min_length=1, max_length=100)
    role: str
    actor_site: SiteCode | None = Field(None, description="the site of a site role's token")
    token_id: str = Field(min_length=1, max_length=100, description="the token's id (jti), for the audit trail")
    received_at: AwareDatetime
    authenticated_at: AwareDatetime | None = Field(None, description="when the caller last authenticated (auth_time)")
    printed_name: str | None = Field(None, max_length=100, description="the caller's name, for a signature")


class CommandContext(ActorContext):
    """A command about one trial subject."""

    site: SiteCode
    subject: SubjectId


class Command(BaseModel, Generic[F]):
    """A form from a site app, with who sent it and about which subject."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    context: CommandContext
    form: F


RecordConsent = Command[ConsentForm]
WithdrawConsent = Command[ConsentWithdrawalForm]
DeclineConsent = Command[ConsentRefusalForm]
ScreenSubject = Command[ScreeningForm]
RandomizeSubject = Command[RandomizationRequest]
InvalidateRandomization = Command[RandomizationInvalidationForm]
ReportAdverseEvent = Command[AdverseEventForm]
UpdateAdverseEvent = Command[AdverseEventFollowUp]
RecordProcedure = Command[ProcedureForm]
RecordVisit = Command[VisitRecord]
RecordForm = Command[CollectedForm]
RecordPhotograph = Command[PhotographRecord]
AssessEndpoint = Command[EndpointAssessmentRecord]
WithdrawSubject = Command[WithdrawalForm]
OpenQuery = Command[QueryOpening]
StepQuery = Command[QueryStep]
VerifyForm = Command[FormVerificationRecord]
LockCasebook = Command[CasebookLock]
UnlockCasebook = Command[CasebookUnlock]
Sign = Command[Signing]


class TrialCommand(BaseModel, Generic[F]):
    """A command that names no subject (the service finds it, e.g. the subject of an alert)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    context: ActorContext
    form: F


AcknowledgeAlert = TrialCommand[AlertAcknowledgement]
LockDatabase = TrialCommand[DatabaseLock]
ChangeAccess = TrialCommand[AccessChangeRecord]
DeployAmendment = TrialCommand[AmendmentDeployment]


class ExportRequest(BaseModel):
    """A trial-level read that only a service holding a secret can answer (e.g. the allocation list)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    actor: str = Field(min_length=1, max_length=100)
    role: str
    correlation_id: str = Field(min_length=1, max_length=100)


class ExportReply(BaseModel):
    model_config = ConfigDict(frozen=True)
    content: str
    commitment: str | None = None
    unavailable: bool = False


class Rejection(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Refusal
    rule: str
    title: str
    detail: str
    field: str | None = None
    current_version: UUID | None = None
    max_age: int | None = None

    @classmethod
    def of(cls, violation: RuleViolation) -> "Rejection":
        return cls(
            kind=violation.kind,
            rule=violation.rule,
            title=violation.title,
            detail=violation.detail,
            field=violation.field,
            current_version=violation.current_version,
            max_age=violation.max_age,
        )


class CommandReply(BaseModel):
    """Accepted (with the new events) or rejected (with the rule); `unavailable` means retry later."""

    model_config = ConfigDict(frozen=True)

    accepted: bool
    event_ids: list[UUID] = Field(default_factory=list)
    last_sequence: int | None = None
    replayed: bool = False
    result: dict[str, Any] = Field(default_factory=dict)
    rejection: Rejection | None = None
    unavailable: bool = False
    decided_ms: float | None = Field(
        None, description="the service's own time to load the history, decide and record: the gateway's Server-Timing"
    )

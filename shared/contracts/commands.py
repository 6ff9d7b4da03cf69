"""Commands from the gateway to the services over NATS request/reply, and their replies.

Subjects are `trial.cmd.<service>.<action>`; every replica of a service listens in the queue
group named after the service, so any number of them share the load.
"""

from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.access import Right
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
from shared.contracts.protocol import SiteCode, SubjectId
from shared.contracts.rules import Refusal, RuleViolation

COMMAND_PREFIX = "trial.cmd"


def command_subject(service: str, action: str) -> str:
    return f"{COMMAND_PREFIX}.{service}.{action}"


F = TypeVar("F", bound=BaseModel)

RECORD_CONSENT = command_subject("screening", "record_consent")
WITHDRAW_CONSENT = command_subject("screening", "withdraw_consent")
DECLINE_CONSENT = command_subject("screening", "decline_consent")
SCREEN_SUBJECT = command_subject("screening", "screen_subject")
RANDOMIZE_SUBJECT = command_subject("randomization", "randomize_subject")
INVALIDATE_RANDOMIZATION = command_subject("randomization", "invalidate_randomization")
EXPORT_ALLOCATION_LIST = command_subject("randomization", "export_allocation_list")
REPORT_ADVERSE_EVENT = command_subject("safety", "report_adverse_event")
UPDATE_ADVERSE_EVENT = command_subject("safety", "update_adverse_event")
ACKNOWLEDGE_ALERT = command_subject("safety", "acknowledge_alert")
RECORD_PROCEDURE = command_subject("visits", "record_procedure")
RECORD_VISIT = command_subject("visits", "record_visit")
RECORD_FORM = command_subject("visits", "record_form")
WITHDRAW_SUBJECT = command_subject("visits", "withdraw_subject")
OPEN_QUERY = command_subject("datamanagement", "open_query")
ANSWER_QUERY = command_subject("datamanagement", "answer_query")
CLOSE_QUERY = command_subject("datamanagement", "close_query")
REOPEN_QUERY = command_subject("datamanagement", "reopen_query")
VERIFY_FORM = command_subject("datamanagement", "verify_form")
LOCK_CASEBOOK = command_subject("datamanagement", "lock_casebook")
UNLOCK_CASEBOOK = command_subject("datamanagement", "unlock_casebook")
LOCK_DATABASE = command_subject("datamanagement", "lock_database")
SIGN = command_subject("datamanagement", "sign")
CHANGE_ACCESS = command_subject("datamanagement", "change_access")

# The right each command needs: the gateway checks it per route, the service again on the attested caller.
COMMAND_RIGHTS: dict[str, Right] = {
    RECORD_CONSENT: Right.POST_SITE_FORMS,
    WITHDRAW_CONSENT: Right.POST_SITE_FORMS,
    DECLINE_CONSENT: Right.POST_SITE_FORMS,
    SCREEN_SUBJECT: Right.POST_SITE_FORMS,
    RANDOMIZE_SUBJECT: Right.POST_SITE_FORMS,
    INVALIDATE_RANDOMIZATION: Right.INVALIDATE_RANDOMIZATION,
    EXPORT_ALLOCATION_LIST: Right.READ_ALLOCATION_LIST,
    REPORT_ADVERSE_EVENT: Right.POST_SITE_FORMS,
    UPDATE_ADVERSE_EVENT: Right.POST_SITE_FORMS,
    ACKNOWLEDGE_ALERT: Right.ACKNOWLEDGE_ALERTS,
    RECORD_PROCEDURE: Right.POST_SITE_FORMS,
    RECORD_VISIT: Right.POST_SITE_FORMS,
    RECORD_FORM: Right.POST_SITE_FORMS,
    WITHDRAW_SUBJECT: Right.POST_SITE_FORMS,
    OPEN_QUERY: Right.OPEN_QUERIES,
    ANSWER_QUERY: Right.ANSWER_QUERIES,
    CLOSE_QUERY: Right.OPEN_QUERIES,
    REOPEN_QUERY: Right.OPEN_QUERIES,
    VERIFY_FORM: Right.VERIFY_FORMS,
    LOCK_CASEBOOK: Right.LOCK_CASEBOOKS,
    UNLOCK_CASEBOOK: Right.LOCK_CASEBOOKS,
    LOCK_DATABASE: Right.LOCK_CASEBOOKS,
    SIGN: Right.SIGN_CASEBOOKS,
    CHANGE_ACCESS: Right.MANAGE_ACCESS,
}


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

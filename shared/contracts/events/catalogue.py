"""Every domain event of the trial, one pydantic model each. Names are past-tense facts."""

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator

from shared.contracts.dictionary import FORM_NAME
from shared.contracts.events.envelope import DomainEvent, register
from shared.contracts.forms import (
    FORM_PATTERN,
    VISIT_CODE_PATTERN,
    ActionTaken,
    AdverseEventOutcome,
    Anaesthesia,
    ConsentRefusalReason,
    DecidedBy,
    DonorSite,
    FatGraftRecord,
    ProcedureRelationship,
    ScreeningForm,
    SeriousnessCriterion,
    SignatureKind,
    WithdrawalReason,
)
from shared.contracts.protocol import SITE_CODE_PATTERN


@register
class ConsentRecorded(DomainEvent):
    """Informed consent signed (IN09); nothing trial-specific may happen to the subject before it."""

    event_type = "ConsentRecorded"

    consent_form_version: str = Field(min_length=1, max_length=20)
    signed_on: date
    obtained_by: str = Field(min_length=1, max_length=64, description="staff identifier, not a name")
    signed_by_subject: bool
    signed_by_representative: bool
    supersedes: UUID | None = None


@register
class ConsentDeclined(DomainEvent):
    """Approached about the trial, the person declined to consent; no trial procedure follows."""

    event_type = "ConsentDeclined"

    declined_on: date
    recorded_by: str = Field(min_length=1, max_length=64)
    reason: ConsentRefusalReason | None = None


@register
class ConsentWithdrawn(DomainEvent):
    """The subject withdrew consent: no further trial-specific procedures may be done."""

    event_type = "ConsentWithdrawn"

    withdrawn_on: date
    recorded_by: str = Field(min_length=1, max_length=64)
    supersedes: UUID | None = None


class CriterionOutcome(StrEnum):
    """For an inclusion, `met` admits; for an exclusion, `met` excludes. `missing` never counts as met."""

    MET = "met"
    NOT_MET = "not_met"
    MISSING = "missing"


class CriterionKind(StrEnum):
    INCLUSION = "inclusion"
    EXCLUSION = "exclusion"


class CriterionResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^(IN|EX)[0-9]{2}$")
    kind: CriterionKind
    outcome: CriterionOutcome
    value: str | None = Field(description="what the rule looked at, e.g. 'BMI 16.9' or 'onset 2025-05-31'")
    value_zh: str | None = Field(None, description="the same in Simplified Chinese, for the pages (absent before 1.1)")
    rule: str = Field(description="the criterion's text in the protocol version used")

    @property
    def blocks_eligibility(self) -> bool:
        wanted = CriterionOutcome.MET if self.kind is CriterionKind.INCLUSION else CriterionOutcome.NOT_MET
        return self.outcome is not wanted


@register
class SubjectScreened(DomainEvent):
    """Eligibility evaluated on every criterion. A re-screen is a new event that supersedes the last."""

    event_type = "SubjectScreened"

    screening_number: int = Field(ge=1, description="1 for the first screening, 2+ for re-screens")
    screening_date: date
    eligible: bool
    bmi: Decimal | None
    criteria: tuple[CriterionResult, ...]
    form: ScreeningForm
    supersedes: UUID | None = Field(None, description="the screening this one corrects (same screening number)")

    @property
    def reasons(self) -> tuple[str, ...]:
        """Codes of the criteria that kept the subject out (empty when eligible)."""
        return tuple(c.code for c in self.criteria if c.blocks_eligibility)


@register
class RandomizationListCommitted(DomainEvent):
    """Trial-level: the allocation list is fixed. `commitment` is the SHA-256 of its CSV export."""

    event_type = "RandomizationListCommitted"

    list_version: int = Field(ge=1)
    algorithm: str
    commitment: str = Field(pattern=r"^[0-9a-f]{64}$")
    seed_kind: Literal["test", "production"]
    seed_fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")
    arms: tuple[str, ...]
    strata: tuple[str, ...]
    slots_per_stratum: int = Field(ge=1)
    block_sizes: tuple[int, ...]


@register
class SubjectRandomized(DomainEvent):
    """One allocation per subject, ever. `stratum_slot` is private to the list; sites see arm and number."""

    event_type = "SubjectRandomized"

    arm: str
    randomization_number: int = Field(ge=1, description="trial-wide, sequential")
    stratum: str
    stratum_slot: int = Field(ge=1)
    list_version: int = Field(ge=1)
    list_commitment: str = Field(pattern=r"^[0-9a-f]{64}$")


@register
class EnrollmentClosed(DomainEvent):
    """Trial-level: the enrollment cap is reached; no further randomization."""

    event_type = "EnrollmentClosed"

    randomized: int = Field(ge=1)
    cap: int = Field(ge=1)


@register
class RandomizationInvalidated(DomainEvent):
    """A randomization made in error. The subject keeps its record and the slot is never reused."""

    event_type = "RandomizationInvalidated"
    is_correction = True

    randomization_number: int = Field(ge=1)
    arm: str


@register
class AdverseEventReported(DomainEvent):
    """An adverse event; `serious` is derived from the ICH E2A criteria and the grade (5 is always serious)."""

    event_type = "AdverseEventReported"

    ae_id: UUID
    term: str
    onset_date: date
    site_aware_at: AwareDatetime
    grade: int = Field(ge=1, le=5)
    seriousness: tuple[SeriousnessCriterion, ...]
    derived_seriousness: tuple[SeriousnessCriterion, ...] = Field(
        (), description="criteria the system added from the form (hospitalized ⇒ hospitalization), in seriousness too"
    )
    serious: bool
    relationship: ProcedureRelationship | None = Field(
        None, description="the investigator's causality assessment; none until an investigator gives it"
    )
    action_taken: ActionTaken
    outcome: AdverseEventOutcome
    supersedes: UUID | None = Field(None, description="the record of this adverse event that this one corrects")
    while_locked: bool = Field(False, description="taken while the subject's casebook was locked")


@register
class AdverseEventUpdated(DomainEvent):
    """Follow-up information; `serious` is the adverse event's seriousness after the update."""

    event_type = "AdverseEventUpdated"

    ae_id: UUID
    site_aware_at: AwareDatetime
    grade: int | None = Field(None, ge=1, le=5)
    seriousness: tuple[SeriousnessCriterion, ...] | None = None
    derived_seriousness: tuple[SeriousnessCriterion, ...] = Field(
        (), description="criteria the system added from the follow-up (hospitalized ⇒ hospitalization)"
    )
    relationship: ProcedureRelationship | None = None
    action_taken: ActionTaken | None = None
    outcome: AdverseEventOutcome | None = None
    serious: bool
    while_locked: bool = Field(False, description="taken while the subject's casebook was locked")


@register
class SeriousAdverseEventAlertRaised(DomainEvent):
    """The safety team must see this at once; `late` when reported over 24 h after the site became aware."""

    event_type = "SeriousAdverseEventAlertRaised"

    alert_id: UUID
    ae_id: UUID
    term: str
    grade: int = Field(ge=1, le=5)
    seriousness: tuple[SeriousnessCriterion, ...]
    site_aware_at: AwareDatetime
    reported_at: AwareDatetime
    late: bool


@register
class SeriousAdverseEventAcknowledged(DomainEvent):
    event_type = "SeriousAdverseEventAcknowledged"

    alert_id: UUID
    ae_id: UUID


@register
class SeriousAdverseEventAlertEscalated(DomainEvent):
    """Nobody acknowledged the alert in time; `escalation` counts the intervals passed."""

    event_type = "SeriousAdverseEventAlertEscalated"

    alert_id: UUID
    escalation: int = Field(ge=1)
    overdue_since: AwareDatetime


@register
class ProtocolDeviationRecorded(DomainEvent):
    """What happened against the protocol, accepted as fact and named by a code."""

    event_type = "ProtocolDeviationRecorded"

    deviation_id: UUID
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{2,40}$")
    description: str = Field(min_length=1, max_length=500)
    related_event_id: UUID | None = None
    occurred_on: date | None = Field(
        None,
        description="the site's date the deviation happened on: the visit's or the surgery's date, the late report's, "
        "the randomization's (none on records from before it was kept: the date it was recorded stands in)",
    )


@register
class GraftProcedurePerformed(DomainEvent):
    """The surgery, day 0. With `supersedes` it corrects an earlier record (the envelope says why)."""

    event_type = "GraftProcedurePerformed"

    procedure_date: date
    surgeon: str
    anaesthesia: Anaesthesia
    recipient_area_cm2: Decimal
    follicular_units: int = Field(ge=1)
    donor_site: DonorSite
    fat_graft: FatGraftRecord | None
    supersedes: UUID | None = None


@register
class VisitCompleted(DomainEvent):
    """A follow-up visit; `in_window` against the protocol's window around the target day."""

    event_type = "VisitCompleted"

    visit: str
    visit_date: date
    study_day: int = Field(description="days since surgery (day 0)")
    target_date: date
    window_start: date
    window_end: date
    in_window: bool
    hair_density_per_cm2: Decimal
    grafts_surviving: int
    follicle_survival_pct: Decimal | None = Field(description="grafts surviving / follicular units transplanted")
    satisfaction: int
    mlossi: int
    losdi: int
    photo_reference: str | None
    supersedes: UUID | None = None


@register
class VisitMissed(DomainEvent):
    """The visit's window closed without a record."""

    event_type = "VisitMissed"

    visit: str
    target_date: date
    window_end: date


@register
class SubjectWithdrawn(DomainEvent):
    """End of participation before the end of study; only safety follow-up is accepted after it."""

    event_type = "SubjectWithdrawn"

    withdrawn_on: date
    reason_category: WithdrawalReason
    decided_by: DecidedBy
    supersedes: UUID | None = None


@register
class FormRecorded(DomainEvent):
    """A collected form (declared only in the data dictionary: a questionnaire, say) entered at a visit, or an
    entry of a log (a concomitant medication, a medical history entry) with its own id. Its answers are the items
    the form declares, by their names, as JSON values; the dictionary version it was entered under says what they
    mean."""

    event_type = "FormRecorded"

    form: str = Field(pattern=FORM_NAME, max_length=40)
    visit: str | None = None
    entry: UUID | None = Field(None, description="a log entry's id: the same across its corrections")
    answers: dict[str, JsonValue]
    dictionary_version: str
    supersedes: UUID | None = None

    @model_validator(mode="after")
    def _at_a_visit_or_an_entry(self) -> Self:
        if (self.visit is None) == (self.entry is None):
            raise ValueError("a collected form is recorded at a visit or as a log's entry: one of the two")
        return self

    @property
    def casebook_name(self) -> str:
        """Its record in the casebook: `qol-M6` at a visit, `concomitant-medication-<entry>` in a log."""
        return f"{self.form}-{self.visit or self.entry}"


@register
class ScalpPhotographRecorded(DomainEvent):
    """A scalp photograph taken at a visit, kept as a source document: the image is in the object store under its
    SHA-256 (its metadata stripped, re-encoded); this fact names the visit, the standard view and that hash."""

    event_type = "ScalpPhotographRecorded"

    visit: str = Field(pattern=VISIT_CODE_PATTERN)
    view: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    media_type: str
    width: int
    height: int
    size_bytes: int


@register
class EndpointAssessed(DomainEvent):
    """The blinded outcome assessor's counts at a visit, made from its photographs alone (named by their hashes):
    the endpoint reports use them where present, and say so."""

    event_type = "EndpointAssessed"

    visit: str = Field(pattern=VISIT_CODE_PATTERN)
    grafts_surviving: int = Field(ge=0)
    hair_density_per_cm2: Decimal
    photographs: tuple[str, ...] = Field(min_length=1, description="the SHA-256 of each photograph it was made on")


@register
class QueryOpened(DomainEvent):
    """A question on a form of the subject's casebook: by a monitor or data manager, or by an edit check."""

    event_type = "QueryOpened"

    query_id: UUID
    form: str = Field(pattern=FORM_PATTERN)
    field: str | None = Field(None, max_length=100, description="the form's field it is about, dotted")
    text: str = Field(min_length=1, max_length=2000)
    form_version: UUID = Field(description="the record of the form the query was raised on")
    check: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9_]{2,40}$", description="the edit check that raised it")
    parameters: dict[str, str] = Field(default_factory=dict, description="the edit check's parameters")


@register
class QueryAnswered(DomainEvent):
    """The site's answer; the query waits for its opener to close or re-open it."""

    event_type = "QueryAnswered"

    query_id: UUID
    text: str = Field(min_length=1, max_length=2000)


@register
class QueryClosed(DomainEvent):
    """Resolved: by its opener, or by the edit check once the data no longer raises it."""

    event_type = "QueryClosed"

    query_id: UUID
    text: str | None = Field(None, max_length=2000)


@register
class QueryReopened(DomainEvent):
    """The answer did not resolve it: the site is asked again."""

    event_type = "QueryReopened"

    query_id: UUID
    text: str = Field(min_length=1, max_length=2000)


@register
class FormVerified(DomainEvent):
    """Source data verification: a monitor checked this record of the form against the hospital's source."""

    event_type = "FormVerified"

    form: str = Field(pattern=FORM_PATTERN)
    version: UUID = Field(description="the record verified; a later correction leaves the form changed since")
    items: tuple[str, ...] = Field((), description="the items checked by this step; none: the whole record")
    record_verified: bool = Field(
        True, description="every item of the record holding an answer stands verified (by this step and earlier ones)"
    )


@register
class CasebookLocked(DomainEvent):
    """A data manager locked the subject's casebook: no data is entered or corrected until it is unlocked;
    safety information is still taken (and flagged)."""

    event_type = "CasebookLocked"

    through_sequence: int = Field(ge=1, description="the last record of the subject's history the lock covers")


@register
class CasebookUnlocked(DomainEvent):
    """Unlocked again, with the reason in the envelope (e.g. a query raised after the lock)."""

    event_type = "CasebookUnlocked"
    reason_required = True


@register
class SignatureApplied(DomainEvent):
    """An investigator's electronic signature (21 CFR 11.50, 11.70): who (printed name), when (UTC and the site's
    time), what it means, and exactly the records it covers; a later record of a covered form invalidates it."""

    event_type = "SignatureApplied"

    signature_id: UUID
    kind: SignatureKind
    meaning: str
    printed_name: str = Field(min_length=1, max_length=100)
    signed_at: AwareDatetime
    signed_at_site: str = Field(description="the same instant in the site's time zone, ISO 8601 with its offset")
    authenticated_at: AwareDatetime = Field(description="the signer's authentication just before signing")
    covers: dict[str, UUID] = Field(description="each covered form and the record (version) signed")
    covered_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the covered records' data")


@register
class UserAccessRevoked(DomainEvent):
    """Trial-level: a data manager disabled a user; the gateway refuses that user's tokens from then on."""

    event_type = "UserAccessRevoked"
    reason_required = True

    user: str = Field(pattern=r"^[\x21-\x7e]{1,100}$", description="the user's id: the tokens' subject (sub)")


@register
class UserAccessRestored(DomainEvent):
    """Trial-level: a revoked user may act again."""

    event_type = "UserAccessRestored"
    reason_required = True

    user: str = Field(pattern=r"^[\x21-\x7e]{1,100}$")


@register
class DatabaseLocked(DomainEvent):
    """Trial-level: every casebook locked, the database is frozen for analysis. Exports are made from the record
    as of `through_sequence`: the same bytes every time, whatever safety information arrives later."""

    event_type = "DatabaseLocked"

    through_sequence: int = Field(ge=1, description="the last fact of the record the lock covers")
    subjects: int = Field(ge=1, description="the casebooks locked")


@register
class SubjectCompletedStudy(DomainEvent):
    """The end-of-study visit is done."""

    event_type = "SubjectCompletedStudy"

    completed_on: date
    final_visit: str


@register
class ProtocolAmendmentDeployed(DomainEvent):
    """Trial-level: a new version of the protocol (criteria, windows, edit checks, the data dictionary), in force
    at each site from the day its ethics committee approved it. Every version stays readable in the record."""

    event_type = "ProtocolAmendmentDeployed"

    version: str = Field(min_length=1, max_length=20)
    amends: str = Field(min_length=1, max_length=20, description="the version this one follows")
    summary: str = Field(min_length=1, max_length=2000)
    summary_zh: str = Field(min_length=1, max_length=2000)
    effective: dict[str, date] = Field(description="each site's first day under this version, in its own time")
    consent_form_version: str | None = Field(
        None, max_length=20, description="the revised consent form every active subject signs before their next visit"
    )
    migrates: tuple[Annotated[str, Field(pattern=FORM_NAME, max_length=40)], ...] = Field(
        (), description="forms whose corrections take this version's items"
    )
    reschedules: bool = Field(False, description="visit windows of subjects already scheduled follow this version")
    definition: dict[str, JsonValue] = Field(description="the whole definition of this version, its forms included")


@register
class ProtocolAmendmentEffective(DomainEvent):
    """Trial-level: a version came into force at a site, on its day there."""

    event_type = "ProtocolAmendmentEffective"

    version: str = Field(min_length=1, max_length=20)
    site: str = Field(pattern=SITE_CODE_PATTERN)
    effective_on: date

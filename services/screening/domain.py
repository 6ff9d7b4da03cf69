"""Pure screening rules: consent comes first (IN09), then eligibility on every criterion. No I/O here."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import reduce
from uuid import UUID

from services.screening.eligibility import evaluate
from shared.contracts.amendments import require_consent, signed
from shared.contracts.casebook import corrects
from shared.contracts.events import (
    ConsentDeclined,
    ConsentRecorded,
    ConsentWithdrawn,
    DatabaseLocked,
    DomainEvent,
    ProtocolDeviationRecorded,
    RecordedEvent,
    SubjectRandomized,
    SubjectScreened,
    SubjectWithdrawn,
)
from shared.contracts.forms import ConsentForm, ConsentRefusalForm, ConsentWithdrawalForm, ScreeningForm
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.rules import (
    AlreadyRandomized,
    ConsentWasWithdrawn,
    DatabaseIsLocked,
    DateInFuture,
    NotConsented,
    NotDelegated,
    Refusal,
    RuleViolation,
    SubjectIsWithdrawn,
    check_site,
)


class UnknownConsentFormVersion(RuleViolation):
    rule, kind, title = "consent.form_version", Refusal.INVALID, "Consent form version not approved"


class ConsentNotSigned(RuleViolation):
    rule, kind, title = "consent.signed", Refusal.INVALID, "Nobody signed the consent form"


class ConsentAlreadyRecorded(RuleViolation):
    rule, title = "consent.once_per_form_version", "Consent already recorded"


class ScreeningBeforeConsent(RuleViolation):
    rule, title = "IN09.before_screening", "Screening dated before consent"


class DateAfterScreening(RuleViolation):
    rule, kind, title = "date.not_after_screening", Refusal.INVALID, "Date after the screening date"


class ConsentWasDeclined(RuleViolation):
    rule, title = "consent.declined", "The person declined to consent"


class ConsentAlreadyGiven(RuleViolation):
    rule, title = "consent.refusal_before_consent", "Consent already given"


RANDOMIZED_INELIGIBLE = "RANDOMIZED_INELIGIBLE"


class InvestigatorJudgement(NotDelegated):
    rule = "delegation.investigator_judgement"


class WithdrawalBeforeConsent(RuleViolation):
    rule, kind, title = "consent.withdrawal_after_signing", Refusal.INVALID, "Withdrawal dated before consent"


@dataclass(frozen=True)
class ScreeningState:
    # The consent form versions signed, by the record of each (a correction replaces its record's version).
    consents: dict[UUID, str] = field(default_factory=dict)
    consent: ConsentRecorded | None = None
    consent_id: UUID | None = None
    consent_withdrawn: bool = False
    consent_withdrawal_id: UUID | None = None
    consent_declined: bool = False
    screenings: int = 0
    screening_id: UUID | None = None
    # The protocol version the current screening was judged under: its correction keeps it (unless migrated).
    screened_under: str | None = None
    # The investigator's EX11 judgement on the current screening: a coordinator's correction keeps it.
    judged_unsuitable: bool | None = None
    randomized: bool = False
    randomized_at: datetime | None = None
    withdrawn: bool = False

    @property
    def consented_form_versions(self) -> frozenset[str]:
        return frozenset(self.consents.values())


def evolve(state: ScreeningState, recorded: RecordedEvent) -> ScreeningState:
    record_id = recorded.envelope.id
    match event := recorded.data:
        case ConsentRecorded():
            return replace(
                state, consents=signed(state.consents, event, record_id), consent=event, consent_id=record_id
            )
        case ConsentWithdrawn():
            return replace(state, consent_withdrawn=True, consent_withdrawal_id=record_id)
        case ConsentDeclined():
            return replace(state, consent_declined=True)
        case SubjectScreened(screening_number=number, form=form):
            judged = form.investigator_judges_unsuitable
            return replace(
                state,
                screenings=number,
                screening_id=record_id,
                judged_unsuitable=judged,
                screened_under=recorded.envelope.protocolversion,
            )
        case SubjectRandomized():
            return replace(state, randomized=True, randomized_at=recorded.envelope.time)
        case SubjectWithdrawn():
            return replace(state, withdrawn=True)
        case _:
            return state


def replay(history: Sequence[RecordedEvent]) -> ScreeningState:
    return reduce(evolve, history, ScreeningState())


def _valid_consent(state: ScreeningState, subject: str) -> ConsentRecorded:
    if state.withdrawn:
        raise SubjectIsWithdrawn(f"{subject} is withdrawn from the study")
    if state.consent_declined:
        raise ConsentWasDeclined(f"{subject} declined to consent; no trial procedure may follow")
    if state.consent_withdrawn:
        raise ConsentWasWithdrawn(f"{subject} withdrew consent; no further trial procedures")
    if state.consent is None:
        raise NotConsented(f"{subject} has no informed consent on record; consent comes before screening")
    return state.consent


def _not_locked_for_analysis(database_lock: DatabaseLocked | None) -> None:
    """Once the database is locked every casebook is, and no new person enters the trial."""
    if database_lock is not None:
        raise DatabaseIsLocked(
            f"the database is locked for analysis through {database_lock.through_sequence}: nobody new is enrolled"
        )


def _not_after(day: date, today: date, field: str) -> None:
    if day > today:
        raise DateInFuture(f"{field} {day} is after today {today}", field=field)


def screen(
    state: ScreeningState,
    form: ScreeningForm,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
    deviation_id: UUID,
    judges: bool,
    consent_required: str | None = None,
) -> list[DomainEvent]:
    """`judges`: the caller may give the investigator's judgement (EX11); a coordinator's form leaves it out, and a
    coordinator's correction keeps the investigator's answer on the record it corrects. `protocol` is the version
    in force at the site on the screening date, or for a correction the version of the record it corrects (unless
    an amendment migrated the form). `consent_required`: a revised consent form, which a new screening waits for."""
    check_site(protocol, site, subject, enrolling=form.supersedes is None)
    if form.investigator_judges_unsuitable is not None and not judges:
        raise InvestigatorJudgement(
            "EX11 is the investigator's judgement: leave it out; the investigator records it",
            field="investigator_judges_unsuitable",
        )
    _not_after(form.screening_date, today, "screening_date")
    for name, day in form.dates().items():
        if day > form.screening_date:
            raise DateAfterScreening(f"{name} {day} is after the screening date {form.screening_date}", field=name)
    # A correction re-evaluates the screening it corrects, whatever happened since: a randomized subject
    # found ineligible stays in its arm, with a deviation (and the edit check's query) for people to review.
    correcting = corrects(state.screening_id, form.supersedes, form.reason, "screening")
    if correcting and not judges:
        form = form.model_copy(update={"investigator_judges_unsuitable": state.judged_unsuitable})
    consent = state.consent if correcting else _valid_consent(state, subject)
    if consent is None:
        raise NotConsented(f"{subject} has no informed consent on record")
    if state.randomized and not correcting:
        raise AlreadyRandomized(f"{subject} is randomized; eligibility is no longer re-assessed")
    if not correcting:
        require_consent(consent_required, state.consented_form_versions, subject)
    if form.screening_date < consent.signed_on:
        raise ScreeningBeforeConsent(
            f"screening on {form.screening_date} precedes consent signed on {consent.signed_on}",
            field="screening_date",
        )
    result = evaluate(
        form, protocol.eligibility, consent_form_version=consent.consent_form_version, dictionary=protocol.forms
    )
    screened = SubjectScreened(
        screening_number=state.screenings if correcting else state.screenings + 1,
        screening_date=form.screening_date,
        eligible=result.eligible,
        bmi=result.bmi,
        criteria=result.criteria,
        form=form.model_copy(update={"supersedes": None, "reason": None}),
        supersedes=form.supersedes,
    )
    if not (state.randomized and not result.eligible):
        return [screened]
    deviation = ProtocolDeviationRecorded(
        deviation_id=deviation_id,
        code=RANDOMIZED_INELIGIBLE,
        description=f"randomized, but the corrected screening is not eligible ({', '.join(screened.reasons)})",
        related_event_id=form.supersedes,
        # The deviation is the randomization of a subject not eligible: it happened on the randomization's date.
        occurred_on=protocol.local_date(site, state.randomized_at) if state.randomized_at else None,
    )
    return [screened, deviation]


def withdraw_consent(
    state: ScreeningState,
    form: ConsentWithdrawalForm,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
) -> list[DomainEvent]:
    check_site(protocol, site, subject, enrolling=False)
    _not_after(form.withdrawn_on, today, "withdrawn_on")
    # Recordable before or after the subject's withdrawal from the study: they are different facts.
    correcting = corrects(state.consent_withdrawal_id, form.supersedes, form.reason, "consent-withdrawal")
    earlier = replace(state, withdrawn=False, consent_withdrawn=state.consent_withdrawn and not correcting)
    consent = _valid_consent(earlier, subject)
    if form.withdrawn_on < consent.signed_on:
        raise WithdrawalBeforeConsent(
            f"withdrawn_on {form.withdrawn_on} is before consent signed on {consent.signed_on}", field="withdrawn_on"
        )
    return [ConsentWithdrawn(withdrawn_on=form.withdrawn_on, recorded_by=form.recorded_by, supersedes=form.supersedes)]


def record_consent(
    state: ScreeningState,
    form: ConsentForm,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
    database_lock: DatabaseLocked | None,
) -> list[DomainEvent]:
    # A correction is data cleaning, not enrolment: taken from a suspended site too.
    check_site(protocol, site, subject, enrolling=form.supersedes is None)
    _not_locked_for_analysis(database_lock)
    if form.consent_form_version not in protocol.consent_form_versions:
        raise UnknownConsentFormVersion(
            f"version {form.consent_form_version} is not one of {list(protocol.consent_form_versions)}",
            field="consent_form_version",
        )
    _not_after(form.signed_on, today, "signed_on")
    if not (form.signed_by_subject or form.signed_by_representative):
        raise ConsentNotSigned(
            "the subject or a legally authorised representative must sign", field="signed_by_subject"
        )
    if state.consent_declined:
        raise ConsentWasDeclined(f"{subject} declined to consent; a later approach needs a new subject id")
    if corrects(state.consent_id, form.supersedes, form.reason, "consent"):
        # The record as it should have been (version, date, who signed): taken even after consent was withdrawn.
        if form.consent_form_version in {v for k, v in state.consents.items() if k != form.supersedes}:
            raise ConsentAlreadyRecorded(
                f"{subject} has another consent on form version {form.consent_form_version}",
                field="consent_form_version",
            )
        return [ConsentRecorded(**form.model_dump(exclude={"reason"}))]
    if state.consent_withdrawn:
        raise ConsentWasWithdrawn(f"{subject} withdrew consent; a new participation needs a new subject id")
    if form.consent_form_version in state.consented_form_versions:
        raise ConsentAlreadyRecorded(
            f"{subject} already consented on form version {form.consent_form_version}", field="consent_form_version"
        )
    return [ConsentRecorded(**form.model_dump(exclude={"reason"}))]


def decline_consent(
    state: ScreeningState,
    form: ConsentRefusalForm,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
    database_lock: DatabaseLocked | None,
) -> list[DomainEvent]:
    """A person approached who declines: recorded so CONSORT counts everyone assessed; nothing may follow."""
    check_site(protocol, site, subject)
    _not_locked_for_analysis(database_lock)
    _not_after(form.declined_on, today, "declined_on")
    if state.consent is not None:
        raise ConsentAlreadyGiven(f"{subject} consented; a change of mind is a consent withdrawal")
    if state.consent_declined:
        raise ConsentWasDeclined(f"{subject}'s refusal is recorded already")
    return [ConsentDeclined(**form.model_dump())]

"""Pure screening rules: consent comes first (IN09), then eligibility on every criterion. No I/O here."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import reduce

from services.screening.eligibility import evaluate
from shared.contracts.events import (
    ConsentDeclined,
    ConsentRecorded,
    ConsentWithdrawn,
    DomainEvent,
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
    DateInFuture,
    NotConsented,
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


class WithdrawalBeforeConsent(RuleViolation):
    rule, kind, title = "consent.withdrawal_after_signing", Refusal.INVALID, "Withdrawal dated before consent"


@dataclass(frozen=True)
class ScreeningState:
    consented_form_versions: frozenset[str] = field(default_factory=frozenset)
    consent: ConsentRecorded | None = None
    consent_withdrawn: bool = False
    consent_declined: bool = False
    screenings: int = 0
    randomized: bool = False
    withdrawn: bool = False


def evolve(state: ScreeningState, event: DomainEvent) -> ScreeningState:
    match event:
        case ConsentRecorded(consent_form_version=version):
            return replace(state, consented_form_versions=state.consented_form_versions | {version}, consent=event)
        case ConsentWithdrawn():
            return replace(state, consent_withdrawn=True)
        case ConsentDeclined():
            return replace(state, consent_declined=True)
        case SubjectScreened():
            return replace(state, screenings=state.screenings + 1)
        case SubjectRandomized():
            return replace(state, randomized=True)
        case SubjectWithdrawn():
            return replace(state, withdrawn=True)
        case _:
            return state


def replay(history: Sequence[RecordedEvent]) -> ScreeningState:
    return reduce(evolve, (e.data for e in history), ScreeningState())


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
) -> list[DomainEvent]:
    check_site(protocol, site, subject)
    _not_after(form.screening_date, today, "screening_date")
    for name, day in form.dates().items():
        if day > form.screening_date:
            raise DateAfterScreening(f"{name} {day} is after the screening date {form.screening_date}", field=name)
    consent = _valid_consent(state, subject)
    if state.randomized:
        raise AlreadyRandomized(f"{subject} is randomized; eligibility is no longer re-assessed")
    if form.screening_date < consent.signed_on:
        raise ScreeningBeforeConsent(
            f"screening on {form.screening_date} precedes consent signed on {consent.signed_on}",
            field="screening_date",
        )
    result = evaluate(form, protocol.eligibility, consent_form_version=consent.consent_form_version)
    return [
        SubjectScreened(
            screening_number=state.screenings + 1,
            screening_date=form.screening_date,
            eligible=result.eligible,
            bmi=result.bmi,
            criteria=result.criteria,
            form=form,
        )
    ]


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
    consent = _valid_consent(replace(state, withdrawn=False), subject)
    if form.withdrawn_on < consent.signed_on:
        raise WithdrawalBeforeConsent(
            f"withdrawn_on {form.withdrawn_on} is before consent signed on {consent.signed_on}", field="withdrawn_on"
        )
    return [ConsentWithdrawn(withdrawn_on=form.withdrawn_on, recorded_by=form.recorded_by)]


def record_consent(
    state: ScreeningState,
    form: ConsentForm,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
) -> list[DomainEvent]:
    check_site(protocol, site, subject)
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
    if state.consent_withdrawn:
        raise ConsentWasWithdrawn(f"{subject} withdrew consent; a new participation needs a new subject id")
    if state.consent_declined:
        raise ConsentWasDeclined(f"{subject} declined to consent; a later approach needs a new subject id")
    if form.consent_form_version in state.consented_form_versions:
        raise ConsentAlreadyRecorded(
            f"{subject} already consented on form version {form.consent_form_version}", field="consent_form_version"
        )
    return [ConsentRecorded(**form.model_dump())]


def decline_consent(
    state: ScreeningState,
    form: ConsentRefusalForm,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
) -> list[DomainEvent]:
    """A person approached who declines: recorded so CONSORT counts everyone assessed; nothing may follow."""
    check_site(protocol, site, subject)
    _not_after(form.declined_on, today, "declined_on")
    if state.consent is not None:
        raise ConsentAlreadyGiven(f"{subject} consented; a change of mind is a consent withdrawal")
    if state.consent_declined:
        raise ConsentWasDeclined(f"{subject}'s refusal is recorded already")
    return [ConsentDeclined(**form.model_dump())]

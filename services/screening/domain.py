"""Pure screening rules: consent comes first (IN09). No I/O here."""

from dataclasses import dataclass, field
from datetime import date

from shared.events import ConsentRecorded, DomainEvent
from shared.forms import ConsentForm
from shared.protocol import ProtocolDefinition, SiteStatus
from shared.rules import Refusal, RuleViolation


class UnknownSite(RuleViolation):
    rule, kind, title = "site.known", Refusal.NOT_FOUND, "Unknown site"


class SiteNotActive(RuleViolation):
    rule, title = "site.active", "Site is not active"


class SubjectNotOfSite(RuleViolation):
    rule, kind, title = "subject.site_prefix", Refusal.INVALID, "Subject id does not belong to the site"


class UnknownConsentFormVersion(RuleViolation):
    rule, kind, title = "consent.form_version", Refusal.INVALID, "Consent form version not approved"


class ConsentSignedInFuture(RuleViolation):
    rule, kind, title = "consent.signed_on_not_future", Refusal.INVALID, "Consent signed after today"


class ConsentNotSigned(RuleViolation):
    rule, kind, title = "consent.signed", Refusal.INVALID, "Nobody signed the consent form"


class ConsentAlreadyRecorded(RuleViolation):
    rule, title = "consent.once_per_form_version", "Consent already recorded"


@dataclass(frozen=True)
class ScreeningState:
    consented_form_versions: frozenset[str] = field(default_factory=frozenset)


def evolve(state: ScreeningState, event: DomainEvent) -> ScreeningState:
    match event:
        case ConsentRecorded(consent_form_version=version):
            return ScreeningState(consented_form_versions=state.consented_form_versions | {version})
        case _:
            return state


def replay(events: list[DomainEvent]) -> ScreeningState:
    state = ScreeningState()
    for event in events:
        state = evolve(state, event)
    return state


def check_site(protocol: ProtocolDefinition, site: str, subject: str) -> None:
    known = protocol.site(site)
    if known is None:
        raise UnknownSite(f"site {site} is not in protocol {protocol.trial_id} v{protocol.version}", field="site")
    if known.status is not SiteStatus.ACTIVE:
        raise SiteNotActive(f"site {site} is {known.status}", field="site")
    if not subject.startswith(f"{site}-"):
        raise SubjectNotOfSite(f"subject {subject} must be numbered {site}-NNN", field="subject")


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
    if form.signed_on > today:
        raise ConsentSignedInFuture(f"signed_on {form.signed_on} is after today {today}", field="signed_on")
    if not (form.signed_by_subject or form.signed_by_representative):
        raise ConsentNotSigned(
            "the subject or a legally authorised representative must sign", field="signed_by_subject"
        )
    if form.consent_form_version in state.consented_form_versions:
        raise ConsentAlreadyRecorded(
            f"{subject} already consented on form version {form.consent_form_version}", field="consent_form_version"
        )
    return [ConsentRecorded(**form.model_dump())]

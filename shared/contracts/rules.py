"""Domain rule errors: which rule, what kind of refusal, the field it is about; and the rules every service checks."""

from enum import StrEnum
from uuid import UUID

from shared.contracts.events import DomainEvent
from shared.contracts.protocol import ProtocolDefinition, SiteStatus


class Refusal(StrEnum):
    """How a refusal reads to a client; the gateway maps each to one HTTP status."""

    INVALID = "invalid"  # the form breaks a rule on its own values (422)
    CONFLICT = "conflict"  # the form is well-formed but the trial's state forbids it (409)
    NOT_FOUND = "not_found"  # it names something the trial does not have (404)
    FORBIDDEN = "forbidden"  # the caller's role may do this, but not to this record (403)
    STALE = "stale"  # a correction made on a record that has been corrected since (412)
    VERSION_REQUIRED = "version_required"  # a correction that does not name the record it corrects (428, RFC 6585)
    LOCKED = "locked"  # the subject's casebook is locked: unlock it first, with a reason (423)
    REAUTHENTICATE = "reauthenticate"  # authenticate again, then repeat (401, RFC 9470 step-up)


class RuleViolation(Exception):
    """Raised only by `decide` functions. Subclasses set `rule` and `kind` and say what failed."""

    rule: str = "rule"
    kind: Refusal = Refusal.CONFLICT
    title: str = "The trial's rules forbid this"
    # A refusal that needs a person (e.g. an allocation list used up): logged as an error, not as information.
    alarm: bool = False

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        current_version: UUID | None = None,
        max_age: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        # For a stale correction: the record now current, which the client reads again before correcting.
        self.current_version = current_version
        # For a fresh sign-in: how recent (seconds, RFC 9470 `max_age`) the person's authentication must be.
        self.max_age = max_age


class RecordedBefore(Exception):
    """Raised only by `decide` functions: what the command asks for stands recorded already, by an earlier
    command (e.g. a second person acknowledging the same alert). The command succeeds with that fact."""

    def __init__(self, fact: DomainEvent) -> None:
        super().__init__(type(fact).__name__)
        self.fact = fact


class NotDelegated(RuleViolation):
    """A field that is someone else's judgement under the protocol's delegation (e.g. the investigator's)."""

    kind, title = Refusal.FORBIDDEN, "Not delegated to this role"


# Rules more than one service enforces, named once.


class DatabaseIsLocked(RuleViolation):
    rule, title = "database.locked", "The database is locked for analysis"


class NotConsented(RuleViolation):
    rule, title = "IN09", "No informed consent"


class SubjectIsWithdrawn(RuleViolation):
    rule, title = "subject.withdrawn", "Subject withdrawn"


class ConsentWasWithdrawn(RuleViolation):
    rule, title = "consent.withdrawn", "Consent was withdrawn"


class AlreadyRandomized(RuleViolation):
    rule, title = "randomization.once", "Subject already randomized"


class NotRandomized(RuleViolation):
    rule, title = "randomization.required", "Subject not randomized"


class DateInFuture(RuleViolation):
    rule, kind, title = "date.not_future", Refusal.INVALID, "Date or time after now"


class ReasonRequired(RuleViolation):
    rule, kind, title = "correction.reason", Refusal.INVALID, "A correction needs a reason"


class StaleCorrection(RuleViolation):
    rule, kind, title = "correction.current_version", Refusal.STALE, "Correction of a record that is not current"


class VersionRequired(RuleViolation):
    rule, kind, title = "correction.version", Refusal.VERSION_REQUIRED, "A correction names the record it corrects"


class UnknownSubject(RuleViolation):
    rule, kind, title = "subject.known", Refusal.NOT_FOUND, "Unknown subject"


class NothingToCorrect(RuleViolation):
    rule, kind, title = "correction.record", Refusal.NOT_FOUND, "No such record to correct"


class CasebookIsLocked(RuleViolation):
    rule, kind, title = "casebook.locked", Refusal.LOCKED, "The subject's casebook is locked"


class UnknownSite(RuleViolation):
    rule, kind, title = "site.known", Refusal.NOT_FOUND, "Unknown site"


class SiteNotActive(RuleViolation):
    rule, title = "site.active", "Site is not active"


class SubjectNotOfSite(RuleViolation):
    rule, kind, title = "subject.site_prefix", Refusal.INVALID, "Subject id does not belong to the site"


def check_site(protocol: ProtocolDefinition, site: str, subject: str, *, enrolling: bool = True) -> None:
    """The site is in the protocol, and the subject is numbered for it. Enrolment (consent, screening,
    randomization) needs an active site; a suspended site's subjects are still followed up and their
    safety information is never turned away (`enrolling=False`)."""
    known = protocol.site(site)
    if known is None:
        raise UnknownSite(f"site {site} is not in protocol {protocol.trial_id} v{protocol.version}", field="site")
    if enrolling and known.status is not SiteStatus.ACTIVE:
        raise SiteNotActive(f"site {site} is {known.status}", field="site")
    if not subject.startswith(f"{site}-"):
        raise SubjectNotOfSite(f"subject {subject} must be numbered {site}-NNN", field="subject")

"""Pure randomization rules: who may be allocated, to which slot, and when enrollment closes. No I/O."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from uuid import UUID

from services.randomization.allocation import AllocationList
from shared.contracts.amendments import require_consent, signed
from shared.contracts.events import (
    ConsentRecorded,
    ConsentWithdrawn,
    DomainEvent,
    EnrollmentClosed,
    RandomizationInvalidated,
    RecordedEvent,
    SubjectRandomized,
    SubjectScreened,
    SubjectWithdrawn,
)
from shared.contracts.forms import RandomizationInvalidationForm
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.rules import (
    AlreadyRandomized,
    ConsentWasWithdrawn,
    NotConsented,
    NotRandomized,
    ReasonRequired,
    RuleViolation,
    SubjectIsWithdrawn,
    check_site,
)


class NotScreened(RuleViolation):
    rule, title = "screening.required", "Subject not screened"


class NotEligible(RuleViolation):
    rule, title = "screening.eligible", "Subject not eligible at the latest screening"


class EnrollmentFull(RuleViolation):
    rule, title = "enrollment.cap", "Enrollment full"


class AllocationListExhausted(RuleViolation):
    rule, title = "randomization.list_exhausted", "No allocation left for this stratum"
    alarm = True


class AlreadyInvalidated(RuleViolation):
    rule, title = "randomization.invalidated_once", "Randomization already invalidated"


@dataclass(frozen=True)
class SubjectState:
    consented: bool = False
    consent_withdrawn: bool = False
    # The consent form versions signed, by the record of each.
    consents: dict[UUID, str] = field(default_factory=dict)
    latest_screening: SubjectScreened | None = None
    randomized: SubjectRandomized | None = None
    invalidated: bool = False
    withdrawn: bool = False


def evolve(state: SubjectState, recorded: RecordedEvent) -> SubjectState:
    match event := recorded.data:
        case ConsentRecorded():
            return replace(state, consented=True, consents=signed(state.consents, event, recorded.envelope.id))
        case ConsentWithdrawn():
            return replace(state, consent_withdrawn=True)
        case SubjectScreened():
            return replace(state, latest_screening=event)
        case SubjectRandomized():
            return replace(state, randomized=event)
        case RandomizationInvalidated():
            return replace(state, invalidated=True)
        case SubjectWithdrawn():
            return replace(state, withdrawn=True)
        case _:
            return state


def replay(history: Sequence[RecordedEvent]) -> SubjectState:
    return reduce(evolve, history, SubjectState())


@dataclass(frozen=True)
class Allocations:
    """What the trial has allocated so far: the count (the cap) and the slots used in each stratum."""

    total: int = 0
    used: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, randomized: Sequence[SubjectRandomized]) -> "Allocations":
        return cls(total=len(randomized), used=Counter(r.stratum for r in randomized))

    def used_in(self, stratum: str) -> int:
        return self.used[stratum]

    def adding(self, randomized: SubjectRandomized) -> "Allocations":
        return Allocations(self.total + 1, self.used + Counter([randomized.stratum]))


class AllocationTally:
    """`Allocations` of the trial's randomization history, kept between decisions: a history that extends the one
    seen last is folded from where that one ended (the record only grows); any other (a retry's, shorter) afresh.
    Each allocation then costs its new events, not the whole trial's."""

    def __init__(self) -> None:
        self._seen = 0
        self._last_sequence = 0
        self._allocations = Allocations()

    def of(self, history: Sequence[RecordedEvent]) -> Allocations:
        extends = self._seen <= len(history) and (
            self._seen == 0 or history[self._seen - 1].sequence == self._last_sequence
        )
        allocations, new = (self._allocations, history[self._seen :]) if extends else (Allocations(), history)
        for event in new:
            if isinstance(event.data, SubjectRandomized):
                allocations = allocations.adding(event.data)
        self._seen, self._allocations = len(history), allocations
        self._last_sequence = history[-1].sequence if history else 0
        return allocations


def randomize(
    subject_state: SubjectState,
    allocations: Allocations,
    allocation_list: AllocationList,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    consent_required: str | None = None,
) -> list[DomainEvent]:
    """`consent_required`: a revised consent form an amendment in force asks every subject to sign first."""
    check_site(protocol, site, subject)
    if subject_state.withdrawn:
        raise SubjectIsWithdrawn(f"{subject} is withdrawn from the study")
    if subject_state.consent_withdrawn:
        raise ConsentWasWithdrawn(f"{subject} withdrew consent")
    if not subject_state.consented:
        raise NotConsented(f"{subject} has no informed consent on record")
    if subject_state.randomized is not None:
        r = subject_state.randomized
        raise AlreadyRandomized(f"{subject} was randomized as number {r.randomization_number}; one allocation, ever")
    require_consent(consent_required, frozenset(subject_state.consents.values()), subject)
    screening = subject_state.latest_screening
    if screening is None:
        raise NotScreened(f"{subject} has not been screened")
    if not screening.eligible:
        failed = ", ".join(screening.reasons)
        raise NotEligible(
            f"{subject} is not eligible at screening {screening.screening_number} (criteria not passed: {failed})"
        )
    if allocations.total >= protocol.enrollment_cap:
        raise EnrollmentFull(f"all {protocol.enrollment_cap} places of the trial are allocated")
    slot = allocation_list.slot(site, allocations.used_in(site) + 1)
    if slot is None:
        raise AllocationListExhausted(f"the allocation list for stratum {site} is used up")
    return [
        SubjectRandomized(
            arm=slot.arm,
            randomization_number=allocations.total + 1,
            stratum=slot.stratum,
            stratum_slot=slot.slot,
            list_version=allocation_list.parameters.list_version,
            list_commitment=allocation_list.commitment,
        )
    ]


def may_close_enrollment(randomized: SubjectRandomized, protocol: ProtocolDefinition) -> bool:
    """Whether this allocation can be the one that fills the trial's last place: numbers are given one after
    another, trial-wide (a decision on the whole randomization history), so one below the cap leaves a place free
    and the allocation that takes the last place, later, closes enrollment. Known from the fact alone: no history
    is read for the others."""
    return randomized.randomization_number >= protocol.enrollment_cap


def close_enrollment(
    allocations: Allocations, *, already_closed: bool, protocol: ProtocolDefinition
) -> list[DomainEvent]:
    """Enrollment closes once every place of the trial is allocated: nothing before the cap, nothing twice.

    Invalidated randomizations still count: their places are never given again."""
    if already_closed or allocations.total < protocol.enrollment_cap:
        return []
    return [EnrollmentClosed(randomized=allocations.total, cap=protocol.enrollment_cap)]


def invalidate(
    subject_state: SubjectState,
    form: RandomizationInvalidationForm,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
) -> list[DomainEvent]:
    check_site(protocol, site, subject)
    if not form.reason.strip():
        raise ReasonRequired("say why the randomization is invalid", field="reason")
    randomized = subject_state.randomized
    if randomized is None:
        raise NotRandomized(f"{subject} has no randomization to invalidate")
    if subject_state.invalidated:
        raise AlreadyInvalidated(f"randomization {randomized.randomization_number} is already invalidated")
    return [RandomizationInvalidated(randomization_number=randomized.randomization_number, arm=randomized.arm)]

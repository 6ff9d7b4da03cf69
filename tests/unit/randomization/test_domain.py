"""Given a subject's history and the trial's allocations, when randomizing, then the allocation or the rule."""

from collections import Counter
from dataclasses import replace
from datetime import date
from decimal import Decimal

import hypothesis
import pytest
from hypothesis import strategies as st

from services.randomization import domain
from services.randomization.allocation import ListParameters, SeedKind, generate
from shared.contracts import rules
from shared.contracts.amendments import ReconsentRequired
from shared.contracts.events import (
    ConsentRecorded,
    ConsentWithdrawn,
    CriterionResult,
    DomainEvent,
    EnrollmentClosed,
    RandomizationInvalidated,
    SubjectRandomized,
    SubjectScreened,
)
from shared.contracts.forms import RandomizationInvalidationForm, ScreeningForm
from shared.contracts.protocol import load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.unit.history import given

PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
LIST = generate(
    ListParameters("NCT06646146", 1, ("FG_HT", "HT"), ("NFH", "GZ2", "SZ3"), 40, (2, 4, 6), SeedKind.TEST),
    bytes(range(32)),
)
CONSENT = ConsentRecorded(
    consent_form_version="1.0",
    signed_on=date(2026, 11, 1),
    obtained_by="inv-01",
    signed_by_subject=True,
    signed_by_representative=False,
)
FORM = ScreeningForm(
    screening_date=date(2026, 11, 2), age_years=30, sex="female", height_cm=Decimal(160), weight_kg=Decimal(55)
)


def screened(eligible: bool) -> SubjectScreened:
    return SubjectScreened(
        screening_number=1,
        screening_date=date(2026, 11, 2),
        eligible=eligible,
        bmi=Decimal("21.5"),
        criteria=(),
        form=FORM,
    )


def allocated(number: int, stratum: str = "NFH") -> SubjectRandomized:
    slot = LIST.slot(stratum, number)
    assert slot is not None
    return SubjectRandomized(
        arm=slot.arm,
        randomization_number=number,
        stratum=stratum,
        stratum_slot=number,
        list_version=1,
        list_commitment=LIST.commitment,
    )


def randomize(history: list[DomainEvent], allocations: list[SubjectRandomized] | None = None) -> list[DomainEvent]:
    state = domain.replay(given(history))
    return domain.randomize(
        state, domain.Allocations.of(allocations or []), LIST, protocol=PROTOCOL, site="NFH", subject="NFH-007"
    )


def test_an_eligible_consented_subject_gets_the_next_slot_of_its_stratum_and_the_next_number() -> None:
    before = [allocated(1, "NFH"), allocated(1, "GZ2"), allocated(2, "NFH")]
    [event] = randomize([CONSENT, screened(True)], before)
    assert isinstance(event, SubjectRandomized)
    slot = LIST.slot("NFH", 3)
    assert slot is not None
    assert (event.arm, event.randomization_number, event.stratum, event.stratum_slot) == (slot.arm, 4, "NFH", 3)
    assert event.list_commitment == LIST.commitment


@pytest.mark.parametrize(
    ("history", "error"),
    [
        ([], rules.NotConsented),
        ([CONSENT], domain.NotScreened),
        ([CONSENT, screened(False)], domain.NotEligible),
        (
            [CONSENT, screened(True), ConsentWithdrawn(withdrawn_on=date(2026, 11, 3), recorded_by="x")],
            rules.ConsentWasWithdrawn,
        ),
        ([CONSENT, screened(True), allocated(1)], rules.AlreadyRandomized),
    ],
)
def test_each_refusal_names_its_rule(history: list[DomainEvent], error: type[Exception]) -> None:
    with pytest.raises(error):
        randomize(history)


def test_a_revised_consent_form_in_force_is_signed_before_randomization() -> None:
    state = domain.replay(given([CONSENT, screened(True)]))
    with pytest.raises(ReconsentRequired, match=r"version 2\.0"):
        domain.randomize(
            state, domain.Allocations.of([]), LIST, protocol=PROTOCOL, site="NFH", subject="NFH-007",
            consent_required="2.0",
        )  # fmt: skip
    revised = CONSENT.model_copy(update={"consent_form_version": "2.0"})
    state = domain.replay(given([CONSENT, screened(True), revised]))
    [event] = domain.randomize(
        state, domain.Allocations.of([]), LIST, protocol=PROTOCOL, site="NFH", subject="NFH-007",
        consent_required="2.0",
    )  # fmt: skip
    assert isinstance(event, SubjectRandomized)


def test_the_latest_screening_decides() -> None:
    assert randomize([CONSENT, screened(False), screened(True)])
    with pytest.raises(domain.NotEligible):
        randomize([CONSENT, screened(True), screened(False)])


def test_the_41st_subject_is_refused_because_enrollment_is_full() -> None:
    full = [allocated(n % 13 + 1, ("NFH", "GZ2", "SZ3")[n % 3]) for n in range(40)]
    with pytest.raises(domain.EnrollmentFull) as refused:
        randomize([CONSENT, screened(True)], full)
    assert refused.value.rule == "enrollment.cap"


def test_an_exhausted_stratum_is_refused_not_silently_skipped() -> None:
    short = generate(
        ListParameters("NCT06646146", 1, ("FG_HT", "HT"), ("NFH",), 2, (2,), SeedKind.TEST), bytes(range(32))
    )
    state = domain.replay(given([CONSENT, screened(True)]))
    with pytest.raises(domain.AllocationListExhausted):
        domain.randomize(
            state,
            domain.Allocations.of([allocated(1), allocated(2)]),
            short,
            protocol=PROTOCOL,
            site="NFH",
            subject="NFH-007",
        )


def test_invalidation_marks_the_allocation_once_and_needs_a_reason() -> None:
    history: list[DomainEvent] = [CONSENT, screened(True), allocated(1)]

    def invalidate(events: list[DomainEvent], reason: str = "wrong subject randomized") -> list[DomainEvent]:
        state = domain.replay(given(events))
        return domain.invalidate(
            state,
            RandomizationInvalidationForm.model_construct(reason=reason),
            protocol=PROTOCOL,
            site="NFH",
            subject="NFH-007",
        )

    [event] = invalidate(history)
    assert event == RandomizationInvalidated(randomization_number=1, arm=allocated(1).arm)
    with pytest.raises(domain.AlreadyInvalidated):
        invalidate([*history, event])
    with pytest.raises(rules.NotRandomized):
        invalidate([CONSENT])
    with pytest.raises(rules.ReasonRequired):
        invalidate(history, reason="   ")
    # Still randomized: one allocation, ever, even after invalidation.
    with pytest.raises(rules.AlreadyRandomized):
        randomize([*history, event])


def test_enrollment_closes_at_the_cap_once() -> None:
    below = domain.Allocations(total=PROTOCOL.enrollment_cap - 1)
    at_cap = domain.Allocations(total=PROTOCOL.enrollment_cap)
    assert domain.close_enrollment(below, already_closed=False, protocol=PROTOCOL) == []
    assert domain.close_enrollment(at_cap, already_closed=False, protocol=PROTOCOL) == [
        EnrollmentClosed(randomized=PROTOCOL.enrollment_cap, cap=PROTOCOL.enrollment_cap)
    ]
    assert domain.close_enrollment(at_cap, already_closed=True, protocol=PROTOCOL) == []


def test_only_the_allocation_taking_the_last_place_or_one_after_it_may_close_enrollment() -> None:
    cap = PROTOCOL.enrollment_cap
    numbered = [allocated(1).model_copy(update={"randomization_number": n}) for n in (1, cap - 1, cap)]
    assert [domain.may_close_enrollment(r, PROTOCOL) for r in numbered] == [False, False, True]


@hypothesis.given(
    strata=st.lists(st.sampled_from(["NFH", "GZ2", "SZ3"]), max_size=15),
    lengths=st.lists(st.integers(0, 15), max_size=8),
)
def test_the_tally_of_any_history_shown_in_any_order_equals_the_count_from_scratch(
    strata: list[str], lengths: list[int]
) -> None:
    slots: Counter[str] = Counter()
    randomized = []
    for stratum in strata:
        slots[stratum] += 1
        randomized.append(allocated(slots[stratum], stratum))
    history = [replace(e, sequence=i + 1) for i, e in enumerate(given(randomized))]
    tally = domain.AllocationTally()
    for length in [*lengths, len(history)]:  # growing, shrinking (a retry's) and whole
        shown = history[:length]
        assert tally.of(shown) == domain.Allocations.of(
            [e.data for e in shown if isinstance(e.data, SubjectRandomized)]
        )


def test_a_refusal_for_eligibility_names_the_criteria_in_words_not_a_python_tuple() -> None:
    waiting = CriterionResult(code="EX11", kind="exclusion", outcome="missing", value=None, rule="Judged unsuitable.")
    not_judged = screened(False).model_copy(update={"criteria": (waiting,)})
    with pytest.raises(domain.NotEligible) as refused:
        randomize([CONSENT, not_judged])
    assert "(criteria not passed: EX11)" in str(refused.value) and "('" not in str(refused.value)

"""Windows at every edge, deviations per arm, missed visits with a fixed clock, corrections — pure rules."""

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4, uuid5

import pytest

from services.visits import domain
from shared.contracts import rules
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    DomainEvent,
    EventEnvelope,
    GraftProcedurePerformed,
    ProtocolDeviationRecorded,
    RecordedEvent,
    SubjectCompletedStudy,
    SubjectRandomized,
    SubjectScreened,
    SubjectWithdrawn,
    VisitCompleted,
    VisitMissed,
)
from shared.contracts.forms import ProcedureForm, ScreeningForm, VisitRecord, WithdrawalForm
from shared.contracts.protocol import load_protocol
from shared.contracts.schedule import visit_windows
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.unit.history import META, recorded

PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
RANDOMIZED_ON = date(2026, 1, 10)
SURGERY = date(2026, 1, 20)
TODAY = date(2027, 6, 1)
FAT_GRAFT = {"fat_harvest_site": "abdomen", "harvested_fat_ml": "60", "ecm_svf_gel_ml": "8.5"}
PROCEDURE = ProcedureForm(
    procedure_date=SURGERY,
    surgeon="sur-01",
    anaesthesia="local_with_sedation",
    recipient_area_cm2=Decimal("24.5"),
    follicular_units=1200,
    donor_site="occipital",
    fat_graft=FAT_GRAFT,
)


def randomized(arm: str = "FG_HT") -> RecordedEvent:
    return recorded(
        SubjectRandomized(
            arm=arm, randomization_number=1, stratum="NFH", stratum_slot=1, list_version=1, list_commitment="0" * 64
        )
    )


def ids(code: str) -> UUID:
    return uuid5(UUID(int=0), code)


def procedure(history: list[RecordedEvent], form: ProcedureForm = PROCEDURE) -> list[DomainEvent]:
    return domain.record_procedure(
        domain.replay(history), form, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY, deviation_ids=ids
    )


def visit(history: list[RecordedEvent], code: str, day: date, **changes: object) -> list[DomainEvent]:
    record = VisitRecord.model_validate(
        {
            "visit": code,
            "visit_date": day,
            "hair_density_per_cm2": "38.5",
            "grafts_surviving": 900,
            "satisfaction": 8,
            "mlossi": 2,
            "losdi": 5,
            "photo_reference": "photos/NFH-001/M6.jpg",
        }
        | changes
    )
    return domain.record_visit(
        domain.replay(history), record, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY, deviation_ids=ids
    )


def operated(arm: str = "FG_HT") -> list[RecordedEvent]:
    history = [randomized(arm)]
    [surgery, *_] = procedure(
        history, PROCEDURE if arm == "FG_HT" else PROCEDURE.model_copy(update={"fat_graft": None})
    )
    return [*history, recorded(surgery, SURGERY)]


def deviations(events: list[DomainEvent]) -> list[ProtocolDeviationRecorded]:
    return [e for e in events if isinstance(e, ProtocolDeviationRecorded)]


def codes(events: list[DomainEvent]) -> list[str]:
    return [e.code for e in deviations(events)]


@pytest.mark.parametrize(
    ("code", "first", "last"),
    [("W1", 5, 9), ("M1", 23, 37), ("M3", 76, 104), ("M6", 166, 194), ("M12", 335, 395)],
)
def test_each_window_is_its_target_day_plus_minus_its_spread_both_ends_included(
    code: str, first: int, last: int
) -> None:
    window = visit_windows(SURGERY, PROTOCOL.schedule)[code]
    assert (window.start, window.end) == (SURGERY + timedelta(days=first), SURGERY + timedelta(days=last))
    assert window.contains(window.start) and window.contains(window.end)
    assert not window.contains(window.start - timedelta(days=1)) and not window.contains(window.end + timedelta(days=1))


def test_windows_count_days_across_a_leap_year() -> None:
    windows = visit_windows(date(2028, 2, 29), PROTOCOL.schedule)
    assert windows["M12"].target == date(2029, 2, 28)  # 365 days, not "the same date next year"
    assert windows["W1"].target == date(2028, 3, 7)


@pytest.mark.parametrize(("day", "in_window"), [(4, False), (5, True), (9, True), (10, False)])
def test_w1_out_of_its_window_is_recorded_with_a_deviation(day: int, in_window: bool) -> None:
    events = visit(operated(), "W1", SURGERY + timedelta(days=day))
    assert isinstance(events[0], VisitCompleted) and events[0].in_window is in_window
    assert codes(events) == ([] if in_window else ["VISIT_OUT_OF_WINDOW_W1"])
    assert all(e.occurred_on == SURGERY + timedelta(days=day) for e in deviations(events)), "the visit's day"


def test_the_visit_records_survival_against_the_grafts_transplanted() -> None:
    [recorded_visit] = visit(operated(), "M6", SURGERY + timedelta(days=180))
    assert isinstance(recorded_visit, VisitCompleted)
    assert recorded_visit.follicle_survival_pct == Decimal("75.0") and recorded_visit.study_day == 180
    with pytest.raises(domain.MoreSurvivingThanTransplanted):
        visit(operated(), "M6", SURGERY + timedelta(days=180), grafts_surviving=1201)


@pytest.mark.parametrize(
    ("arm", "graft", "expected"),
    [
        ("FG_HT", True, []),
        ("FG_HT", False, ["FAT_GRAFT_MISSING_IN_FG_HT"]),
        ("HT", False, []),
        ("HT", True, ["FAT_GRAFT_IN_HT_ARM"]),
    ],
)
def test_a_fat_graft_record_that_does_not_match_the_arm_is_a_deviation(
    arm: str, graft: bool, expected: list[str]
) -> None:
    form = PROCEDURE if graft else PROCEDURE.model_copy(update={"fat_graft": None})
    events = procedure([randomized(arm)], form)
    assert isinstance(events[0], GraftProcedurePerformed)
    assert codes(events) == expected
    assert all(e.occurred_on == form.procedure_date for e in deviations(events)), "the surgery's day"


@pytest.mark.parametrize(("days", "late"), [(30, False), (31, True)])
def test_surgery_more_than_30_days_after_randomization_is_a_deviation(days: int, late: bool) -> None:
    form = PROCEDURE.model_copy(update={"procedure_date": RANDOMIZED_ON + timedelta(days=days)})
    events = procedure([randomized()], form)
    assert codes(events) == (["SURGERY_AFTER_WINDOW"] if late else [])
    assert all(e.occurred_on == form.procedure_date for e in deviations(events))


def test_surgery_needs_a_randomization_before_it() -> None:
    with pytest.raises(rules.NotRandomized):
        procedure([])
    with pytest.raises(domain.ProcedureBeforeRandomization):
        procedure([randomized()], PROCEDURE.model_copy(update={"procedure_date": RANDOMIZED_ON - timedelta(days=1)}))


def test_a_second_surgery_record_is_refused_unless_it_corrects_the_current_one_with_a_reason() -> None:
    history = operated()
    with pytest.raises(domain.ProcedureAlreadyRecorded):
        procedure(history)
    current = history[-1].envelope.id
    with pytest.raises(rules.StaleCorrection) as stale:
        procedure(history, PROCEDURE.model_copy(update={"supersedes": uuid4(), "reason": "typo in units"}))
    assert stale.value.current_version == current and stale.value.kind is rules.Refusal.STALE
    with pytest.raises(rules.ReasonRequired):
        procedure(history, PROCEDURE.model_copy(update={"supersedes": current}))
    corrected = procedure(history, PROCEDURE.model_copy(update={"supersedes": current, "reason": "FU miscounted"}))
    assert isinstance(corrected[0], GraftProcedurePerformed) and corrected[0].supersedes == current


def test_a_visit_before_surgery_or_twice_or_unknown_is_refused() -> None:
    with pytest.raises(domain.VisitBeforeSurgery):
        visit([randomized()], "W1", SURGERY + timedelta(days=7))
    with pytest.raises(domain.VisitBeforeSurgery):
        visit(operated(), "W1", SURGERY - timedelta(days=1))
    with pytest.raises(domain.UnknownVisit):
        visit(operated(), "M9", SURGERY + timedelta(days=270))
    history = operated()
    [w1] = visit(history, "W1", SURGERY + timedelta(days=7))
    with pytest.raises(domain.VisitAlreadyRecorded):
        visit([*history, recorded(w1)], "W1", SURGERY + timedelta(days=8))


def test_the_end_of_study_visit_completes_the_study() -> None:
    events = visit(operated(), "M12", SURGERY + timedelta(days=365))
    assert [type(e) for e in events] == [VisitCompleted, SubjectCompletedStudy]


def test_nothing_but_safety_information_is_taken_for_a_withdrawn_subject() -> None:
    form = WithdrawalForm(withdrawn_on=date(2026, 3, 1), reason_category="subject_decision", decided_by="subject")
    history = operated()
    [withdrawn] = domain.withdraw(
        domain.replay(history), form, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY
    )
    assert isinstance(withdrawn, SubjectWithdrawn)
    after = [*history, recorded(withdrawn)]
    with pytest.raises(rules.SubjectIsWithdrawn):
        visit(after, "M3", SURGERY + timedelta(days=90))
    with pytest.raises(rules.SubjectIsWithdrawn):
        domain.withdraw(domain.replay(after), form, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY)
    # Windows that closed while the subject took part were missed; the later visits are not expected.
    missed = domain.missed_visits(domain.replay(after), protocol=PROTOCOL, site="NFH", today=TODAY)
    assert [m.visit for m in missed if isinstance(m, VisitMissed)] == ["W1", "M1"]


def test_after_a_death_only_the_windows_closed_before_it_are_missed() -> None:
    death = AdverseEventReported(
        ae_id=uuid4(),
        term="Cardiac arrest",
        onset_date=SURGERY + timedelta(days=30),
        site_aware_at=datetime(2026, 3, 2, 1, tzinfo=UTC),
        grade=5,
        seriousness=("death",),
        serious=True,
        relationship={"fat_graft": "not_related", "hair_transplantation": "not_related"},
        action_taken="none",
        outcome="fatal",
    )
    history = [*operated(), recorded(death)]
    missed = domain.missed_visits(domain.replay(history), protocol=PROTOCOL, site="NFH", today=TODAY)
    assert [m.visit for m in missed if isinstance(m, VisitMissed)] == ["W1"]


def test_a_death_learned_at_a_follow_up_ends_participation_on_the_sites_date_of_it() -> None:
    ae_id = uuid4()
    reported = AdverseEventReported(
        ae_id=ae_id,
        term="Sepsis",
        onset_date=SURGERY + timedelta(days=20),
        site_aware_at=datetime(2026, 2, 10, 1, tzinfo=UTC),
        grade=4,
        seriousness=("hospitalization_or_prolongation",),
        serious=True,
        relationship={"fat_graft": "possible", "hair_transplantation": "possible"},
        action_taken="hospitalized",
        outcome="not_recovered",
    )
    # 20:00 UTC on 25 Feb is 26 Feb in Guangzhou, the day M1's window (ending 26 Feb) is still open.
    fatal = AdverseEventUpdated(
        ae_id=ae_id,
        site_aware_at=datetime(2026, 2, 25, 20, tzinfo=UTC),
        grade=5,
        seriousness=("death",),
        outcome="fatal",
        serious=True,
    )
    state = domain.replay([*operated(), recorded(reported), recorded(fatal)])
    assert domain.end_of_participation(state, protocol=PROTOCOL, site="NFH") == date(2026, 2, 26)
    missed = domain.missed_visits(state, protocol=PROTOCOL, site="NFH", today=TODAY)
    assert [m.visit for m in missed if isinstance(m, VisitMissed)] == ["W1"]


@pytest.mark.parametrize(
    ("days_before_surgery", "deviation"), [(31, True), (30, False), (1, False), (0, True), (-1, True)]
)
def test_screening_must_fall_on_day_minus_30_to_minus_1_before_surgery(
    days_before_surgery: int, deviation: bool
) -> None:
    on = SURGERY - timedelta(days=days_before_surgery)
    form = ScreeningForm(screening_date=on, age_years=40, sex="male", height_cm=Decimal(175), weight_kg=Decimal(70))
    screened = SubjectScreened(
        screening_number=1, screening_date=on, eligible=True, bmi=Decimal("22.9"), criteria=(), form=form
    )
    events = procedure([recorded(screened), randomized()])
    codes = [e.code for e in events if isinstance(e, ProtocolDeviationRecorded)]
    assert (domain.SCREENING_OUT_OF_WINDOW in codes) is deviation


def test_missed_visits_are_those_whose_window_closed_before_today_without_a_record() -> None:
    history = operated()
    w1_end = SURGERY + timedelta(days=9)
    assert domain.missed_visits(domain.replay(history), protocol=PROTOCOL, site="NFH", today=w1_end) == []
    [missed] = domain.missed_visits(
        domain.replay(history), protocol=PROTOCOL, site="NFH", today=w1_end + timedelta(days=1)
    )
    assert isinstance(missed, VisitMissed) and missed.visit == "W1" and missed.window_end == w1_end
    after = [*history, recorded(missed)]
    assert (
        domain.missed_visits(domain.replay(after), protocol=PROTOCOL, site="NFH", today=w1_end + timedelta(days=1))
        == []
    )
    [w1] = visit(history, "W1", SURGERY + timedelta(days=7))
    assert (
        domain.missed_visits(
            domain.replay([*history, recorded(w1)]), protocol=PROTOCOL, site="NFH", today=w1_end + timedelta(days=2)
        )
        == []
    )


def test_a_visit_is_corrected_by_a_new_record_naming_the_one_it_supersedes_with_a_reason() -> None:
    history = operated()
    [m6] = visit(history, "M6", SURGERY + timedelta(days=180))
    after = [*history, recorded(m6)]
    current = after[-1].envelope.id
    with pytest.raises(rules.ReasonRequired):
        visit(after, "M6", SURGERY + timedelta(days=180), supersedes=current)
    [corrected] = visit(
        after, "M6", SURGERY + timedelta(days=180), supersedes=current, reason="density misread", grafts_surviving=950
    )
    assert isinstance(corrected, VisitCompleted) and corrected.supersedes == current
    assert corrected.follicle_survival_pct == Decimal("79.2")
    with pytest.raises(ValueError, match="reason"):
        EventEnvelope.wrap(corrected, META, event_id=uuid4(), time=datetime.now(UTC))
    why = dataclasses.replace(META, reason="density misread")
    assert EventEnvelope.wrap(corrected, why, event_id=uuid4(), time=datetime.now(UTC)).reason == "density misread"


def test_a_withdrawal_is_corrected_on_its_current_record_with_a_reason() -> None:
    form = WithdrawalForm(withdrawn_on=date(2026, 3, 1), reason_category="subject_decision", decided_by="subject")
    history = operated()
    [withdrawn] = domain.withdraw(
        domain.replay(history), form, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY
    )
    after = [*history, recorded(withdrawn)]
    first = after[-1].envelope.id
    correction = form.model_copy(
        update={"withdrawn_on": date(2026, 2, 27), "supersedes": first, "reason": "date taken from the letter"}
    )
    [corrected] = domain.withdraw(
        domain.replay(after), correction, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY
    )
    assert isinstance(corrected, SubjectWithdrawn)
    assert (corrected.withdrawn_on, corrected.supersedes) == (date(2026, 2, 27), first)
    again = [*after, recorded(corrected)]
    with pytest.raises(rules.StaleCorrection) as stale:
        domain.withdraw(domain.replay(again), correction, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY)
    assert stale.value.current_version == again[-1].envelope.id
    with pytest.raises(rules.ReasonRequired):
        domain.withdraw(
            domain.replay(again),
            correction.model_copy(update={"supersedes": again[-1].envelope.id, "reason": None}),
            protocol=PROTOCOL,
            site="NFH",
            subject="NFH-001",
            today=TODAY,
        )

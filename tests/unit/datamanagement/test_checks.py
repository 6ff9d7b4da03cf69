"""Each edit check holds where its rule does and not at its boundary; an unknown check stops start-up."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.datamanagement import checks, domain
from shared.contracts.coding import DRUG_COLUMNS, TermDictionary
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    ConsentRecorded,
    CriterionKind,
    CriterionOutcome,
    CriterionResult,
    DomainEvent,
    EventEnvelope,
    FormRecorded,
    GraftProcedurePerformed,
    RecordedEvent,
    SubjectRandomized,
    SubjectScreened,
    VisitCompleted,
)
from shared.contracts.forms import ELIGIBLE_EXAMPLE, ScreeningForm
from shared.contracts.protocol import EditCheck, InvalidProtocolDefinition, load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.unit.history import META

PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
CHECKS = {c.code: c for c in checks.checks_of(PROTOCOL)}
RANDOMIZED_AT = datetime(2026, 1, 10, 2, tzinfo=UTC)  # 10:00 in Guangzhou
SURGERY = date(2026, 1, 20)
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def at(event: DomainEvent, when: datetime = RANDOMIZED_AT) -> RecordedEvent:
    return RecordedEvent(1, "", EventEnvelope.wrap(event, META, event_id=uuid4(), time=when))


DRUGS = TermDictionary.load(Path(__file__).parents[2] / "data" / "drug-dictionary.csv", DRUG_COLUMNS)


def found(*history: RecordedEvent, code: str, now: datetime = NOW) -> list[domain.Finding]:
    book = domain.replay(history)
    return checks.findings(book, (CHECKS[code],), checks.CheckContext(PROTOCOL, "NFH", now, DRUGS))


def consent(on: date = date(2026, 1, 5)) -> RecordedEvent:
    return at(
        ConsentRecorded(
            consent_form_version="1.0",
            signed_on=on,
            obtained_by="inv-01",
            signed_by_subject=True,
            signed_by_representative=False,
        )
    )


def randomized() -> RecordedEvent:
    return at(
        SubjectRandomized(
            arm="HT", randomization_number=1, stratum="NFH", stratum_slot=1, list_version=1, list_commitment="0" * 64
        )
    )


def operated(on: date = SURGERY, units: int = 1000) -> RecordedEvent:
    return at(
        GraftProcedurePerformed(
            procedure_date=on,
            surgeon="s",
            anaesthesia="local",
            recipient_area_cm2=Decimal(20),
            follicular_units=units,
            donor_site="occipital",
            fat_graft=None,
        )
    )


def visit(code: str, day: int, density: str = "40", surviving: int = 900) -> RecordedEvent:
    on = SURGERY + timedelta(days=day)
    return at(
        VisitCompleted(
            visit=code,
            visit_date=on,
            study_day=day,
            target_date=on,
            window_start=on,
            window_end=on,
            in_window=True,
            hair_density_per_cm2=Decimal(density),
            grafts_surviving=surviving,
            follicle_survival_pct=None,
            satisfaction=8,
            mlossi=1,
            losdi=1,
            photo_reference=None,
        )
    )


def adverse_event(onset: date, *, serious: bool = False, ae_id: UUID | None = None) -> RecordedEvent:
    return at(
        AdverseEventReported(
            ae_id=ae_id or uuid4(),
            term="Scalp necrosis",
            onset_date=onset,
            site_aware_at=datetime(onset.year, onset.month, onset.day, 12, tzinfo=UTC),
            grade=3,
            seriousness=("hospitalization_or_prolongation",) if serious else (),
            serious=serious,
            relationship={"fat_graft": "not_related", "hair_transplantation": "possible"},
            action_taken="hospitalized" if serious else "none",
            outcome="recovering",
        ),
        datetime(onset.year, onset.month, onset.day, 13, tzinfo=UTC),
    )


def test_an_adverse_event_with_onset_before_consent_is_queried_on_its_onset() -> None:
    [finding] = found(consent(), adverse_event(date(2026, 1, 4)), code="AE_ONSET_BEFORE_CONSENT")
    assert (finding.field, finding.check) == ("onset_date", "AE_ONSET_BEFORE_CONSENT")
    assert "2026-01-04" in finding.text and "2026-01-05" in finding.text
    assert found(consent(), adverse_event(date(2026, 1, 5)), code="AE_ONSET_BEFORE_CONSENT") == []


def test_more_grafts_surviving_than_transplanted_is_queried_on_the_visit() -> None:
    [finding] = found(operated(units=1000), visit("M1", 30, surviving=1001), code="GRAFTS_SURVIVING_OVER_TRANSPLANTED")
    assert (finding.form, finding.field) == ("visit-M1", "grafts_surviving")
    assert found(operated(units=1000), visit("M1", 30, surviving=1000), code="GRAFTS_SURVIVING_OVER_TRANSPLANTED") == []


def test_hair_density_down_by_more_than_half_since_the_previous_visit_is_queried() -> None:
    history = (operated(), visit("W1", 7, "40"), visit("M1", 30, "19.9"), visit("M3", 90, "10"))
    assert [(f.form, f.field) for f in found(*history, code="HAIR_DENSITY_DROP")] == [
        ("visit-M1", "hair_density_per_cm2")
    ], "exactly half (19.9 → 10 is 50.3 %) is not more than half"
    assert found(operated(), visit("W1", 7, "40"), visit("M1", 30, "20"), code="HAIR_DENSITY_DROP") == []


def test_a_visit_out_of_the_window_of_the_surgery_as_it_stands_is_queried() -> None:
    assert found(operated(), visit("W1", 9), code="VISIT_OUT_OF_WINDOW") == []
    [finding] = found(operated(), visit("W1", 10), code="VISIT_OUT_OF_WINDOW")
    assert (finding.form, finding.field) == ("visit-W1", "visit_date")


def test_surgery_after_the_day_0_window_is_queried_on_its_date() -> None:
    deadline = date(2026, 1, 10) + timedelta(days=PROTOCOL.schedule.surgery_within_days_of_randomization)
    assert found(randomized(), operated(deadline), code="SURGERY_AFTER_WINDOW") == []
    [finding] = found(randomized(), operated(deadline + timedelta(days=1)), code="SURGERY_AFTER_WINDOW")
    assert (finding.form, finding.field) == ("procedure", "procedure_date")


def test_a_serious_adverse_event_without_follow_up_within_seven_days_is_queried_until_one_arrives() -> None:
    ae_id = uuid4()
    report = adverse_event(date(2026, 2, 1), serious=True, ae_id=ae_id)
    reported_at = report.envelope.time
    code = "SAE_FOLLOW_UP_OVERDUE"
    assert found(consent(), report, code=code, now=reported_at + timedelta(days=7)) == []
    [finding] = found(consent(), report, code=code, now=reported_at + timedelta(days=7, seconds=1))
    assert finding.form == f"ae-{ae_id}" and finding.field is None
    follow_up = at(
        AdverseEventUpdated(ae_id=ae_id, site_aware_at=reported_at, outcome="recovered", serious=True),
        reported_at + timedelta(days=9),
    )
    assert found(consent(), report, follow_up, code=code, now=reported_at + timedelta(days=10)) == []
    minor = adverse_event(date(2026, 2, 1))
    assert found(consent(), minor, code=code, now=reported_at + timedelta(days=30)) == []


def test_a_randomized_subject_whose_screening_is_not_eligible_is_queried() -> None:
    form = ScreeningForm.model_validate(ELIGIBLE_EXAMPLE)
    screening = SubjectScreened(
        screening_number=1, screening_date=form.screening_date, eligible=True, bmi=None, criteria=(), form=form
    )
    assert found(at(screening), randomized(), code="RANDOMIZED_INELIGIBLE") == []
    failed = at(screening.model_copy(update={"eligible": False}))
    assert found(failed, code="RANDOMIZED_INELIGIBLE") == [], "a screen failure not randomized is no finding"
    [finding] = found(failed, randomized(), code="RANDOMIZED_INELIGIBLE")
    assert finding.form == "screening"


SCREENED_ON = date(2026, 1, 8)


def screened(on: date = SCREENED_ON) -> RecordedEvent:
    form = ScreeningForm.model_validate(ELIGIBLE_EXAMPLE | {"screening_date": on.isoformat()})
    return at(SubjectScreened(screening_number=1, screening_date=on, eligible=True, bmi=None, criteria=(), form=form))


def medication(entry: UUID | None = None, **answers: Any) -> RecordedEvent:
    given = {"route": "oral", "indication": "Scleroderma", "start_date": "2026-01-15", "ongoing": True} | answers
    return at(
        FormRecorded(form="concomitant-medication", entry=entry or uuid4(), answers=given, dictionary_version="1.0")
    )


def on_trial(*entries: RecordedEvent) -> tuple[RecordedEvent, ...]:
    return (consent(), screened(), randomized(), *entries)


def test_a_vasodilator_or_immunosuppressant_started_from_the_ex06_look_back_on_is_a_deviation() -> None:
    code = "PROHIBITED_VASODILATOR_IMMUNOSUPPRESSANT"
    entry = uuid4()
    [finding] = found(*on_trial(medication(entry, medication="methotrexate", start_date="2026-02-01")), code=code)
    assert (finding.form, finding.field, finding.deviation) == (f"concomitant-medication-{entry}", "start_date", True)
    assert finding.occurred_on == date(2026, 2, 1) and "Other immunosuppressants" in finding.text
    # Three calendar months before the screening of 8 January is 8 October: that day is in, the day before is not.
    assert found(*on_trial(medication(medication="Pentoxifylline", start_date="2025-10-08")), code=code) != []
    assert found(*on_trial(medication(medication="Pentoxifylline", start_date="2025-10-07")), code=code) == []
    assert found(*on_trial(medication(medication="Ibuprofen")), code=code) == [], "another class"
    assert found(*on_trial(medication(medication="Vasodilator X")), code=code) == [], "uncoded: never a guess"
    assert found(consent(), screened(), medication(medication="Methotrexate"), code=code) == [], "not randomized"


def test_a_topical_medication_on_the_surgical_area_within_14_days_before_the_surgery_is_a_deviation() -> None:
    code = "TOPICAL_ON_SURGICAL_AREA_BEFORE_SURGERY"
    ointment: dict[str, Any] = {"medication": "Mometasone cream", "route": "topical", "on_surgical_area": True}
    ended_in = medication(**ointment, start_date="2025-12-01", ongoing=False, end_date="2026-01-06")
    [finding] = found(*on_trial(ended_in), operated(), code=code)
    assert (finding.field, finding.occurred_on) == ("on_surgical_area", date(2026, 1, 6))
    ended_before = medication(**ointment, start_date="2025-12-01", ongoing=False, end_date="2026-01-05")
    assert found(*on_trial(ended_before), operated(), code=code) == [], "ended 15 days before the surgery"
    elsewhere = medication(**ointment | {"on_surgical_area": False}, start_date="2026-01-15")
    assert found(*on_trial(elsewhere), operated(), code=code) == []
    assert found(*on_trial(medication(**ointment, start_date="2026-01-15")), code=code) == [], "no surgery yet"


@pytest.mark.parametrize(
    ("dose", "unit", "frequency", "held"),
    [
        ("5", "mg", "bid", False),  # exactly 10 mg a day does not exclude
        ("5.5", "mg", "bid", True),
        ("40", "mg", "qw", False),  # 5.7 mg a day
        ("25", "mg", "qod", True),  # 12.5 mg a day
        ("20", "mg", "prn", False),  # as needed: no daily dose to judge
        ("0.02", "g", "qd", False),  # another unit: not converted
    ],
)
def test_prednisolone_over_ten_mg_a_day_during_the_trial_is_a_deviation(
    dose: str, unit: str, frequency: str, held: bool
) -> None:
    entry = medication(medication="Prednisolone", dose=dose, dose_unit=unit, frequency=frequency)
    assert bool(found(*on_trial(entry), code="PREDNISOLONE_OVER_LIMIT")) is held


def test_an_adverse_event_treated_asks_for_the_medication_that_names_it_until_one_does() -> None:
    code = "AE_TREATMENT_WITHOUT_MEDICATION"
    ae_id = uuid4()
    treated = at(
        AdverseEventReported.model_validate(
            adverse_event(date(2026, 2, 1), ae_id=ae_id).data.model_dump() | {"action_taken": "treatment_given"}
        )
    )
    [finding] = found(*on_trial(treated), code=code)
    assert (finding.form, finding.field, finding.deviation) == (f"ae-{ae_id}", "action_taken", False)
    assert found(*on_trial(treated, medication(medication="Cefalexin", adverse_event=str(ae_id))), code=code) == []
    assert found(*on_trial(adverse_event(date(2026, 2, 1))), code=code) == [], "no treatment given"


def history(**answers: Any) -> RecordedEvent:
    return at(
        FormRecorded(
            form="medical-history",
            entry=uuid4(),
            answers={"condition": "Basal cell carcinoma", "ongoing": False} | answers,
            dictionary_version="1.0",
        )
    )


def screened_absent(*codes: str) -> RecordedEvent:
    """A screening that recorded each of these exclusions absent (not met)."""
    absent = tuple(
        CriterionResult(code=c, kind=CriterionKind.EXCLUSION, outcome=CriterionOutcome.NOT_MET, value=None, rule="")
        for c in codes
    )
    screening = screened().data
    assert isinstance(screening, SubjectScreened)
    return at(screening.model_copy(update={"criteria": absent}))


@pytest.mark.parametrize(
    ("answers", "held"),
    [
        ({"criterion": "ex09", "start_date": "2021-01-08"}, True),  # five years before 8 January 2026: in
        ({"criterion": "ex09", "start_date": "2021-01-07"}, False),
        ({"criterion": "ex02", "start_date": "2025-12-20", "ongoing": True}, True),
        ({"criterion": "ex02", "start_date": "2025-12-20", "end_date": "2026-01-08"}, True),
        ({"criterion": "ex02", "start_date": "2025-12-20", "end_date": "2026-01-07"}, False),  # over by then
        ({"criterion": "ex03", "ongoing": True}, True),
        ({"ongoing": True}, False),  # bears on no criterion
    ],
)
def test_a_medical_history_entry_that_contradicts_the_screening_is_queried(answers: dict[str, Any], held: bool) -> None:
    code = "HISTORY_AGAINST_SCREENING"
    findings = found(consent(), screened_absent("EX02", "EX03", "EX09"), history(**answers), code=code)
    assert bool(findings) is held
    if held:
        assert findings[0].field == "criterion" and answers["criterion"].upper() in findings[0].text
    # An exclusion the screening already found present (or did not judge) asks nothing more.
    assert found(consent(), screened_absent(), history(**answers), code=code) == []


def test_every_check_in_the_protocol_has_a_function_and_an_unknown_one_stops_start_up() -> None:
    assert set(CHECKS) == set(checks.CHECKS)
    amended = PROTOCOL.model_copy(
        update={"edit_checks": (*PROTOCOL.edit_checks, EditCheck(code="NO_SUCH", text="x", text_zh="x"))}
    )
    with pytest.raises(InvalidProtocolDefinition, match="NO_SUCH"):
        checks.checks_of(amended)

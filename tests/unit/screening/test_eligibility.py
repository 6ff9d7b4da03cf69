"""Every criterion at and around its boundary, and properties of the engine as a whole."""

import re
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.screening import eligibility
from services.screening.eligibility import Evaluation, bmi, evaluate
from shared.contracts.events import CriterionOutcome, CriterionResult
from shared.contracts.forms import BiopsyFindings, ScreeningForm, SerologyResults
from shared.contracts.protocol import Exclusion, Inclusion, load_protocol
from shared.contracts.schedule import months_before
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

RULES = load_protocol(DEFAULT_PROTOCOL_FILE).eligibility
SCREENING = date(2026, 8, 31)  # month-end: exercises the clamping of calendar arithmetic
MET, NOT_MET, MISSING = CriterionOutcome.MET, CriterionOutcome.NOT_MET, CriterionOutcome.MISSING
NEGATIVE = SerologyResults(hiv="negative", hbv="negative", hcv="negative", htlv="negative", syphilis="negative")

ELIGIBLE = ScreeningForm(
    screening_date=SCREENING,
    age_years=35,
    sex="female",
    height_cm=Decimal("160"),
    weight_kg=Decimal("55"),
    localized_scleroderma_symptoms=True,
    loscat_score=12,
    alopecia_secondary_to_localized_scleroderma=True,
    hair_loss_onset_date=date(2024, 1, 1),
    adequate_donor_hair=True,
    last_disease_activity_date=date(2025, 1, 1),
    biopsy=BiopsyFindings(
        inflammatory_cell_infiltration=False,
        follicle_orifices_absent=True,
        follicles_replaced_by_connective_tissue=True,
    ),
    fit_for_anaesthesia_and_surgery=True,
    willing_to_comply_with_follow_up=True,
    hair_loss_area_fraction=Fraction(1, 4),
    scalp_infection=False,
    contraindications=[],
    pregnant=False,
    breastfeeding=False,
    last_vasodilator_or_immunosuppressant_start="never",
    last_topical_ointment_on_surgical_area="never",
    serology=NEGATIVE,
    last_tumour_diagnosis="never",
    prednisolone_mg_per_day=Decimal("0"),
    investigator_judges_unsuitable=False,
)
CODES = [f"IN0{i}" for i in range(1, 10)] + [f"EX{i:02d}" for i in range(1, 12)]


def run(consent: str | None = "1.0", **changes: Any) -> Evaluation:
    form = ScreeningForm.model_validate(ELIGIBLE.model_dump() | changes)
    return evaluate(form, RULES, consent_form_version=consent)


def result(code: str, **changes: Any) -> CriterionResult:
    return next(c for c in run(**changes).criteria if c.code == code)


def test_a_subject_meeting_everything_is_eligible_with_every_criterion_explained() -> None:
    evaluation = run()
    assert evaluation.eligible
    assert [c.code for c in evaluation.criteria] == CODES
    assert all(c.outcome is (MET if c.code.startswith("IN") else NOT_MET) for c in evaluation.criteria)
    assert all(c.rule for c in evaluation.criteria)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 8, 31), 6, date(2026, 2, 28)),
        (date(2024, 3, 31), 1, date(2024, 2, 29)),
        (date(2024, 2, 29), 12, date(2023, 2, 28)),
        (date(2026, 1, 15), 3, date(2025, 10, 15)),
        (date(2026, 8, 31), 60, date(2021, 8, 31)),
    ],
)
def test_months_before_is_calendar_arithmetic_clamped_to_month_end(day: date, months: int, expected: date) -> None:
    assert months_before(day, months) == expected


@pytest.mark.parametrize(("age", "outcome"), [(17, NOT_MET), (18, MET), (59, MET), (60, NOT_MET)])
def test_in07_age_bounds_are_inclusive(age: int, outcome: CriterionOutcome) -> None:
    assert result("IN07", age_years=age).outcome is outcome


@pytest.mark.parametrize(
    ("height", "weight", "expected_bmi", "in06", "ex05"),
    [
        ("170", "49.1", "17.0", MET, NOT_MET),
        ("170", "48.9", "16.9", NOT_MET, MET),
        ("200", "67.8", "17.0", MET, NOT_MET),  # 16.95 rounds half-up to 17.0
        ("200", "67.7", "16.9", NOT_MET, MET),  # 16.925 rounds to 16.9
    ],
)
def test_in06_and_ex05_compare_bmi_rounded_half_up_to_one_decimal(
    height: str, weight: str, expected_bmi: str, in06: CriterionOutcome, ex05: CriterionOutcome
) -> None:
    changes = {"height_cm": Decimal(height), "weight_kg": Decimal(weight)}
    assert bmi(ScreeningForm.model_validate(ELIGIBLE.model_dump() | changes)) == Decimal(expected_bmi)
    assert (result("IN06", **changes).outcome, result("EX05", **changes).outcome) == (in06, ex05)
    assert result("IN06", **changes).value == f"BMI {expected_bmi}"


@pytest.mark.parametrize(("onset", "outcome"), [(date(2026, 2, 28), NOT_MET), (date(2026, 2, 27), MET)])
def test_in03_hair_loss_must_be_more_than_6_months_old(onset: date, outcome: CriterionOutcome) -> None:
    assert result("IN03", hair_loss_onset_date=onset).outcome is outcome


def test_in03_needs_adequate_donor_hair() -> None:
    assert result("IN03", adequate_donor_hair=False).outcome is NOT_MET
    assert result("IN03", adequate_donor_hair=None).outcome is MISSING


@pytest.mark.parametrize(("last", "outcome"), [(date(2025, 8, 31), NOT_MET), (date(2025, 8, 30), MET)])
def test_in04_disease_must_be_inactive_for_over_a_year(last: date, outcome: CriterionOutcome) -> None:
    assert result("IN04", last_disease_activity_date=last).outcome is outcome


def test_in04_biopsy_with_inflammation_fails_and_without_biopsy_is_missing() -> None:
    inflamed = ELIGIBLE.model_dump()["biopsy"] | {"inflammatory_cell_infiltration": True}
    assert result("IN04", biopsy=inflamed).outcome is NOT_MET
    assert result("IN04", biopsy=None).outcome is MISSING


@pytest.mark.parametrize(("started", "outcome"), [(date(2026, 5, 31), MET), (date(2026, 5, 30), NOT_MET)])
def test_ex06_new_vasodilator_within_3_months_excludes_boundary_day_included(
    started: date, outcome: CriterionOutcome
) -> None:
    assert result("EX06", last_vasodilator_or_immunosuppressant_start=started).outcome is outcome


@pytest.mark.parametrize(("applied", "outcome"), [(date(2026, 8, 17), MET), (date(2026, 8, 16), NOT_MET)])
def test_ex07_topical_ointment_within_2_weeks_excludes(applied: date, outcome: CriterionOutcome) -> None:
    assert result("EX07", last_topical_ointment_on_surgical_area=applied).outcome is outcome


@pytest.mark.parametrize(("diagnosed", "outcome"), [(date(2021, 8, 31), MET), (date(2021, 8, 30), NOT_MET)])
def test_ex09_tumour_within_5_years_excludes(diagnosed: date, outcome: CriterionOutcome) -> None:
    assert result("EX09", last_tumour_diagnosis=diagnosed).outcome is outcome


@pytest.mark.parametrize(("dose", "outcome"), [("10", NOT_MET), ("10.1", MET), ("0", NOT_MET)])
def test_ex10_prednisolone_over_10_mg_a_day_excludes(dose: str, outcome: CriterionOutcome) -> None:
    assert result("EX10", prednisolone_mg_per_day=Decimal(dose)).outcome is outcome


@pytest.mark.parametrize(("area", "outcome"), [("1/3", NOT_MET), ("0.3333", NOT_MET), ("0.34", MET), ("1/2", MET)])
def test_ex01_more_than_a_third_of_the_scalp_excludes_exactly_a_third_does_not(
    area: str, outcome: CriterionOutcome
) -> None:
    assert result("EX01", hair_loss_area_fraction=area).outcome is outcome


def test_ex08_any_positive_serology_excludes_and_an_unresulted_test_is_missing() -> None:
    assert result("EX08", serology=NEGATIVE.model_dump() | {"htlv": "positive"}).outcome is MET
    assert result("EX08", serology=NEGATIVE.model_dump() | {"hcv": None}).outcome is MISSING
    positive_and_pending = NEGATIVE.model_dump() | {"hcv": None, "syphilis": "positive"}
    assert result("EX08", serology=positive_and_pending).outcome is MET


def test_ex04_applies_to_pregnancy_or_breastfeeding_and_not_to_men() -> None:
    assert result("EX04", breastfeeding=True).outcome is MET
    assert result("EX04", pregnant=None).outcome is MISSING
    assert result("EX04", sex="male", pregnant=None, breastfeeding=None).outcome is NOT_MET


def test_ex03_any_listed_contraindication_excludes() -> None:
    assert result("EX03", contraindications=["severe_diabetes"]).outcome is MET
    assert result("EX03", contraindications=None).outcome is MISSING


def test_in09_without_valid_consent_is_not_met() -> None:
    evaluation = run(consent=None)
    assert not evaluation.eligible
    assert next(c for c in evaluation.criteria if c.code == "IN09").outcome is NOT_MET


def test_missing_never_counts_as_met() -> None:
    evaluation = run(localized_scleroderma_symptoms=None, scalp_infection=None)
    assert not evaluation.eligible
    missing = {c.code for c in evaluation.criteria if c.outcome is MISSING}
    assert missing == {"IN01", "EX02"}


# One way to fail each criterion, drawn at random: a violating value or a missing one.
_CUT = {
    "IN03": months_before(SCREENING, 6),
    "IN04": months_before(SCREENING, 12),
    "EX06": months_before(SCREENING, 3),
    "EX09": months_before(SCREENING, 60),
}
FAILURES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "IN01": st.sampled_from([{"localized_scleroderma_symptoms": False}, {"localized_scleroderma_symptoms": None}]),
    "IN02": st.sampled_from([{"alopecia_secondary_to_localized_scleroderma": v} for v in (False, None)]),
    "IN03": st.dates(_CUT["IN03"], SCREENING).map(lambda d: {"hair_loss_onset_date": d}),
    "IN04": st.dates(_CUT["IN04"], SCREENING).map(lambda d: {"last_disease_activity_date": d}),
    "IN05": st.sampled_from([{"fit_for_anaesthesia_and_surgery": v} for v in (False, None)]),
    "IN07": (st.integers(0, 17) | st.integers(60, 120)).map(lambda a: {"age_years": a}),
    "IN08": st.sampled_from([{"willing_to_comply_with_follow_up": v} for v in (False, None)]),
    "EX01": st.fractions(Fraction(1, 3), 1, max_denominator=10**6)  # a form takes at most 30 digits a part
    .filter(lambda f: f > Fraction(1, 3))
    .map(lambda f: {"hair_loss_area_fraction": str(f)}),
    "EX02": st.sampled_from([{"scalp_infection": v} for v in (True, None)]),
    "EX03": st.lists(st.sampled_from(["psychiatric_disorder", "severe_hypertension"]), min_size=1).map(
        lambda c: {"contraindications": c}
    ),
    "EX04": st.sampled_from([{"pregnant": True}, {"breastfeeding": True}, {"pregnant": None}]),
    # 49.0 kg at 170 cm is BMI 16.955, which rounds half-up to 17.0: included. 48.9 kg gives 16.9.
    "EX05": st.decimals("25", "48.9", places=1).map(lambda w: {"height_cm": Decimal("170"), "weight_kg": w}),
    "EX06": st.dates(_CUT["EX06"], SCREENING).map(lambda d: {"last_vasodilator_or_immunosuppressant_start": d}),
    "EX07": st.dates(SCREENING - timedelta(days=14), SCREENING).map(
        lambda d: {"last_topical_ointment_on_surgical_area": d}
    ),
    "EX08": st.sampled_from(["hiv", "hbv", "hcv", "htlv", "syphilis"]).map(
        lambda t: {"serology": NEGATIVE.model_dump() | {t: "positive"}}
    ),
    "EX09": st.dates(_CUT["EX09"], SCREENING).map(lambda d: {"last_tumour_diagnosis": d}),
    "EX10": st.decimals("10.01", "1000", places=2).map(lambda d: {"prednisolone_mg_per_day": d}),
    "EX11": st.sampled_from([{"investigator_judges_unsuitable": v} for v in (True, None)]),
}


@given(st.sampled_from(sorted(FAILURES)).flatmap(lambda code: st.tuples(st.just(code), FAILURES[code])))
def test_any_single_failed_criterion_makes_the_subject_ineligible_and_is_reported(
    case: tuple[str, dict[str, Any]],
) -> None:
    code, changes = case
    evaluation = run(**changes)
    assert not evaluation.eligible
    blocking = {c.code for c in evaluation.criteria if c.blocks_eligibility}
    assert code in blocking


@given(
    st.dictionaries(st.sampled_from(sorted(FAILURES)), st.just(None), max_size=4).flatmap(
        lambda codes: st.fixed_dictionaries({c: FAILURES[c] for c in codes})
    )
)
def test_eligible_exactly_when_no_criterion_blocks(failures: dict[str, dict[str, Any]]) -> None:
    changes: dict[str, Any] = {}
    for change in failures.values():
        changes |= change
    evaluation = run(**changes)
    assert [c.code for c in evaluation.criteria] == CODES
    assert evaluation.eligible == (not any(c.blocks_eligibility for c in evaluation.criteria))
    assert evaluation.eligible == (not failures)


def test_the_criteria_table_holds_exactly_the_protocols_criteria_in_its_order() -> None:
    assert list(eligibility.INCLUSION) == list(Inclusion.model_fields)
    assert list(eligibility.EXCLUSION) == list(Exclusion.model_fields)


@pytest.mark.parametrize("changes", [{}, {"biopsy": None, "pregnant": None, "adequate_donor_hair": None}])
def test_criterion_values_read_as_words_never_as_python(changes: dict[str, Any]) -> None:
    values = [c.value for c in run(**changes).criteria if c.value]
    assert values
    for value in values:
        assert not any(python in value for python in ("True", "False", "None", "{", "'")), value


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"contraindications": ["severe_diabetes", "immune_deficiency"], "sex": "male", "biopsy": None},
        {"last_tumour_diagnosis": "never", "serology": {"hiv": "positive"}},
    ],
)
def test_every_value_a_criterion_looked_at_is_said_in_both_languages(changes: dict[str, Any]) -> None:
    """The record keeps the English for reports and exports, and the Chinese for the pages: codes decoded by the
    data dictionary, yes and no and not given in words, never an English word on a Chinese page."""
    dictionary = load_protocol(DEFAULT_PROTOCOL_FILE).forms
    form = ScreeningForm.model_validate(ELIGIBLE.model_dump() | changes)
    criteria = evaluate(form, RULES, consent_form_version="1.0", dictionary=dictionary).criteria
    said = [(c.code, c.value, c.value_zh) for c in criteria if c.value is not None]
    assert len(said) >= 10
    for code, en, zh in said:
        assert zh, code
        assert not re.search(r"[a-z]{3,}", zh), f"{code}: {zh!r} (English: {en!r})"
    by_code = {c.code: c for c in criteria}
    if "contraindications" in changes:
        assert by_code["EX03"].value_zh == "严重糖尿病、免疫缺陷"
        assert by_code["EX04"].value_zh == "不适用（男性）"
        assert by_code["IN04"].value_zh and "未填写" in by_code["IN04"].value_zh

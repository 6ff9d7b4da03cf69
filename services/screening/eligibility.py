"""The eligibility engine: every criterion IN01–IN09 and EX01–EX11, evaluated and explained. Pure.

Each rule returns `met` / `not_met` / `missing` with the value it looked at. Thresholds and
look-back periods come from the protocol definition, so changing one is an amendment, not code.
"""

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.contracts.events import CriterionKind, CriterionOutcome, CriterionResult
from shared.contracts.forms import DateOrNever, ScreeningForm, Serology, Sex
from shared.contracts.protocol import Criterion, Eligibility

MET, NOT_MET, MISSING = CriterionOutcome.MET, CriterionOutcome.NOT_MET, CriterionOutcome.MISSING


def months_before(day: date, months: int) -> date:
    """Calendar arithmetic, clamped to the month's last day: 31 Aug − 6 months = 28/29 Feb."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def bmi(form: ScreeningForm) -> Decimal:
    """weight kg / (height m)², rounded half-up to one decimal, then compared (17.0 is ≥ 17)."""
    metres = form.height_cm / 100
    return (form.weight_kg / (metres * metres)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _flag(value: bool | None) -> CriterionOutcome:
    return MISSING if value is None else (MET if value else NOT_MET)


def _all_of(*outcomes: CriterionOutcome) -> CriterionOutcome:
    """An inclusion made of parts: any part failing fails it; else any part unknown leaves it missing."""
    return NOT_MET if NOT_MET in outcomes else (MISSING if MISSING in outcomes else MET)


def _any_of(*outcomes: CriterionOutcome) -> CriterionOutcome:
    """An exclusion made of parts: any part applying excludes; else any part unknown leaves it missing."""
    return MET if MET in outcomes else (MISSING if MISSING in outcomes else NOT_MET)


def _since(happened: DateOrNever, cutoff: date, label: str) -> tuple[CriterionOutcome, str | None]:
    """Exclusions of the kind 'within the look-back': on or after the cutoff applies (boundary day included)."""
    if happened is None:
        return MISSING, None
    if happened == "never":
        return NOT_MET, f"{label}: never"
    return (MET if happened >= cutoff else NOT_MET), f"{label} {happened} (cutoff {cutoff})"


@dataclass(frozen=True)
class Evaluation:
    eligible: bool
    bmi: Decimal
    criteria: tuple[CriterionResult, ...]


@dataclass(frozen=True)
class Context:
    """What a criterion may need beyond the form: the protocol's thresholds, the computed BMI, the consent."""

    rules: Eligibility
    bmi: Decimal
    consent_form_version: str | None


Decided = tuple[CriterionOutcome, str | None]
Rule = Callable[[ScreeningForm, Context], Decided]


def in01(f: ScreeningForm, ctx: Context) -> Decided:
    return _flag(f.localized_scleroderma_symptoms), None if f.loscat_score is None else f"LoSCAT {f.loscat_score}"


def _said(answer: bool | None) -> str:
    """A yes/no item as staff read it."""
    return "not given" if answer is None else "yes" if answer else "no"


def _given(value: object) -> str:
    return "not given" if value is None else str(value)


def in02(f: ScreeningForm, ctx: Context) -> Decided:
    return _flag(f.alopecia_secondary_to_localized_scleroderma), None


def in03(f: ScreeningForm, ctx: Context) -> Decided:
    cutoff = months_before(f.screening_date, ctx.rules.inclusion.IN03.min_hair_loss_months)
    onset = f.hair_loss_onset_date
    lasting = MISSING if onset is None else (MET if onset < cutoff else NOT_MET)
    value = f"onset {_given(onset)} (must be before {cutoff}); donor hair adequate: {_said(f.adequate_donor_hair)}"
    return _all_of(lasting, _flag(f.adequate_donor_hair)), value


def in04(f: ScreeningForm, ctx: Context) -> Decided:
    cutoff = months_before(f.screening_date, ctx.rules.inclusion.IN04.min_inactive_months)
    last = f.last_disease_activity_date
    inactive = MISSING if last is None else (MET if last < cutoff else NOT_MET)
    b = f.biopsy
    findings = (
        (MISSING,)
        if b is None
        else (
            _flag(None if b.inflammatory_cell_infiltration is None else not b.inflammatory_cell_infiltration),
            _flag(b.follicle_orifices_absent),
            _flag(b.follicles_replaced_by_connective_tissue),
        )
    )
    biopsy = (
        "not given"
        if b is None
        else f"inflammatory-cell infiltration {_said(b.inflammatory_cell_infiltration)}, follicle orifices absent "
        f"{_said(b.follicle_orifices_absent)}, follicles replaced by connective tissue "
        f"{_said(b.follicles_replaced_by_connective_tissue)}"
    )
    value = f"last activity {_given(last)} (must be before {cutoff}); biopsy: {biopsy}"
    return _all_of(inactive, *findings), value


def in05(f: ScreeningForm, ctx: Context) -> Decided:
    return _flag(f.fit_for_anaesthesia_and_surgery), None


def in06(f: ScreeningForm, ctx: Context) -> Decided:
    return (MET if ctx.bmi >= ctx.rules.inclusion.IN06.min_bmi else NOT_MET), f"BMI {ctx.bmi}"


def in07(f: ScreeningForm, ctx: Context) -> Decided:
    ages = ctx.rules.inclusion.IN07
    return (MET if ages.min_age <= f.age_years <= ages.max_age else NOT_MET), f"age {f.age_years}"


def in08(f: ScreeningForm, ctx: Context) -> Decided:
    return _flag(f.willing_to_comply_with_follow_up), None


def in09(f: ScreeningForm, ctx: Context) -> Decided:
    if ctx.consent_form_version:
        return MET, f"consent form {ctx.consent_form_version}"
    return NOT_MET, "no valid consent"


def ex01(f: ScreeningForm, ctx: Context) -> Decided:
    area = f.hair_loss_area_fraction
    if area is None:
        return MISSING, None
    return (MET if area > ctx.rules.exclusion.EX01.max_area_fraction else NOT_MET), f"area {area} of the scalp"


def ex02(f: ScreeningForm, ctx: Context) -> Decided:
    return _flag(f.scalp_infection), None


def ex03(f: ScreeningForm, ctx: Context) -> Decided:
    if f.contraindications is None:
        return MISSING, None
    return (MET if f.contraindications else NOT_MET), ", ".join(f.contraindications) or "none"


def ex04(f: ScreeningForm, ctx: Context) -> Decided:
    if f.sex is Sex.MALE:
        return NOT_MET, "not applicable (male)"
    value = f"pregnant {_said(f.pregnant)}, breastfeeding {_said(f.breastfeeding)}"
    return _any_of(_flag(f.pregnant), _flag(f.breastfeeding)), value


def ex05(f: ScreeningForm, ctx: Context) -> Decided:
    return (MET if ctx.bmi < ctx.rules.exclusion.EX05.min_bmi else NOT_MET), f"BMI {ctx.bmi}"


def ex06(f: ScreeningForm, ctx: Context) -> Decided:
    cutoff = months_before(f.screening_date, ctx.rules.exclusion.EX06.lookback_months)
    return _since(f.last_vasodilator_or_immunosuppressant_start, cutoff, "started")


def ex07(f: ScreeningForm, ctx: Context) -> Decided:
    cutoff = f.screening_date - timedelta(days=ctx.rules.exclusion.EX07.lookback_days)
    return _since(f.last_topical_ointment_on_surgical_area, cutoff, "applied")


def ex08(f: ScreeningForm, ctx: Context) -> Decided:
    if f.serology is None:
        return MISSING, None
    results = f.serology.model_dump()
    parts = (MISSING if r is None else (MET if r == Serology.POSITIVE else NOT_MET) for r in results.values())
    return _any_of(*parts), ", ".join(f"{test} {_given(result)}" for test, result in results.items())


def ex09(f: ScreeningForm, ctx: Context) -> Decided:
    cutoff = months_before(f.screening_date, ctx.rules.exclusion.EX09.lookback_months)
    return _since(f.last_tumour_diagnosis, cutoff, "diagnosed")


def ex10(f: ScreeningForm, ctx: Context) -> Decided:
    dose = f.prednisolone_mg_per_day
    if dose is None:
        return MISSING, None
    return (
        MET if dose > ctx.rules.exclusion.EX10.max_prednisolone_mg_per_day else NOT_MET
    ), f"prednisolone {dose} mg/day"


def ex11(f: ScreeningForm, ctx: Context) -> Decided:
    return _flag(f.investigator_judges_unsuitable), None


# Every criterion of the protocol, by its code, in protocol order.
INCLUSION: dict[str, Rule] = {
    "IN01": in01, "IN02": in02, "IN03": in03, "IN04": in04, "IN05": in05,
    "IN06": in06, "IN07": in07, "IN08": in08, "IN09": in09,
}  # fmt: skip
EXCLUSION: dict[str, Rule] = {
    "EX01": ex01, "EX02": ex02, "EX03": ex03, "EX04": ex04, "EX05": ex05, "EX06": ex06,
    "EX07": ex07, "EX08": ex08, "EX09": ex09, "EX10": ex10, "EX11": ex11,
}  # fmt: skip


def evaluate(form: ScreeningForm, rules: Eligibility, *, consent_form_version: str | None) -> Evaluation:
    """Every criterion, in protocol order; eligible only when all inclusions are met and no exclusion applies."""
    ctx = Context(rules, bmi(form), consent_form_version)
    results = [
        _result(code, CriterionKind.INCLUSION, getattr(rules.inclusion, code), rule(form, ctx))
        for code, rule in INCLUSION.items()
    ] + [
        _result(code, CriterionKind.EXCLUSION, getattr(rules.exclusion, code), rule(form, ctx))
        for code, rule in EXCLUSION.items()
    ]
    return Evaluation(eligible=not any(r.blocks_eligibility for r in results), bmi=ctx.bmi, criteria=tuple(results))


def _result(code: str, kind: CriterionKind, criterion: Criterion, decided: Decided) -> CriterionResult:
    outcome, value = decided
    return CriterionResult(code=code, kind=kind, outcome=outcome, value=value, rule=criterion.text)

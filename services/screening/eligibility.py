"""The eligibility engine: every criterion IN01–IN09 and EX01–EX11, evaluated and explained. Pure.

Each rule returns `met` / `not_met` / `missing` with the value it looked at, said in English and Simplified Chinese
(the record keeps both; reports and exports read the English). Thresholds and
look-back periods come from the protocol definition, so changing one is an amendment, not code.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.contracts.dictionary import DataDictionary, Translated
from shared.contracts.events import CriterionKind, CriterionOutcome, CriterionResult
from shared.contracts.forms import DateOrNever, ScreeningForm, Serology, Sex
from shared.contracts.protocol import Criterion, Eligibility
from shared.contracts.schedule import months_before

MET, NOT_MET, MISSING = CriterionOutcome.MET, CriterionOutcome.NOT_MET, CriterionOutcome.MISSING


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


def _said_as(en: str, zh: str) -> Translated:
    return Translated(en=en, zh=zh)


def _same(text: str) -> Translated:
    """A value that reads the same in both languages (a score, a BMI, a date)."""
    return _said_as(text, text)


def _since(happened: DateOrNever, cutoff: date, label: Translated) -> "Decided":
    """Exclusions of the kind 'within the look-back': on or after the cutoff applies (boundary day included)."""
    if happened is None:
        return MISSING, None
    if happened == "never":
        return NOT_MET, _said_as(f"{label.en}: never", f"{label.zh}：从未")
    value = _said_as(f"{label.en} {happened} (cutoff {cutoff})", f"{label.zh} {happened}（截止日期 {cutoff}）")
    return (MET if happened >= cutoff else NOT_MET), value


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
    dictionary: DataDictionary | None = None  # the coded answers' words

    def decoded(self, code_list: str, code: str) -> Translated:
        found = self.dictionary.decode(code_list, code) if self.dictionary else None
        return found or _same(code)


Decided = tuple[CriterionOutcome, Translated | None]
Rule = Callable[[ScreeningForm, Context], Decided]


def in01(f: ScreeningForm, ctx: Context) -> Decided:
    score = f.loscat_score
    return _flag(f.localized_scleroderma_symptoms), None if score is None else _same(f"LoSCAT {score}")


NOT_GIVEN = _said_as("not given", "未填写")


def _said(answer: bool | None) -> Translated:
    """A yes/no item as staff read it."""
    return NOT_GIVEN if answer is None else _said_as("yes", "是") if answer else _said_as("no", "否")


def _given(value: object) -> Translated:
    return NOT_GIVEN if value is None else _same(str(value))


def in02(f: ScreeningForm, ctx: Context) -> Decided:
    return _flag(f.alopecia_secondary_to_localized_scleroderma), None


def in03(f: ScreeningForm, ctx: Context) -> Decided:
    cutoff = months_before(f.screening_date, ctx.rules.inclusion.IN03.min_hair_loss_months)
    onset = f.hair_loss_onset_date
    lasting = MISSING if onset is None else (MET if onset < cutoff else NOT_MET)
    given, donor = _given(onset), _said(f.adequate_donor_hair)
    value = _said_as(
        f"onset {given.en} (must be before {cutoff}); donor hair adequate: {donor.en}",
        f"脱发开始 {given.zh}（须早于 {cutoff}）；供区毛发充足：{donor.zh}",
    )
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
    if b is None:
        biopsy = NOT_GIVEN
    else:
        cells, orifices, replaced = (
            _said(b.inflammatory_cell_infiltration),
            _said(b.follicle_orifices_absent),
            _said(b.follicles_replaced_by_connective_tissue),
        )
        biopsy = _said_as(
            f"inflammatory-cell infiltration {cells.en}, follicle orifices absent {orifices.en}, follicles replaced "
            f"by connective tissue {replaced.en}",
            f"炎症细胞浸润 {cells.zh}，毛囊开口消失 {orifices.zh}，毛囊被结缔组织取代 {replaced.zh}",
        )
    given = _given(last)
    value = _said_as(
        f"last activity {given.en} (must be before {cutoff}); biopsy: {biopsy.en}",
        f"最近活动 {given.zh}（须早于 {cutoff}）；活检：{biopsy.zh}",
    )
    return _all_of(inactive, *findings), value


def in05(f: ScreeningForm, ctx: Context) -> Decided:
    return _flag(f.fit_for_anaesthesia_and_surgery), None


def in06(f: ScreeningForm, ctx: Context) -> Decided:
    return (MET if ctx.bmi >= ctx.rules.inclusion.IN06.min_bmi else NOT_MET), _same(f"BMI {ctx.bmi}")


def in07(f: ScreeningForm, ctx: Context) -> Decided:
    ages = ctx.rules.inclusion.IN07
    age = _said_as(f"age {f.age_years}", f"年龄 {f.age_years}")
    return (MET if ages.min_age <= f.age_years <= ages.max_age else NOT_MET), age


def in08(f: ScreeningForm, ctx: Context) -> Decided:
    return _flag(f.willing_to_comply_with_follow_up), None


def in09(f: ScreeningForm, ctx: Context) -> Decided:
    version = ctx.consent_form_version
    if version:
        return MET, _said_as(f"consent form {version}", f"知情同意书 {version}")
    return NOT_MET, _said_as("no valid consent", "无有效知情同意")


def ex01(f: ScreeningForm, ctx: Context) -> Decided:
    area = f.hair_loss_area_fraction
    if area is None:
        return MISSING, None
    value = _said_as(f"area {area} of the scalp", f"面积占头皮 {area}")
    return (MET if area > ctx.rules.exclusion.EX01.max_area_fraction else NOT_MET), value


def ex02(f: ScreeningForm, ctx: Context) -> Decided:
    return _flag(f.scalp_infection), None


def ex03(f: ScreeningForm, ctx: Context) -> Decided:
    if f.contraindications is None:
        return MISSING, None
    named = [ctx.decoded("contraindication", str(c)) for c in f.contraindications]
    return (MET if f.contraindications else NOT_MET), _said_as(
        ", ".join(f.contraindications) or "none", "、".join(n.zh for n in named) or "无"
    )


def ex04(f: ScreeningForm, ctx: Context) -> Decided:
    if f.sex is Sex.MALE:
        return NOT_MET, _said_as("not applicable (male)", "不适用（男性）")
    pregnant, breastfeeding = _said(f.pregnant), _said(f.breastfeeding)
    value = _said_as(
        f"pregnant {pregnant.en}, breastfeeding {breastfeeding.en}", f"妊娠 {pregnant.zh}，哺乳 {breastfeeding.zh}"
    )
    return _any_of(_flag(f.pregnant), _flag(f.breastfeeding)), value


def ex05(f: ScreeningForm, ctx: Context) -> Decided:
    return (MET if ctx.bmi < ctx.rules.exclusion.EX05.min_bmi else NOT_MET), _same(f"BMI {ctx.bmi}")


def ex06(f: ScreeningForm, ctx: Context) -> Decided:
    cutoff = months_before(f.screening_date, ctx.rules.exclusion.EX06.lookback_months)
    return _since(f.last_vasodilator_or_immunosuppressant_start, cutoff, _said_as("started", "开始用药"))


def ex07(f: ScreeningForm, ctx: Context) -> Decided:
    cutoff = f.screening_date - timedelta(days=ctx.rules.exclusion.EX07.lookback_days)
    return _since(f.last_topical_ointment_on_surgical_area, cutoff, _said_as("applied", "外用"))


def ex08(f: ScreeningForm, ctx: Context) -> Decided:
    if f.serology is None:
        return MISSING, None
    results = f.serology.model_dump()
    parts = (MISSING if r is None else (MET if r == Serology.POSITIVE else NOT_MET) for r in results.values())
    said = {test: NOT_GIVEN if r is None else ctx.decoded("serology", str(r)) for test, r in results.items()}
    return _any_of(*parts), _said_as(
        ", ".join(f"{test} {_given(result).en}" for test, result in results.items()),
        "，".join(f"{test.upper()} {words.zh}" for test, words in said.items()),
    )


def ex09(f: ScreeningForm, ctx: Context) -> Decided:
    cutoff = months_before(f.screening_date, ctx.rules.exclusion.EX09.lookback_months)
    return _since(f.last_tumour_diagnosis, cutoff, _said_as("diagnosed", "确诊"))


def ex10(f: ScreeningForm, ctx: Context) -> Decided:
    dose = f.prednisolone_mg_per_day
    if dose is None:
        return MISSING, None
    return (MET if dose > ctx.rules.exclusion.EX10.max_prednisolone_mg_per_day else NOT_MET), _said_as(
        f"prednisolone {dose} mg/day", f"泼尼松龙 {dose} mg/天"
    )


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


def evaluate(
    form: ScreeningForm,
    rules: Eligibility,
    *,
    consent_form_version: str | None,
    dictionary: DataDictionary | None = None,
) -> Evaluation:
    """Every criterion, in protocol order; eligible only when all inclusions are met and no exclusion applies.
    The data dictionary words coded answers in each language."""
    ctx = Context(rules, bmi(form), consent_form_version, dictionary)
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
    return CriterionResult(
        code=code,
        kind=kind,
        outcome=outcome,
        value=value.en if value else None,
        value_zh=value.zh if value else None,
        rule=criterion.text,
    )

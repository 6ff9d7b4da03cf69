"""The edit checks: one function per code in the protocol's `edit_checks`, each finding where its rule holds.

A check reads the subject's casebook (current records only: a corrected value is the value) and returns a
finding per form it questions. Adding a check is an entry in the protocol file and a function here.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as default
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid5

from services.datamanagement.domain import Casebook, Finding
from shared.contracts.coding import Coding, TermDictionary
from shared.contracts.events import (
    ConsentRecorded,
    CriterionOutcome,
    FormRecorded,
    GraftProcedurePerformed,
    SubjectScreened,
    VisitCompleted,
)
from shared.contracts.forms import ActionTaken
from shared.contracts.protocol import EditCheck, InvalidProtocolDefinition, ProtocolDefinition, parse_fraction
from shared.contracts.schedule import months_before, surgery_deadline, visit_windows

# The logs of concomitant medications and of medical history in the data dictionary.
MEDICATIONS, HISTORY = "concomitant-medication", "medical-history"


@dataclass(frozen=True, slots=True)
class CheckContext:
    protocol: ProtocolDefinition
    site: str
    now: datetime
    # The sponsor's drug dictionary: a medication's class is its coding's, never a guess from its name.
    drugs: TermDictionary = default(default_factory=TermDictionary)


# What a check reports where it holds: the form, the field, and the values its text names.
Hit = tuple[str, str | None, dict[str, object]]
Check = Callable[[Casebook, Mapping[str, str], CheckContext], Iterator[Hit]]


def _consent(book: Casebook) -> ConsentRecorded | None:
    record = book.records.get("consent")
    return record.data if record and isinstance(record.data, ConsentRecorded) else None


def _procedure(book: Casebook) -> GraftProcedurePerformed | None:
    record = book.records.get("procedure")
    return record.data if record and isinstance(record.data, GraftProcedurePerformed) else None


def _visits(book: Casebook, ctx: CheckContext) -> list[VisitCompleted]:
    """The completed visits in the schedule's order."""
    recorded = (book.records.get(f"visit-{v.code}") for v in ctx.protocol.schedule.follow_up)
    return [r.data for r in recorded if r and isinstance(r.data, VisitCompleted)]


def _screened_on(book: Casebook) -> date | None:
    record = book.records.get("screening")
    return record.data.screening_date if record and isinstance(record.data, SubjectScreened) else None


@dataclass(frozen=True, slots=True)
class Medication:
    """A concomitant medication entry as the checks read it: its answers, and its coding where the sponsor's
    dictionary has the term."""

    form: str
    answers: Mapping[str, Any]
    coding: Coding | None

    @property
    def start(self) -> date:
        return date.fromisoformat(self.answers["start_date"])

    def taken_on_or_after(self, day: date) -> bool:
        end = self.answers.get("end_date")
        return bool(self.answers.get("ongoing")) or end is None or date.fromisoformat(end) >= day

    def in_class(self, prefixes: str) -> bool:
        return self.coding is not None and self.coding.class_code.startswith(tuple(prefixes.split()))


def _medications(book: Casebook, ctx: CheckContext) -> list[Medication]:
    """The subject's concomitant medications as they stand (a corrected entry is its correction)."""
    found = []
    for name, record in book.records.items():
        data = record.data
        if isinstance(data, FormRecorded) and data.form == MEDICATIONS and data.entry is not None:
            found.append(Medication(name, data.answers, ctx.drugs.code(str(data.answers.get("medication", "")))))
    return found


def vasodilator_or_immunosuppressant(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    """EX06 during the trial: a vasodilator or immunosuppressant started in the criterion's look-back before the
    screening or at any time after it, for a randomized subject."""
    screened_on = _screened_on(book)
    if book.randomized_at is None or screened_on is None:
        return
    since = months_before(screened_on, ctx.protocol.eligibility.exclusion.EX06.lookback_months)
    for medication in _medications(book, ctx):
        if medication.in_class(params["atc_classes"]) and medication.start >= since:
            assert medication.coding is not None
            values = {
                "medication": medication.answers["medication"],
                "drug_class": medication.coding.class_name,
                "start_date": medication.start,
                "occurred_on": max(medication.start, screened_on),
            }
            yield medication.form, "start_date", values


def topical_on_surgical_area(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    """EX07 at the surgery: a topical medication on the surgical area used within the criterion's look-back before
    the surgery."""
    procedure = _procedure(book)
    if procedure is None:
        return
    since = procedure.procedure_date - timedelta(days=ctx.protocol.eligibility.exclusion.EX07.lookback_days)
    for medication in _medications(book, ctx):
        answers = medication.answers
        topical = answers.get("route") == "topical" and answers.get("on_surgical_area") is True
        if topical and medication.start <= procedure.procedure_date and medication.taken_on_or_after(since):
            values = {
                "medication": answers["medication"],
                "procedure_date": procedure.procedure_date,
                "days": ctx.protocol.eligibility.exclusion.EX07.lookback_days,
                "occurred_on": max(medication.start, since),
            }
            yield medication.form, "on_surgical_area", values


# Administrations a day, by the frequency's code; as needed (prn) has none to count.
PER_DAY: dict[str, Fraction] = {
    "qd": Fraction(1),
    "bid": Fraction(2),
    "tid": Fraction(3),
    "qid": Fraction(4),
    "qod": Fraction(1, 2),
    "qw": Fraction(1, 7),
    "once": Fraction(1),
}


def prednisolone_over_limit(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    """EX10 during the trial: prednisolone over the criterion's daily limit, taken on or after the screening,
    for a randomized subject. A dose in another unit or taken as needed is not converted: no guess."""
    screened_on = _screened_on(book)
    if book.randomized_at is None or screened_on is None:
        return
    limit = ctx.protocol.eligibility.exclusion.EX10.max_prednisolone_mg_per_day
    for medication in _medications(book, ctx):
        answers = medication.answers
        per_day = PER_DAY.get(str(answers.get("frequency")))
        if not medication.in_class(params["atc_codes"]) or answers.get("dose_unit") != "mg" or per_day is None:
            continue
        daily = Decimal(str(answers["dose"])) * per_day.numerator / per_day.denominator if "dose" in answers else None
        if daily is not None and daily > limit and medication.taken_on_or_after(screened_on):
            values = {
                "medication": answers["medication"],
                "daily": daily.normalize(),
                "limit": limit,
                "occurred_on": max(medication.start, screened_on),
            }
            yield medication.form, "dose", values


def history_against_screening(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    """A medical history entry that bears on an exclusion (EX02, EX03, EX09) the latest screening recorded as
    absent: a scalp infection or a contraindication still present on the screening date, a tumour within the
    look-back before it."""
    record = book.records.get("screening")
    if record is None or not isinstance(record.data, SubjectScreened):
        return
    screened = record.data
    absent = {c.code for c in screened.criteria if c.outcome is CriterionOutcome.NOT_MET}
    tumour_since = months_before(screened.screening_date, ctx.protocol.eligibility.exclusion.EX09.lookback_months)
    for name, entry in book.records.items():
        data = entry.data
        if not (isinstance(data, FormRecorded) and data.form == HISTORY and data.entry is not None):
            continue
        code, answers = str(data.answers.get("criterion") or "").upper(), data.answers
        start = date.fromisoformat(str(answers["start_date"])) if answers.get("start_date") else None
        end = date.fromisoformat(str(answers["end_date"])) if answers.get("end_date") else None
        present = (start is None or start <= screened.screening_date) and (
            bool(answers.get("ongoing")) or (end is not None and end >= screened.screening_date)
        )
        recent = start is not None and tumour_since <= start <= screened.screening_date
        if code in absent and (recent if code == "EX09" else present):
            values = {"condition": answers["condition"], "criterion": code, "screening_date": screened.screening_date}
            yield name, "criterion", values


def ae_treated_without_medication(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    """An adverse event treated with a medication asks for the concomitant medication that names it."""
    linked = {str(m.answers.get("adverse_event")) for m in _medications(book, ctx)}
    for ae_id, course in book.adverse_events.items():
        if course.action_taken is ActionTaken.TREATMENT_GIVEN and str(ae_id) not in linked:
            yield f"ae-{ae_id}", "action_taken", {"term": course.term}


def ae_onset_before_consent(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    consent = _consent(book)
    if consent is None:
        return
    for ae_id, course in book.adverse_events.items():
        if course.onset_date < consent.signed_on:
            yield f"ae-{ae_id}", "onset_date", {"onset_date": course.onset_date, "signed_on": consent.signed_on}


def grafts_surviving_over_transplanted(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    procedure = _procedure(book)
    if procedure is None:
        return
    for visit in _visits(book, ctx):
        if visit.grafts_surviving > procedure.follicular_units:
            values = {
                "visit": visit.visit,
                "grafts_surviving": visit.grafts_surviving,
                "follicular_units": procedure.follicular_units,
            }
            yield f"visit-{visit.visit}", "grafts_surviving", values


def hair_density_drop(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    drop = parse_fraction(params["max_drop_fraction"])
    visits = _visits(book, ctx)
    for previous, visit in pairwise(visits):
        kept = Decimal(drop.denominator - drop.numerator) / drop.denominator
        if visit.hair_density_per_cm2 < previous.hair_density_per_cm2 * kept:
            values = {
                "visit": visit.visit,
                "density": visit.hair_density_per_cm2,
                "previous_visit": previous.visit,
                "previous_density": previous.hair_density_per_cm2,
            }
            yield f"visit-{visit.visit}", "hair_density_per_cm2", values


def visit_out_of_window(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    procedure = _procedure(book)
    if procedure is None:
        return
    # The windows of the surgery date as it stands now: a corrected surgery date moves them.
    windows = visit_windows(procedure.procedure_date, ctx.protocol.schedule)
    for visit in _visits(book, ctx):
        window = windows.get(visit.visit)
        if window is not None and not window.contains(visit.visit_date):
            values = {
                "visit": visit.visit,
                "visit_date": visit.visit_date,
                "window_start": window.start,
                "window_end": window.end,
            }
            yield f"visit-{visit.visit}", "visit_date", values


def surgery_after_window(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    procedure = _procedure(book)
    if procedure is None or book.randomized_at is None:
        return
    randomized_on = ctx.protocol.local_date(ctx.site, book.randomized_at)
    deadline = surgery_deadline(randomized_on, ctx.protocol.schedule)
    if procedure.procedure_date > deadline:
        yield "procedure", "procedure_date", {"procedure_date": procedure.procedure_date, "deadline": deadline}


def sae_follow_up_overdue(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    days = int(params["days"])
    for ae_id, course in book.adverse_events.items():
        since = course.serious_since
        if since is None or (course.last_follow_up_at is not None and course.last_follow_up_at > since):
            continue
        if ctx.now - since > timedelta(days=days):
            yield f"ae-{ae_id}", None, {"term": course.term, "reported_on": ctx.protocol.local_date(ctx.site, since)}


def randomized_ineligible(book: Casebook, params: Mapping[str, str], ctx: CheckContext) -> Iterator[Hit]:
    record = book.records.get("screening")
    if book.randomized_at is None or record is None or not isinstance(record.data, SubjectScreened):
        return
    if not record.data.eligible:
        yield "screening", None, {"reasons": ", ".join(record.data.reasons)}


CHECKS: dict[str, Check] = {
    "AE_ONSET_BEFORE_CONSENT": ae_onset_before_consent,
    "GRAFTS_SURVIVING_OVER_TRANSPLANTED": grafts_surviving_over_transplanted,
    "HAIR_DENSITY_DROP": hair_density_drop,
    "VISIT_OUT_OF_WINDOW": visit_out_of_window,
    "SURGERY_AFTER_WINDOW": surgery_after_window,
    "SAE_FOLLOW_UP_OVERDUE": sae_follow_up_overdue,
    "RANDOMIZED_INELIGIBLE": randomized_ineligible,
    "PROHIBITED_VASODILATOR_IMMUNOSUPPRESSANT": vasodilator_or_immunosuppressant,
    "TOPICAL_ON_SURGICAL_AREA_BEFORE_SURGERY": topical_on_surgical_area,
    "PREDNISOLONE_OVER_LIMIT": prednisolone_over_limit,
    "AE_TREATMENT_WITHOUT_MEDICATION": ae_treated_without_medication,
    "HISTORY_AGAINST_SCREENING": history_against_screening,
}


def checks_of(protocol: ProtocolDefinition) -> tuple[EditCheck, ...]:
    """The protocol's edit checks, each with a function: an unknown code stops start-up, naming it."""
    unknown = [c.code for c in protocol.edit_checks if c.code not in CHECKS]
    if unknown:
        raise InvalidProtocolDefinition(f"edit_checks: no check is implemented for {', '.join(unknown)}")
    return protocol.edit_checks


def findings(book: Casebook, checks: tuple[EditCheck, ...], ctx: CheckContext) -> list[Finding]:
    found = []
    for check in checks:
        for form, field, values in CHECKS[check.code](book, check.parameters, ctx):
            text = check.text.format(**check.parameters, **values)
            on = values.get("occurred_on")
            found.append(
                Finding(
                    check.code,
                    form,
                    field,
                    text,
                    dict(check.parameters),
                    deviation=check.deviation,
                    occurred_on=on if isinstance(on, date) else None,
                )
            )
    return found


def finding_query_id(trigger: UUID) -> Callable[[Finding], UUID]:
    """A finding's query id, derived from what triggered the check: a redelivered trigger raises the same query."""
    return lambda f: uuid5(trigger, f"{f.check}/{f.form}/{f.field or ''}")

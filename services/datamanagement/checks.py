"""The edit checks: one function per code in the protocol's `edit_checks`, each finding where its rule holds.

A check reads the subject's casebook (current records only: a corrected value is the value) and returns a
finding per form it questions. Adding a check is an entry in the protocol file and a function here.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from uuid import UUID, uuid5

from services.datamanagement.domain import Casebook, Finding
from shared.contracts.events import ConsentRecorded, GraftProcedurePerformed, SubjectScreened, VisitCompleted
from shared.contracts.protocol import EditCheck, InvalidProtocolDefinition, ProtocolDefinition, parse_fraction
from shared.contracts.schedule import surgery_deadline, visit_windows


@dataclass(frozen=True, slots=True)
class CheckContext:
    protocol: ProtocolDefinition
    site: str
    now: datetime


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
            found.append(Finding(check.code, form, field, text, dict(check.parameters)))
    return found


def finding_query_id(trigger: UUID) -> Callable[[Finding], UUID]:
    """A finding's query id, derived from what triggered the check: a redelivered trigger raises the same query."""
    return lambda f: uuid5(trigger, f"{f.check}/{f.form}/{f.field or ''}")

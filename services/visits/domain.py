"""Pure rules of the treatment and follow-up: the surgery record, visits, deviations, end of participation.

What happened is recorded even when it breaks the protocol (late surgery, wrong arm's procedure,
out-of-window visit): it becomes a `ProtocolDeviationRecorded` beside the fact. Only malformed or
impossible input is refused.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import reduce
from uuid import UUID

from shared.contracts.amendments import require_consent, signed
from shared.contracts.casebook import corrects
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    ConsentRecorded,
    ConsentWithdrawn,
    DomainEvent,
    EndpointAssessed,
    FormRecorded,
    GraftProcedurePerformed,
    ProtocolDeviationRecorded,
    RandomizationInvalidated,
    RecordedEvent,
    ScalpPhotographRecorded,
    SubjectCompletedStudy,
    SubjectRandomized,
    SubjectScreened,
    SubjectWithdrawn,
    VisitCompleted,
    VisitMissed,
)
from shared.contracts.forms import ProcedureForm, VisitRecord, WithdrawalForm
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.rules import (
    DateInFuture,
    NotRandomized,
    Refusal,
    RuleViolation,
    SubjectIsWithdrawn,
    check_site,
)
from shared.contracts.schedule import (
    date_of_death,
    follicle_survival,
    screening_window,
    surgery_deadline,
    visit_windows,
)

SURGERY_LATE = "SURGERY_AFTER_WINDOW"
FAT_GRAFT_MISSING = "FAT_GRAFT_MISSING_IN_FG_HT"
FAT_GRAFT_IN_HT = "FAT_GRAFT_IN_HT_ARM"
VISIT_OUT_OF_WINDOW = "VISIT_OUT_OF_WINDOW"
SCREENING_OUT_OF_WINDOW = "SCREENING_OUTSIDE_DAYS_BEFORE_SURGERY"

DeviationIds = Callable[[str], UUID]


class SubjectHasCompleted(RuleViolation):
    rule, title = "subject.completed", "Subject completed the study"


class RandomizationInvalid(RuleViolation):
    rule, title = "randomization.invalidated", "Randomization invalidated"


class ProcedureBeforeRandomization(RuleViolation):
    rule, title = "procedure.after_randomization", "Surgery dated before randomization"


class ProcedureAlreadyRecorded(RuleViolation):
    rule, title = "procedure.once", "Surgery already recorded"


class VisitBeforeSurgery(RuleViolation):
    rule, title = "visit.after_surgery", "No surgery before this visit"


class VisitAlreadyRecorded(RuleViolation):
    rule, title = "visit.once", "Visit already recorded"


class UnknownVisit(RuleViolation):
    rule, kind, title = "visit.code", Refusal.INVALID, "Unknown visit"


class MoreSurvivingThanTransplanted(RuleViolation):
    rule, kind, title = "visit.grafts_surviving", Refusal.INVALID, "More grafts surviving than transplanted"


@dataclass(frozen=True)
class FollowUpState:
    randomized: SubjectRandomized | None = None
    # Instants: a clinical date is the site's local date of one, decided with the protocol's site zone.
    randomized_at: datetime | None = None
    screened_on: date | None = None
    invalidated: bool = False
    procedure: GraftProcedurePerformed | None = None
    procedure_id: UUID | None = None
    visits: dict[str, tuple[VisitCompleted, UUID]] = field(default_factory=dict)
    missed: frozenset[str] = frozenset()
    deviations: frozenset[str] = frozenset()
    withdrawn_on: date | None = None
    withdrawal_id: UUID | None = None
    # The first grade 5 adverse event (report or follow-up): its date of death is the site's (`date_of_death`).
    death: AdverseEventReported | AdverseEventUpdated | None = None
    completed: bool = False
    female: bool | None = None
    consented_on: date | None = None
    consent_withdrawn: bool = False
    # The consent form versions signed, by the record of each; the protocol version the schedule was made under.
    consents: dict[UUID, str] = field(default_factory=dict)
    scheduled_under: str | None = None
    adverse_events: frozenset[UUID] = frozenset()
    # Each collected form's current record, by its casebook name (`qol-M6`, `concomitant-medication-<entry>`), and
    # the protocol version it was entered under.
    forms: dict[str, UUID] = field(default_factory=dict)
    form_versions: dict[str, str] = field(default_factory=dict)
    # The scalp photographs recorded, the visit of each by its image's SHA-256; the visits assessed blind.
    photographs: dict[str, str] = field(default_factory=dict)
    assessed: frozenset[str] = frozenset()

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_on is not None


def evolve(state: FollowUpState, event: RecordedEvent) -> FollowUpState:
    e = event.envelope
    match e.data:
        case SubjectScreened() as screened:
            return replace(state, screened_on=screened.screening_date, female=screened.form.sex == "female")
        case ScalpPhotographRecorded() as photograph:
            return replace(state, photographs={**state.photographs, photograph.sha256: photograph.visit})
        case EndpointAssessed() as assessment:
            return replace(state, assessed=state.assessed | {assessment.visit})
        case ConsentRecorded() as consent:
            consents = signed(state.consents, consent, e.id)
            return replace(state, consented_on=consent.signed_on, consent_withdrawn=False, consents=consents)
        case ConsentWithdrawn():
            return replace(state, consent_withdrawn=True)
        case FormRecorded() as recorded:
            name = recorded.casebook_name
            versions = {**state.form_versions, name: e.protocolversion}
            return replace(state, forms={**state.forms, name: e.id}, form_versions=versions)
        case SubjectRandomized() as r:
            return replace(state, randomized=r, randomized_at=e.time, scheduled_under=e.protocolversion)
        case RandomizationInvalidated():
            return replace(state, invalidated=True)
        case GraftProcedurePerformed() as p:
            return replace(state, procedure=p, procedure_id=e.id)
        case VisitCompleted() as v:
            return replace(state, visits={**state.visits, v.visit: (v, e.id)})
        case VisitMissed() as m:
            return replace(state, missed=state.missed | {m.visit})
        case ProtocolDeviationRecorded() as d:
            return replace(state, deviations=state.deviations | {d.code})
        case SubjectWithdrawn() as w:
            return replace(state, withdrawn_on=w.withdrawn_on, withdrawal_id=e.id)
        case AdverseEventReported(grade=5) | AdverseEventUpdated(grade=5) as fatal if state.death is None:
            return replace(state, death=fatal, adverse_events=state.adverse_events | {fatal.ae_id})
        case AdverseEventReported() as reported:
            return replace(state, adverse_events=state.adverse_events | {reported.ae_id})
        case SubjectCompletedStudy():
            return replace(state, completed=True)
        case _:
            return state


def replay(history: Sequence[RecordedEvent]) -> FollowUpState:
    return reduce(evolve, history, FollowUpState())


def participating(state: FollowUpState, subject: str) -> SubjectRandomized:
    if state.withdrawn:
        raise SubjectIsWithdrawn(f"{subject} is withdrawn; only adverse-event information is accepted")
    if state.randomized is None:
        raise NotRandomized(f"{subject} is not randomized")
    if state.invalidated:
        raise RandomizationInvalid(f"{subject}'s randomization was invalidated")
    return state.randomized


def _deviation(ids: DeviationIds, code: str, description: str, *, on: date) -> ProtocolDeviationRecorded:
    return ProtocolDeviationRecorded(deviation_id=ids(code), code=code, description=description, occurred_on=on)


def record_procedure(
    state: FollowUpState,
    form: ProcedureForm,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
    deviation_ids: DeviationIds,
    consent_required: str | None = None,
) -> list[DomainEvent]:
    """`protocol`: the version the subject's schedule was made under (`ProtocolVersions.scheduled_under`)."""
    check_site(protocol, site, subject, enrolling=False)
    randomized = participating(state, subject)
    if form.supersedes is None:
        require_consent(consent_required, frozenset(state.consents.values()), subject)
    if form.procedure_date > today:
        raise DateInFuture(f"procedure_date {form.procedure_date} is after today", field="procedure_date")
    assert state.randomized_at is not None
    randomized_on = protocol.local_date(site, state.randomized_at)
    if form.procedure_date < randomized_on:
        raise ProcedureBeforeRandomization(
            f"surgery on {form.procedure_date} precedes randomization on {randomized_on}", field="procedure_date"
        )
    if state.procedure is not None and form.supersedes is None:
        raise ProcedureAlreadyRecorded(f"{subject}'s surgery is recorded; send a correction with supersedes and reason")
    corrects(state.procedure_id, form.supersedes, form.reason, "procedure")
    events: list[DomainEvent] = [GraftProcedurePerformed(**form.model_dump(exclude={"reason"}))]
    found: list[tuple[str, str]] = []
    deadline = surgery_deadline(randomized_on, protocol.schedule)
    if form.procedure_date > deadline:
        days = (form.procedure_date - randomized_on).days
        limit = protocol.schedule.surgery_within_days_of_randomization
        found.append((SURGERY_LATE, f"surgery {days} days after randomization (limit {limit})"))
    if state.screened_on is not None and not screening_window(form.procedure_date, protocol.schedule).contains(
        state.screened_on
    ):
        days = (form.procedure_date - state.screened_on).days
        window = protocol.schedule.screening_days_before_surgery
        found.append(
            (
                SCREENING_OUT_OF_WINDOW,
                f"screening {days} days before surgery (day -{window.earliest} to -{window.latest})",
            )
        )
    grafted_arm = protocol.receives_fat_graft(randomized.arm)
    if grafted_arm and form.fat_graft is None:
        found.append(
            (FAT_GRAFT_MISSING, f"arm {randomized.arm} subject operated without an ECM/SVF-gel fat graft record")
        )
    if not grafted_arm and form.fat_graft is not None:
        found.append((FAT_GRAFT_IN_HT, f"arm {randomized.arm} subject received an ECM/SVF-gel fat graft"))
    events += [
        _deviation(deviation_ids, code, text, on=form.procedure_date)
        for code, text in found
        if code not in state.deviations
    ]
    return events


def record_visit(
    state: FollowUpState,
    record: VisitRecord,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
    deviation_ids: DeviationIds,
    consent_required: str | None = None,
) -> list[DomainEvent]:
    """`protocol`: the version the subject's schedule was made under (`ProtocolVersions.scheduled_under`)."""
    check_site(protocol, site, subject, enrolling=False)
    participating(state, subject)
    if record.supersedes is None:
        require_consent(consent_required, frozenset(state.consents.values()), subject)
    known = [v.code for v in protocol.schedule.follow_up]
    if record.visit not in known:
        raise UnknownVisit(f"visit {record.visit} is not one of {known}", field="visit")
    if record.visit_date > today:
        raise DateInFuture(f"visit_date {record.visit_date} is after today", field="visit_date")
    procedure = state.procedure
    if procedure is None or record.visit_date < procedure.procedure_date:
        raise VisitBeforeSurgery(f"{record.visit} on {record.visit_date} is not after a recorded surgery")
    current = state.visits.get(record.visit)
    if current is not None and record.supersedes is None:
        raise VisitAlreadyRecorded(f"{record.visit} is recorded; send a correction with supersedes and reason")
    correcting = corrects(current[1] if current else None, record.supersedes, record.reason, f"visit-{record.visit}")
    if state.completed and not correcting:
        raise SubjectHasCompleted(f"{subject} has completed the study")
    if record.grafts_surviving > procedure.follicular_units:
        raise MoreSurvivingThanTransplanted(
            f"{record.grafts_surviving} surviving of {procedure.follicular_units} transplanted",
            field="grafts_surviving",
        )
    window = visit_windows(procedure.procedure_date, protocol.schedule)[record.visit]
    in_window = window.contains(record.visit_date)
    visit = VisitCompleted(
        **record.model_dump(exclude={"reason"}),
        study_day=(record.visit_date - procedure.procedure_date).days,
        target_date=window.target,
        window_start=window.start,
        window_end=window.end,
        in_window=in_window,
        follicle_survival_pct=follicle_survival(record.grafts_surviving, procedure.follicular_units),
    )
    events: list[DomainEvent] = [visit]
    code = f"{VISIT_OUT_OF_WINDOW}_{record.visit}"
    if not in_window and code not in state.deviations:
        text = f"{record.visit} on {record.visit_date}, window {window.start} to {window.end}"
        events.append(_deviation(deviation_ids, code, text, on=record.visit_date))
    if window.end_of_study and not state.completed:
        events.append(SubjectCompletedStudy(completed_on=record.visit_date, final_visit=record.visit))
    return events


def withdraw(
    state: FollowUpState, form: WithdrawalForm, *, protocol: ProtocolDefinition, site: str, subject: str, today: date
) -> list[DomainEvent]:
    check_site(protocol, site, subject, enrolling=False)
    # A correction of the withdrawal (its date, reason or who decided) is taken from a withdrawn subject.
    if not corrects(state.withdrawal_id, form.supersedes, form.reason, "withdrawal"):
        participating(state, subject)
    if state.completed:
        raise SubjectHasCompleted(f"{subject} has completed the study; nothing to withdraw from")
    if form.withdrawn_on > today:
        raise DateInFuture(f"withdrawn_on {form.withdrawn_on} is after today", field="withdrawn_on")
    return [SubjectWithdrawn(**form.model_dump(exclude={"reason"}))]


def end_of_participation(state: FollowUpState, *, protocol: ProtocolDefinition, site: str) -> date | None:
    """The day a subject's participation ended early (withdrawal or death, whichever came first)."""
    died = date_of_death(state.death, protocol, site) if state.death else None
    ends = [day for day in (state.withdrawn_on, died) if day is not None]
    return min(ends) if ends else None


def missed_visits(state: FollowUpState, *, protocol: ProtocolDefinition, site: str, today: date) -> list[DomainEvent]:
    """Visits whose window closed before the site's today with no record. After a withdrawal or a death only
    the windows that had closed by then were missed; later visits are not expected (nor after completion)."""
    if state.procedure is None or state.completed:
        return []
    ended = end_of_participation(state, protocol=protocol, site=site)
    closed_by = min(today, ended) if ended else today
    windows = visit_windows(state.procedure.procedure_date, protocol.schedule)
    return [
        VisitMissed(visit=code, target_date=w.target, window_end=w.end)
        for code, w in windows.items()
        if w.end < closed_by and code not in state.visits and code not in state.missed
    ]

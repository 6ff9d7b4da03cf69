"""Pure safety rules: seriousness (ICH E2A), the 24-hour reporting clock, alerts and their escalation. No I/O."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import reduce
from uuid import UUID

from shared.contracts.casebook import corrects
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    CasebookLocked,
    CasebookUnlocked,
    ConsentRecorded,
    DomainEvent,
    ProtocolDeviationRecorded,
    RecordedEvent,
    SeriousAdverseEventAcknowledged,
    SeriousAdverseEventAlertEscalated,
    SeriousAdverseEventAlertRaised,
)
from shared.contracts.forms import (
    ActionTaken,
    AdverseEventFollowUp,
    AdverseEventForm,
    AdverseEventOutcome,
    AlertAcknowledgement,
    ProcedureRelationship,
    SeriousnessCriterion,
)
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.rules import (
    DateInFuture,
    NotConsented,
    NotDelegated,
    RecordedBefore,
    Refusal,
    RuleViolation,
    check_site,
)

# ICH E2A / GCP: the site reports a serious adverse event to the sponsor within 24 hours of awareness.
REPORTING_DEADLINE = timedelta(hours=24)
LATE_SAE_DEVIATION = "SAE_REPORTED_LATE"


class UnknownAdverseEvent(RuleViolation):
    rule, kind, title = "ae.known", Refusal.NOT_FOUND, "Unknown adverse event"


class AwareBeforeOnset(RuleViolation):
    rule, kind, title = "ae.aware_after_onset", Refusal.INVALID, "Site aware before the event began"


class DeathInconsistent(RuleViolation):
    rule, kind, title = "ae.death_consistent", Refusal.INVALID, "Death, fatal outcome and grade 5 disagree"


class UnknownAlert(RuleViolation):
    rule, kind, title = "alert.known", Refusal.NOT_FOUND, "Unknown alert"


def is_serious(grade: int, seriousness: Sequence[SeriousnessCriterion]) -> bool:
    """Serious when any ICH E2A criterion applies, or the CTCAE grade is 5 (death)."""
    return grade == 5 or bool(seriousness)


@dataclass(frozen=True)
class Assessment:
    """What decides seriousness and death: as reported, or as it stands after the follow-ups."""

    grade: int
    seriousness: tuple[SeriousnessCriterion, ...]
    action_taken: ActionTaken
    outcome: AdverseEventOutcome


def assessed(assessment: Assessment) -> tuple[tuple[SeriousnessCriterion, ...], tuple[SeriousnessCriterion, ...]]:
    """The seriousness to record, and the criteria derived rather than reported, or the refusal.

    - Death is one fact said three ways (ICH E2A "results in death", outcome fatal, CTCAE grade 5): when
      they disagree nobody can tell which is wrong, so the form is refused naming the field that disagrees.
    - An adverse event the subject was hospitalized for meets the hospitalization criterion by definition:
      a missing criterion is derived (and said in the answer and the event), never a reason to delay an SAE.
    """
    said = {
        "outcome": assessment.outcome == AdverseEventOutcome.FATAL,
        "grade": assessment.grade == 5,
        "seriousness": SeriousnessCriterion.DEATH in assessment.seriousness,
    }
    if any(said.values()) and not all(said.values()):
        field = next(name for name, dead in said.items() if not dead)
        raise DeathInconsistent(
            f"death needs outcome fatal, grade 5 and the death criterion together; {field} disagrees "
            f"(outcome {assessment.outcome}, grade {assessment.grade}, "
            f"seriousness {[str(c) for c in assessment.seriousness]})",
            field=field,
        )
    derived: tuple[SeriousnessCriterion, ...] = ()
    if (
        assessment.action_taken == ActionTaken.HOSPITALIZED
        and SeriousnessCriterion.HOSPITALIZATION not in assessment.seriousness
    ):
        derived = (SeriousnessCriterion.HOSPITALIZATION,)
    return (*assessment.seriousness, *derived), derived


@dataclass(frozen=True)
class AdverseEvent:
    """An adverse event as it stands after its follow-ups."""

    ae_id: UUID
    term: str
    onset_date: date
    grade: int
    seriousness: tuple[SeriousnessCriterion, ...]
    action_taken: ActionTaken
    outcome: AdverseEventOutcome
    site_aware_at: datetime
    record_id: UUID  # its current record (report, correction or follow-up): what a correction supersedes
    relationship: ProcedureRelationship | None = None  # the investigator's causality assessment

    @property
    def serious(self) -> bool:
        return is_serious(self.grade, self.seriousness)


@dataclass(frozen=True)
class SafetyState:
    consented: bool = False
    adverse_events: dict[UUID, AdverseEvent] = field(default_factory=dict)
    alerts_by_ae: dict[UUID, SeriousAdverseEventAlertRaised] = field(default_factory=dict)
    acknowledged: dict[UUID, SeriousAdverseEventAcknowledged] = field(default_factory=dict)
    # Every record of an adverse event, current or not, to the event it is about: a stale correction is named.
    records: dict[UUID, UUID] = field(default_factory=dict)
    locked: bool = False


def evolve(state: SafetyState, recorded: RecordedEvent) -> SafetyState:
    record_id = recorded.envelope.id
    match event := recorded.data:
        case ConsentRecorded():
            return replace(state, consented=True)
        case AdverseEventReported():
            ae = AdverseEvent(
                event.ae_id,
                event.term,
                event.onset_date,
                event.grade,
                event.seriousness,
                event.action_taken,
                event.outcome,
                event.site_aware_at,
                record_id,
                event.relationship,
            )
            return replace(
                state,
                adverse_events={**state.adverse_events, ae.ae_id: ae},
                records={**state.records, record_id: ae.ae_id},
            )
        case AdverseEventUpdated():
            old = state.adverse_events.get(event.ae_id)
            if old is None:
                return state
            ae = replace(
                old,
                grade=event.grade if event.grade is not None else old.grade,
                seriousness=event.seriousness if event.seriousness is not None else old.seriousness,
                action_taken=event.action_taken or old.action_taken,
                outcome=event.outcome or old.outcome,
                relationship=event.relationship or old.relationship,
                # The 24-hour clock of an event that becomes serious starts when the site learned that.
                site_aware_at=event.site_aware_at if not old.serious else old.site_aware_at,
                record_id=record_id,
            )
            return replace(
                state,
                adverse_events={**state.adverse_events, ae.ae_id: ae},
                records={**state.records, record_id: ae.ae_id},
            )
        case SeriousAdverseEventAlertRaised():
            return replace(state, alerts_by_ae={**state.alerts_by_ae, event.ae_id: event})
        case CasebookLocked():
            return replace(state, locked=True)
        case CasebookUnlocked():
            return replace(state, locked=False)
        case SeriousAdverseEventAcknowledged():
            return replace(state, acknowledged={event.alert_id: event, **state.acknowledged})
        case _:
            return state


def replay(history: Sequence[RecordedEvent]) -> SafetyState:
    return reduce(evolve, history, SafetyState())


def _check_times(protocol: ProtocolDefinition, site: str, onset: date, aware: datetime, now: datetime) -> None:
    """Dates are the site's: an onset "today" is today where the subject is, whatever the UTC date."""
    if aware > now:
        raise DateInFuture(f"site_aware_at {aware.isoformat()} is after now", field="site_aware_at")
    today = protocol.local_date(site, now)
    if onset > today:
        raise DateInFuture(f"onset_date {onset} is after the site's today {today}", field="onset_date")
    aware_on = protocol.local_date(site, aware)
    if aware_on < onset:
        raise AwareBeforeOnset(f"site_aware_at {aware_on} (site date) precedes onset {onset}", field="site_aware_at")


def report(
    state: SafetyState,
    form: AdverseEventForm,
    *,
    ae_id: UUID,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    now: datetime,
    assesses: bool,
) -> list[DomainEvent]:
    """Accepted for any consented subject, withdrawn or not, at a suspended site too: safety information
    is never turned away. `assesses`: the caller may give the causality (an investigator); a coordinator reports
    without it, and a coordinator's correction keeps the investigator's assessment."""
    check_site(protocol, site, subject, enrolling=False)
    _assessed_by_an_investigator(form.relationship, assesses)
    if not state.consented:
        raise NotConsented(f"{subject} has no informed consent on record")
    relationship = form.relationship
    if form.supersedes is not None:
        # A correction of the whole report (term, onset, grade, seriousness, relationship): the same event.
        corrected = state.records.get(form.supersedes)
        current = state.adverse_events[corrected].record_id if corrected else None
        corrects(current, form.supersedes, form.reason, f"ae-{corrected}")
        assert corrected is not None
        ae_id = corrected
        if not assesses:
            relationship = state.adverse_events[corrected].relationship
    _check_times(protocol, site, form.onset_date, form.site_aware_at, now)
    seriousness, derived = assessed(Assessment(form.grade, tuple(form.seriousness), form.action_taken, form.outcome))
    return [
        AdverseEventReported(
            ae_id=ae_id,
            term=form.term,
            onset_date=form.onset_date,
            site_aware_at=form.site_aware_at,
            grade=form.grade,
            seriousness=seriousness,
            derived_seriousness=derived,
            serious=is_serious(form.grade, seriousness),
            relationship=relationship,
            action_taken=form.action_taken,
            outcome=form.outcome,
            supersedes=form.supersedes,
            while_locked=state.locked,
        )
    ]


class CausalityAssessment(NotDelegated):
    rule = "delegation.causality"


def _assessed_by_an_investigator(relationship: ProcedureRelationship | None, assesses: bool) -> None:
    if relationship is not None and not assesses:
        raise CausalityAssessment(
            "an adverse event's causality is the investigator's assessment: report it without the relationship; "
            "the investigator gives it",
            field="relationship",
        )


def follow_up(
    state: SafetyState,
    form: AdverseEventFollowUp,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    now: datetime,
    assesses: bool,
) -> list[DomainEvent]:
    check_site(protocol, site, subject, enrolling=False)
    _assessed_by_an_investigator(form.relationship, assesses)
    current = state.adverse_events.get(form.ae_id)
    if current is None:
        raise UnknownAdverseEvent(f"{subject} has no adverse event {form.ae_id}", field="ae_id")
    # The same rules as the first report, on the event as it will stand after this follow-up.
    _check_times(protocol, site, current.onset_date, form.site_aware_at, now)
    grade = form.grade if form.grade is not None else current.grade
    standing = Assessment(
        grade,
        tuple(form.seriousness) if form.seriousness is not None else current.seriousness,
        form.action_taken or current.action_taken,
        form.outcome or current.outcome,
    )
    seriousness, derived = assessed(standing)
    changed = form.seriousness is not None or bool(derived)
    return [
        AdverseEventUpdated(
            **form.model_dump(exclude={"seriousness"}),
            seriousness=seriousness if changed else None,
            derived_seriousness=derived,
            serious=is_serious(grade, seriousness),
            while_locked=state.locked,
        )
    ]


def raise_alert(
    state: SafetyState,
    ae_id: UUID,
    *,
    reported_at: datetime,
    alert_id: UUID,
    deviation_id: UUID,
    reported_on: date | None = None,
) -> list[DomainEvent]:
    """One alert per serious adverse event, however it became serious; a late report is also a deviation, on
    the report's date at the site (`reported_on`)."""
    ae = state.adverse_events.get(ae_id)
    if ae is None or not ae.serious or ae_id in state.alerts_by_ae:
        return []
    late = reported_at - ae.site_aware_at > REPORTING_DEADLINE
    alert = SeriousAdverseEventAlertRaised(
        alert_id=alert_id,
        ae_id=ae_id,
        term=ae.term,
        grade=ae.grade,
        seriousness=ae.seriousness,
        site_aware_at=ae.site_aware_at,
        reported_at=reported_at,
        late=late,
    )
    if not late:
        return [alert]
    hours = (reported_at - ae.site_aware_at) / timedelta(hours=1)
    deviation = ProtocolDeviationRecorded(
        deviation_id=deviation_id,
        code=LATE_SAE_DEVIATION,
        description=f"serious adverse event reported {hours:.1f} h after the site became aware (limit 24 h)",
        related_event_id=alert_id,
        occurred_on=reported_on,
    )
    return [alert, deviation]


def acknowledge(state: SafetyState, form: AlertAcknowledgement) -> list[DomainEvent]:
    alert_id = form.alert_id
    alert = next((a for a in state.alerts_by_ae.values() if a.alert_id == alert_id), None)
    if alert is None:
        raise UnknownAlert(f"no alert {alert_id}", field="alert_id")
    if alert_id in state.acknowledged:
        # By anyone, before: this acknowledgement is that one.
        raise RecordedBefore(state.acknowledged[alert_id])
    return [SeriousAdverseEventAcknowledged(alert_id=alert_id, ae_id=alert.ae_id)]


@dataclass(frozen=True)
class OpenAlert:
    alert: SeriousAdverseEventAlertRaised
    site: str
    subject: str
    raised_at: datetime
    escalations: int


def escalations_due(
    open_alerts: Sequence[OpenAlert], *, now: datetime, interval: timedelta
) -> list[tuple[OpenAlert, int]]:
    """Unacknowledged alerts past another whole interval since raised, with the escalation number due."""
    due = []
    for open_alert in open_alerts:
        reached = int((now - open_alert.raised_at) / interval)
        if reached > open_alert.escalations:
            due.append((open_alert, reached))
    return due


def escalate(state: SafetyState, alert_id: UUID, escalation: int, *, overdue_since: datetime) -> list[DomainEvent]:
    if alert_id in state.acknowledged:
        return []
    return [SeriousAdverseEventAlertEscalated(alert_id=alert_id, escalation=escalation, overdue_since=overdue_since)]

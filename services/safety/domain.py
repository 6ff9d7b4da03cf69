"""Pure safety rules: seriousness (ICH E2A), the 24-hour reporting clock, alerts and their escalation. No I/O."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import reduce
from uuid import UUID

from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    ConsentRecorded,
    DomainEvent,
    ProtocolDeviationRecorded,
    RecordedEvent,
    SeriousAdverseEventAcknowledged,
    SeriousAdverseEventAlertEscalated,
    SeriousAdverseEventAlertRaised,
)
from shared.contracts.forms import AdverseEventFollowUp, AdverseEventForm, SeriousnessCriterion
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.rules import DateInFuture, NotConsented, RecordedBefore, Refusal, RuleViolation, check_site

# ICH E2A / GCP: the site reports a serious adverse event to the sponsor within 24 hours of awareness.
REPORTING_DEADLINE = timedelta(hours=24)
LATE_SAE_DEVIATION = "SAE_REPORTED_LATE"


class UnknownAdverseEvent(RuleViolation):
    rule, kind, title = "ae.known", Refusal.NOT_FOUND, "Unknown adverse event"


class AwareBeforeOnset(RuleViolation):
    rule, kind, title = "ae.aware_after_onset", Refusal.INVALID, "Site aware before the event began"


class UnknownAlert(RuleViolation):
    rule, kind, title = "alert.known", Refusal.NOT_FOUND, "Unknown alert"


def is_serious(grade: int, seriousness: Sequence[SeriousnessCriterion]) -> bool:
    """Serious when any ICH E2A criterion applies, or the CTCAE grade is 5 (death)."""
    return grade == 5 or bool(seriousness)


@dataclass(frozen=True)
class AdverseEvent:
    """An adverse event as it stands after its follow-ups."""

    ae_id: UUID
    term: str
    grade: int
    seriousness: tuple[SeriousnessCriterion, ...]
    site_aware_at: datetime

    @property
    def serious(self) -> bool:
        return is_serious(self.grade, self.seriousness)


@dataclass(frozen=True)
class SafetyState:
    consented: bool = False
    adverse_events: dict[UUID, AdverseEvent] = field(default_factory=dict)
    alerts_by_ae: dict[UUID, SeriousAdverseEventAlertRaised] = field(default_factory=dict)
    acknowledged: dict[UUID, SeriousAdverseEventAcknowledged] = field(default_factory=dict)


def evolve(state: SafetyState, event: DomainEvent) -> SafetyState:
    match event:
        case ConsentRecorded():
            return replace(state, consented=True)
        case AdverseEventReported():
            ae = AdverseEvent(event.ae_id, event.term, event.grade, event.seriousness, event.site_aware_at)
            return replace(state, adverse_events={**state.adverse_events, ae.ae_id: ae})
        case AdverseEventUpdated():
            old = state.adverse_events.get(event.ae_id)
            if old is None:
                return state
            ae = replace(
                old,
                grade=event.grade if event.grade is not None else old.grade,
                seriousness=event.seriousness if event.seriousness is not None else old.seriousness,
                # The 24-hour clock of an event that becomes serious starts when the site learned that.
                site_aware_at=event.site_aware_at if not old.serious else old.site_aware_at,
            )
            return replace(state, adverse_events={**state.adverse_events, ae.ae_id: ae})
        case SeriousAdverseEventAlertRaised():
            return replace(state, alerts_by_ae={**state.alerts_by_ae, event.ae_id: event})
        case SeriousAdverseEventAcknowledged():
            return replace(state, acknowledged={event.alert_id: event, **state.acknowledged})
        case _:
            return state


def replay(history: Sequence[RecordedEvent]) -> SafetyState:
    return reduce(evolve, (e.data for e in history), SafetyState())


def _check_times(onset: date | None, aware: datetime, now: datetime) -> None:
    if aware > now:
        raise DateInFuture(f"site_aware_at {aware.isoformat()} is after now", field="site_aware_at")
    if onset is not None:
        if onset > now.date():
            raise DateInFuture(f"onset_date {onset} is after today", field="onset_date")
        if aware.date() < onset:
            raise AwareBeforeOnset(f"site_aware_at {aware.date()} precedes onset {onset}", field="site_aware_at")


def report(
    state: SafetyState,
    form: AdverseEventForm,
    *,
    ae_id: UUID,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    now: datetime,
) -> list[DomainEvent]:
    """Accepted for any consented subject, withdrawn or not: safety information is never turned away."""
    check_site(protocol, site, subject)
    if not state.consented:
        raise NotConsented(f"{subject} has no informed consent on record")
    _check_times(form.onset_date, form.site_aware_at, now)
    return [
        AdverseEventReported(
            ae_id=ae_id,
            term=form.term,
            onset_date=form.onset_date,
            site_aware_at=form.site_aware_at,
            grade=form.grade,
            seriousness=tuple(form.seriousness),
            serious=is_serious(form.grade, form.seriousness),
            relationship=form.relationship,
            action_taken=form.action_taken,
            outcome=form.outcome,
        )
    ]


def follow_up(
    state: SafetyState,
    form: AdverseEventFollowUp,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    now: datetime,
) -> list[DomainEvent]:
    check_site(protocol, site, subject)
    current = state.adverse_events.get(form.ae_id)
    if current is None:
        raise UnknownAdverseEvent(f"{subject} has no adverse event {form.ae_id}", field="ae_id")
    _check_times(None, form.site_aware_at, now)
    grade = form.grade if form.grade is not None else current.grade
    seriousness = tuple(form.seriousness) if form.seriousness is not None else current.seriousness
    return [
        AdverseEventUpdated(
            **form.model_dump(exclude={"seriousness"}),
            seriousness=tuple(form.seriousness) if form.seriousness is not None else None,
            serious=is_serious(grade, seriousness),
        )
    ]


def raise_alert(
    state: SafetyState, ae_id: UUID, *, reported_at: datetime, alert_id: UUID, deviation_id: UUID
) -> list[DomainEvent]:
    """One alert per serious adverse event, however it became serious; a late report is also a deviation."""
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
    )
    return [alert, deviation]


def acknowledge(state: SafetyState, alert_id: UUID) -> list[DomainEvent]:
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

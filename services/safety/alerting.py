"""Alerts: raised on every serious adverse event exactly once, escalated while nobody acknowledges them."""

from datetime import datetime, timedelta
from uuid import UUID, uuid5

import structlog
from nats.js import JetStreamContext

from services.safety import domain
from shared.contracts.alerts import AlertKind, SaeAlertMessage
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    DomainEvent,
    RecordedEvent,
    SeriousAdverseEventAcknowledged,
    SeriousAdverseEventAlertEscalated,
    SeriousAdverseEventAlertRaised,
)
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.alerts import publish_alert
from shared.runtime.decisions import record_on_subject
from shared.runtime.eventstore import EventStore, History, trial_wide
from shared.runtime.metrics import SAE_ALERTS_RECONCILED

log = structlog.get_logger(__name__)


def alert_id_for(ae_id: UUID) -> UUID:
    """One alert per adverse event, whichever report or follow-up made it serious."""
    return uuid5(ae_id, "sae-alert")


def alert_message(
    alert: SeriousAdverseEventAlertRaised,
    *,
    site: str,
    subject: str,
    raised_at: datetime,
    kind: AlertKind = AlertKind.RAISED,
    escalation: int = 0,
) -> SaeAlertMessage:
    return SaeAlertMessage(
        kind=kind,
        alert_id=alert.alert_id,
        ae_id=alert.ae_id,
        site=site,
        subject=subject,
        term=alert.term,
        grade=alert.grade,
        seriousness=alert.seriousness,
        site_aware_at=alert.site_aware_at,
        reported_at=alert.reported_at,
        raised_at=raised_at,
        late=alert.late,
        escalation=escalation,
    )


class SeriousAdverseEventAlerts:
    """Reaction: a serious adverse event (reported, or upgraded by a follow-up) raises one alert."""

    name = "sae-alerts"
    event_types: tuple[str, ...] = (AdverseEventReported.event_type, AdverseEventUpdated.event_type)

    def __init__(self, store: EventStore, js: JetStreamContext, protocol: ProtocolDefinition) -> None:
        self._store = store
        self._js = js
        self._protocol = protocol

    async def react(self, event: RecordedEvent) -> None:
        trigger = event.envelope
        data = event.data
        assert isinstance(data, AdverseEventReported | AdverseEventUpdated)
        if not data.serious:
            return
        site, subject = trigger.siteid, trigger.subject
        assert site is not None

        # The trigger's id stands for the command id: after a crash, the redelivered trigger finds what it recorded.
        outcome = await record_on_subject(
            self._store,
            recorder="safety",
            site=site,
            subject=subject,
            decide=lambda history: domain.raise_alert(
                domain.replay(history.events),
                data.ae_id,
                reported_at=trigger.time,
                alert_id=alert_id_for(data.ae_id),
                deviation_id=uuid5(data.ae_id, "late-sae-deviation"),
                reported_on=self._protocol.local_date(site, trigger.time),
            ),
            because_of=trigger.id,
            correlation_id=trigger.correlationid,
            protocol_version=self._protocol.version,
            trigger_sequence=event.sequence,
        )
        for recorded in outcome.events:
            if isinstance(recorded.data, SeriousAdverseEventAlertRaised):
                message = alert_message(recorded.data, site=site, subject=subject, raised_at=recorded.envelope.time)
                await publish_alert(self._js, message)
                log.warning(
                    "sae_alert_raised",
                    alert_id=str(recorded.data.alert_id),
                    site=site,
                    late=recorded.data.late,
                    replayed=outcome.replayed,
                )


async def reconcile_alerts(
    store: EventStore, alerts: SeriousAdverseEventAlerts, *, now: datetime, grace: timedelta
) -> int:
    """Every serious adverse event in the record has its alert, whatever became of the reaction's consumer: one
    serious for longer than `grace` without an alert is raised now, through the reaction itself (the same alert id,
    so never twice), and said with how late. Safe to run on every replica."""
    raised = {
        e.data.ae_id
        for e in (await store.load(trial_wide(SeriousAdverseEventAlertRaised.event_type))).events
        if isinstance(e.data, SeriousAdverseEventAlertRaised)
    }
    reports = [
        *(await store.load(trial_wide(AdverseEventReported.event_type))).events,
        *(await store.load(trial_wide(AdverseEventUpdated.event_type))).events,
    ]
    missed: dict[UUID, RecordedEvent] = {}
    for event in sorted(reports, key=lambda e: e.sequence):
        data = event.data
        overdue = now - event.envelope.time > grace
        if isinstance(data, AdverseEventReported | AdverseEventUpdated) and data.serious and overdue:
            missed.setdefault(data.ae_id, event)
    for ae_id in raised:
        missed.pop(ae_id, None)
    for ae_id, trigger in missed.items():
        await alerts.react(trigger)
        SAE_ALERTS_RECONCILED.inc()
        log.error(
            "sae_alert_raised_late",
            ae_id=str(ae_id),
            site=trigger.envelope.siteid,
            sequence=trigger.sequence,
            late_seconds=round((now - trigger.envelope.time).total_seconds()),
        )
    return len(missed)


async def escalate_overdue(
    store: EventStore, js: JetStreamContext, protocol: ProtocolDefinition, *, now: datetime, interval: timedelta
) -> int:
    """Escalate every alert unacknowledged for another whole interval; safe to run on every replica."""
    raised = (await store.load(trial_wide(SeriousAdverseEventAlertRaised.event_type))).events
    acknowledged = {
        e.data.alert_id
        for e in (await store.load(trial_wide(SeriousAdverseEventAcknowledged.event_type))).events
        if isinstance(e.data, SeriousAdverseEventAcknowledged)
    }
    escalated: dict[UUID, int] = {}
    for e in (await store.load(trial_wide(SeriousAdverseEventAlertEscalated.event_type))).events:
        if isinstance(e.data, SeriousAdverseEventAlertEscalated):
            escalated[e.data.alert_id] = max(escalated.get(e.data.alert_id, 0), e.data.escalation)
    open_alerts = [
        domain.OpenAlert(
            e.data, e.envelope.siteid or "", e.envelope.subject, e.envelope.time, escalated.get(e.data.alert_id, 0)
        )
        for e in raised
        if isinstance(e.data, SeriousAdverseEventAlertRaised) and e.data.alert_id not in acknowledged
    ]
    sent = 0
    for open_alert, number in domain.escalations_due(open_alerts, now=now, interval=interval):
        alert = open_alert.alert

        def decide(
            history: History,
            alert_id: UUID = alert.alert_id,
            number: int = number,
            overdue_since: datetime = open_alert.raised_at + interval,
        ) -> list[DomainEvent]:
            return domain.escalate(domain.replay(history.events), alert_id, number, overdue_since=overdue_since)

        outcome = await record_on_subject(
            store,
            recorder="safety",
            site=open_alert.site,
            subject=open_alert.subject,
            decide=decide,
            because_of=uuid5(alert.alert_id, f"escalation-{number}"),
            correlation_id=f"escalation-{alert.alert_id}",
            protocol_version=protocol.version,
        )
        if outcome.events:
            message = alert_message(
                alert,
                site=open_alert.site,
                subject=open_alert.subject,
                raised_at=open_alert.raised_at,
                kind=AlertKind.OVERDUE,
                escalation=number,
            )
            await publish_alert(js, message)
            sent += 1
            log.warning("sae_alert_escalated", alert_id=str(alert.alert_id), escalation=number, site=open_alert.site)
    return sent

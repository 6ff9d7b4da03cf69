"""An SAE alert does not hang on one consumer's configuration: a reaction consumer changed behind its owner's back is
found and made again, and the safety service's reconciliation raises any alert the reaction missed, once."""

import json
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from services.safety.alerting import SeriousAdverseEventAlerts, alert_id_for, reconcile_alerts
from shared.contracts.alerts import ALERTS_PREFIX, SaeAlertMessage
from shared.contracts.events import (
    AdverseEventReported,
    ConsentRecorded,
    DomainEvent,
    EventEnvelope,
    EventMetadata,
    SeriousAdverseEventAlertRaised,
)
from shared.contracts.protocol import load_protocol
from shared.runtime.consumers import Delivery
from shared.runtime.eventstore import EVENTS_STREAM, EventStore, subject_history
from shared.runtime.metrics import CONSUMER_DRIFT
from shared.runtime.reactions import ReactionRunner
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.conftest import UNNAMED_CREATE, silencing

pytestmark = pytest.mark.integration
PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
GRACE = timedelta(seconds=20)


def serious_ae() -> AdverseEventReported:
    return AdverseEventReported(
        ae_id=uuid4(),
        term="Scalp necrosis",
        onset_date=date(2026, 11, 30),
        site_aware_at=datetime(2026, 12, 1, 8, tzinfo=UTC),
        grade=3,
        seriousness=("hospitalization_or_prolongation",),
        serious=True,
        action_taken="hospitalized",
        outcome="recovering",
    )


async def record(store: EventStore, subject: str, fact: DomainEvent, at: datetime) -> None:
    meta = EventMetadata("/trial/test", "NFH", subject, "inv-01", "setup", PROTOCOL.version)
    history = await store.load(subject_history("NFH", subject))
    envelope = EventEnvelope.wrap(fact, meta, event_id=uuid4(), time=at)
    await store.append([envelope], subject_filter=history.subject_filter, expected_last_sequence=history.last_sequence)


async def consented(store: EventStore, subject: str, at: datetime) -> None:
    consent = ConsentRecorded(
        consent_form_version="1.0",
        signed_on=at.date(),
        obtained_by="inv-01",
        signed_by_subject=True,
        signed_by_representative=False,
    )
    await record(store, subject, consent, at)


async def test_a_reaction_consumer_rewritten_behind_its_back_is_an_alarm_and_is_made_again(own_nc: Client) -> None:
    js = own_nc.jetstream()
    runner = ReactionRunner(SeriousAdverseEventAlerts(EventStore(js), js, PROTOCOL), js)
    await runner.ensure_consumer()
    made = Delivery.of((await js.consumer_info(EVENTS_STREAM, runner.durable)).config)
    await own_nc.request(UNNAMED_CREATE, json.dumps(silencing(runner.durable)).encode())
    assert Delivery.of((await js.consumer_info(EVENTS_STREAM, runner.durable)).config) != made, "the server took it"
    alarms = CONSUMER_DRIFT.labels(consumer=runner.durable)._value.get()

    await runner.ensure_consumer()

    info = await js.consumer_info(EVENTS_STREAM, runner.durable)
    assert Delivery.of(info.config) == made
    assert info.config.deliver_policy == api.DeliverPolicy.ALL, "made again from the record's start"
    assert CONSUMER_DRIFT.labels(consumer=runner.durable)._value.get() == alarms + 1


async def alerts_for(js: JetStreamContext, ae_id: str) -> list[SaeAlertMessage]:
    sub = await js.subscribe(f"{ALERTS_PREFIX}.>", ordered_consumer=True, deliver_policy=api.DeliverPolicy.ALL)
    found = []
    try:
        while True:
            msg = await sub.next_msg(timeout=1)
            alert = SaeAlertMessage.model_validate_json(msg.data)
            if str(alert.ae_id) == ae_id:
                found.append(alert)
            if msg.metadata.num_pending == 0:
                return found
    finally:
        await sub.unsubscribe()


async def test_a_serious_adverse_event_the_reaction_never_saw_gets_its_alert_once_from_the_reconciliation(
    own_nc: Client,
) -> None:
    js = own_nc.jetstream()
    store = EventStore(js)
    reported_at = datetime.now(UTC) - timedelta(minutes=5)
    subject = "NFH-001"  # a record of its own (own_nc)
    await consented(store, subject, reported_at - timedelta(days=30))
    sae = serious_ae()
    await record(store, subject, sae, reported_at)
    alerts = SeriousAdverseEventAlerts(store, js, PROTOCOL)

    assert await reconcile_alerts(store, alerts, now=reported_at + GRACE / 2, grace=GRACE) == 0, "the reaction's turn"
    assert await reconcile_alerts(store, alerts, now=datetime.now(UTC), grace=GRACE) == 1
    assert await reconcile_alerts(store, alerts, now=datetime.now(UTC), grace=GRACE) == 0, "raised once"

    history = (await store.load(subject_history("NFH", subject))).events
    [raised] = [e.data for e in history if isinstance(e.data, SeriousAdverseEventAlertRaised)]
    assert raised.alert_id == alert_id_for(sae.ae_id)
    [message] = await alerts_for(js, str(sae.ae_id))
    assert message.alert_id == raised.alert_id
    assert message.raised_at - message.reported_at >= timedelta(minutes=5), "how late it came is on the alert"

"""SAE alerts through the real system: delivered until acknowledged, exactly once across a crash, escalated on time."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from devstack.examples import serious_adverse_event
from ops.bus_permissions import SAE_REACTION_CONSUMER
from services.gateway.auth import Role
from services.safety.alerting import escalate_overdue
from services.safety.watch import AlertWatcher
from shared.contracts.alerts import ALERTS_PREFIX, ALERTS_STREAM, AlertKind, SaeAlertMessage
from shared.contracts.events import (
    AdverseEventReported,
    EventEnvelope,
    EventMetadata,
    ProtocolDeviationRecorded,
    SeriousAdverseEventAlertEscalated,
    SeriousAdverseEventAlertRaised,
)
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.eventstore import EVENTS_STREAM, EventStore, PullFeed, subject_history
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import UNNAMED_CREATE, SubjectIds, silencing
from tests.e2e.api import System, consented, headers, new_key, token

pytestmark = pytest.mark.e2e


@pytest.fixture
async def alert_inbox(js: JetStreamContext) -> AsyncIterator[PullFeed]:
    """A durable subscriber of the SAE alerts (new ones only), redelivering after one second."""
    name = f"test-inbox-{uuid.uuid4().hex[:8]}"
    config = api.ConsumerConfig(
        durable_name=name,
        filter_subject=f"{ALERTS_PREFIX}.>",
        deliver_policy=api.DeliverPolicy.NEW,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=1.0,
    )
    await js.add_consumer(ALERTS_STREAM, config=config)
    async with PullFeed(js, ALERTS_STREAM, name, batch=10) as feed:
        yield feed
    await js.delete_consumer(ALERTS_STREAM, name)


async def next_alert_for(feed: PullFeed, ae_id: str, timeout: float = 15) -> tuple[SaeAlertMessage, Msg]:
    async with asyncio.timeout(timeout):
        while True:
            msgs = await feed.next()
            found: tuple[SaeAlertMessage, Msg] | None = None
            for msg in msgs:
                alert = SaeAlertMessage.model_validate_json(msg.data)
                if found is not None:
                    await msg.nak()  # fetched after ours: back to the server, delivered again at once
                elif str(alert.ae_id) == ae_id:
                    found = alert, msg
                else:
                    await msg.ack()  # another test's alert
            if found is not None:
                return found


async def report(client: httpx.AsyncClient, site: str, subject: str, bearer: str, **changes: Any) -> dict[str, Any]:
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/adverse-events",
        json=serious_adverse_event(**changes),
        headers=headers(bearer, new_key()),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_sae_reaches_a_durable_subscriber_again_until_acknowledged_and_then_no_more(
    client: httpx.AsyncClient, subject_ids: SubjectIds, alert_inbox: PullFeed, system: System
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    body = await report(client, site, subject, bearer)
    assert body["serious"] is True
    alert, _ = await next_alert_for(alert_inbox, body["ae_id"])
    assert (alert.kind, alert.site, alert.subject, alert.late) == (AlertKind.RAISED, site, subject, False)
    # Not acknowledged: delivered again.
    again, redelivered = await next_alert_for(alert_inbox, body["ae_id"])
    assert again.alert_id == alert.alert_id and redelivered.metadata.num_delivered >= 2
    # Acknowledged by the safety officer through the watch tool: no more deliveries.
    officer = {"Authorization": f"Bearer {token(Role.SAFETY_OFFICER)}"}
    async with httpx.AsyncClient(base_url=system.url, headers=officer) as gateway:
        watcher = AlertWatcher(gateway, show=lambda _: None)
        for _ in range(300):  # the read model shows the alert shortly after it was raised
            if (await gateway.get(f"/v1/safety/alerts/{alert.alert_id}")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert await watcher.receive(redelivered) is not None
        assert await watcher.acknowledge(str(alert.alert_id)[:8])
        assert await watcher.acknowledge(str(alert.alert_id)[:8]) is False, "nothing left open to acknowledge"
        # A delivery already on its way when the acknowledgement was recorded is recognised and settled;
        # after that, the alert is not delivered again.
        late_deliveries = 0
        with contextlib.suppress(TimeoutError):
            for _ in range(5):
                _, msg = await next_alert_for(alert_inbox, body["ae_id"], timeout=3)
                assert await watcher.receive(msg) is None, "an acknowledged alert is not shown again"
                late_deliveries += 1
        assert late_deliveries <= 2, "settled deliveries stop coming"


async def test_an_sae_reported_while_the_reactions_consumer_is_rewritten_to_deliver_nothing_still_raises_its_alert(
    client: httpx.AsyncClient, subject_ids: SubjectIds, alert_inbox: PullFeed, nc: Client, js: JetStreamContext
) -> None:
    # Only the administrator can still do this (no service user may: test_bus_permissions); done all the same.
    answer = await nc.request(UNNAMED_CREATE, json.dumps(silencing(SAE_REACTION_CONSUMER)).encode())
    assert b'"error"' not in answer.data, answer.data
    site, subject, bearer = await consented(client, subject_ids)

    body = await report(client, site, subject, bearer)

    alert, msg = await next_alert_for(alert_inbox, body["ae_id"], timeout=60)
    await msg.ack()
    assert (alert.site, alert.subject) == (site, subject)
    info = await js.consumer_info(EVENTS_STREAM, SAE_REACTION_CONSUMER)
    assert set(info.config.filter_subjects or []) == {
        "trial.events.*.*.AdverseEventReported",
        "trial.events.*.*.AdverseEventUpdated",
    }, "the reaction made its consumer again"


async def test_acknowledging_twice_returns_the_first_acknowledgement(
    client: httpx.AsyncClient, subject_ids: SubjectIds, store: EventStore
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    body = await report(client, site, subject, bearer, grade=5, seriousness=["death"], outcome="fatal")
    alert_id = await alert_recorded(store, site, subject)
    officer = token(Role.SAFETY_OFFICER)
    path = f"/v1/safety/alerts/{alert_id}/acknowledgement"
    first = await client.post(path, headers=headers(officer, new_key()))
    second = await client.post(path, headers=headers(officer, new_key()))
    assert first.status_code == second.status_code == 201
    assert first.json()["event_id"] == second.json()["event_id"] and first.json()["subject"] == subject
    assert (await client.post(path, headers=headers(bearer, new_key()))).status_code == 403
    assert body["serious"]


async def alert_recorded(store: EventStore, site: str, subject: str, timeout: float = 15) -> uuid.UUID:
    async with asyncio.timeout(timeout):
        while True:
            events = (await store.load(subject_history(site, subject))).events
            alerts = [e.data for e in events if isinstance(e.data, SeriousAdverseEventAlertRaised)]
            if alerts:
                assert len(alerts) == 1
                return alerts[0].alert_id
            await asyncio.sleep(0.05)


async def test_an_ae_appended_while_safety_is_down_raises_exactly_one_alert_when_it_returns(
    system: System, client: httpx.AsyncClient, subject_ids: SubjectIds, store: EventStore, protocol: ProtocolDefinition
) -> None:
    site, subject, _ = await consented(client, subject_ids)
    system.processes.kill("safety")
    try:
        # What the service had appended the moment before it was killed, before its reaction ran.
        history = await store.load(subject_history(site, subject))
        ae = AdverseEventReported(
            ae_id=uuid.uuid4(),
            term="Anaphylaxis",
            onset_date=datetime.now(UTC).date(),
            site_aware_at=datetime.now(UTC) - timedelta(minutes=5),
            grade=4,
            seriousness=("life_threatening",),
            serious=True,
            relationship={"fat_graft": "probable", "hair_transplantation": "unlikely"},
            action_taken="treatment_given",
            outcome="recovering",
        )
        meta = EventMetadata("/trial/safety", site, subject, "sc-1", "crash-test", protocol.version)
        envelope = EventEnvelope.wrap(ae, meta, event_id=uuid.uuid4(), time=datetime.now(UTC))
        await store.append(
            [envelope], subject_filter=subject_history(site, subject), expected_last_sequence=history.last_sequence
        )
    finally:
        system.processes.start("safety")
    await alert_recorded(store, site, subject)
    await asyncio.sleep(1.0)  # time for a duplicate to appear, were there one
    events = (await store.load(subject_history(site, subject))).events
    assert sum(isinstance(e.data, SeriousAdverseEventAlertRaised) for e in events) == 1


async def test_safety_killed_right_after_the_report_still_raises_exactly_one_alert(
    system: System, client: httpx.AsyncClient, subject_ids: SubjectIds, store: EventStore
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    await report(client, site, subject, bearer, grade=4, seriousness=["life_threatening"])
    system.processes.kill("safety")
    system.processes.start("safety")
    await alert_recorded(store, site, subject, timeout=45)  # redelivery after the reaction ack wait
    await asyncio.sleep(1.0)
    events = (await store.load(subject_history(site, subject))).events
    assert sum(isinstance(e.data, SeriousAdverseEventAlertRaised) for e in events) == 1


async def test_a_late_report_is_flagged_and_recorded_as_a_deviation(
    client: httpx.AsyncClient, subject_ids: SubjectIds, store: EventStore, read_pool: asyncpg.Pool
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    aware = datetime.now(UTC) - timedelta(hours=30)
    await report(client, site, subject, bearer, site_aware_at=aware.isoformat(), onset_date=aware.date().isoformat())
    await alert_recorded(store, site, subject)
    # The alert and the deviation are one decision, appended one after the other: read until both are there.
    async with asyncio.timeout(15):
        while True:
            events = (await store.load(subject_history(site, subject))).events
            if any(isinstance(e.data, ProtocolDeviationRecorded) for e in events):
                break
            await asyncio.sleep(0.05)
    [alert] = [e for e in events if isinstance(e.data, SeriousAdverseEventAlertRaised)]
    assert alert.data.late  # type: ignore[attr-defined]
    [deviation] = [e for e in events if isinstance(e.data, ProtocolDeviationRecorded)]
    await wait_for_checkpoint(read_pool, "safety", deviation.sequence)
    row = await read_pool.fetchrow("SELECT code FROM protocol_deviations WHERE subject_id = $1", subject)
    assert row is not None and row["code"] == "SAE_REPORTED_LATE"
    assert await read_pool.fetchval("SELECT late FROM sae_alerts WHERE subject_id = $1", subject) is True


async def test_an_unacknowledged_alert_is_escalated_at_each_interval_with_a_fixed_clock(
    client: httpx.AsyncClient,
    subject_ids: SubjectIds,
    store: EventStore,
    js: JetStreamContext,
    protocol: ProtocolDefinition,
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    body = await report(client, site, subject, bearer)
    await alert_recorded(store, site, subject)
    raised_at = next(
        e.envelope.time
        for e in (await store.load(subject_history(site, subject))).events
        if isinstance(e.data, SeriousAdverseEventAlertRaised)
    )
    hour = timedelta(hours=1)

    async def escalations(now: datetime) -> list[int]:
        await escalate_overdue(store, js, protocol, now=now, interval=hour)
        return [
            e.data.escalation
            for e in (await store.load(subject_history(site, subject))).events
            if isinstance(e.data, SeriousAdverseEventAlertEscalated)
        ]

    assert await escalations(raised_at + timedelta(minutes=59)) == []
    assert await escalations(raised_at + timedelta(minutes=61)) == [1]
    assert await escalations(raised_at + timedelta(minutes=61)) == [1], "not twice for the same interval"
    assert await escalations(raised_at + timedelta(minutes=121)) == [1, 2]
    # Each escalation is on the stream once, on trial.alerts.sae-overdue.<site>.
    overdue = await js.subscribe(f"{ALERTS_PREFIX}.{AlertKind.OVERDUE.value}.{site}", ordered_consumer=True)
    seen: list[int] = []
    try:
        with contextlib.suppress(nats.errors.TimeoutError):
            while True:
                alert = SaeAlertMessage.model_validate_json((await overdue.next_msg(timeout=2)).data)
                if str(alert.ae_id) == body["ae_id"]:
                    seen.append(alert.escalation)
    finally:
        await overdue.unsubscribe()
    assert seen == [1, 2]


async def test_grade_5_marks_the_subject_as_died_in_the_read_model(
    client: httpx.AsyncClient, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/adverse-events",
        json=serious_adverse_event(grade=5, seriousness=["death"], outcome="fatal"),
        headers=headers(bearer, new_key()),
    )
    await wait_for_checkpoint(read_pool, "subjects", response.json()["stream_sequence"])
    await wait_for_checkpoint(read_pool, "safety", response.json()["stream_sequence"])
    read = (await client.get(f"/v1/sites/{site}/subjects/{subject}", headers=headers(bearer))).json()
    assert read["state"] == "died" and read["died_on"] is not None
    assert [(a["grade"], a["serious"], a["outcome"]) for a in read["adverse_events"]] == [(5, True, "fatal")]
    other_site = next(s for s in ("NFH", "GZ2", "SZ3") if s != site)
    forbidden = await client.get(
        f"/v1/sites/{site}/subjects/{subject}", headers=headers(token(Role.INVESTIGATOR, other_site))
    )
    assert forbidden.status_code == 403, "a site role sees only its own site's adverse events"


async def test_open_alerts_are_for_safety_officers_only(client: httpx.AsyncClient) -> None:
    assert (
        await client.get("/v1/safety/alerts", headers=headers(token(Role.SITE_COORDINATOR, "NFH")))
    ).status_code == 403
    listed = await client.get("/v1/safety/alerts?state=open", headers=headers(token(Role.SAFETY_OFFICER)))
    assert listed.status_code == 200 and all(a["acknowledged_at"] is None for a in listed.json())


async def test_no_clinical_text_posted_reaches_any_services_log(
    system: System, client: httpx.AsyncClient, subject_ids: SubjectIds, store: EventStore
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    sentinel = f"Sentinel dermatitis {uuid.uuid4().hex[:8]}"
    await report(client, site, subject, bearer, term=sentinel, grade=4, seriousness=["life_threatening"])
    malformed = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/adverse-events",
        json=serious_adverse_event(term=sentinel, grade=9),
        headers=headers(bearer, new_key()),
    )
    assert malformed.status_code == 422
    await alert_recorded(store, site, subject)
    assert system.processes.log_dir is not None
    logs = {path.name: path.read_text(errors="replace") for path in system.processes.log_dir.glob("*.log")}
    assert {"gateway.log", "safety.log", "reporting.log"} <= set(logs)
    assert [name for name, text in logs.items() if sentinel in text] == []

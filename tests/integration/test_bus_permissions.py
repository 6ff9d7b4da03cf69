"""Least privilege on the bus: each credential can say only its own kind of fact, and nobody can erase the record."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import nats
import nats.errors
import nats.js.errors
import pytest
import structlog.testing
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from ops.bus_permissions import ENROLLMENT_REACTION_CONSUMER, PERMISSIONS, PROJECTION_CONSUMERS, SAE_REACTION_CONSUMER
from services.randomization.enrollment import EnrollmentClosing
from services.reporting.projections import all_projections
from services.safety.alerting import SeriousAdverseEventAlerts
from shared.contracts.alerts import ALERTS_STREAM
from shared.contracts.events import EventEnvelope, EventMetadata
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime import bus
from shared.runtime.deadletters import dead_letters, original
from shared.runtime.eventstore import EVENTS_STREAM, EventStore, subject_history
from shared.runtime.reactions import ReactionRunner
from tests.conftest import UNNAMED_CREATE, Servers, SubjectIds, silencing
from tests.unit.shared.test_envelope import CONSENT

pytestmark = pytest.mark.integration

Connect = Callable[[str], Awaitable[tuple[Client, list[Exception]]]]


@pytest.fixture
async def connect(servers: Servers, nc: Client) -> AsyncIterator[Connect]:
    """Connections as each user; `nc` (the administrator) has provisioned the streams."""
    if not servers.nats_urls:
        pytest.fail("the test servers run without per-service users; least privilege cannot be checked")
    opened: list[Client] = []

    async def as_user(user: str) -> tuple[Client, list[Exception]]:
        errors: list[Exception] = []

        async def record(error: Exception) -> None:
            errors.append(error)

        client = await bus.connect(servers.nats_urls[user], name=f"test-{user}", error_cb=record)
        opened.append(client)
        return client, errors

    yield as_user
    for client in opened:
        await client.close()


async def refused(action: Awaitable[object], errors: list[Exception]) -> bool:
    """The server refused: a permissions violation came back (the connection's only one: `errors` is cleared
    between actions), so the request can get no answer, or the request got none and a violation came back. The
    violation comes at once; waiting out the request's timeout after it would tell nothing more."""

    def violated() -> bool:
        return any("permissions violation" in str(e) for e in errors)

    pending = asyncio.ensure_future(action)
    while not pending.done() and not violated():
        await asyncio.wait({pending}, timeout=0.005)
    if not pending.done():
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, nats.errors.TimeoutError):
            await pending
        return True
    try:
        pending.result()
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return violated()
    return False


FOREIGN_FACT = {
    "screening": "SubjectRandomized",
    "randomization": "SubjectScreened",
    "visits": "AdverseEventReported",
    "safety": "GraftProcedurePerformed",
}
OWN_FACT = {
    "screening": "ConsentRecorded",
    "randomization": "SubjectRandomized",
    "visits": "VisitCompleted",
    "safety": "AdverseEventReported",
}


@pytest.mark.parametrize("service", sorted(FOREIGN_FACT))
async def test_a_service_cannot_append_another_services_kind_of_fact(connect: Connect, service: str) -> None:
    nc, errors = await connect(service)
    js = nc.jetstream(timeout=0.5)
    forged = js.publish(f"trial.events.NFH.NFH-990.{FOREIGN_FACT[service]}", b"{}", timeout=0.5)
    assert await refused(forged, errors)


@pytest.mark.parametrize("service", sorted(OWN_FACT))
async def test_a_service_reaches_its_own_subjects(connect: Connect, service: str, store: EventStore) -> None:
    site, subject = SubjectIds.synthetic()
    meta = EventMetadata("/trial/test", site, subject, "tester", "probe", "1.0")
    envelope = EventEnvelope.wrap(CONSENT, meta, event_id=uuid.uuid4(), time=datetime.now(UTC))
    await store.append([envelope], subject_filter=subject_history(site, subject), expected_last_sequence=0)
    nc, errors = await connect(service)
    # Reading histories is allowed (every decision reads one); the stream's configuration is not touched.
    info = await nc.jetstream(timeout=0.5).stream_info(EVENTS_STREAM)
    assert info.config.name == EVENTS_STREAM and not errors
    # ... by direct gets, and on a replicated stream the leader's word as well.
    for confirm in (False, True):
        theirs = EventStore(nc.jetstream(timeout=2), confirm_on_leader=confirm)
        assert [e.envelope.id for e in (await theirs.load(subject_history(site, subject))).events] == [envelope.id]
        assert not errors


@pytest.mark.parametrize("service", ["screening", "randomization", "visits", "reporting", "gateway"])
async def test_only_the_safety_service_raises_alerts(connect: Connect, service: str) -> None:
    nc, errors = await connect(service)
    assert await refused(nc.jetstream(timeout=0.5).publish("trial.alerts.sae.NFH", b"{}", timeout=0.5), errors)


@pytest.mark.parametrize("user", sorted(set(PERMISSIONS) - {"admin"}))
async def test_no_credential_but_the_administrators_can_delete_or_purge_the_record(connect: Connect, user: str) -> None:
    nc, errors = await connect(user)
    js = nc.jetstream(timeout=0.5)
    assert await refused(js.delete_stream(EVENTS_STREAM), errors)
    errors.clear()
    assert await refused(js.purge_stream(EVENTS_STREAM), errors)


async def test_the_gateway_only_sends_commands(connect: Connect) -> None:
    nc, errors = await connect("gateway")
    assert await refused(
        nc.jetstream(timeout=0.5).publish("trial.events.NFH.NFH-990.ConsentRecorded", b"{}", timeout=0.5), errors
    )


async def test_the_safety_team_credential_reads_and_acknowledges_alerts_and_nothing_else(
    connect: Connect, nc: Client
) -> None:
    # The safety team's durable consumer exists (provisioned with the streams).
    await nc.jetstream().publish("trial.alerts.sae.NFH", b'{"probe": true}', stream=ALERTS_STREAM)
    team, errors = await connect("safety-team")
    js = team.jetstream(timeout=0.5)
    sub = await js.pull_subscribe_bind(durable="safety-team", stream=ALERTS_STREAM)
    msgs = await sub.fetch(100, timeout=5)
    assert msgs
    for msg in msgs:
        await msg.ack()
    assert not errors
    assert await refused(js.stream_info(EVENTS_STREAM), errors), "it cannot look at the event stream"
    errors.clear()
    assert await refused(js.publish("trial.alerts.sae.NFH", b"{}", timeout=0.5), errors), "nor raise alerts"
    errors.clear()
    assert await refused(js.pull_subscribe("trial.events.>", durable="spy", stream=EVENTS_STREAM), errors)


async def subscription_refused(nc: Client, subject: str, errors: list[Exception]) -> bool:
    """The server refuses the subscription (the error comes back asynchronously) and delivers nothing."""
    sub = await nc.subscribe(subject)
    await nc.flush()
    for _ in range(50):
        if any("permissions violation for subscription" in str(e) for e in errors):
            break
        await asyncio.sleep(0.02)
    with contextlib.suppress(nats.errors.Error):
        await sub.unsubscribe()
    return any("permissions violation for subscription" in str(e) for e in errors)


@pytest.mark.parametrize("user", sorted(set(PERMISSIONS) - {"admin"}))
async def test_no_user_can_read_another_users_replies(connect: Connect, user: str) -> None:
    nc, errors = await connect(user)
    for other in ("_INBOX.>", "_INBOX_gateway.>", "_INBOX_randomization.>", ">"):
        if other == f"_INBOX_{user}.>":
            continue
        errors.clear()
        assert await subscription_refused(nc, other, errors), f"{user} may read {other}"


async def test_a_reply_reaches_only_the_asker(connect: Connect) -> None:
    """The gateway asks a command of a responder; a spy holding another credential sees nothing of it."""
    gateway, _ = await connect("gateway")
    screening, _ = await connect("screening")
    spy, spy_errors = await connect("safety-team")
    seen: list[bytes] = []

    async def note(msg: Msg) -> None:
        seen.append(msg.data)

    await spy.subscribe(f"{bus.inbox_prefix_of('gateway')}.>", cb=note)
    await spy.subscribe("_INBOX.>", cb=note)

    async def answer(msg: Msg) -> None:
        await msg.respond(b"secret answer")

    await screening.subscribe("trial.cmd.screening.probe", cb=answer)
    await screening.flush()
    # Once seen answering "no responders" on a loaded machine, though the subscription was flushed: ask
    # again for a few seconds; what is checked is who else sees the answer.
    async with asyncio.timeout(10):
        while True:
            try:
                reply = await gateway.request("trial.cmd.screening.probe", b"{}", timeout=2)
                break
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.2)
    assert reply.data == b"secret answer"
    await asyncio.sleep(0.2)
    assert seen == [] and any("permissions violation" in str(e) for e in spy_errors)


SILENCE_SAE_ALERTS = silencing(SAE_REACTION_CONSUMER)


@pytest.mark.parametrize("user", sorted(set(PERMISSIONS) - {"admin"}))
async def test_no_service_user_may_create_a_consumer_whose_name_is_in_the_request_body(
    connect: Connect, user: str
) -> None:
    nc, errors = await connect(user)
    body = {"stream_name": EVENTS_STREAM, "config": {"filter_subject": "trial.events.>", "ack_policy": "none"}}
    assert await refused(nc.request(UNNAMED_CREATE, json.dumps(body).encode(), timeout=0.5), errors)


@pytest.mark.parametrize("user", sorted(set(PERMISSIONS) - {"admin"}))
async def test_no_service_user_may_create_or_change_a_durable_consumer_it_does_not_own(
    connect: Connect, user: str, js: JetStreamContext
) -> None:
    nc, errors = await connect(user)
    owned = {
        c
        for c in (*PROJECTION_CONSUMERS, SAE_REACTION_CONSUMER, ENROLLMENT_REACTION_CONSUMER)
        if f"$JS.API.CONSUMER.CREATE.{EVENTS_STREAM}.{c}" in PERMISSIONS[user].publish
    }
    for name in {*PROJECTION_CONSUMERS, SAE_REACTION_CONSUMER, ENROLLMENT_REACTION_CONSUMER} - owned:
        body = {"stream_name": EVENTS_STREAM, "config": {"name": name, "filter_subject": "trial.events.NOTHING.>"}}
        subject = f"$JS.API.CONSUMER.CREATE.{EVENTS_STREAM}.{name}"
        assert await refused(nc.request(subject, json.dumps(body).encode(), timeout=0.5), errors), name
        errors.clear()


@pytest.fixture
async def sae_reaction_consumer(
    js: JetStreamContext, store: EventStore, protocol: ProtocolDefinition
) -> api.ConsumerInfo:
    """The SAE reaction's durable consumer, made as the safety service makes it."""
    await ReactionRunner(SeriousAdverseEventAlerts(store, js, protocol), js).ensure_consumer()
    info: api.ConsumerInfo = await js.consumer_info(EVENTS_STREAM, SAE_REACTION_CONSUMER)
    return info


@pytest.mark.parametrize("user", sorted(set(PERMISSIONS) - {"admin", "safety"}))
async def test_nobody_but_safety_can_delete_take_over_or_drain_the_sae_reactions_consumer(
    connect: Connect, user: str, sae_reaction_consumer: api.ConsumerInfo, js: JetStreamContext
) -> None:
    nc, errors = await connect(user)
    theirs = nc.jetstream(timeout=0.5)
    assert await refused(theirs.delete_consumer(EVENTS_STREAM, SAE_REACTION_CONSUMER), errors)
    errors.clear()
    rewritten = api.ConsumerConfig(durable_name=SAE_REACTION_CONSUMER, filter_subject="trial.events.nowhere")
    assert await refused(theirs.add_consumer(EVENTS_STREAM, config=rewritten), errors)
    errors.clear()
    renamed = api.ConsumerConfig(name=SAE_REACTION_CONSUMER, filter_subject="trial.events.nowhere")
    with contextlib.suppress(nats.js.errors.APIError):  # refused by permission or by the server
        await refused(theirs.add_consumer(EVENTS_STREAM, config=renamed), errors)
    errors.clear()
    # The unnamed create takes the name from the body and creates or updates what it names: nobody has it.
    assert await refused(nc.request(UNNAMED_CREATE, json.dumps(SILENCE_SAE_ALERTS).encode(), timeout=0.5), errors)
    errors.clear()
    assert await refused(
        nc.request(f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{SAE_REACTION_CONSUMER}", b"1", timeout=0.5), errors
    )
    after = await js.consumer_info(EVENTS_STREAM, SAE_REACTION_CONSUMER)
    assert after.config.filter_subjects == sae_reaction_consumer.config.filter_subjects
    assert after.config.filter_subject == sae_reaction_consumer.config.filter_subject


def test_the_durable_names_granted_are_the_ones_the_services_use(protocol: ProtocolDefinition) -> None:
    # The read models' one feed, and (to delete each, once) the consumers that fed them one each before.
    expected = {"projection-read-models", *(f"projection-{p.name}" for p in all_projections(protocol))}
    assert expected == set(PROJECTION_CONSUMERS)
    assert f"reaction-{SeriousAdverseEventAlerts.name}" == SAE_REACTION_CONSUMER
    assert f"reaction-{EnrollmentClosing.name}" == ENROLLMENT_REACTION_CONSUMER
    # A reaction that gives up on a message dead-letters it: each service may, for its own reactions.
    assert f"trial.deadletters.reaction.{EnrollmentClosing.name}" in PERMISSIONS["randomization"].publish
    assert "trial.deadletters.reaction.>" in PERMISSIONS["safety"].publish


@pytest.mark.parametrize("user", ["reporting", "safety"])
async def test_the_services_that_dead_letter_can_list_the_dead_letters_and_read_an_original(
    connect: Connect, user: str, store: EventStore
) -> None:
    site, subject = SubjectIds.synthetic()
    meta = EventMetadata("/trial/test", site, subject, "tester", "probe", "1.0")
    envelope = EventEnvelope.wrap(CONSENT, meta, event_id=uuid.uuid4(), time=datetime.now(UTC))
    [recorded] = await store.append([envelope], subject_filter=subject_history(site, subject), expected_last_sequence=0)
    nc, errors = await connect(user)
    theirs = nc.jetstream(timeout=2)
    assert isinstance(await dead_letters(theirs), list)
    assert (await original(theirs, recorded.sequence)).envelope == envelope
    assert not errors


async def test_a_refusal_the_publisher_sees_only_as_a_timeout_is_logged_with_the_subject(servers: Servers) -> None:
    """What the server says of a refused publish reaches the service's log (`bus.said_by_the_server`): without it,
    a fact a service may not publish shows only as its request timing out."""
    subject = "trial.events.NFH.NFH-991.VisitCompleted"
    with structlog.testing.capture_logs() as logs:
        client = await bus.connect(servers.nats_urls["datamanagement"], name="test-logged-refusal")
        try:
            with pytest.raises(nats.errors.TimeoutError):
                await client.jetstream(timeout=0.5).publish(subject, b"{}", timeout=0.5)
            await client.flush()
        finally:
            await client.close()
    said = [e["error"].lower() for e in logs if e["event"] == "bus_error"]
    assert any("permissions violation" in s and subject.lower() in s for s in said), logs

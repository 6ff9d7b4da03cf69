"""Least privilege on the bus: each credential can say only its own kind of fact, and nobody can erase the record."""

from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import nats.errors
import pytest
from nats.aio.client import Client

from shared.bus_permissions import PERMISSIONS
from shared.eventstore import ALERTS_STREAM, EVENTS_STREAM
from tests.conftest import Servers

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

        client = await nats.connect(servers.nats_urls[user], error_cb=record)
        opened.append(client)
        return client, errors

    yield as_user
    for client in opened:
        await client.close()


async def refused(action: Awaitable[object], errors: list[Exception]) -> bool:
    """The server refused: the request got no answer and a permissions violation came back."""
    try:
        await action
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        pass
    else:
        return False
    return any("permissions violation" in str(e) for e in errors)


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
async def test_a_service_reaches_its_own_subjects(connect: Connect, service: str) -> None:
    nc, errors = await connect(service)
    # Reading histories is allowed (every decision reads one); the stream's configuration is not touched.
    info = await nc.jetstream(timeout=0.5).stream_info(EVENTS_STREAM)
    assert info.config.name == EVENTS_STREAM and not errors


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

"""A record of its own for a test module that needs the whole stream to itself (a trial-wide decision, a replay
to a sequence): its own nats-server, started once per module."""

from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client

from devstack.servers import EmbeddedNats, free_port
from shared.runtime.eventstore import provision_streams


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path_factory.mktemp("nats-own"), port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_nats(own_server: EmbeddedNats) -> str:
    return own_server.url


@pytest.fixture(scope="module")
async def own_nc(own_nats: str) -> AsyncIterator[Client]:
    client = await nats.connect(own_nats)
    await provision_streams(client.jetstream())
    yield client
    await client.close()

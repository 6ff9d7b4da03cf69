"""Real servers for the whole test session: URLs from the environment, else Docker, else the embedded wheels."""

import os
import random
import string
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from devstack.servers import EmbeddedNats, EmbeddedPostgres, create_database, free_port
from ops.bus_permissions import PERMISSIONS
from shared.contracts.access import SITE_ROLES, Role
from shared.contracts.attestation import CommandSigner, new_key_pair
from shared.contracts.protocol import ProtocolDefinition, load_protocol
from shared.runtime.alerts import provision_safety_team_consumer
from shared.runtime.eventstore import EVENTS_STREAM, EventStore, provision_streams, subject_history
from shared.runtime.postgres import create_pool
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

# The gateway's command keys for this test session: services verify with the public key, and tests that
# speak to a service directly sign as the gateway would (`as_gateway`).
COMMAND_SIGNING_KEY, COMMAND_VERIFY_KEYS = new_key_pair("tests")
COMMAND_KEYS = {"COMMAND_SIGNING_KEY": COMMAND_SIGNING_KEY, "COMMAND_VERIFY_KEYS": COMMAND_VERIFY_KEYS}
_GATEWAY = CommandSigner(COMMAND_SIGNING_KEY)


def as_gateway(subject: str, payload: bytes, *, site: str | None, role: Role = Role.SITE_COORDINATOR) -> dict[str, str]:
    """The headers the gateway sends with a command from a caller of this role (of this site)."""
    actor_site = site if role in SITE_ROLES else None
    return _GATEWAY.headers(subject, payload, actor="tester", role=role, actor_site=actor_site, target_site=site)


@dataclass(frozen=True)
class Servers:
    nats_url: str  # the administrator (provisioning, test fixtures)
    admin_database_url: str
    # Each service's own least-privilege user, when the server is ours (empty for a server from NATS_URL).
    nats_urls: dict[str, str] = field(default_factory=dict)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    nats_url, database_url = os.environ.get("NATS_URL"), os.environ.get("DATABASE_URL")
    stops: list[Callable[[], object]] = []
    if (not nats_url or not database_url) and _docker_answers():
        from testcontainers.core.container import DockerContainer
        from testcontainers.postgres import PostgresContainer

        if not nats_url:
            container = (
                DockerContainer("nats:2.11-alpine").with_command("-js --sync_interval always").with_exposed_ports(4222)
            )
            container.start()
            stops.append(container.stop)
            nats_url = f"nats://{container.get_container_host_ip()}:{container.get_exposed_port(4222)}"
        if not database_url:
            pg = PostgresContainer("postgres:17-alpine", driver=None)
            pg.start()
            stops.append(pg.stop)
            database_url = pg.get_connection_url()
    base = tmp_path_factory.mktemp("servers")
    nats_urls: dict[str, str] = {}
    if not nats_url:
        embedded_nats = EmbeddedNats(base / "nats", port=free_port())
        nats_url = embedded_nats.start()
        nats_urls = {user: embedded_nats.url_for(user) for user in PERMISSIONS}
        stops.append(embedded_nats.stop)
    if not database_url:
        embedded_pg = EmbeddedPostgres(base / "pg", database="postgres")
        database_url = embedded_pg.start()
        stops.append(embedded_pg.stop)
    yield Servers(nats_url, database_url, nats_urls)
    for stop in reversed(stops):
        stop()


@pytest.fixture(scope="session")
def protocol() -> ProtocolDefinition:
    return load_protocol(DEFAULT_PROTOCOL_FILE)


@pytest.fixture(scope="session")
async def nc(servers: Servers) -> AsyncIterator[Client]:
    client = await nats.connect(servers.nats_url)
    await provision_streams(client.jetstream())
    await provision_safety_team_consumer(client.jetstream())
    yield client
    await client.close()


@pytest.fixture(scope="session")
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture(scope="session")
def store(js: JetStreamContext) -> EventStore:
    return EventStore(js)


def database_url_for(admin_url: str, name: str) -> str:
    """Same server and credentials, another database (works for socket and TCP URLs)."""
    head, _, query = admin_url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


@pytest.fixture
async def database_url(servers: Servers) -> str:
    """A fresh, empty database for one test: read models never leak between tests."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    await create_database(servers.admin_database_url, name)
    return database_url_for(servers.admin_database_url, name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=4)
    yield pool
    await pool.close()


class SubjectIds:
    """Fresh subject ids: the event stream cannot be purged, so no two tests share a subject."""

    def __init__(self, store: EventStore, protocol: ProtocolDefinition) -> None:
        self._store = store
        self._sites = [s.code for s in protocol.sites]
        self._taken: set[str] = set()

    async def fresh(self, site: str | None = None) -> tuple[str, str]:
        """An unused subject at a protocol site (for tests that go through the trial's rules)."""
        for _ in range(200):
            chosen = site or random.choice(self._sites)
            subject = f"{chosen}-{random.randrange(900):03d}"  # 900-999: left to API fuzzing
            if subject in self._taken:
                continue
            self._taken.add(subject)
            if not (await self._store.load(subject_history(chosen, subject))).events:
                return chosen, subject
        raise RuntimeError("no fresh subject id left; use a fresh server")

    @staticmethod
    def synthetic() -> tuple[str, str]:
        """A subject at a made-up site, for tests of the event store alone."""
        site = "T" + "".join(random.choices(string.ascii_uppercase + string.digits, k=7))
        return site, f"{site}-001"


@pytest.fixture(scope="session")
def subject_ids(store: EventStore, protocol: ProtocolDefinition) -> SubjectIds:
    return SubjectIds(store, protocol)


PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The unnamed consumer create, which takes the consumer's name from the body: creates or updates what it names.
UNNAMED_CREATE = f"$JS.API.CONSUMER.CREATE.{EVENTS_STREAM}"


def silencing(name: str) -> dict[str, object]:
    """What once silenced SAE alerts for good: a consumer of the record rewritten to deliver nothing, once."""
    return {
        "stream_name": EVENTS_STREAM,
        "config": {
            "name": name,
            "ack_policy": "explicit",
            "deliver_policy": "all",
            "filter_subject": "trial.events.NOTHING.>",
            "max_deliver": 1,
        },
    }

"""A record of its own for a test module that needs the whole stream to itself (a trial-wide decision, a replay
to a sequence): its own nats-server, started once per module, and its read models built into a database of their
own. And the system as `make run` starts it, for the modules that use it as an operator or a reader of the README
would."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import nats
import pytest
from nats.aio.client import Client

from devstack.servers import EmbeddedNats, free_port
from services.reporting.app import MIGRATIONS
from services.reporting.projections import all_projections
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.catalogue import READ_MODELS_FEED
from shared.runtime.eventstore import provision_streams
from shared.runtime.postgres import SHARED_MIGRATIONS, apply_migrations, create_pool
from shared.runtime.projections import ProjectionRunner, wait_for_checkpoint


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


@dataclass(frozen=True)
class MakeRun:
    data: Path
    gateway: str
    identity_provider: str
    web: str


@pytest.fixture(scope="package")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    data = tmp_path_factory.mktemp("make-run-data")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    identity_port = free_port()
    env |= {"TRIAL_DATA_DIR": str(data), "GATEWAY_PORT": str(port), "NATS_PORT": str(free_port())}
    web_port = free_port()
    env |= {"IDENTITY_PORT": str(identity_port), "WEB_PORT": str(web_port)}
    output = data / "make-run.log"
    with output.open("wb") as log:
        system = subprocess.Popen([sys.executable, "-m", "devstack"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert system.poll() is None, "make run's system exited while starting:\n" + output.read_text()[-3000:]
            assert time.monotonic() < deadline, "make run's system did not become ready"
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
                if ready and httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield MakeRun(
            data, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{identity_port}", f"http://127.0.0.1:{web_port}"
        )
    finally:
        system.send_signal(signal.SIGINT)
        system.wait(timeout=60)


async def build_read_models(nc: Client, database_url: str, protocol: ProtocolDefinition, through: int) -> asyncpg.Pool:
    """Every read model built from this record, through its sequence `through`, into the database at the URL."""
    projections = all_projections(protocol)
    # The runner holds one connection (its leadership and its writes); the test reads with the rest.
    pool = await create_pool(database_url, max_size=3)
    await apply_migrations(pool, "projections", SHARED_MIGRATIONS)
    await apply_migrations(pool, "reporting", MIGRATIONS)
    runner = ProjectionRunner(projections, nc.jetstream(), pool, feed=READ_MODELS_FEED, batch_size=64)
    following = asyncio.create_task(runner.run())
    try:
        for projection in projections:
            await wait_for_checkpoint(pool, projection.name, through, timeout=60)
    finally:
        runner.stop()
        await following
    return pool

"""A service that starts while its database is down (both restarted at once) waits for it and never exits."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.servers import EmbeddedPostgres, env_with
from devstack.stack import ServiceProcesses
from tests.conftest import Servers

pytestmark = pytest.mark.e2e


@pytest.fixture
def stopped_database(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A migrated read-model database whose server is down."""
    postgres = EmbeddedPostgres(tmp_path / "pg")
    url = postgres.start()
    env = env_with(DATABASE_URL=url, LOG_LEVEL="WARNING")
    subprocess.run([sys.executable, "-m", "services.reporting", "migrate"], env=env, check=True, capture_output=True)
    postgres.kill()
    try:
        yield postgres, url
    finally:
        postgres.stop()


@pytest.mark.usefixtures("nc")  # the streams exist
def test_reporting_started_while_postgres_is_down_waits_and_becomes_ready(
    servers: Servers, stopped_database: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    postgres, url = stopped_database
    nats_url = servers.nats_urls.get("reporting", servers.nats_url)
    processes = ServiceProcesses(env_with(NATS_URL=nats_url, DATABASE_URL=url), log_dir=tmp_path / "logs")
    processes.start("reporting", ready_within=None)
    try:
        time.sleep(3)
        processes.check_alive()  # raises if it exited, as it did on its first refused connection
        postgres.restart()
        processes.wait_service_ready("reporting", timeout=30)
    finally:
        assert processes.stop() == {"reporting": 0}
    assert "postgres_unavailable" in (tmp_path / "logs" / "reporting.log").read_text()

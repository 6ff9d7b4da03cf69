"""`make run`'s supervisor: its terminal closed (SIGHUP) stops everything as Ctrl-C does, and killed outright
(SIGKILL) it leaves nothing running behind it either: no server, provider or service holds its ports or data."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devstack.servers import env_with, free_port

pytestmark = pytest.mark.e2e

PORTS = ("GATEWAY_PORT", "NATS_PORT", "IDENTITY_PORT", "WEB_PORT")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for both runs: the second starts on the first one's data, as a `make run` after another."""
    return tmp_path_factory.mktemp("make-run")


@contextlib.contextmanager
def supervisor(
    data_dir: Path, *, output_gone: bool = False
) -> Iterator[tuple[subprocess.Popen[bytes], list[psutil.Process], dict[str, int]]]:
    """`python -m devstack` (what `make run` runs) in a session of its own, as a terminal would start it; yielded
    once the web app is up, with every process it started (the services, the servers, PostgreSQL's daemon).
    `output_gone`: its standard output (not its errors, where the services log) closed before its first line,
    as `make run | head -1` leaves it, so that every line it says fails."""
    ports = {name: free_port() for name in PORTS}
    env = {k: v for k, v in env_with(TRIAL_DATA_DIR=str(data_dir)).items() if k not in ("NATS_URL", "DATABASE_URL")}
    env |= {name: str(port) for name, port in ports.items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if output_gone else subprocess.STDOUT,
        start_new_session=True,
    )
    started: list[psutil.Process] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 180
        if output_gone:
            process.stdout.close()
            while not listening(ports["WEB_PORT"]):
                assert process.poll() is None, f"make run exited with {process.returncode} as it started"
                assert time.monotonic() < deadline, "make run did not come up"
                time.sleep(0.2)
        seen = b""
        while not output_gone and b"Web app:" not in seen:
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, f"make run did not come up:\n{seen.decode()[-3000:]}"
            seen += line
        postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        started = [*psutil.Process(process.pid).children(recursive=True), psutil.Process(postmaster)]
        yield process, started, ports
    finally:
        process.kill()
        for leftover in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def assert_nothing_left(started: list[psutil.Process], ports: dict[str, int]) -> None:
    _, alive = psutil.wait_procs(started, timeout=60)
    assert [p.cmdline() for p in alive if p.is_running()] == [], "left running"
    assert {name: port for name, port in ports.items() if listening(port)} == {}


def test_closing_the_terminal_stops_everything_in_order(data_dir: Path) -> None:
    with supervisor(data_dir) as (process, started, ports):
        assert len(started) >= 11, "servers, provider, eight services, the web app, PostgreSQL"
        assert process.stdout is not None
        process.stdout.close()  # the terminal is gone: writes to it fail from now on
        os.killpg(process.pid, signal.SIGHUP)

        assert process.wait(timeout=90) == 0
        assert_nothing_left(started, ports)


def test_its_output_closed_as_it_starts_neither_stops_it_nor_fails_its_stop(data_dir: Path) -> None:
    with supervisor(data_dir, output_gone=True) as (process, started, ports):
        assert len(started) >= 11, "servers, provider, eight services, the web app, PostgreSQL"
        os.killpg(process.pid, signal.SIGHUP)

        assert process.wait(timeout=90) == 0
        assert_nothing_left(started, ports)


def test_a_killed_supervisor_leaves_nothing_running(data_dir: Path) -> None:
    with supervisor(data_dir) as (process, started, ports):
        process.kill()
        process.wait()

        assert_nothing_left(started, ports)

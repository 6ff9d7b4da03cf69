"""Kill components with SIGKILL, one at a time, while the load runs; restart each; then verify everything.

`make chaos` runs rounds over every component in a random order with more clients; the test suite
runs one round (`tests/chaos`). Both use `crash_and_verify`.
"""

import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chaos.load import Answer, Load
from chaos.verify import Findings, verify
from devstack.system import COMPONENTS, SERVERS, LocalSystem
from shared.contracts.protocol import load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

SIGNING_KEYS = {"chaos": "c" * 40}
SEED = "5e" * 32
ACK_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class Crash:
    component: str
    killed_at: float  # seconds since the load started
    back_at: float


@dataclass
class ChaosRun:
    findings: Findings
    crashes: list[Crash]
    answers: list[Answer]
    seconds: float
    transport_errors: int
    failure: str | None = None
    progress: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.findings.problems


# Two of each (but the gateway, one port here): replicas share commands, the reaction's consumer and
# the read models' leadership, and each keeps a history the other makes stale.
REPLICATED = ("reporting", "screening", "randomization", "safety", "visits")


def chaos_system(data: Path) -> LocalSystem:
    return LocalSystem(
        data,
        second_replicas=REPLICATED,
        TOKEN_SIGNING_KEYS=",".join(f"{k}:{v}" for k, v in SIGNING_KEYS.items()),
        RANDOMIZATION_SEED=SEED,
        LOG_LEVEL="WARNING",
        # Short enough that a test sees a killed gateway's claim expire and an unacknowledged alert return.
        COMMAND_TIMEOUT_SECONDS="3",
        IDEMPOTENCY_LEASE_SECONDS="5",
        SAFETY_TEAM_ACK_WAIT_SECONDS=str(ACK_WAIT_SECONDS),
    )


async def wait_ready(gateway_url: str, timeout: float = 60.0) -> None:
    async with httpx.AsyncClient(timeout=2) as http, asyncio.timeout(timeout):
        while True:
            try:
                if (await http.get(f"{gateway_url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def crash_each(
    system: LocalSystem,
    load: Load,
    order: Sequence[str],
    *,
    rng: random.Random,
    between: tuple[float, float],
    say: Callable[[str], None],
) -> list[Crash]:
    """Under load: for each component, after a random while, SIGKILL it, leave it down briefly, restart it."""
    stop = asyncio.Event()
    load_task = asyncio.create_task(load.run(stop))
    crashes: list[Crash] = []
    try:
        for component in order:
            await asyncio.sleep(rng.uniform(*between))
            if load_task.done():
                break  # the load failed: its error is raised below
            killed = time.monotonic() - load.started
            await asyncio.to_thread(system.kill, component)
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            await asyncio.to_thread(system.restart, component)
            if component in SERVERS or component == "gateway":
                await wait_ready(system.gateway_url)
            crashes.append(Crash(component, killed, time.monotonic() - load.started))
            say(f"killed {component} at {killed:.1f}s, back after {crashes[-1].back_at - killed:.1f}s")
        await asyncio.sleep(between[1])
    finally:
        stop.set()
        await load_task
    return crashes


async def crash_and_verify(
    system: LocalSystem,
    *,
    rounds: int = 1,
    clients: int = 6,
    between: tuple[float, float] = (1.0, 2.5),
    seed: int = 11,
    say: Callable[[str], None] = print,
) -> ChaosRun:
    rng = random.Random(seed)
    sites = tuple(s.code for s in load_protocol(DEFAULT_PROTOCOL_FILE).sites)
    load = Load(system.gateway_url, SIGNING_KEYS, sites, clients=clients)
    order: list[str] = []
    for _ in range(rounds):
        order += rng.sample(COMPONENTS, len(COMPONENTS))
    started = time.monotonic()
    crashes: list[Crash] = []
    failure = None
    try:
        crashes = await crash_each(system, load, order, rng=rng, between=between, say=say)
    except Exception as exc:  # e.g. a request that never got a final answer
        failure = f"{type(exc).__name__}: {exc}"
    say(f"{len(load.answers)} answers, {load.transport_errors} connection failures retried; verifying")
    findings = await verify(system, load, ack_wait=ACK_WAIT_SECONDS, say=say)
    return ChaosRun(findings, crashes, load.answers, time.monotonic() - started, load.transport_errors, failure)


def new_data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="trial-chaos-"))

"""Kill components with SIGKILL, one at a time, while the load runs; restart each; then verify everything.

`make chaos` runs rounds over every component in a random order with more clients; the test suite
runs one round (`tests/chaos`). Both use `crash_and_verify`. On a JetStream cluster (`make chaos
CLUSTER=3`) a round kills the event stream's leader, a follower and the metadata leader, and cuts one node
off, watching who leads meanwhile.
"""

import asyncio
import itertools
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chaos.load import Answer, Load
from chaos.verify import Findings, verify
from devstack.servers import NatsCluster
from devstack.system import SERVERS, LocalSystem
from shared.contracts.protocol import load_protocol
from shared.runtime.eventstore import EVENTS_STREAM
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

SIGNING_KEYS = {"chaos": "uKfdGs7nHB0vLI9lIYwiTY1yxs_59Yp-C3VxYVV2DhE"}  # the crash runs' own token key
SEED = "5e" * 32
ACK_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class Crash:
    component: str
    killed_at: float  # seconds since the load started
    back_at: float
    fault: str = "SIGKILL"  # or, in a cluster, "partition": SIGSTOP until SIGCONT


@dataclass(frozen=True)
class LeaderChange:
    at: float  # seconds since the load started
    leader: str | None  # the node now leading the event stream; None while none is elected


@dataclass
class ChaosRun:
    findings: Findings
    crashes: list[Crash]
    answers: list[Answer]
    seconds: float
    transport_errors: int
    failure: str | None = None
    progress: list[str] = field(default_factory=list)
    leaders: list[LeaderChange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.findings.problems

    def _gaps(self) -> list[tuple[float, float]]:
        """Each interval between two writes recorded one after the other: (from, to), seconds since the start."""
        return list(itertools.pairwise(sorted(a.answered_at for a in self.answers if a.recorded)))

    def stall_after(self, crash: Crash) -> float:
        """The longest time without a recorded write that overlaps the fault (from the fault to its recovery)."""
        overlapping = [
            b - max(a, crash.killed_at) for a, b in self._gaps() if a <= crash.back_at and b >= crash.killed_at
        ]
        return max(overlapping, default=0.0)

    @property
    def longest_stall(self) -> tuple[float, float]:
        """The longest time, in seconds, in which no write was recorded anywhere, and when it began."""
        return max(((b - a, a) for a, b in self._gaps()), default=(0.0, 0.0))


# Two of each (but the gateway, one port here): replicas share commands, the reaction's consumer and
# the read models' leadership, and each keeps a history the other makes stale.
REPLICATED = ("reporting", "screening", "randomization", "safety", "visits", "datamanagement")


def chaos_system(data: Path, *, cluster: int = 1) -> LocalSystem:
    return LocalSystem(
        data,
        second_replicas=REPLICATED,
        cluster=cluster,
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


# In a cluster, each round hits the nodes by role, decided when it happens from who leads then: SIGKILL the
# event stream's leader, then a follower, then the metadata leader (each restarted), then cut one node off
# (SIGSTOP, longer than a leader election takes, then SIGCONT).
CLUSTER_FAULTS = ("stream leader", "follower", "meta leader", "partition")
PARTITION_SECONDS = 10.0


def node_for(cluster: NatsCluster, fault: str, *, within: float = 30.0) -> str:
    """The node holding the role now; waits for an election still under way (after the previous fault)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        leader = cluster.stream_leader(EVENTS_STREAM)
        match fault:
            case "stream leader" | "partition":
                chosen = leader
            case "meta leader":
                chosen = cluster.meta_leader()
            case _:
                chosen = next(name for name in cluster.nodes if name != leader) if leader else None
        if chosen is not None:
            return chosen
        time.sleep(0.25)
    raise RuntimeError(f"no node held the role of {fault} for {within:.0f}s")


async def fault(system: LocalSystem, step: str, rng: random.Random, started: float) -> Crash:
    """One step of the order: a component killed and restarted, or (in a cluster) a node by its role."""
    if isinstance(system.nats, NatsCluster) and step in CLUSTER_FAULTS:
        node = await asyncio.to_thread(node_for, system.nats, step)
        killed = time.monotonic() - started
        if step == "partition":
            system.nats.nodes[node].pause()
            await asyncio.sleep(PARTITION_SECONDS)
            system.nats.nodes[node].resume()
            return Crash(f"{node} ({step})", killed, time.monotonic() - started, fault="partition")
        step, component = f"{node} ({step})", node
    else:
        component, killed = step, time.monotonic() - started
    await asyncio.to_thread(system.kill, component)
    await asyncio.sleep(rng.uniform(0.2, 1.0))
    await asyncio.to_thread(system.restart, component)
    if component in (*SERVERS, "gateway"):
        await wait_ready(system.gateway_url)
    return Crash(step, killed, time.monotonic() - started)


async def watch_leader(cluster: NatsCluster, started: float, changes: list[LeaderChange]) -> None:
    """Every change of the event stream's leader, as the nodes report it, until cancelled."""
    while True:
        leader = await asyncio.to_thread(cluster.stream_leader, EVENTS_STREAM)
        if not changes or changes[-1].leader != leader:
            changes.append(LeaderChange(time.monotonic() - started, leader))
        await asyncio.sleep(0.25)


async def crash_each(
    system: LocalSystem,
    load: Load,
    order: Sequence[str],
    *,
    rng: random.Random,
    between: tuple[float, float],
    say: Callable[[str], None],
    crashes: list[Crash],
    leaders: list[LeaderChange],
) -> None:
    """Under load: for each step, after a random while, SIGKILL the component, leave it down briefly, restart
    it (in a cluster: a node by its role, or a node cut off for a while)."""
    stop = asyncio.Event()
    load_task = asyncio.create_task(load.run(stop))
    cluster = system.nats if isinstance(system.nats, NatsCluster) else None
    watch = asyncio.create_task(watch_leader(cluster, load.started, leaders)) if cluster else None
    try:
        for step in order:
            await asyncio.sleep(rng.uniform(*between))
            if load_task.done():
                break  # the load failed: its error is raised below
            crashes.append(await fault(system, step, rng, load.started))
            done = crashes[-1]
            down = done.back_at - done.killed_at
            say(f"{done.fault} {done.component} at {done.killed_at:.1f}s, back after {down:.1f}s")
        await asyncio.sleep(between[1])
    finally:
        stop.set()
        if watch is not None:
            watch.cancel()
        await load_task


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
        clustered = isinstance(system.nats, NatsCluster)
        order += CLUSTER_FAULTS if clustered else rng.sample(system.components, len(system.components))
    started = time.monotonic()
    crashes: list[Crash] = []
    leaders: list[LeaderChange] = []
    failure = None
    try:
        await crash_each(system, load, order, rng=rng, between=between, say=say, crashes=crashes, leaders=leaders)
    except Exception as exc:  # e.g. a request that never got a final answer
        failure = f"{type(exc).__name__}: {exc}"
    say(f"{len(load.answers)} answers, {load.transport_errors} connection failures retried; verifying")
    findings = await verify(system, load, ack_wait=ACK_WAIT_SECONDS, say=say)
    seconds = time.monotonic() - started
    return ChaosRun(findings, crashes, load.answers, seconds, load.transport_errors, failure, leaders=leaders)


def new_data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="trial-chaos-"))

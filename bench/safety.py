"""SAE alert latency: from the report's request to the safety team's subscriber, hop by hop as the gateway's
Server-Timing tells it, each hop beside the raw floor of what it must do (measured in the same run)."""

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg
import httpx
import nats
from nats.aio.msg import Msg

from bench.measure import Summary, now_ms
from chaos.verify import consumers_behind
from devstack.examples import CONSENT, serious_adverse_event
from shared.contracts.alerts import SaeAlertMessage
from shared.runtime.progress import progress


async def raw_round_trip(nats_url: str, n: int) -> Summary:
    """Core NATS request/reply to an echo responder: the floor under any command or alert hop."""
    nc = await nats.connect(nats_url)
    try:
        inbox = f"bench.echo.{uuid.uuid4().hex}"

        async def echo(msg: Msg) -> None:
            await msg.respond(msg.data)

        await nc.subscribe(inbox, cb=echo)
        samples = []
        for _ in range(n):
            start = now_ms()
            await nc.request(inbox, b"x" * 512, timeout=2)
            samples.append(now_ms() - start)
        return Summary.of(samples)
    finally:
        await nc.close()


def server_timing(header: str) -> dict[str, float]:
    """A W3C Server-Timing value (`hop;dur=ms, …`) as milliseconds by hop."""
    hops = {}
    for entry in header.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if key == "dur":
                hops[name] = float(value)
    return hops


@dataclass(frozen=True)
class Hop:
    """One stretch of a report's path, and the raw operations the design needs there (names of `floors`)."""

    name: str
    floors: tuple[str, ...]


# A report's path in the order it runs, as the gateway's Server-Timing splits it (`total` and the client's own
# clock give the first and the third; `command` less `service` gives the transit).
SAE_PATH = (
    Hop("client and HTTP", ("http_round_trip",)),
    Hop("token and revocation check", ("postgres_read",)),
    Hop("gateway: form, routing, answer", ()),
    Hop("idempotency key claimed", ("postgres_commit",)),
    Hop("command sent, verified, answered", ("nats_round_trip",)),
    Hop("service: history read, decide, append", ("nats_round_trip", "jetstream_append")),
    Hop("idempotency answer stored", ("postgres_commit",)),
)


def path_hops(timing: dict[str, float], round_trip_ms: float) -> list[float]:
    """One report's milliseconds in each hop of SAE_PATH."""
    total, command, service = timing["total"], timing["command"], timing["service"]
    gateway_own = total - timing["auth"] - timing["claim"] - command - timing["complete"]
    return [
        round_trip_ms - total,
        timing["auth"],
        gateway_own,
        timing["claim"],
        command - service,
        service,
        timing["complete"],
    ]


async def quiet(nats_url: str, timeout: float = 300) -> float:
    """Wait until every durable consumer of the record has caught up with the load before (a backlog would
    measure its own catching up, not a report's path); the seconds it took."""
    nc = await nats.connect(nats_url)
    started = now_ms()
    try:
        async with asyncio.timeout(timeout):
            while await consumers_behind(nc, nc.jetstream()):
                await asyncio.sleep(0.25)
    finally:
        await nc.close()
    return round((now_ms() - started) / 1000, 1)


async def sae_latency(gateway_url: str, nats_url: str, tokens: dict[str, str], n: int) -> dict[str, Summary]:
    """Report n SAEs one after another; time each until its alert reaches a subscriber of trial.alerts.sae.>,
    and each hop of its request."""
    nc = await nats.connect(nats_url)
    arrived: dict[str, float] = {}
    waiters: dict[str, asyncio.Event] = {}

    async def on_alert(msg: Msg) -> None:
        alert = SaeAlertMessage.model_validate_json(msg.data)
        arrived[str(alert.ae_id)] = now_ms()
        waiters.setdefault(str(alert.ae_id), asyncio.Event()).set()

    await nc.subscribe("trial.alerts.sae.>", cb=on_alert)
    from_201: list[float] = []
    from_request: list[float] = []
    hops: list[list[float]] = []
    try:
        async with httpx.AsyncClient(base_url=gateway_url, timeout=15) as client:
            sites = sorted(tokens)
            bar = progress(total=n, desc="SAE latency", unit="SAE")
            for i in range(n):
                bar.update()
                site = sites[i % len(sites)]
                subject = f"{site}-{500 + i // len(sites):03d}"
                auth = {"Authorization": f"Bearer {tokens[site]}"}
                await client.post(
                    f"/v1/sites/{site}/subjects/{subject}/consent",
                    json=CONSENT,
                    headers=auth | {"Idempotency-Key": f"bench-consent-{uuid.uuid4()}"},
                )
                sae = serious_adverse_event(term="Wound dehiscence")
                sent = now_ms()
                response = await client.post(
                    f"/v1/sites/{site}/subjects/{subject}/adverse-events",
                    json=sae,
                    headers=auth | {"Idempotency-Key": f"bench-sae-{uuid.uuid4()}"},
                )
                answered = now_ms()
                response.raise_for_status()
                ae_id = response.json()["ae_id"]
                await asyncio.wait_for(waiters.setdefault(ae_id, asyncio.Event()).wait(), 30)
                from_201.append(max(0.0, arrived[ae_id] - answered))
                from_request.append(arrived[ae_id] - sent)
                hops.append(path_hops(server_timing(response.headers["server-timing"]), answered - sent))
    finally:
        await nc.close()
    by_hop = {hop.name: Summary.of([h[i] for h in hops]) for i, hop in enumerate(SAE_PATH)}
    return {"after_201": Summary.of(from_201), "after_request": Summary.of(from_request), **by_hop}


async def floors(gateway_url: str, database_url: str, n: int) -> dict[str, Summary]:
    """The raw operations a report's path is made of, one after another as a report does them: an HTTP round
    trip to the gateway's liveness route with the same client, a Postgres read by key and a committed insert."""
    http: list[float] = []
    async with httpx.AsyncClient(base_url=gateway_url, timeout=15) as client:
        for _ in range(n):
            started = now_ms()
            (await client.get("/healthz")).raise_for_status()
            http.append(now_ms() - started)
    conn = await asyncpg.connect(database_url)
    table = f"bench_floor_{uuid.uuid4().hex[:8]}"
    read: list[float] = []
    commit: list[float] = []
    try:
        await conn.execute(f"CREATE TABLE {table} (key text PRIMARY KEY, body bytea)")
        body = b"x" * 400  # about a stored answer
        for i in range(n):
            started = now_ms()
            await conn.execute(f"INSERT INTO {table} VALUES ($1, $2)", f"key-{i}", body)
            commit.append(now_ms() - started)
            started = now_ms()
            await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE key = $1)", f"key-{i}")
            read.append(now_ms() - started)
        await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()
    return {
        "http_round_trip": Summary.of(http),
        "postgres_read": Summary.of(read),
        "postgres_commit": Summary.of(commit),
    }

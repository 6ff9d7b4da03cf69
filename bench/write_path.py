"""The write path: consent, screening and randomization through the gateway from concurrent site clients,
beside a bare JetStream publish-with-ack and a bare uvicorn endpoint measured with the same client."""

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from nats.js import api

from bench.measure import Summary, now_ms
from devstack.examples import CONSENT, ELIGIBLE
from devstack.servers import free_port
from shared.runtime import bus
from shared.runtime.progress import progress

FORMS: tuple[tuple[str, dict[str, Any]], ...] = (("consent", CONSENT), ("screening", ELIGIBLE), ("randomization", {}))


def bench_protocol(source: Path, target: Path, subjects: int) -> Path:
    """The trial's protocol with room to randomize every benchmark subject (the real cap is 40)."""
    document = yaml.safe_load(source.read_text())
    document["enrollment_cap"] = max(document["enrollment_cap"], subjects)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


@dataclass(frozen=True)
class Throughput:
    requests: int
    seconds: float
    latency: Summary

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "per_s": round(self.requests / self.seconds, 1), **self.latency.as_dict()}


async def concurrently(clients: int, work: list[Callable[[], Awaitable[None]]], desc: str) -> Throughput:
    """Run the work items from `clients` concurrent workers; each item's latency and the overall rate."""
    queue = list(reversed(work))
    samples: list[float] = []
    bar = progress(total=len(work), desc=desc, unit="req")

    async def worker() -> None:
        while queue:
            item = queue.pop()
            started = now_ms()
            await item()
            samples.append(now_ms() - started)
            bar.update()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    bar.close()
    return Throughput(len(samples), time.perf_counter() - started, Summary.of(samples))


async def write_path(
    gateway: str, tokens: dict[str, str], sites: tuple[str, ...], subjects: int, clients: int
) -> dict[str, Any]:
    """Each client takes subjects through consent → screening → randomization, one request after another."""
    per_form: dict[str, list[float]] = {form: [] for form, _ in FORMS}
    statuses: dict[int, int] = {}
    numbers = iter(range(subjects))
    samples: list[float] = []
    bar = progress(total=subjects * len(FORMS), desc="write path", unit="req")
    async with httpx.AsyncClient(base_url=gateway, timeout=30, limits=httpx.Limits(max_connections=clients)) as http:

        async def client() -> None:
            for n in numbers:
                site = sites[n % len(sites)]
                subject = f"{site}-{n // len(sites) + 1:03d}"
                auth = {"Authorization": f"Bearer {tokens[site]}"}
                for form, body in FORMS:
                    started = now_ms()
                    response = await http.post(
                        f"/v1/sites/{site}/subjects/{subject}/{form}",
                        json=body,
                        headers=auth | {"Idempotency-Key": f"bench-{uuid.uuid4()}"},
                    )
                    elapsed = now_ms() - started
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    per_form[form].append(elapsed)
                    samples.append(elapsed)
                    bar.update()

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.perf_counter() - started
    bar.close()
    return {
        "system": Throughput(len(samples), seconds, Summary.of(samples)).as_dict(),
        "by_form": {form: Summary.of(s).as_dict() for form, s in per_form.items()},
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def raw_publish(nats_url: str, n: int, clients: int, *, replicas: int = 1) -> Throughput:
    """JetStream publish with ack to a file stream on the same fsync-always server (or cluster, with as many
    replicas as the system's streams): the floor of one append."""
    nc = await bus.connect(nats_url, name="trial-bench-publish")
    js = nc.jetstream()
    stream = f"BENCH_{uuid.uuid4().hex[:8]}"
    config = api.StreamConfig(
        name=stream, subjects=[f"bench.{stream}.>"], storage=api.StorageType.FILE, num_replicas=replicas
    )
    await js.add_stream(config)
    payload = b"x" * 1500  # about a screening event

    def publish(i: int) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            await js.publish(f"bench.{stream}.{i}", payload, headers={"Nats-Msg-Id": f"{stream}-{i}"})

        return go

    try:
        return await concurrently(clients, [publish(i) for i in range(n)], "raw JetStream publish")
    finally:
        await js.delete_stream(stream)
        await nc.close()


BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"event_id":"00000000-0000-0000-0000-000000000000"}'
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


async def raw_http(n: int, clients: int, workdir: Path) -> Throughput:
    """A bare ASGI endpoint under uvicorn (uvloop, httptools), one process like the gateway: the HTTP floor."""
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--log-level", "warning", cwd=workdir
    )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=10, limits=httpx.Limits(max_connections=clients)
        ) as http:
            for _ in range(100):
                try:
                    await http.get("/")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)

            def post(i: int) -> Callable[[], Awaitable[None]]:
                async def go() -> None:
                    response = await http.post("/", json=CONSENT, headers={"Idempotency-Key": f"bare-{i}"})
                    response.raise_for_status()

                return go

            return await concurrently(clients, [post(i) for i in range(n)], "raw uvicorn endpoint")
    finally:
        server.terminate()
        await server.wait()

"""The write path: consent, screening and randomization through the gateway from concurrent site clients,
beside a bare JetStream publish-with-ack and a bare uvicorn endpoint. The HTTP load comes from `wrk`
(compiled, one connection per thread; `write_path.lua`), so the load generator does not take the cores it
measures; its own CPU is counted beside the system's."""

import asyncio
import json
import os
import resource
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
from shared.contracts.protocol import protocol_document
from shared.runtime import bus
from shared.runtime.progress import progress

FORMS: tuple[tuple[str, dict[str, Any]], ...] = (("consent", CONSENT), ("screening", ELIGIBLE), ("randomization", {}))


# Sites of the benchmark's own, beside the protocol's (whose subjects 500 and up the SAE benchmark uses):
# room for every subject a timed run can reach.
BENCH_SITES = ("BA", "BB", "BC", "BD")
# ... and for the run that is profiled after the measured one.
PROFILE_SITES = ("BP", "BQ")
SUBJECTS_PER_SITE = 999  # subject ids are SITE-NNN
WRK_SCRIPT = Path(__file__).with_name("write_path.lua")


def bench_protocol(source: Path, target: Path) -> Path:
    """The trial's protocol with the benchmark's sites and room to randomize every subject there (the real
    cap is 40)."""
    document = protocol_document(source)
    first = document["sites"][0]
    sites = BENCH_SITES + PROFILE_SITES
    document["sites"] += [
        first | {"code": code, "name": f"Benchmark site {code}", "status": "active"} for code in sites
    ]
    document["enrollment_cap"] = max(document["enrollment_cap"], SUBJECTS_PER_SITE * len(sites))
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


def _lua(value: Any) -> str:
    """A Lua literal of strings, numbers, lists and string-keyed tables (long brackets: nothing to escape)."""
    if isinstance(value, str):
        return f"[==[{value}]==]"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    return "{" + ", ".join(f"[ {_lua(k)} ] = {_lua(v)}" for k, v in value.items()) + "}"


async def wrk(url: str, plan: dict[str, Any], *, clients: int, seconds: float, workdir: Path) -> dict[str, Any]:
    """Run `write_path.lua` under wrk for `seconds` with one connection per thread; the figures, the answers'
    statuses and wrk's own CPU seconds."""
    plan_file = workdir / "wrk-plan.lua"
    plan_file.write_text(f"return {_lua(plan | {'threads': clients})}\n")
    command = ["wrk", "-t", str(clients), "-c", str(clients), "-d", f"{seconds:.0f}s", "--timeout", "30s"]
    print(f"wrk: {clients} connections for {seconds:.0f} s against {url}", file=sys.stderr, flush=True)
    # wrk is the only child of this process to end meanwhile: its CPU is what the children used.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = await asyncio.create_subprocess_exec(
        *command, "-s", str(WRK_SCRIPT), url, env={"WRK_PLAN": str(plan_file), "PATH": os.environ.get("PATH", "")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = [line for line in output.decode().splitlines() if line.startswith("WRK_RESULT ")]
    if process.returncode or not found:
        raise RuntimeError(f"wrk failed ({process.returncode}): {output.decode()[-2000:]}")
    result = json.loads(found[-1].removeprefix("WRK_RESULT "))
    recorded = result["statuses"].get("201", 0)
    return {
        "system": {
            "requests": result["requests"],
            # What got recorded per second: answers that said "retry" (503, retried with the same key) not counted.
            "per_s": round(recorded / result["seconds"], 1),
            "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"],
            "mean_ms": result["mean_ms"],
        },
        "statuses": dict(sorted(result["statuses"].items())),
        "load_generator_cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    }


async def write_path(
    gateway: str,
    tokens: dict[str, str],
    clients: int,
    seconds: float,
    workdir: Path,
    sites: tuple[str, ...] = BENCH_SITES,
) -> dict[str, Any]:
    """Each client takes subjects of the benchmark's sites through consent → screening → randomization, one
    request after another, for `seconds`."""
    plan = {
        "subjects": SUBJECTS_PER_SITE * len(sites),
        "sites": list(sites),
        "forms": [form for form, _ in FORMS],
        "tokens": {site: tokens[site] for site in sites},
        "bodies": {form: json.dumps(body) for form, body in FORMS},
    }
    return await wrk(gateway, plan, clients=clients, seconds=seconds, workdir=workdir)


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


async def raw_http(clients: int, seconds: float, workdir: Path) -> dict[str, Any]:
    """A bare ASGI endpoint under uvicorn (uvloop, httptools), one process like the gateway, loaded as the
    write path is (the consent form, a fresh key each): the HTTP floor."""
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--log-level", "warning", cwd=workdir
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            for _ in range(100):
                try:
                    await http.get("/")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        plan = {
            "subjects": 10**9,
            "sites": ["X"],
            "forms": ["consent"],
            "tokens": {"X": "bare"},
            "bodies": {"consent": json.dumps(CONSENT)},
        }
        return await wrk(url, plan, clients=clients, seconds=seconds, workdir=workdir)
    finally:
        server.terminate()
        await server.wait()

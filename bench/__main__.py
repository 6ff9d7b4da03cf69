"""`make bench`: the real system on fresh embedded servers, each figure beside its raw limit from the same run.

Writes bench/results.json and bench/results.svg.
"""

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.rebuild import fill_stream, raw_consume, raw_inserts, rebuild_rate
from bench.safety import SITES, raw_round_trip, sae_latency
from devstack.servers import EmbeddedNats, EmbeddedPostgres, database_urls, env_with, free_port
from devstack.stack import ServiceProcesses
from services.gateway.auth import Role, issue_token
from shared.bus_permissions import PERMISSIONS
from shared.protocol import load_protocol
from shared.settings import DEFAULT_PROTOCOL_FILE

OUT = Path(__file__).resolve().parent
SECRET = "b" * 40
SEED = "42" * 32


def plot(results: dict[str, Any], path: Path) -> None:
    """Latencies (p50, p99; log scale) and rates, the system in red beside its raw limits in grey."""
    rows = [(name, r["system"], r["raw_limit"]) for name, r in results["benchmarks"].items()]
    fig, (latency, rates) = plt.subplots(2, 1, figsize=(9, 2.4 + 1.2 * len(rows) + 2.4))
    labels, values, colours = [], [], []
    for name, system, raw in rows:
        for label, summary, colour in (
            (f"{name}\n(system)", system, "#c0392b"),
            (f"{name}\n(raw limit)", raw, "#7f8c8d"),
        ):
            labels.append(label)
            values.append((summary["p50_ms"], summary["p99_ms"]))
            colours.append(colour)
    y = range(len(labels))
    latency.barh([i + 0.2 for i in y], [v[0] for v in values], height=0.4, color=colours, label="p50")
    latency.barh([i - 0.2 for i in y], [v[1] for v in values], height=0.4, color=colours, alpha=0.45, label="p99")
    latency.set_yticks(list(y), labels)
    latency.set_xscale("log")
    latency.set_xlabel("milliseconds (log)")
    latency.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    latency.set_title(f"Trial backend on {results['machine']['cpus']} cores — system beside raw limit")
    rebuild = results["rebuild"]
    names = ["rebuild, all read models", "raw JetStream consume", "raw asyncpg batched inserts"]
    counts = [
        rebuild["system_events_per_s"],
        rebuild["raw_limit_jetstream_consume_per_s"],
        rebuild["raw_limit_asyncpg_batched_inserts_per_s"],
    ]
    rates.barh(names, counts, color=["#c0392b", "#7f8c8d", "#7f8c8d"])
    rates.set_xscale("log")
    rates.set_xlabel(f"per second (log), stream of {rebuild['events']} events")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def rebuild_benchmark(base: Path, events: int) -> dict[str, Any]:
    """On servers of its own, so the stream holds exactly the events measured."""
    nats_server = EmbeddedNats(base / "nats-rebuild", port=free_port())
    postgres = EmbeddedPostgres(base / "pg-rebuild")
    protocol = load_protocol(DEFAULT_PROTOCOL_FILE)

    async def measure(nats_url: str, database_url: str) -> tuple[float, float, float]:
        await fill_stream(nats_url, protocol, events)
        consume = await raw_consume(nats_url, events)
        inserts = await raw_inserts(database_url, events)
        return consume, inserts, await rebuild_rate(nats_url, database_url, protocol)

    try:
        consume, inserts, rate = asyncio.run(measure(nats_server.start(), postgres.start()))
    finally:
        postgres.stop()
        nats_server.stop()
    return {
        "what": f"rebuild of every read model from a stream of {events} events (consent, screening, adverse event)",
        "events": events,
        "system_events_per_s": round(rate),
        "raw_limit_jetstream_consume_per_s": round(consume),
        "raw_limit_asyncpg_batched_inserts_per_s": round(inserts),
        "ratio_to_consume": round(rate / consume, 3),
        "ratio_to_inserts": round(rate / inserts, 3),
    }


async def run_benchmarks(gateway: str, nats_url: str, tokens: dict[str, str]) -> dict[str, Any]:
    raw = await raw_round_trip(nats_url, 2000)
    sae = await sae_latency(gateway, nats_url, tokens, 60)
    return {
        "sae_alert_latency": {
            "what": "SAE report through the gateway → alert received by a subscriber of trial.alerts.sae.>",
            "system": sae["after_201"].as_dict(),
            "system_from_request_sent": sae["after_request"].as_dict(),
            "raw_limit": raw.as_dict(),
            "raw_limit_what": "core NATS request/reply round trip to an echo responder, 512 B",
            "ratio_p50": round(sae["after_201"].p50_ms / raw.p50_ms, 1),
            "ratio_p99": round(sae["after_201"].p99_ms / raw.p99_ms, 1),
            "ratio_from_request_sent_p50": round(sae["after_request"].p50_ms / raw.p50_ms, 1),
        }
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="trial-bench-") as tmp:
        base = Path(tmp)
        nats_server = EmbeddedNats(base / "nats", port=free_port())
        postgres = EmbeddedPostgres(base / "pg")
        services: ServiceProcesses | None = None
        try:
            nats_url = nats_server.start()
            database_url = postgres.start()
            port = free_port()
            env = env_with(
                NATS_URL=nats_url,
                DATABASE_URL=database_url,
                GATEWAY_PORT=str(port),
                TOKEN_SIGNING_KEYS=f"bench:{SECRET}",
                RANDOMIZATION_SEED=SEED,
                LOG_LEVEL="WARNING",
            )
            roles = database_urls(database_url)
            owner = env | {"DATABASE_URL": roles["migrate"]}
            for step in (["shared.provision"], ["services.reporting", "migrate"], ["services.gateway", "migrate"]):
                subprocess.run([sys.executable, "-m", *step], env=owner, check=True)
            nats_urls = {user: nats_server.url_for(user) for user in PERMISSIONS}
            services = ServiceProcesses(env, log_dir=base / "logs", nats_urls=nats_urls, database_urls=roles)
            services.start()
            gateway = f"http://127.0.0.1:{port}"
            services.wait_ready(gateway)
            keys = {"bench": SECRET}
            tokens = {
                s: issue_token(keys, issuer="trial-gateway", role=Role.SITE_COORDINATOR, site=s, hours=1) for s in SITES
            }
            benchmarks = asyncio.run(run_benchmarks(gateway, nats_url, tokens))
        finally:
            if services is not None:
                services.stop()
            postgres.stop()
            nats_server.stop()
        rebuild_events = int(os.environ.get("BENCH_REBUILD_EVENTS", "200000"))
        rebuild_figures = rebuild_benchmark(base, rebuild_events)
    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "benchmarks": benchmarks,
        "rebuild": rebuild_figures,
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, OUT / "results.svg")
    for name, figure in benchmarks.items():
        print(
            f"{name}: p50 {figure['system']['p50_ms']} ms, p99 {figure['system']['p99_ms']} ms "
            f"(raw limit p50 {figure['raw_limit']['p50_ms']} ms; ratio p50 {figure['ratio_p50']}x)"
        )
    r = rebuild_figures
    print(
        f"rebuild: {r['system_events_per_s']} events/s for all read models "
        f"(raw JetStream consume {r['raw_limit_jetstream_consume_per_s']}/s, raw inserts "
        f"{r['raw_limit_asyncpg_batched_inserts_per_s']}/s)"
    )
    print(f"wrote {OUT / 'results.json'} and {OUT / 'results.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

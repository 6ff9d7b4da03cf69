"""`make bench`: the real system on fresh embedded servers, each figure beside its raw limit from the same run.

Writes bench/results.json and bench/results.svg; with `--cluster 3` (`make bench CLUSTER=3`) the write path and
the raw publish are measured again on a three-node JetStream cluster in the same run. The HTTP load is wrk's.
Sizes from the environment: BENCH_WRITE_SECONDS (20), BENCH_CLIENTS (32), BENCH_REBUILD_EVENTS (200000).
"""

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib
import psutil

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench import measure, profile
from bench.goals import as_results, goals
from bench.rebuild import (
    CopyRun,
    RebuildRun,
    copy_back,
    decoder_rates,
    fill_stream,
    raw_consume,
    raw_inserts,
    rebuild_rate,
)
from bench.safety import SAE_PATH, floors, quiet, raw_round_trip, sae_latency
from bench.write_path import BENCH_SITES, PROFILE_SITES, bench_protocol, raw_http, raw_publish, write_path
from devstack.servers import EmbeddedNats, EmbeddedPostgres, NatsCluster, free_port
from devstack.stack import SERVICES
from devstack.system import LocalSystem
from services.gateway.auth import Role, issue_token
from services.reporting.projections import all_projections
from shared.contracts.protocol import load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

OUT = Path(__file__).resolve().parent
SECRET = "ejqUJLKkV_x7uARlnz_4dTw772tvt_I2fHwOkbRpZ1U"  # the benchmark's own token key, published with it
SEED = "42" * 32
SYSTEM, RAW = "#c0392b", "#7f8c8d"
SEQUENTIAL_APPENDS = 300  # one publisher, one append at a time: the latency of a single fsynced append
PUBLISHES = 2000  # appends of the raw publish with as many concurrent publishers as the write path has clients


def plot(results: dict[str, Any], path: Path) -> None:
    """Latencies and rates, the system in red beside its raw limits in grey; memory per service."""
    write, sae, rebuild, memory = (
        results["write_path"],
        results["sae_alert_latency"],
        results["rebuild"],
        results["memory_after_load_mb"],
    )
    fig, (latency, hops, rates, cpu, rss) = plt.subplots(
        5, 1, figsize=(10, 20), gridspec_kw={"height_ratios": [3, 2.5, 2, 2, 2]}
    )
    rows = [
        ("write path via gateway", write["system"], SYSTEM),
        ("raw JetStream publish+ack", write["raw_limits"]["jetstream_publish"], RAW),
        ("raw uvicorn endpoint", write["raw_limits"]["uvicorn_endpoint"], RAW),
        ("SAE alert, from request sent", sae["system_from_request_sent"], SYSTEM),
        ("SAE alert, after the 201", sae["system"], SYSTEM),
        ("raw NATS round trip", sae["raw_limit"], RAW),
    ]
    y = range(len(rows))
    latency.barh([i + 0.2 for i in y], [r[1]["p50_ms"] for r in rows], height=0.4, color=[r[2] for r in rows])
    latency.barh(
        [i - 0.2 for i in y], [r[1]["p99_ms"] for r in rows], height=0.4, color=[r[2] for r in rows], alpha=0.45
    )
    latency.set_yticks(list(y), [r[0] for r in rows])
    latency.invert_yaxis()
    latency.set_xscale("log")
    latency.set_xlabel("milliseconds, log (solid p50, pale p99)")
    latency.set_title(f"Trial backend on {results['machine']['cpus']} cores — system (red) beside raw limits (grey)")
    cluster = results.get("cluster")
    if cluster:
        nodes = cluster["nodes"]
        rows[3:3] = [
            (f"write path, {nodes}-node cluster", cluster["system"], SYSTEM),
            (f"raw publish+ack, {nodes} replicas", cluster["jetstream_publish"], RAW),
        ]
    rate_rows = [
        (f"write path ({write['clients']} clients)", write["system"]["per_s"], SYSTEM),
        ("raw JetStream publish+ack", write["raw_limits"]["jetstream_publish"]["per_s"], RAW),
        *(
            [
                (f"write path, {cluster['nodes']}-node cluster", cluster["system"]["per_s"], SYSTEM),
                (f"raw publish+ack, {cluster['nodes']} replicas", cluster["jetstream_publish"]["per_s"], RAW),
            ]
            if cluster
            else []
        ),
        ("raw uvicorn endpoint", write["raw_limits"]["uvicorn_endpoint"]["per_s"], RAW),
        ("rebuild, every read model", rebuild["system_events_per_s"], SYSTEM),
        ("raw JetStream consume", rebuild["raw_limit_jetstream_consume_per_s"], RAW),
        ("raw COPY of the read models' rows", rebuild["raw_limit_copy_into_read_models_per_s"], RAW),
        ("raw asyncpg batched inserts", rebuild["raw_limit_asyncpg_batched_inserts_per_s"], RAW),
    ]
    rates.barh([r[0] for r in rate_rows], [r[1] for r in rate_rows], color=[r[2] for r in rate_rows])
    rates.invert_yaxis()
    rates.set_xscale("log")
    rates.set_xlabel("requests or events per second, log")
    by_hop(hops, sae)
    cores = f"{write['cores_busy']} of {results['machine']['cpus']} cores busy"
    by_process(cpu, write["cpu_ms_per_request"], f"CPU ms per write request, by process ({cores})")
    by_process(rss, memory, "resident memory after the load, MB")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def by_hop(ax: Any, sae: dict[str, Any]) -> None:
    """An SAE report's request hop by hop (p50), each beside the raw floor of what it must do."""
    names = list(sae["hops"])
    y = range(len(names))
    ax.barh([i - 0.2 for i in y], [sae["hops"][n]["p50_ms"] for n in names], height=0.4, color=SYSTEM)
    ax.barh([i + 0.2 for i in y], [sae["hops"][n]["floor_p50_ms"] for n in names], height=0.4, color=RAW)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    whole = sae["system_from_request_sent"]
    ax.set_title(
        f"An SAE report's request hop by hop (red: p50, {whole['p50_ms']} ms in all, p99 {whole['p99_ms']} ms)\n"
        f"beside the raw operations each hop needs, one after another (grey: {sae['floor_p50_ms']} ms in all)"
    )
    ax.set_xlabel("milliseconds, p50")


def by_process(ax: Any, figures: dict[str, float], label: str) -> None:
    """One bar per process: the services in red, the servers and the load generator in grey."""
    ax.barh(list(figures), list(figures.values()), color=[SYSTEM if n in SERVICES else RAW for n in figures])
    ax.invert_yaxis()
    ax.set_xlabel(label)


def resident_mb(process: psutil.Process) -> float:
    """The process and its children (Postgres backends share memory: counted once, by the postmaster)."""
    return round(process.memory_info().rss / 2**20, 1)


def processes(system: LocalSystem) -> dict[str, psutil.Process]:
    """Every process of the running system by name, and this benchmark's own (the load generator)."""
    assert system.services is not None
    found = {name: psutil.Process(p.pid) for name, p in system.services.processes.items()}
    nodes = system.nats.nodes if isinstance(system.nats, NatsCluster) else {"nats": system.nats}
    for name, node in nodes.items():
        assert node.process is not None
        found[name] = psutil.Process(node.process.pid)
    postmaster = system.postgres.pid()
    if postmaster is not None:
        found["postgres"] = psutil.Process(postmaster)
    found["load generator"] = psutil.Process()
    return found


def memory_after_load(system: LocalSystem) -> dict[str, float]:
    return {name: resident_mb(p) for name, p in processes(system).items() if name != "load generator"}


def cpu_seconds(system: LocalSystem) -> dict[str, float]:
    """CPU time used so far by each process (Postgres: the postmaster and every backend)."""
    return {
        name: measure.cpu_seconds(process, with_children=name == "postgres")
        for name, process in processes(system).items()
    }


def site_tokens(protocol: Path) -> dict[str, str]:
    """An investigator's token for every site of the benchmark's protocol (its own sites too)."""
    keys = {"bench": SECRET}
    return {
        site.code: issue_token(keys, issuer="trial-gateway", role=Role.INVESTIGATOR, site=site.code, hours=1)
        for site in load_protocol(protocol).sites
    }


async def live_benchmarks(
    system: LocalSystem, base: Path, protocol: Path, clients: int, seconds: float
) -> dict[str, Any]:
    tokens = site_tokens(protocol)
    publish = await raw_publish(system.nats_url, PUBLISHES, clients)
    one_by_one = await raw_publish(system.nats_url, SEQUENTIAL_APPENDS, 1)
    http = await raw_http(clients, seconds / 2, base)
    before = cpu_seconds(system)
    write = await write_path(system.gateway_url, tokens, clients, seconds, base)
    after = cpu_seconds(system)
    after["load generator"] = before["load generator"] + write.pop("load_generator_cpu_seconds")
    http.pop("load_generator_cpu_seconds")
    recorded = write["statuses"].get("201", 0)
    # What bounds the write path: CPU milliseconds per recorded write (retries included), by process, against
    # the machine's cores over the run.
    cpu_ms = {name: round(1000 * (after[name] - before[name]) / recorded, 2) for name in after}
    busy = sum(after[name] - before[name] for name in after) / seconds
    memory = memory_after_load(system)
    profiled = await profile_write_path(system, tokens, clients, seconds / 2, base)
    raw = await raw_round_trip(system.nats_url, 2000)
    caught_up_s = await quiet(system.nats_url)
    # The SAE subjects (500 and up) at the protocol's own sites, apart from the write path's.
    sae = await sae_latency(
        system.gateway_url, system.nats_url, {s: t for s, t in tokens.items() if s not in BENCH_SITES}, 60
    )
    floor = await floors(system.gateway_url, system.database_url, 300)
    floor |= {"nats_round_trip": raw, "jetstream_append": one_by_one.latency}
    floor_of = {hop.name: round(sum(floor[f].p50_ms for f in hop.floors), 3) for hop in SAE_PATH}
    hops = {
        hop.name: {**sae[hop.name].as_dict(), "floor_p50_ms": floor_of[hop.name], "floors": list(hop.floors)}
        for hop in SAE_PATH
    }
    floor_p50 = round(sum(floor_of.values()), 3)
    return {
        "write_path": {
            "what": f"consent → screening → randomization through the gateway, {clients} concurrent clients (wrk)",
            "clients": clients,
            "seconds": seconds,
            **write,
            "raw_limits": {"jetstream_publish": publish.as_dict(), "uvicorn_endpoint": http["system"]},
            "raw_limits_what": {
                "jetstream_publish": "JetStream publish with ack, 1.5 kB, file stream, fsync always, same clients",
                "uvicorn_endpoint": "a bare ASGI endpoint answering 201 under uvicorn, the same wrk load",
            },
            "ratio_per_s_to_publish": round(write["system"]["per_s"] / publish.as_dict()["per_s"], 3),
            "ratio_per_s_to_uvicorn": round(write["system"]["per_s"] / http["system"]["per_s"], 3),
            "ratio_p50_to_publish": round(write["system"]["p50_ms"] / publish.latency.p50_ms, 1),
            "cpu_ms_per_request": cpu_ms,
            "cores_busy": round(busy, 2),
        },
        "write_path_profile": profiled,
        "publish_one_client": one_by_one.as_dict(),
        "memory_after_load_mb": memory,
        "sae_alert_latency": {
            "what": "SAE report through the gateway → alert received by a subscriber of trial.alerts.sae.>",
            "consumers_caught_up_after_s": caught_up_s,
            "system": sae["after_201"].as_dict(),
            "system_from_request_sent": sae["after_request"].as_dict(),
            "raw_limit": raw.as_dict(),
            "raw_limit_what": "core NATS request/reply round trip to an echo responder, 512 B",
            "ratio_p50": round(sae["after_201"].p50_ms / raw.p50_ms, 1),
            "ratio_p99": round(sae["after_201"].p99_ms / raw.p99_ms, 1),
            "ratio_from_request_sent_p50": round(sae["after_request"].p50_ms / raw.p50_ms, 1),
            "hops_what": (
                "each hop of the report's request (the gateway's Server-Timing header), beside the p50 sum of the raw "
                "operations the design needs in it (`floors`), each measured one after another in the same run"
            ),
            "hops": hops,
            "floors": {name: summary.as_dict() for name, summary in floor.items()},
            "floor_p50_ms": floor_p50,
            "ratio_from_request_sent_p50_to_floors": round(sae["after_request"].p50_ms / floor_p50, 1),
        },
    }


async def profile_write_path(
    system: LocalSystem, tokens: dict[str, str], clients: int, seconds: float, base: Path
) -> dict[str, Any]:
    """The same load again, on sites of its own, with every Python process sampled (after the measured run:
    the sampler takes CPU too)."""
    pids = {name: p.pid for name, p in processes(system).items() if name in SERVICES}
    load = asyncio.create_task(write_path(system.gateway_url, tokens, clients, seconds, base, PROFILE_SITES))
    samples = await profile.sample(pids, seconds, base)
    await load
    summaries = {name: profile.summary(raw) for name, raw in samples.items()}
    profile.plot(summaries, OUT / "profile.svg")
    return summaries


async def cluster_benchmarks(
    system: LocalSystem, base: Path, protocol: Path, clients: int, seconds: float
) -> dict[str, Any]:
    """The write path and the raw publish again, on a JetStream cluster with every stream on each node."""
    publish = await raw_publish(system.nats_url, PUBLISHES, clients, replicas=system.stream_replicas)
    one_by_one = await raw_publish(system.nats_url, SEQUENTIAL_APPENDS, 1, replicas=system.stream_replicas)
    write = await write_path(system.gateway_url, site_tokens(protocol), clients, seconds, base)
    return {
        "system": write["system"],
        "statuses": write["statuses"],
        "jetstream_publish": publish.as_dict(),
        "jetstream_publish_one_client": one_by_one.as_dict(),
    }


def on_a_cluster(base: Path, protocol: Path, nodes: int, clients: int, seconds: float, single: dict[str, Any]) -> Any:
    system = bench_system(base / f"cluster{nodes}", protocol, cluster=nodes)
    try:
        system.start(log_dir=base / f"logs-cluster{nodes}")
        found = asyncio.run(cluster_benchmarks(system, base, protocol, clients, seconds))
    finally:
        system.stop()
    one = single["write_path"]
    return {
        "what": f"the same write path and publish on a {nodes}-node JetStream cluster, streams with {nodes} replicas",
        "nodes": nodes,
        **found,
        "ratio_per_s_to_single_node": round(found["system"]["per_s"] / one["system"]["per_s"], 3),
        "ratio_p50_to_single_node": round(found["system"]["p50_ms"] / one["system"]["p50_ms"], 2),
        "ratio_publish_per_s_to_single_node": round(
            found["jetstream_publish"]["per_s"] / one["raw_limits"]["jetstream_publish"]["per_s"], 3
        ),
        # One append at a time: what the replication round trip adds to each write, without batching.
        "replication_ms_per_append_p50": round(
            found["jetstream_publish_one_client"]["p50_ms"] - single["publish_one_client"]["p50_ms"], 2
        ),
    }


def bench_system(data: Path, protocol: Path, *, cluster: int = 1) -> LocalSystem:
    return LocalSystem(
        data,
        cluster=cluster,
        TOKEN_SIGNING_KEYS=f"bench:{SECRET}",
        RANDOMIZATION_SEED=SEED,
        PROTOCOL_FILE=str(protocol),
        LOG_LEVEL="WARNING",
    )


def rebuild_benchmark(base: Path, events: int) -> dict[str, Any]:
    """On servers of its own, so the stream holds exactly the events measured."""
    nats_server = EmbeddedNats(base / "nats-rebuild", port=free_port())
    postgres = EmbeddedPostgres(base / "pg-rebuild")
    protocol = load_protocol(DEFAULT_PROTOCOL_FILE)

    async def measure(nats_url: str, database_url: str) -> tuple[float, float, float, RebuildRun, CopyRun]:
        await fill_stream(nats_url, protocol, events)
        consume = await raw_consume(nats_url, events)
        decode = await raw_consume(nats_url, events, decode=True)
        inserts = await raw_inserts(database_url, events)
        postmaster = postgres.pid()
        assert postmaster is not None
        run = await rebuild_rate(nats_url, database_url, protocol, psutil.Process(postmaster))
        tables = [table for projection in all_projections(protocol) for table in projection.tables]
        return consume, decode, inserts, run, await copy_back(database_url, tables, events, psutil.Process(postmaster))

    try:
        consume, decode, inserts, run, copy = asyncio.run(measure(nats_server.start(), postgres.start()))
    finally:
        postgres.stop()
        nats_server.stop()
    decoders = decoder_rates(protocol)
    return {
        "what": f"rebuild of every read model from a stream of {events} events (consent, screening, adverse event)",
        "events": events,
        "system_events_per_s": round(run.events_per_s),
        "raw_limit_jetstream_consume_per_s": round(consume),
        "raw_limit_consume_and_decode_per_s": round(decode),
        "raw_limit_asyncpg_batched_inserts_per_s": round(inserts),
        # The read models' own rows, COPYed back into their tables: the most any rebuild of them could reach.
        "raw_limit_copy_into_read_models_per_s": round(copy.events_per_s),
        "ratio_to_consume": round(run.events_per_s / consume, 3),
        "ratio_to_consume_and_decode": round(run.events_per_s / decode, 3),
        "ratio_to_inserts": round(run.events_per_s / inserts, 3),
        "ratio_to_copy": round(run.events_per_s / copy.events_per_s, 3),
        "copy_ratio_to_consume": round(copy.events_per_s / consume, 3),
        # What bounds it: the CPU each event costs on each side (one core each at most: one Python process,
        # one Postgres backend), beside the decoding alone.
        "python_cpu_us_per_event": round(run.python_us_per_event, 1),
        "postgres_cpu_us_per_event": round(run.postgres_us_per_event, 1),
        "copy_postgres_cpu_us_per_event": round(copy.postgres_us_per_event, 1),
        "decode_us_per_event": round(1e6 / decode - 1e6 / consume, 1),
        "decoders_what": (
            "microseconds per event of the sample events (consent, screening, adverse event), decoded alone: the "
            "decoder in use (pydantic's JSON parser, one pass) beside the one it replaced (Python objects first)"
        ),
        "decoders_us_per_event": {
            "in_use": decoders.in_use_us_per_event,
            "via_python_objects": decoders.via_python_objects_us_per_event,
        },
        "decoder_speedup": round(decoders.via_python_objects_us_per_event / decoders.in_use_us_per_event, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--cluster", type=int, default=1, help="also measure the write path on a cluster of this many nodes"
    )
    args = parser.parse_args()
    clients = int(os.environ.get("BENCH_CLIENTS", "32"))
    seconds = float(os.environ.get("BENCH_WRITE_SECONDS", "20"))
    rebuild_events = int(os.environ.get("BENCH_REBUILD_EVENTS", "200000"))
    with tempfile.TemporaryDirectory(prefix="trial-bench-") as tmp:
        base = Path(tmp)
        protocol = bench_protocol(DEFAULT_PROTOCOL_FILE, base / "protocol.yaml")
        system = bench_system(base / "system", protocol)
        try:
            system.start(log_dir=base / "logs")
            live = asyncio.run(live_benchmarks(system, base, protocol, clients, seconds))
        finally:
            system.stop()
        cluster = on_a_cluster(base, protocol, args.cluster, clients, seconds, live) if args.cluster > 1 else None
        rebuild = rebuild_benchmark(base, rebuild_events)
    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        **live,
        **({"cluster": cluster} if cluster else {}),
        "rebuild": rebuild,
    }
    met = goals(results)
    results["goals"] = as_results(met)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, OUT / "results.svg")
    w, s, r = results["write_path"], results["sae_alert_latency"], rebuild
    print(
        f"write path: {w['system']['per_s']} req/s, p50 {w['system']['p50_ms']} ms, p99 {w['system']['p99_ms']} ms "
        f"(raw publish {w['raw_limits']['jetstream_publish']['per_s']}/s, "
        f"raw uvicorn {w['raw_limits']['uvicorn_endpoint']['per_s']}/s); statuses {w['statuses']}"
    )
    print(
        f"SAE alert: p50 {s['system_from_request_sent']['p50_ms']} ms from the request, {s['system']['p50_ms']} ms "
        f"after the 201 (raw round trip {s['raw_limit']['p50_ms']} ms; the raw operations of its path "
        f"{s['floor_p50_ms']} ms): "
        + ", ".join(f"{name} {hop['p50_ms']} (floor {hop['floor_p50_ms']})" for name, hop in s["hops"].items())
    )
    print(
        f"rebuild: {r['system_events_per_s']} events/s (raw consume {r['raw_limit_jetstream_consume_per_s']}/s, "
        f"consume and decode {r['raw_limit_consume_and_decode_per_s']}/s, "
        f"raw inserts {r['raw_limit_asyncpg_batched_inserts_per_s']}/s, the same rows by COPY "
        f"{r['raw_limit_copy_into_read_models_per_s']} events/s); CPU per event: {r['python_cpu_us_per_event']} µs "
        f"Python, {r['postgres_cpu_us_per_event']} µs Postgres ({r['copy_postgres_cpu_us_per_event']} µs by COPY); "
        f"decoding alone {r['decoders_us_per_event']['in_use']} µs an event "
        f"({r['decoders_us_per_event']['via_python_objects']} µs with Python objects first)"
    )
    print(f"write path CPU ms per request: {w['cpu_ms_per_request']} ({w['cores_busy']} cores busy)")
    print(f"memory after load (MB): {results['memory_after_load_mb']}")
    if cluster:
        print(
            f"on {cluster['nodes']} nodes: write path {cluster['system']['per_s']} req/s, "
            f"p50 {cluster['system']['p50_ms']} ms ({cluster['ratio_per_s_to_single_node']} of one node); raw publish "
            f"{cluster['jetstream_publish']['per_s']}/s ({cluster['ratio_publish_per_s_to_single_node']} of one node), "
            f"one append at a time: +{cluster['replication_ms_per_append_p50']} ms p50 for the replication"
        )
    for goal in met:
        print(goal.line())
    print(f"wrote {OUT / 'results.json'}, {OUT / 'results.svg'} and {OUT / 'profile.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

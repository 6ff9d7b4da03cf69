"""The benchmark says, per goal, whether one run met it, from that run's own figures."""

import copy
import json
from pathlib import Path
from typing import Any

from bench.goals import goals

RESULTS: dict[str, Any] = {
    "write_path": {
        "clients": 32,
        "system": {"p99_ms": 40.0},
        "ratio_per_s_to_publish": 0.12,
        "cpu_ms_per_request": {"gateway": 1.5, "nats": 1.5, "reporting": 1.0, "load generator": 0.9},
    },
    "sae_alert_latency": {"system_from_request_sent": {"p99_ms": 9.5}},
    "rebuild": {"events": 200_000, "system_events_per_s": 30_000, "raw_limit_jetstream_consume_per_s": 50_000},
}


def changed(path: str, value: Any) -> dict[str, Any]:
    results = copy.deepcopy(RESULTS)
    *parents, last = path.split(".")
    node = results
    for key in parents:
        node = node[key]
    node[last] = value
    return results


def test_a_run_within_every_goal_meets_them_all_and_the_load_generator_is_not_counted() -> None:
    found = goals(RESULTS)
    assert [g.met for g in found] == [True, True, True, True]
    assert found[0].figure == "4.00 ms"


def test_each_goal_is_missed_by_its_own_figure_alone() -> None:
    misses = {
        "write_path.cpu_ms_per_request.gateway": 2.1,
        "write_path.ratio_per_s_to_publish": 0.09,
        "write_path.system.p99_ms": 51.0,
        "sae_alert_latency.system_from_request_sent.p99_ms": 10.5,
        "rebuild.system_events_per_s": 24_000,
    }
    missed = {path: [g.name for g in goals(changed(path, value)) if not g.met] for path, value in misses.items()}
    assert missed == {
        "write_path.cpu_ms_per_request.gateway": ["CPU per write, every server process"],
        "write_path.ratio_per_s_to_publish": ["write path, 32 clients"],
        "write_path.system.p99_ms": ["write path, 32 clients"],
        "sae_alert_latency.system_from_request_sent.p99_ms": ["SAE report → alert, p99 from the request"],
        "rebuild.system_events_per_s": ["rebuild, 200,000 events"],
    }


def test_a_run_not_under_the_goals_load_misses_them_and_says_why() -> None:
    [write] = [g for g in goals(changed("write_path.clients", 8)) if g.name.startswith("write path")]
    [rebuild] = [g for g in goals(changed("rebuild.events", 20_000)) if g.name.startswith("rebuild")]
    assert not write.met and "at 8 clients" in write.line()
    assert not rebuild.met and "of 20,000 events" in rebuild.line()


def test_the_recorded_run_reads_as_goals() -> None:
    recorded = json.loads((Path(__file__).resolve().parents[3] / "bench" / "results.json").read_text())
    assert [g.name for g in goals(recorded)] == [g.name for g in goals(RESULTS)]

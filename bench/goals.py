"""The performance goals the system is held to, each met or missed by one run's results (`make bench`): CPU per
write, the write path against the raw publish, the SAE report's latency and the rebuild against the raw consume,
each measured as the goal states it (32 clients, 200,000 events), else missed and said why."""

from dataclasses import asdict, dataclass
from typing import Any

CLIENTS = 32
REBUILD_EVENTS = 200_000


@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    figure: str  # the run's, as it compares with the target
    met: bool

    def line(self) -> str:
        return f"goal {'met' if self.met else 'MISSED'}: {self.name}: {self.figure} (goal {self.target})"


def goals(results: dict[str, Any]) -> list[Goal]:
    write, sae, rebuild = results["write_path"], results["sae_alert_latency"], results["rebuild"]
    cpu = sum(ms for process, ms in write["cpu_ms_per_request"].items() if process != "load generator")
    ratio, p99 = write["ratio_per_s_to_publish"], write["system"]["p99_ms"]
    sae_p99 = sae["system_from_request_sent"]["p99_ms"]
    rebuilt = rebuild["system_events_per_s"] / rebuild["raw_limit_jetstream_consume_per_s"]
    # A run under another load than the goal's misses the goal, and says so.
    off_load = {
        "write": "" if write["clients"] == CLIENTS else f" (at {write['clients']} clients: not the goal's load)",
        "rebuild": "" if rebuild["events"] == REBUILD_EVENTS else f" (of {rebuild['events']:,} events: not the goal's)",
    }
    return [
        Goal("CPU per write, every server process", "≤ 4.5 ms", f"{cpu:.2f} ms", cpu <= 4.5),
        Goal(
            f"write path, {CLIENTS} clients",
            "≥ 0.1 of the raw publish, p99 ≤ 50 ms",
            f"{ratio} of the raw publish, p99 {p99} ms{off_load['write']}",
            not off_load["write"] and ratio >= 0.1 and p99 <= 50,
        ),
        Goal("SAE report → alert, p99 from the request", "≤ 10 ms", f"{sae_p99} ms", sae_p99 <= 10),
        Goal(
            f"rebuild, {REBUILD_EVENTS:,} events",
            "≥ 0.5 of the raw consume",
            f"{rebuilt:.3f} of the raw consume{off_load['rebuild']}",
            not off_load["rebuild"] and rebuilt >= 0.5,
        ),
    ]


def as_results(found: list[Goal]) -> list[dict[str, Any]]:
    return [asdict(goal) for goal in found]

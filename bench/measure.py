"""Timing helpers: samples in milliseconds, summarized by percentiles; CPU seconds of processes."""

import statistics
import time
from dataclasses import asdict, dataclass

import psutil


def now_ms() -> float:
    return time.perf_counter() * 1000.0


@dataclass(frozen=True)
class Summary:
    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float  # of few samples the p99 is the next to last: the slowest is shown too

    @classmethod
    def of(cls, samples_ms: list[float]) -> "Summary":
        ordered = sorted(samples_ms)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return cls(
            len(ordered),
            round(statistics.median(ordered), 3),
            round(p99, 3),
            round(statistics.fmean(ordered), 3),
            round(ordered[-1], 3),
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def cpu_seconds(process: psutil.Process, *, with_children: bool = False) -> float:
    """User and system CPU used so far by a process, and by all its children (Postgres: every backend)."""
    family = [process, *process.children(recursive=True)] if with_children else [process]
    return sum(p.cpu_times().user + p.cpu_times().system for p in family)

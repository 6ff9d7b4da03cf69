"""Timing helpers: samples in milliseconds, summarized by percentiles."""

import statistics
import time
from dataclasses import asdict, dataclass


def now_ms() -> float:
    return time.perf_counter() * 1000.0


@dataclass(frozen=True)
class Summary:
    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def of(cls, samples_ms: list[float]) -> "Summary":
        ordered = sorted(samples_ms)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return cls(
            len(ordered), round(statistics.median(ordered), 3), round(p99, 3), round(statistics.fmean(ordered), 3)
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

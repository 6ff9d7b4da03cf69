"""Where each service spends its CPU under the write path's load: py-spy samples of every process at once, as
each one's busiest functions by their own time (not their callees') and by the part of the code they are in.

Two things py-spy gets wrong here unless told, both checked against `perf` (68 % of a service's CPU in the Python
interpreter, 14 % in the kernel, the rest in pydantic's and cryptography's native code):
- Without pausing the process for each sample (`--nonblocking`), stacks come torn: 40 % of a service's samples
  ended in a socket write, against 6 % with each sample taken on a paused process.
- uvloop waits for sockets in C, so a waiting service shows as the frame that runs the loop, not as idle. A sample
  whose innermost frame runs the loop is the loop waiting or in its own C code, which py-spy cannot see into:
  counted apart (`waiting_pct`), not as work.
"""

import asyncio
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).with_name("py-spy")
RATE = 200  # samples per second: enough for shares of a few percent in ten seconds, each costing a short pause
# The frame that runs the event loop: innermost, the loop is waiting (or in uvloop's C code).
LOOP_RUNNERS = ("Runner.run (", "run_until_complete (", "run_forever (", "asyncio_run (")
# The parts of a request's work, by the package a frame's file is in (py-spy names a frame `function (path:line)`,
# the path from the package or whole), for the per-process breakdown.
PARTS: tuple[tuple[str, str], ...] = (
    ("pydantic", "validation and serialization (pydantic)"),
    ("asyncpg/", "Postgres driver (asyncpg)"),
    ("nats/", "NATS client (nats-py)"),
    ("faststream/", "FastStream"),
    ("fast_depends/", "FastStream"),
    ("starlette/", "HTTP framework (FastAPI/Starlette)"),
    ("fastapi/", "HTTP framework (FastAPI/Starlette)"),
    ("uvicorn/", "HTTP server (uvicorn)"),
    ("httptools/", "HTTP server (uvicorn)"),
    ("structlog/", "logging (structlog)"),
    ("prometheus_client/", "metrics"),
    ("jwt/", "tokens (PyJWT, cryptography)"),
    ("cryptography/", "tokens (PyJWT, cryptography)"),
    ("asyncio/", "event loop and sockets (asyncio)"),
    ("anyio/", "event loop and sockets (asyncio)"),
    ("shared/", "the trial's code"),
    ("services/", "the trial's code"),
)


async def sample(pids: Mapping[str, int], seconds: float, workdir: Path) -> dict[str, Path]:
    """Sample every process for `seconds` at once (py-spy, pausing each for each sample); the raw stacks' files."""
    files = {name: workdir / f"profile-{name}.txt" for name in pids}
    recorders = [
        await asyncio.create_subprocess_exec(
            str(PY_SPY), "record", "--pid", str(pid), "--duration", f"{seconds:.0f}", "--rate", str(RATE),
            "--format", "raw", "--output", str(files[name]),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]  # fmt: skip
    codes = await asyncio.gather(*(r.wait() for r in recorders))
    for name, code in zip(pids, codes, strict=True):
        if code:  # e.g. no right to trace another process (py-spy needs ptrace: root, or CAP_SYS_PTRACE)
            print(f"py-spy could not sample {name} (exit {code}); it is left out of the profile", file=sys.stderr)
    return {name: path for name, path in files.items() if path.exists()}


def stacks(raw: Path) -> Counter[tuple[str, ...]]:
    """py-spy's raw format: one stack per line, frames outermost first joined by ';', then its sample count."""
    found: Counter[tuple[str, ...]] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            found[tuple(stack.split(";"))] += int(count)
    return found


def part_of(frame: str) -> str:
    path = frame.rpartition(" (")[2]
    return next((part for package, part in PARTS if path.startswith(package) or f"/{package}" in path), "other")


def waiting(stack: tuple[str, ...]) -> bool:
    return stack[-1].startswith(LOOP_RUNNERS)


def summary(raw: Path, top: int = 8) -> dict[str, Any]:
    """The busiest functions by own time, and the share of each part of the code, in percent of the busy samples;
    and the share of all samples the event loop was waiting."""
    found = stacks(raw)
    idle = sum(count for stack, count in found.items() if waiting(stack))
    total = sum(found.values()) - idle or 1
    own: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    for stack, count in found.items():
        if not waiting(stack):
            own[stack[-1]] += count
            parts[part_of(stack[-1])] += count
    return {
        "samples": sum(found.values()),
        "waiting_pct": round(100 * idle / (sum(found.values()) or 1), 1),
        "parts_pct": {part: round(100 * n / total, 1) for part, n in parts.most_common()},
        "busiest_pct": {frame: round(100 * n / total, 1) for frame, n in own.most_common(top)},
    }


def plot(profiles: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    """One bar per process, split by part of the code: where the CPU of a write goes."""
    import matplotlib.pyplot as plt

    parts = sorted({p for s in profiles.values() for p in s["parts_pct"]})
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.6 * len(profiles)))
    names = list(profiles)
    left = [0.0] * len(names)
    colours = plt.get_cmap("tab20")
    for i, part in enumerate(parts):
        widths = [profiles[n]["parts_pct"].get(part, 0.0) for n in names]
        ax.barh(names, widths, left=left, label=part, color=colours(i % 20))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("percent of the process's busy samples under the write path's load (py-spy)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

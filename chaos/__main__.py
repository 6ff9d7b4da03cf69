"""`make chaos`: the whole system under a mixed write load, every component SIGKILLed in turn, several rounds.

Prints what it does and what it found, writes chaos/report.json and chaos/timeline.svg (every
request's latency over time, the crashes marked; `-cluster3` in their names on a three-node cluster, with
the leader changes and the longest write stall). Exits 1 when anything was lost, doubled or stuck.
"""

import argparse
import asyncio
import json
import os
import shutil
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from chaos.crash import ChaosRun, chaos_system, crash_and_verify, new_data_dir

OUT = Path(__file__).resolve().parent


def say(line: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {line}", flush=True)


LEADER = "#27ae60"


def mark(ax: Any, at: float, text: str, *, top: bool, color: str = "black") -> None:
    """Upright text at `at` seconds, along the top (faults) or the bottom (leader changes) of the plot."""
    ax.annotate(
        text,
        (at, 1.0 if top else 0.02),
        xycoords=("data", "axes fraction"),
        rotation=90,
        va="top" if top else "bottom",
        ha="right" if top else "left",
        fontsize=8 if top else 7,
        color=color,
    )


def plot(run: ChaosRun, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for retried, colour, label in ((False, "#2c7fb8", "answered first time"), (True, "#d95f0e", "retried, same key")):
        chosen = [a for a in run.answers if (a.attempts > 1) == retried]
        ax.scatter(
            [a.sent_at for a in chosen],
            [max(a.answered_at - a.sent_at, 1e-3) * 1000 for a in chosen],
            s=8,
            color=colour,
            label=f"{label} ({len(chosen)})",
            rasterized=True,  # thousands of points: a picture, not thousands of SVG elements
        )
    for crash in run.crashes:
        colour = "#8e44ad" if crash.fault == "partition" else "#e74c3c"
        ax.axvspan(crash.killed_at, crash.back_at, color=colour, alpha=0.15)
        mark(ax, crash.killed_at, crash.component, top=True)
    for change in run.leaders[1:]:
        ax.axvline(change.at, color=LEADER, linewidth=1, linestyle="--")
        mark(ax, change.at, f"leader: {change.leader or 'none'}", top=False, color=LEADER)
    ax.set_yscale("log")
    marks = "red: killed until restarted" + (
        "; purple: cut off (SIGSTOP); green: the event stream's leader changed" if run.leaders else ""
    )
    ax.set_xlabel(f"seconds since the load started ({marks})")
    ax.set_ylabel("request → final answer, ms (log)")
    verdict = "nothing lost, doubled or stuck" if run.ok else f"{len(run.findings.problems)} problem(s)"
    ax.set_title(f"{len(run.answers)} requests, {len(run.crashes)} SIGKILLs — {verdict}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="passes over every component (default 3)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent site clients (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="order and timing of the crashes")
    parser.add_argument(
        "--cluster",
        type=int,
        default=int(os.environ.get("CLUSTER") or 1),
        help="nodes of the JetStream cluster (default 1: one server; 3: kill leaders and cut a node off)",
    )
    args = parser.parse_args()
    data = new_data_dir()
    system = chaos_system(data, cluster=args.cluster)
    suffix = f"-cluster{args.cluster}" if args.cluster > 1 else ""
    say(f"starting the system in {data}")
    try:
        system.start(log_dir=data / "logs")
        run = asyncio.run(crash_and_verify(system, rounds=args.rounds, clients=args.clients, seed=args.seed, say=say))
    finally:
        system.stop()
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": run.ok,
        "seconds": round(run.seconds, 1),
        "cluster_nodes": args.cluster,
        "crashes": [asdict(c) | {"write_stall_seconds": round(run.stall_after(c), 2)} for c in run.crashes],
        "stream_leader_changes": [asdict(c) for c in run.leaders[1:]],
        "longest_write_stall_seconds": round(run.longest_stall[0], 2),
        "longest_write_stall_began_at": round(run.longest_stall[1], 2),
        "counts": run.findings.counts,
        "connection_failures_retried": run.transport_errors,
        "failure": run.failure,
        "problems": run.findings.problems,
    }
    report_file, timeline_file = OUT / f"report{suffix}.json", OUT / f"timeline{suffix}.svg"
    report_file.write_text(json.dumps(report, indent=2) + "\n")
    plot(run, timeline_file)
    for name, count in run.findings.counts.items():
        say(f"{name}: {count}")
    for problem in ([run.failure] if run.failure else []) + run.findings.problems:
        say(f"PROBLEM: {problem}")
    if run.leaders:
        changes, (stall, began) = len(run.leaders) - 1, run.longest_stall
        say(f"the event stream's leader changed {changes} times; longest write stall {stall:.1f}s from {began:.1f}s")
    say(f"{'OK' if run.ok else 'FAILED'}; wrote {report_file} and {timeline_file}")
    if run.ok:
        shutil.rmtree(data, ignore_errors=True)
    else:
        say(f"logs kept in {data / 'logs'}")
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""`python -m services.randomization [run|export|verify]`.

run     allocate subjects (the default); SIGTERM drains in-flight commands
export  write the allocation list as CSV (for the statistician; needs the seed)
verify  check a CSV export against the commitment recorded in the event stream
"""

import argparse
import asyncio
import sys
from pathlib import Path

from services.randomization.allocation import commitment_of, read_csv
from services.randomization.app import NAME, allocation_list_for, build_app
from services.randomization.settings import RandomizationSettings
from shared.contracts.events import RandomizationListCommitted
from shared.contracts.protocol import load_protocol
from shared.runtime import bus
from shared.runtime.eventstore import EventStore, trial_history
from shared.runtime.runner import run_faststream
from shared.runtime.settings import TrialSettings, load_settings


async def committed_lists(settings: TrialSettings) -> dict[int, RandomizationListCommitted]:
    protocol = load_protocol(settings.protocol_file)
    nc = await bus.connect(settings.nats_url, name="trial-randomization-tool")
    try:
        history = await EventStore(nc.jetstream()).load(
            trial_history(protocol.trial_id, RandomizationListCommitted.event_type)
        )
    finally:
        await nc.close()
    return {e.data.list_version: e.data for e in history.events if isinstance(e.data, RandomizationListCommitted)}


def verify(path: Path, settings: TrialSettings) -> int:
    try:
        exported = path.read_bytes()
    except OSError as exc:
        print(f"{path} cannot be read ({exc.strerror or type(exc).__name__})", file=sys.stderr)
        return 2
    rows = read_csv(exported)
    if not rows:
        print(f"{path}: no allocations in the file", file=sys.stderr)
        return 1
    version = int(rows[0]["list_version"])
    committed = asyncio.run(committed_lists(settings)).get(version)
    if committed is None:
        print(f"no commitment recorded for list version {version}", file=sys.stderr)
        return 1
    actual = commitment_of(exported)
    if actual != committed.commitment:
        print(f"MISMATCH: {path} hashes to {actual}, the trial committed {committed.commitment}")
        return 1
    print(f"OK: {path} is list version {version} as committed ({committed.commitment}, {committed.seed_kind} seed)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.randomization", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run")
    export = commands.add_parser("export")
    export.add_argument("--out", type=Path, required=True)
    check = commands.add_parser("verify")
    check.add_argument("csv", type=Path)
    args = parser.parse_args()
    if args.command == "verify":
        return verify(args.csv, TrialSettings())
    if args.command == "export":
        settings = load_settings(RandomizationSettings)
        allocation_list = allocation_list_for(load_protocol(settings.protocol_file), settings)
        try:
            args.out.write_bytes(allocation_list.to_csv())
        except OSError as exc:
            print(f"{args.out} cannot be written ({exc.strerror or type(exc).__name__})", file=sys.stderr)
            return 2
        print(f"{args.out}: commitment {allocation_list.commitment}")
        return 0
    run_faststream(NAME, build_app, RandomizationSettings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

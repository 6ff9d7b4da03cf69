"""`python -m services.reporting [run|rebuild|migrate|export|dead-letters]`: follow the stream, rebuild the
read models, write the SDTM exports (with define.json) to a folder, or list (`--replay`: replay) the read
models' dead letters."""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import uvloop

from services.reporting.app import migrate, rebuild_all, replay_dead_letters, serve
from services.reporting.exports import exports
from services.reporting.settings import ReportingSettings
from shared.runtime.logging import configure_logging
from shared.runtime.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.reporting")
    commands = ["run", "rebuild", "migrate", "export", "dead-letters"]
    parser.add_argument("command", nargs="?", default="run", choices=commands)
    parser.add_argument("--out", type=Path, default=Path("exports"), help="export: the folder for the CSV files")
    parser.add_argument("--replay", action="store_true", help="dead-letters: apply each original again")
    args = parser.parse_args()
    settings = load_settings(ReportingSettings)
    configure_logging(settings.log_level, settings.log_format, service="reporting")
    if args.command == "run":
        uvloop.run(serve(settings))
    elif args.command == "migrate":
        uvloop.run(migrate(settings))
    elif args.command == "dead-letters":
        sys.exit(uvloop.run(replay_dead_letters(settings, replay=args.replay)))
    elif args.command == "export":
        args.out.mkdir(parents=True, exist_ok=True)
        for name, text in uvloop.run(exports(settings)).items():
            (args.out / name).write_text(text)
            print(args.out / name)
    else:
        results = uvloop.run(rebuild_all(settings))
        for name, r in results.items():
            for table, rebuilt in r.rebuilt_checksums.items():
                verdict = "equal" if r.live_checksums.get(table) == rebuilt else "DIFFERENT"
                print(f"{name:<16} {table:<22} live {r.live_checksums.get(table)} rebuilt {rebuilt} {verdict}")
        print(json.dumps({name: dataclasses.asdict(r) for name, r in results.items()}))
        # Unreadable events, or a live model that had caught up and still differs, need a person.
        if any(r.unreadable or (r.live_sequence == r.last_sequence and not r.equal) for r in results.values()):
            sys.exit(1)


if __name__ == "__main__":
    main()

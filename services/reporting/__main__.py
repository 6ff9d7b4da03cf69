"""`python -m services.reporting [run|rebuild|migrate]`: follow the stream, or rebuild every read model."""

import argparse
import dataclasses
import json
import sys

import uvloop

from services.reporting.app import migrate, rebuild_all, serve
from services.reporting.settings import ReportingSettings
from shared.logging import configure_logging
from shared.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.reporting")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "rebuild", "migrate"])
    args = parser.parse_args()
    settings = load_settings(ReportingSettings)
    configure_logging(settings.log_level, settings.log_format, service="reporting")
    if args.command == "run":
        uvloop.run(serve(settings))
    elif args.command == "migrate":
        uvloop.run(migrate(settings))
    else:
        results = uvloop.run(rebuild_all(settings))
        print(json.dumps({name: dataclasses.asdict(r) for name, r in results.items()}))
        if any(r.unreadable for r in results.values()):
            sys.exit(1)


if __name__ == "__main__":
    main()

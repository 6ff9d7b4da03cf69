"""`python -m services.reporting [run|rebuild|migrate]`: follow the stream, or rebuild every read model."""

import argparse
import asyncio
import json

import uvloop

from services.reporting.app import migrate, rebuild_all, serve
from services.reporting.settings import ReportingSettings
from shared.logging import configure_logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.reporting")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "rebuild", "migrate"])
    args = parser.parse_args()
    settings = ReportingSettings()
    configure_logging(settings.log_level, settings.log_format, service="reporting")
    if args.command == "run":
        uvloop.run(serve(settings))
    elif args.command == "migrate":
        uvloop.run(migrate(settings))
    else:
        print(json.dumps({"replayed": asyncio.run(rebuild_all(settings))}))


if __name__ == "__main__":
    main()

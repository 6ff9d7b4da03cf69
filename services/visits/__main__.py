"""`python -m services.visits [run|missed-visits [--today YYYY-MM-DD]]`.

run            the visits service (default); SIGTERM drains in-flight commands
missed-visits  record VisitMissed for every window closed before each site's today, and exit (idempotent);
               --today names one date for every site instead
"""

import argparse
import asyncio
import sys
from datetime import date

from services.visits.app import NAME, build_app
from services.visits.handlers import record_missed_visits
from services.visits.settings import VisitsSettings
from shared.runtime.logging import configure_logging
from shared.runtime.runner import run_faststream
from shared.runtime.service import ServiceRuntime
from shared.runtime.settings import load_settings


async def missed_visits_once(settings: VisitsSettings, today: date | None) -> int:
    runtime = ServiceRuntime.create(NAME, settings, answers_commands=False)
    await runtime.start()
    try:
        return await record_missed_visits(runtime, now=runtime.clock(), today=today)
    finally:
        await runtime.stop()
        await runtime.broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.visits", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "missed-visits"])
    parser.add_argument("--today", type=date.fromisoformat, default=None)
    args = parser.parse_args()
    if args.command == "missed-visits":
        settings = load_settings(VisitsSettings)
        configure_logging(settings.log_level, settings.log_format, service=NAME)
        print(f"{asyncio.run(missed_visits_once(settings, args.today))} visits recorded as missed")
        return 0
    run_faststream(NAME, build_app, VisitsSettings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

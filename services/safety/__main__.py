"""`python -m services.safety [run|watch|dead-letters]`.

run           the safety service (default): adverse events, SAE alerts, escalation; SIGTERM drains
watch         the safety team's terminal: alerts as they arrive, acknowledged from here
              (GATEWAY_URL and SAFETY_TOKEN, a safety_officer token, in the environment)
dead-letters  the alert reaction's dead letters; --replay raises their alerts now (after a fix)
"""

import argparse
import asyncio
import os
import sys

from services.safety.app import NAME, build_app, replay_dead_letters
from services.safety.settings import SafetySettings
from services.safety.watch import watch
from shared.runtime.logging import configure_logging
from shared.runtime.runner import run_faststream
from shared.runtime.settings import load_settings


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.safety", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "watch", "dead-letters"])
    parser.add_argument("--replay", action="store_true", help="dead-letters: react to each original again")
    args = parser.parse_args()
    if args.command == "dead-letters":
        settings = load_settings(SafetySettings)
        configure_logging(settings.log_level, settings.log_format, service="safety")
        return asyncio.run(replay_dead_letters(settings, replay=args.replay))
    if args.command == "watch":
        token = os.environ.get("SAFETY_TOKEN")
        if not token:
            print("SAFETY_TOKEN (a safety_officer token) is required to acknowledge alerts", file=sys.stderr)
            return 2
        settings = SafetySettings()
        gateway = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000")
        asyncio.run(watch(settings.nats_url, gateway, token, settings.protocol()))
        return 0
    run_faststream(NAME, build_app, SafetySettings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

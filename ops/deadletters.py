"""`python -m ops.deadletters [--handler KIND:NAME]`: list what no handler could process, and why.

Replaying runs in the service that owns the handler, with its code and credentials:
`python -m services.reporting dead-letters --replay`, `python -m services.safety dead-letters --replay`.
"""

import argparse
import asyncio
import sys

from shared.runtime import bus
from shared.runtime.deadletters import DeadLetter, dead_letters, print_letters
from shared.runtime.settings import TrialSettings, load_settings


async def _list(handler: str | None) -> list[DeadLetter]:
    nc = await bus.connect(load_settings(TrialSettings).nats_url, name="trial-dead-letters")
    try:
        return await dead_letters(nc.jetstream(), handler=handler)
    finally:
        await nc.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.deadletters", description=__doc__)
    parser.add_argument("--handler", help="only this handler's, e.g. projection:subjects or reaction:sae-alerts")
    args = parser.parse_args()
    print_letters(asyncio.run(_list(args.handler)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

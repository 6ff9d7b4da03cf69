"""Entry point shared by every `python -m services.<name>`: settings from the environment, logs, signals."""

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

import structlog
import uvloop
from faststream import FastStream
from pydantic import ValidationError

from shared.contracts.attestation import InvalidKey
from shared.contracts.protocol import InvalidProtocolDefinition
from shared.runtime.logging import configure_logging
from shared.runtime.settings import TrialSettings, load_settings

S = TypeVar("S", bound=TrialSettings)

# A stop is bounded: should draining hang (the bus gone with the supervisor that started the process, a connection
# reconnecting for ever), the process ends all the same, before Kubernetes' 30 s grace period would end it.
STOP_DEADLINE_SECONDS = 25.0


def exit_within(seconds: float = STOP_DEADLINE_SECONDS) -> None:
    """From now on, the process ends within `seconds`, however its stop goes (called when a stop begins)."""

    def end() -> None:
        structlog.get_logger().error("stop_deadline_passed", seconds=seconds)
        os._exit(1)

    timer = threading.Timer(seconds, end)
    timer.daemon = True
    timer.start()


def run_faststream(name: str, build_app: Callable[[S], FastStream], settings_type: type[S]) -> None:
    try:
        settings = load_settings(settings_type)
    except ValidationError as exc:
        # Name the setting and the rule, never the value: some settings are secrets.
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        print(f"{name}: invalid settings: {problems}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings.log_level, settings.log_format, service=name)
    try:
        app = build_app(settings)
    except InvalidProtocolDefinition as exc:
        structlog.get_logger().error("invalid_protocol_definition", error=str(exc))
        sys.exit(2)
    except InvalidKey as exc:
        print(f"{name}: invalid COMMAND_VERIFY_KEYS: {exc}", file=sys.stderr)
        sys.exit(2)
    # FastStream handles SIGINT and SIGTERM (its `exit`): it stops consuming and waits for in-flight handlers.
    stop = app.exit

    def exit_bounded() -> None:
        exit_within()
        stop()

    app.exit = exit_bounded  # type: ignore[method-assign]
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(app.run())

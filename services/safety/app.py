"""Wiring of the safety service: command handlers, the alert reaction, and the escalation clock."""

import asyncio
import contextlib

import structlog
from faststream import FastStream

from services.safety.alerting import SeriousAdverseEventAlerts, escalate_overdue
from services.safety.handlers import build_router
from services.safety.settings import SafetySettings
from shared.contracts.protocol import load_protocol
from shared.runtime import bus
from shared.runtime.deadletters import dead_letters, print_letters, print_replay
from shared.runtime.deadletters import replay as replay_letters
from shared.runtime.decisions import Clock, utc_now
from shared.runtime.eventstore import EventStore
from shared.runtime.projections import TRANSIENT
from shared.runtime.reactions import reacting
from shared.runtime.service import ServiceRuntime

NAME = "safety"
log = structlog.get_logger(__name__)


async def replay_dead_letters(settings: SafetySettings, *, replay: bool) -> int:
    """List the alert reaction's dead letters; with `replay`, raise their alerts now (once, as ever)."""
    nc = await bus.connect(settings.nats_url, name="trial-safety-dead-letters")
    try:
        js = nc.jetstream()
        handler = f"reaction:{SeriousAdverseEventAlerts.name}"
        if not replay:
            print_letters(await dead_letters(js, handler=handler))
            return 0
        reaction = SeriousAdverseEventAlerts(EventStore(js), js, load_protocol(settings.protocol_file))
        return print_replay(await replay_letters(js, handler, reacting(reaction)))
    finally:
        await nc.close()


def build_app(settings: SafetySettings, *, clock: Clock = utc_now) -> FastStream:
    runtime = ServiceRuntime.create(NAME, settings, clock=clock)
    runtime.broker.include_router(build_router(runtime, settings))
    runtime.react_with(
        lambda: SeriousAdverseEventAlerts(runtime.store, runtime.broker.connection.jetstream(), runtime.protocol)
    )
    app = FastStream(runtime.broker, logger=None)
    clock_task: list[asyncio.Task[None]] = []

    async def escalation_clock() -> None:
        js = runtime.broker.connection.jetstream()
        while True:
            try:
                await escalate_overdue(
                    runtime.store, js, runtime.protocol, now=runtime.clock(), interval=settings.acknowledgement_interval
                )
            except TRANSIENT as exc:
                log.warning("escalation_check_failed", error=repr(exc))
            await asyncio.sleep(settings.escalation_check_seconds)

    async def start() -> None:
        await runtime.start()
        clock_task.append(asyncio.create_task(escalation_clock()))

    async def stop() -> None:
        # The clock has nothing in hand worth waiting for; the reaction finishes its message (runtime.stop).
        for task in clock_task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runtime.stop()

    app.on_startup(start)
    app.on_shutdown(stop)
    return app

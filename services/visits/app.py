"""Wiring of the visits service: command handlers and the missed-visit clock."""

import asyncio
import contextlib

import structlog
from faststream import FastStream

from services.visits.handlers import build_router, record_missed_visits
from services.visits.settings import VisitsSettings
from shared.runtime.decisions import Clock, utc_now
from shared.runtime.projections import TRANSIENT
from shared.runtime.service import ServiceRuntime

NAME = "visits"
log = structlog.get_logger(__name__)


def build_app(settings: VisitsSettings, *, clock: Clock = utc_now) -> FastStream:
    runtime = ServiceRuntime.create(NAME, settings, clock=clock)
    runtime.broker.include_router(build_router(runtime, settings))
    app = FastStream(runtime.broker, logger=None)
    tasks: list[asyncio.Task[None]] = []

    async def missed_visit_clock() -> None:
        while True:
            try:
                await record_missed_visits(runtime, now=runtime.clock())
            except TRANSIENT as exc:
                log.warning("missed_visit_check_failed", error=repr(exc))
            await asyncio.sleep(settings.missed_visit_check_seconds)

    async def start() -> None:
        await runtime.start()
        tasks.append(asyncio.create_task(missed_visit_clock()))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runtime.stop()

    app.on_startup(start)
    app.on_shutdown(stop)
    return app

"""Wiring of the data management service: query and verification commands, the edit checks, and their sweep."""

import asyncio
import contextlib

import structlog
from faststream import FastStream

from services.datamanagement.handlers import EditChecks, build_router, sweep_serious_adverse_events
from services.datamanagement.settings import DataManagementSettings
from shared.runtime.decisions import Clock, utc_now
from shared.runtime.projections import TRANSIENT
from shared.runtime.service import ServiceRuntime

NAME = "datamanagement"
log = structlog.get_logger(__name__)


def build_app(settings: DataManagementSettings, *, clock: Clock = utc_now) -> FastStream:
    runtime = ServiceRuntime.create(NAME, settings, clock=clock)
    runtime.broker.include_router(build_router(runtime, settings))
    runtime.react_with(lambda: EditChecks(runtime.store, runtime.protocol, runtime.clock))
    app = FastStream(runtime.broker, logger=None)
    sweeps: list[asyncio.Task[None]] = []

    async def sweep() -> None:
        while True:
            try:
                await sweep_serious_adverse_events(runtime.store, runtime.protocol, now=runtime.clock())
            except TRANSIENT as exc:
                log.warning("edit_check_sweep_failed", error=repr(exc))
            await asyncio.sleep(settings.edit_check_sweep_seconds)

    async def start() -> None:
        await runtime.start()
        sweeps.append(asyncio.create_task(sweep()))

    async def stop() -> None:
        for task in sweeps:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runtime.stop()

    app.on_startup(start)
    app.on_shutdown(stop)
    return app

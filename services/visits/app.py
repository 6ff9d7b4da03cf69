"""Wiring of the visits service: command handlers and the missed-visit clock."""

from faststream import FastStream

from services.visits.handlers import build_router, record_missed_visits
from services.visits.settings import VisitsSettings
from shared.runtime.decisions import Clock, utc_now
from shared.runtime.service import ServiceRuntime

NAME = "visits"


def build_app(settings: VisitsSettings, *, clock: Clock = utc_now) -> FastStream:
    runtime = ServiceRuntime.create(NAME, settings, clock=clock)
    runtime.broker.include_router(build_router(runtime, settings))
    runtime.every(
        settings.missed_visit_check_seconds,
        lambda: record_missed_visits(runtime, now=runtime.clock()),
        name="missed_visit_check",
    )
    app = FastStream(runtime.broker, logger=None)
    app.on_startup(runtime.start)
    app.on_shutdown(runtime.stop)
    return app

"""Wiring of the screening service: the one place its parts are put together. Nothing connects at import."""

from faststream import FastStream

from services.screening.handlers import build_router
from services.screening.settings import ScreeningSettings
from shared.runtime.decisions import Clock, utc_now
from shared.runtime.service import ServiceRuntime

NAME = "screening"


def build_app(settings: ScreeningSettings, *, clock: Clock = utc_now) -> FastStream:
    runtime = ServiceRuntime.create(NAME, settings, clock=clock)
    runtime.broker.include_router(build_router(runtime, settings))
    app = FastStream(runtime.broker, logger=None)
    app.on_startup(runtime.start)
    app.on_shutdown(runtime.stop)
    return app

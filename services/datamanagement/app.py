"""Wiring of the data management service: its commands, the edit checks as a reaction, and their sweep."""

from faststream import FastStream

from services.datamanagement import amendments
from services.datamanagement.checks import checks_of
from services.datamanagement.editchecks import EditChecks, sweep_serious_adverse_events
from services.datamanagement.handlers import build_router
from services.datamanagement.settings import DataManagementSettings
from shared.runtime.decisions import Clock, utc_now
from shared.runtime.service import ServiceRuntime

NAME = "datamanagement"


def build_app(settings: DataManagementSettings, *, clock: Clock = utc_now) -> FastStream:
    runtime = ServiceRuntime.create(NAME, settings, clock=clock)
    checks_of(runtime.protocol)  # an edit check the code does not know stops start-up here, named
    runtime.broker.include_router(build_router(runtime, settings))
    drugs = settings.dictionaries().drugs  # a file that cannot be used stops start-up here, named
    runtime.react_with(lambda: EditChecks(runtime.store, runtime.protocol_now, runtime.clock, drugs))
    runtime.every(
        settings.edit_check_sweep_seconds,
        lambda: sweep_serious_adverse_events(runtime.store, runtime.protocol_now, now=runtime.clock(), drugs=drugs),
        name="edit_check_sweep",
    )
    runtime.every(
        settings.amendment_check_seconds, lambda: amendments.record_in_force(runtime), name="amendments_in_force"
    )
    app = FastStream(runtime.broker, logger=None)
    app.on_startup(runtime.start)
    app.on_shutdown(runtime.stop)
    return app

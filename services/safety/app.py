"""Wiring of the safety service: command handlers, the alert reaction, and the escalation clock."""

from datetime import timedelta

from faststream import FastStream

from services.safety.alerting import SeriousAdverseEventAlerts, escalate_overdue, reconcile_alerts
from services.safety.handlers import build_router
from services.safety.settings import SafetySettings
from shared.contracts.alerts import ALERTS_STREAM
from shared.contracts.protocol import load_protocol
from shared.runtime import bus
from shared.runtime.alerts import safety_team_consumer
from shared.runtime.consumers import drifted
from shared.runtime.deadletters import dead_letters, print_letters, print_replay
from shared.runtime.deadletters import replay as replay_letters
from shared.runtime.decisions import Clock, utc_now
from shared.runtime.eventstore import EventStore
from shared.runtime.reactions import reacting
from shared.runtime.service import ServiceRuntime

NAME = "safety"


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

    def alerts() -> SeriousAdverseEventAlerts:
        return SeriousAdverseEventAlerts(runtime.store, runtime.broker.connection.jetstream(), runtime.protocol)

    runtime.react_with(alerts)
    runtime.every(
        settings.alert_reconciliation_seconds,
        lambda: reconcile_alerts(
            runtime.store,
            alerts(),
            now=runtime.clock(),
            grace=timedelta(seconds=settings.alert_reconciliation_grace_seconds),
        ),
        name="alert_reconciliation",
    )
    # The safety team's consumer belongs to the provisioning job: checked here too, an alarm if it drifts.
    runtime.every(
        settings.consumer_check_seconds,
        lambda: drifted(runtime.broker.connection.jetstream(), ALERTS_STREAM, safety_team_consumer()),
        name="safety_team_consumer_check",
    )
    runtime.every(
        settings.escalation_check_seconds,
        lambda: escalate_overdue(
            runtime.store,
            runtime.broker.connection.jetstream(),
            runtime.protocol,
            now=runtime.clock(),
            interval=settings.acknowledgement_interval,
        ),
        name="escalation_check",
    )
    app = FastStream(runtime.broker, logger=None)
    app.on_startup(runtime.start)
    app.on_shutdown(runtime.stop)
    return app

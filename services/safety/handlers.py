"""Safety command handlers: report and follow up adverse events, acknowledge alerts."""

from uuid import uuid5

from faststream.nats import NatsRouter

from services.safety import domain
from services.safety.settings import SafetySettings
from shared.contracts.commands import (
    ACKNOWLEDGE_ALERT,
    REPORT_ADVERSE_EVENT,
    UPDATE_ADVERSE_EVENT,
    AcknowledgeAlert,
    CommandContext,
    CommandReply,
    Rejection,
    ReportAdverseEvent,
    UpdateAdverseEvent,
)
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    DomainEvent,
    RecordedEvent,
    SeriousAdverseEventAcknowledged,
    SeriousAdverseEventAlertRaised,
)
from shared.runtime.eventstore import History, subject_history, trial_wide
from shared.runtime.service import ServiceRuntime


def _adverse_event(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    ae = next(e.data for e in events if isinstance(e.data, AdverseEventReported | AdverseEventUpdated))
    return {"ae_id": str(ae.ae_id), "serious": ae.serious}


def build_router(runtime: ServiceRuntime, settings: SafetySettings) -> NatsRouter:
    router = NatsRouter()
    protocol = runtime.protocol

    @router.subscriber(REPORT_ADVERSE_EVENT, queue=settings.command_queue)
    async def report_adverse_event(command: ReportAdverseEvent) -> CommandReply:
        ctx = command.context

        def decide(history: History) -> list[DomainEvent]:
            return domain.report(
                domain.replay([e.data for e in history.events]),
                command.form,
                ae_id=uuid5(ctx.command_id, "adverse-event"),
                protocol=protocol,
                site=ctx.site,
                subject=ctx.subject,
                now=ctx.received_at,
            )

        return await runtime.execute(
            ctx, subject_filter=subject_history(ctx.site, ctx.subject), decide=decide, result=_adverse_event
        )

    @router.subscriber(UPDATE_ADVERSE_EVENT, queue=settings.command_queue)
    async def update_adverse_event(command: UpdateAdverseEvent) -> CommandReply:
        ctx = command.context

        def decide(history: History) -> list[DomainEvent]:
            state = domain.replay([e.data for e in history.events])
            return domain.follow_up(
                state, command.form, protocol=protocol, site=ctx.site, subject=ctx.subject, now=ctx.received_at
            )

        return await runtime.execute(
            ctx, subject_filter=subject_history(ctx.site, ctx.subject), decide=decide, result=_adverse_event
        )

    @router.subscriber(ACKNOWLEDGE_ALERT, queue=settings.command_queue)
    async def acknowledge_alert(command: AcknowledgeAlert) -> CommandReply:
        alert_id = command.form.alert_id
        raised = await runtime.store.load(trial_wide(SeriousAdverseEventAlertRaised.event_type))
        alert = next(
            (
                e
                for e in raised.events
                if isinstance(e.data, SeriousAdverseEventAlertRaised) and e.data.alert_id == alert_id
            ),
            None,
        )
        if alert is None or alert.envelope.siteid is None:
            return CommandReply(accepted=False, rejection=Rejection.of(domain.UnknownAlert(f"no alert {alert_id}")))
        site, subject = alert.envelope.siteid, alert.envelope.subject
        where: dict[str, object] = {"alert_id": str(alert_id), "site": site, "subject": subject}
        # Idempotent: a second acknowledgement (by anyone) answers with the first.
        history = await runtime.store.load(subject_history(site, subject))
        earlier = next(
            (
                e
                for e in history.events
                if isinstance(e.data, SeriousAdverseEventAcknowledged) and e.data.alert_id == alert_id
            ),
            None,
        )
        if earlier is not None:
            return CommandReply(
                accepted=True,
                event_ids=[earlier.envelope.id],
                last_sequence=earlier.sequence,
                replayed=True,
                result=where,
            )
        ctx = CommandContext(**command.context.model_dump(), site=site, subject=subject)

        def decide(history: History) -> list[DomainEvent]:
            return domain.acknowledge(domain.replay([e.data for e in history.events]), alert_id)

        return await runtime.execute(
            ctx, subject_filter=subject_history(site, subject), decide=decide, result=lambda _: where
        )

    return router

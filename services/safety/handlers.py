"""Safety command handlers: report and follow up adverse events, acknowledge alerts."""

from typing import Any
from uuid import uuid5

import structlog
from faststream.nats import NatsRouter

from services.safety import domain
from services.safety.settings import SafetySettings
from shared.contracts.access import Right, may
from shared.contracts.commands import (
    ACKNOWLEDGE_ALERT,
    REPORT_ADVERSE_EVENT,
    UPDATE_ADVERSE_EVENT,
    AcknowledgeAlert,
    Command,
    CommandContext,
    CommandReply,
    Rejection,
    ReportAdverseEvent,
    UpdateAdverseEvent,
)
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    RecordedEvent,
    SeriousAdverseEventAlertRaised,
)
from shared.contracts.protocol import ProtocolDefinition, SiteStatus
from shared.runtime.eventstore import trial_wide
from shared.runtime.service import ResultOf, ServiceRuntime

log = structlog.get_logger(__name__)


def _adverse_event(protocol: ProtocolDefinition, site: str) -> ResultOf:
    """The answer: the event's id, whether it is serious and which criteria the system added (so the site sees
    why), and the site's status, which flags an event taken from a site that no longer enrols."""
    known = protocol.site(site)
    if known is not None and known.status is not SiteStatus.ACTIVE:
        log.warning("adverse_event_from_inactive_site", site=site, site_status=str(known.status))

    def result(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
        ae = next(e.data for e in events if isinstance(e.data, AdverseEventReported | AdverseEventUpdated))
        return {
            "ae_id": str(ae.ae_id),
            "serious": ae.serious,
            "derived_seriousness": list(ae.derived_seriousness),
            "casebook_locked": ae.while_locked,
            "site_status": str(known.status) if known else None,
        }

    return result


def build_router(runtime: ServiceRuntime, settings: SafetySettings) -> NatsRouter:
    router = NatsRouter()
    protocol = runtime.protocol

    def about(command: Command[Any]) -> dict[str, Any]:
        """What a safety rule decides with, beside the subject's state and the form: safety information is taken
        as the site reports it, at the instant it reaches the system."""
        ctx = command.context
        return {
            "protocol": protocol,
            "site": ctx.site,
            "subject": ctx.subject,
            "now": ctx.received_at,
            "assesses": may(ctx.role, Right.ASSESS_CAUSALITY),
        }

    @router.subscriber(REPORT_ADVERSE_EVENT, queue=settings.command_queue)
    async def report_adverse_event(command: ReportAdverseEvent) -> CommandReply:
        ctx = command.context
        return await runtime.decide(
            command,
            domain.replay,
            domain.report,
            result=_adverse_event(protocol, ctx.site),
            while_locked=True,
            **about(command),
            ae_id=uuid5(ctx.command_id, "adverse-event"),
        )

    @router.subscriber(UPDATE_ADVERSE_EVENT, queue=settings.command_queue)
    async def update_adverse_event(command: UpdateAdverseEvent) -> CommandReply:
        return await runtime.decide(
            command,
            domain.replay,
            domain.follow_up,
            result=_adverse_event(protocol, command.context.site),
            while_locked=True,
            **about(command),
        )

    @router.subscriber(ACKNOWLEDGE_ALERT, queue=settings.command_queue)
    async def acknowledge_alert(command: AcknowledgeAlert) -> CommandReply:
        alert_id = command.form.alert_id
        # The command names the alert; the subject it concerns is where the alert was recorded.
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
        about_subject: Command[Any] = Command(
            context=CommandContext(**command.context.model_dump(), site=site, subject=subject), form=command.form
        )
        return await runtime.decide(
            about_subject, domain.replay, domain.acknowledge, result=lambda _: where, while_locked=True
        )

    return router

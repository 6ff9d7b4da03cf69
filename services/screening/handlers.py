"""Screening command handlers: load → decide → append → reply."""

from faststream.nats import NatsRouter

from services.screening import domain
from services.screening.settings import ScreeningSettings
from shared.commands import RECORD_CONSENT, CommandReply, RecordConsent
from shared.events import DomainEvent
from shared.eventstore import History, subject_history
from shared.service import ServiceRuntime


def build_router(runtime: ServiceRuntime, settings: ScreeningSettings) -> NatsRouter:
    router = NatsRouter()

    @router.subscriber(RECORD_CONSENT, queue=settings.command_queue)
    async def record_consent(command: RecordConsent) -> CommandReply:
        ctx = command.context

        def decide(history: History) -> list[DomainEvent]:
            state = domain.replay([e.data for e in history.events])
            return domain.record_consent(
                state, command.form, protocol=runtime.protocol, site=ctx.site, subject=ctx.subject, today=ctx.today
            )

        return await runtime.execute(ctx, subject_filter=subject_history(ctx.site, ctx.subject), decide=decide)

    return router

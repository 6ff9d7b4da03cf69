"""Screening command handlers: load → decide → append → reply."""

from faststream.nats import NatsRouter

from services.screening import domain
from services.screening.settings import ScreeningSettings
from shared.commands import (
    RECORD_CONSENT,
    SCREEN_SUBJECT,
    WITHDRAW_CONSENT,
    CommandReply,
    RecordConsent,
    ScreenSubject,
    WithdrawConsent,
)
from shared.events import DomainEvent, RecordedEvent, SubjectScreened
from shared.eventstore import History, subject_history
from shared.service import ServiceRuntime


def _state(history: History) -> domain.ScreeningState:
    return domain.replay([e.data for e in history.events])


def _screening_result(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    screened = next(e.data for e in events if isinstance(e.data, SubjectScreened))
    return screened.model_dump(mode="json", include={"eligible", "bmi", "screening_number", "criteria"})


def build_router(runtime: ServiceRuntime, settings: ScreeningSettings) -> NatsRouter:
    router = NatsRouter()
    protocol = runtime.protocol

    @router.subscriber(RECORD_CONSENT, queue=settings.command_queue)
    async def record_consent(command: RecordConsent) -> CommandReply:
        ctx = command.context

        def decide(history: History) -> list[DomainEvent]:
            return domain.record_consent(
                _state(history), command.form, protocol=protocol, site=ctx.site, subject=ctx.subject, today=ctx.today
            )

        return await runtime.execute(ctx, subject_filter=subject_history(ctx.site, ctx.subject), decide=decide)

    @router.subscriber(WITHDRAW_CONSENT, queue=settings.command_queue)
    async def withdraw_consent(command: WithdrawConsent) -> CommandReply:
        ctx = command.context

        def decide(history: History) -> list[DomainEvent]:
            return domain.withdraw_consent(
                _state(history), command.form, protocol=protocol, site=ctx.site, subject=ctx.subject, today=ctx.today
            )

        return await runtime.execute(ctx, subject_filter=subject_history(ctx.site, ctx.subject), decide=decide)

    @router.subscriber(SCREEN_SUBJECT, queue=settings.command_queue)
    async def screen_subject(command: ScreenSubject) -> CommandReply:
        ctx = command.context

        def decide(history: History) -> list[DomainEvent]:
            return domain.screen(
                _state(history), command.form, protocol=protocol, site=ctx.site, subject=ctx.subject, today=ctx.today
            )

        return await runtime.execute(
            ctx, subject_filter=subject_history(ctx.site, ctx.subject), decide=decide, result=_screening_result
        )

    return router

"""Screening command handlers: each decides on the subject's history with one domain rule."""

from faststream.nats import NatsRouter

from services.screening import domain
from services.screening.settings import ScreeningSettings
from shared.contracts.commands import (
    DECLINE_CONSENT,
    RECORD_CONSENT,
    SCREEN_SUBJECT,
    WITHDRAW_CONSENT,
    CommandReply,
    DeclineConsent,
    RecordConsent,
    ScreenSubject,
    WithdrawConsent,
)
from shared.contracts.events import RecordedEvent, SubjectScreened
from shared.runtime.service import ServiceRuntime


def _screening_result(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    screened = next(e.data for e in events if isinstance(e.data, SubjectScreened))
    return screened.model_dump(mode="json", include={"eligible", "bmi", "screening_number", "criteria"})


def build_router(runtime: ServiceRuntime, settings: ScreeningSettings) -> NatsRouter:
    router = NatsRouter()
    protocol = runtime.protocol

    @router.subscriber(RECORD_CONSENT, queue=settings.command_queue)
    async def record_consent(command: RecordConsent) -> CommandReply:
        ctx, form = command.context, command.form
        return await runtime.decide_on_subject(
            ctx,
            domain.replay,
            lambda state: domain.record_consent(
                state, form, protocol=protocol, site=ctx.site, subject=ctx.subject, today=runtime.today(ctx)
            ),
        )

    @router.subscriber(WITHDRAW_CONSENT, queue=settings.command_queue)
    async def withdraw_consent(command: WithdrawConsent) -> CommandReply:
        ctx, form = command.context, command.form
        return await runtime.decide_on_subject(
            ctx,
            domain.replay,
            lambda state: domain.withdraw_consent(
                state, form, protocol=protocol, site=ctx.site, subject=ctx.subject, today=runtime.today(ctx)
            ),
        )

    @router.subscriber(DECLINE_CONSENT, queue=settings.command_queue)
    async def decline_consent(command: DeclineConsent) -> CommandReply:
        ctx, form = command.context, command.form
        return await runtime.decide_on_subject(
            ctx,
            domain.replay,
            lambda state: domain.decline_consent(
                state, form, protocol=protocol, site=ctx.site, subject=ctx.subject, today=runtime.today(ctx)
            ),
        )

    @router.subscriber(SCREEN_SUBJECT, queue=settings.command_queue)
    async def screen_subject(command: ScreenSubject) -> CommandReply:
        ctx, form = command.context, command.form
        return await runtime.decide_on_subject(
            ctx,
            domain.replay,
            lambda state: domain.screen(
                state, form, protocol=protocol, site=ctx.site, subject=ctx.subject, today=runtime.today(ctx)
            ),
            result=_screening_result,
        )

    return router

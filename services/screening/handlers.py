"""Screening command handlers: load → decide → append → reply."""

from datetime import date
from typing import Protocol, TypeVar

from faststream.nats import NatsRouter
from pydantic import BaseModel

from services.screening import domain
from services.screening.settings import ScreeningSettings
from shared.contracts.commands import (
    RECORD_CONSENT,
    SCREEN_SUBJECT,
    WITHDRAW_CONSENT,
    Command,
    CommandReply,
    RecordConsent,
    ScreenSubject,
    WithdrawConsent,
)
from shared.contracts.events import DomainEvent, RecordedEvent, SubjectScreened
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.eventstore import History, subject_history
from shared.runtime.service import ResultOf, ServiceRuntime

F = TypeVar("F", bound=BaseModel)
F_contra = TypeVar("F_contra", bound=BaseModel, contravariant=True)


def _screening_result(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    screened = next(e.data for e in events if isinstance(e.data, SubjectScreened))
    return screened.model_dump(mode="json", include={"eligible", "bmi", "screening_number", "criteria"})


class SubjectStep(Protocol[F_contra]):
    """A screening decision about one subject, as the domain module defines each of them."""

    def __call__(
        self,
        state: domain.ScreeningState,
        form: F_contra,
        *,
        protocol: ProtocolDefinition,
        site: str,
        subject: str,
        today: date,
    ) -> list[DomainEvent]: ...


def build_router(runtime: ServiceRuntime, settings: ScreeningSettings) -> NatsRouter:
    router = NatsRouter()

    async def on_subject(command: Command[F], step: SubjectStep[F], result: ResultOf | None = None) -> CommandReply:
        ctx = command.context

        def decide(history: History) -> list[DomainEvent]:
            state = domain.replay([e.data for e in history.events])
            protocol = runtime.protocol
            return step(state, command.form, protocol=protocol, site=ctx.site, subject=ctx.subject, today=ctx.today)

        return await runtime.execute(
            ctx, subject_filter=subject_history(ctx.site, ctx.subject), decide=decide, result=result
        )

    @router.subscriber(RECORD_CONSENT, queue=settings.command_queue)
    async def record_consent(command: RecordConsent) -> CommandReply:
        return await on_subject(command, domain.record_consent)

    @router.subscriber(WITHDRAW_CONSENT, queue=settings.command_queue)
    async def withdraw_consent(command: WithdrawConsent) -> CommandReply:
        return await on_subject(command, domain.withdraw_consent)

    @router.subscriber(SCREEN_SUBJECT, queue=settings.command_queue)
    async def screen_subject(command: ScreenSubject) -> CommandReply:
        return await on_subject(command, domain.screen, _screening_result)

    return router

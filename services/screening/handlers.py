"""Screening command handlers: each decides on the subject's history with one domain rule."""

from collections.abc import Callable
from typing import Any
from uuid import uuid5

from faststream.nats import NatsRouter

from services.screening import domain
from services.screening.settings import ScreeningSettings
from shared.contracts.access import Right, may
from shared.contracts.commands import (
    DECLINE_CONSENT,
    RECORD_CONSENT,
    SCREEN_SUBJECT,
    WITHDRAW_CONSENT,
    Command,
    CommandReply,
    DeclineConsent,
    RecordConsent,
    ScreenSubject,
    WithdrawConsent,
)
from shared.contracts.events import DomainEvent, RecordedEvent, SubjectScreened
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.service import ServiceRuntime

Rule = Callable[..., list[DomainEvent]]


def _screening_result(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    screened = next(e.data for e in events if isinstance(e.data, SubjectScreened))
    return screened.model_dump(mode="json", include={"eligible", "bmi", "screening_number", "criteria"})


def build_router(runtime: ServiceRuntime, settings: ScreeningSettings) -> NatsRouter:
    router = NatsRouter()
    protocol = runtime.protocol

    def about(command: Command[Any]) -> dict[str, Any]:
        """What every screening rule decides with, beside the subject's state, the form and the protocol's version
        (`under` chooses it where it is not the one in force today)."""
        ctx = command.context
        return {"site": ctx.site, "subject": ctx.subject, "today": runtime.today(ctx)}

    @router.subscriber(RECORD_CONSENT, queue=settings.command_queue)
    async def record_consent(command: RecordConsent) -> CommandReply:
        # The consent forms approved are those of the version in force at the site on the day it was signed.
        ctx, today = command.context, runtime.today(command.context)
        signed_on = min(command.form.signed_on, today)
        in_force = await runtime.protocol_at(ctx.site, signed_on)
        return await runtime.decide(
            command,
            domain.replay,
            domain.record_consent,
            under=lambda _: in_force,
            **about(command),
            database_lock=await runtime.database_lock(),
        )

    @router.subscriber(WITHDRAW_CONSENT, queue=settings.command_queue)
    async def withdraw_consent(command: WithdrawConsent) -> CommandReply:
        return await runtime.decide(
            command, domain.replay, domain.withdraw_consent, **about(command), protocol=protocol
        )

    @router.subscriber(DECLINE_CONSENT, queue=settings.command_queue)
    async def decline_consent(command: DeclineConsent) -> CommandReply:
        return await runtime.decide(
            command,
            domain.replay,
            domain.decline_consent,
            **about(command),
            protocol=protocol,
            database_lock=await runtime.database_lock(),
        )

    @router.subscriber(SCREEN_SUBJECT, queue=settings.command_queue)
    async def screen_subject(command: ScreenSubject) -> CommandReply:
        ctx, form, today = command.context, command.form, runtime.today(command.context)
        versions = await runtime.versions(ctx.site, today)

        def judged_under(state: domain.ScreeningState) -> ProtocolDefinition:
            """Eligibility is judged under the version in force at the site on the screening date; a correction keeps
            the version of the screening it corrects, unless an amendment in force today migrated the form."""
            if form.supersedes is not None and state.screened_under is not None:
                return versions.for_correction("screening", state.screened_under, ctx.site, today)
            return versions.in_force(ctx.site, min(form.screening_date, today))

        return await runtime.decide(
            command,
            domain.replay,
            domain.screen,
            result=_screening_result,
            under=judged_under,
            **about(command),
            deviation_id=uuid5(ctx.command_id, "deviation"),
            judges=may(ctx.role, Right.JUDGE_ELIGIBILITY),
            consent_required=versions.consent_required(ctx.site, today),
        )

    return router

"""Data management's command handlers: queries, source data verification, signatures, locks and users' access.
(The edit checks, a reaction and a clock, are `editchecks.py`.)"""

from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any
from uuid import uuid5
from zoneinfo import ZoneInfo

import structlog
from faststream.nats import NatsRouter

from services.datamanagement import access, amendments, domain, locks, signatures
from services.datamanagement.settings import DataManagementSettings
from shared.contracts.commands import (
    ANSWER_QUERY,
    CHANGE_ACCESS,
    CLOSE_QUERY,
    DEPLOY_AMENDMENT,
    LOCK_CASEBOOK,
    LOCK_DATABASE,
    OPEN_QUERY,
    REOPEN_QUERY,
    SIGN,
    UNLOCK_CASEBOOK,
    VERIFY_FORM,
    ChangeAccess,
    Command,
    CommandReply,
    DeployAmendment,
    LockCasebook,
    LockDatabase,
    OpenQuery,
    Sign,
    StepQuery,
    UnlockCasebook,
    VerifyForm,
)
from shared.contracts.events import (
    DomainEvent,
    FormVerified,
    ProtocolAmendmentDeployed,
    QueryAnswered,
    QueryClosed,
    QueryOpened,
    QueryReopened,
    RecordedEvent,
    SignatureApplied,
)
from shared.runtime.eventstore import EVENTS_PREFIX, trial_history
from shared.runtime.service import ServiceRuntime

log = structlog.get_logger(__name__)
EVERYTHING = f"{EVENTS_PREFIX}.>"


def _query_result(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    step = events[-1].data
    assert isinstance(step, QueryOpened | QueryAnswered | QueryClosed | QueryReopened)
    return {"query_id": str(step.query_id)}


def _signature_result(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    signature = events[-1].data
    assert isinstance(signature, SignatureApplied)
    shown = {"signature_id", "kind", "printed_name", "signed_at_site", "authenticated_at"}
    return signature.model_dump(mode="json", include=shown)


def _verification_result(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    verified = events[-1].data
    assert isinstance(verified, FormVerified)
    return {"form": verified.form, "version": str(verified.version)}


def build_router(runtime: ServiceRuntime, settings: DataManagementSettings) -> NatsRouter:
    router = NatsRouter()

    async def on_records(
        command: Command[Any], rule: Callable[..., Sequence[DomainEvent]], **facts: Any
    ) -> CommandReply:
        """Data management works on a subject's records: a subject with none is unknown (404)."""
        return await runtime.decide(command, domain.replay, rule, known_subject=True, **facts)

    @router.subscriber(OPEN_QUERY, queue=settings.command_queue)
    async def open_query(command: OpenQuery) -> CommandReply:
        return await on_records(
            command,
            domain.open_query,
            result=_query_result,
            query_id=uuid5(command.context.command_id, "query"),
            dictionary=runtime.protocol.forms,
        )

    @router.subscriber(ANSWER_QUERY, queue=settings.command_queue)
    async def answer_query(command: StepQuery) -> CommandReply:
        return await on_records(command, domain.answer_query, result=_query_result)

    @router.subscriber(CLOSE_QUERY, queue=settings.command_queue)
    async def close_query(command: StepQuery) -> CommandReply:
        return await on_records(command, domain.close_query, result=_query_result, caller=command.context)

    @router.subscriber(REOPEN_QUERY, queue=settings.command_queue)
    async def reopen_query(command: StepQuery) -> CommandReply:
        return await on_records(command, domain.reopen_query, result=_query_result, caller=command.context)

    @router.subscriber(LOCK_CASEBOOK, queue=settings.command_queue)
    async def lock_casebook(command: LockCasebook) -> CommandReply:
        return await on_records(command, locks.lock_casebook, while_locked=True)

    @router.subscriber(UNLOCK_CASEBOOK, queue=settings.command_queue)
    async def unlock_casebook(command: UnlockCasebook) -> CommandReply:
        database_lock = await runtime.database_lock()
        return await on_records(command, locks.unlock_casebook, while_locked=True, database_lock=database_lock)

    @router.subscriber(LOCK_DATABASE, queue=settings.command_queue)
    async def lock_database(command: LockDatabase) -> CommandReply:
        # Decided on the whole record and appended expecting its last fact: nothing anywhere slips in between.
        return await runtime.execute(
            command.context,
            subject_filter=EVERYTHING,
            decide=lambda record: locks.lock_database(record.events),
            result=lambda events: {"site": None, "subject": runtime.protocol.trial_id},
        )

    @router.subscriber(CHANGE_ACCESS, queue=settings.command_queue)
    async def change_access(command: ChangeAccess) -> CommandReply:
        trial = runtime.protocol.trial_id
        return await runtime.execute(
            command.context,
            subject_filter=trial_history(trial),
            decide=lambda history: access.change_access(
                [e.data for e in history.events], command.form, by=command.context.actor
            ),
            reason=command.form.reason,
            result=lambda events: {"site": None, "subject": trial},
        )

    @router.subscriber(DEPLOY_AMENDMENT, queue=settings.command_queue)
    async def deploy_amendment(command: DeployAmendment) -> CommandReply:
        # Decided on the amendments recorded so far and appended expecting the last: versions follow one another.
        trial, now = runtime.protocol.trial_id, runtime.clock()
        return await runtime.execute(
            command.context,
            subject_filter=trial_history(trial, ProtocolAmendmentDeployed.event_type),
            decide=lambda history: amendments.deploy(runtime.protocol, history.events, command.form, now=now),
            result=lambda events: {"site": None, "subject": trial},
        )

    @router.subscriber(SIGN, queue=settings.command_queue)
    async def sign(command: Sign) -> CommandReply:
        ctx = command.context
        site = runtime.protocol.site(ctx.site)
        zone = ZoneInfo(site.time_zone) if site else UTC
        return await on_records(
            command,
            signatures.sign,
            result=_signature_result,
            signer=ctx,
            site_zone=zone,
            signature_id=uuid5(ctx.command_id, "signature"),
            reauthentication=runtime.protocol.signatures.reauthentication,
        )

    @router.subscriber(VERIFY_FORM, queue=settings.command_queue)
    async def verify_form(command: VerifyForm) -> CommandReply:
        return await on_records(
            command, domain.verify_form, result=_verification_result, dictionary=runtime.protocol.forms
        )

    return router

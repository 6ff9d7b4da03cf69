"""Data management handlers: queries, source data verification, signatures, locks and users' access; the edit
checks as a reaction and on a clock."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo

import structlog
from faststream.nats import NatsRouter

from services.datamanagement import access, domain, locks, signatures
from services.datamanagement.checks import CheckContext, checks_of, finding_query_id, findings
from services.datamanagement.settings import DataManagementSettings
from shared.contracts.commands import (
    ANSWER_QUERY,
    CHANGE_ACCESS,
    CLOSE_QUERY,
    LOCK_CASEBOOK,
    LOCK_DATABASE,
    OPEN_QUERY,
    REOPEN_QUERY,
    SIGN,
    UNLOCK_CASEBOOK,
    VERIFY_FORM,
    ChangeAccess,
    CommandContext,
    CommandReply,
    LockCasebook,
    LockDatabase,
    OpenQuery,
    Sign,
    StepQuery,
    UnlockCasebook,
    VerifyForm,
)
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    CasebookUnlocked,
    ConsentRecorded,
    DomainEvent,
    FormVerified,
    GraftProcedurePerformed,
    QueryAnswered,
    QueryClosed,
    QueryOpened,
    QueryReopened,
    RandomizationInvalidated,
    RecordedEvent,
    SignatureApplied,
    SubjectRandomized,
    SubjectScreened,
    VisitCompleted,
)
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.decisions import Clock, record_on_subject
from shared.runtime.eventstore import EVENTS_PREFIX, EventStore, History, trial_history, trial_wide
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
        ctx: CommandContext, rule: Callable[[domain.Casebook], Sequence[DomainEvent]], **options: Any
    ) -> CommandReply:
        """Data management works on a subject's records: a subject with none is unknown (404)."""
        return await runtime.decide_on_subject(ctx, domain.replay, rule, known_subject=True, **options)

    @router.subscriber(OPEN_QUERY, queue=settings.command_queue)
    async def open_query(command: OpenQuery) -> CommandReply:
        ctx = command.context
        return await on_records(
            ctx,
            lambda book: domain.open_query(book, command.form, query_id=uuid5(ctx.command_id, "query")),
            result=_query_result,
        )

    @router.subscriber(ANSWER_QUERY, queue=settings.command_queue)
    async def answer_query(command: StepQuery) -> CommandReply:
        return await on_records(
            command.context, lambda book: domain.answer_query(book, command.form), result=_query_result
        )

    @router.subscriber(CLOSE_QUERY, queue=settings.command_queue)
    async def close_query(command: StepQuery) -> CommandReply:
        ctx = command.context
        return await on_records(
            ctx, lambda book: domain.close_query(book, command.form, caller=ctx), result=_query_result
        )

    @router.subscriber(REOPEN_QUERY, queue=settings.command_queue)
    async def reopen_query(command: StepQuery) -> CommandReply:
        ctx = command.context
        return await on_records(
            ctx, lambda book: domain.reopen_query(book, command.form, caller=ctx), result=_query_result
        )

    @router.subscriber(LOCK_CASEBOOK, queue=settings.command_queue)
    async def lock_casebook(command: LockCasebook) -> CommandReply:
        return await on_records(command.context, locks.lock_casebook, while_locked=True)

    @router.subscriber(UNLOCK_CASEBOOK, queue=settings.command_queue)
    async def unlock_casebook(command: UnlockCasebook) -> CommandReply:
        reason = command.form.reason
        database_lock = await runtime.database_lock()
        return await on_records(
            command.context,
            lambda book: locks.unlock_casebook(book, reason=reason, database_lock=database_lock),
            reason=reason,
            while_locked=True,
        )

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

    @router.subscriber(SIGN, queue=settings.command_queue)
    async def sign(command: Sign) -> CommandReply:
        ctx = command.context
        site = runtime.protocol.site(ctx.site)
        zone = ZoneInfo(site.time_zone) if site else UTC
        return await on_records(
            ctx,
            lambda book: signatures.sign(
                book,
                command.form,
                signer=ctx,
                site_zone=zone,
                signature_id=uuid5(ctx.command_id, "signature"),
                reauthentication=runtime.protocol.signatures.reauthentication,
            ),
            result=_signature_result,
        )

    @router.subscriber(VERIFY_FORM, queue=settings.command_queue)
    async def verify_form(command: VerifyForm) -> CommandReply:
        return await on_records(
            command.context,
            lambda book: domain.verify_form(book, command.form),
            result=_verification_result,
        )

    return router


async def run_edit_checks(
    store: EventStore,
    protocol: ProtocolDefinition,
    *,
    site: str,
    subject: str,
    because_of: UUID,
    now: datetime,
    correlation_id: str,
    trigger_sequence: int = 0,
) -> int:
    """Run every edit check on the subject's casebook: open the queries found, close the ones resolved."""
    checks = checks_of(protocol)
    context = CheckContext(protocol, site, now)

    def decide(history: History) -> list[DomainEvent]:
        book = domain.replay(history.events)
        if book.locked:
            return []  # no query is raised in a locked casebook; unlocking runs the checks again
        return domain.reconcile(
            book,
            findings(book, checks, context),
            checked=frozenset(c.code for c in checks),
            query_ids=finding_query_id(because_of),
        )

    outcome = await record_on_subject(
        store,
        recorder="datamanagement",
        site=site,
        subject=subject,
        decide=decide,
        because_of=because_of,
        correlation_id=correlation_id,
        protocol_version=protocol.version,
        trigger_sequence=trigger_sequence,
    )
    raised = [e.data for e in outcome.events if isinstance(e.data, QueryOpened)]
    if outcome.events and not outcome.replayed:
        log.info("edit_checks_recorded", site=site, opened=[q.check for q in raised], events=len(outcome.events))
    return 0 if outcome.replayed else len(outcome.events)


class EditChecks:
    """Reaction: every new fact on a subject's forms runs the edit checks on the subject's casebook."""

    name = "edit-checks"
    event_types: tuple[str, ...] = tuple(
        t.event_type
        for t in (
            ConsentRecorded,
            SubjectScreened,
            SubjectRandomized,
            RandomizationInvalidated,
            GraftProcedurePerformed,
            VisitCompleted,
            AdverseEventReported,
            AdverseEventUpdated,
            CasebookUnlocked,
        )
    )

    def __init__(self, store: EventStore, protocol: ProtocolDefinition, clock: Clock) -> None:
        self._store = store
        self._protocol = protocol
        self._clock = clock

    async def react(self, event: RecordedEvent) -> None:
        trigger = event.envelope
        assert trigger.siteid is not None
        # The trigger's id stands for the command id: a redelivered trigger finds what it recorded.
        await run_edit_checks(
            self._store,
            self._protocol,
            site=trigger.siteid,
            subject=trigger.subject,
            because_of=trigger.id,
            now=self._clock(),
            correlation_id=trigger.correlationid,
            trigger_sequence=event.sequence,
        )


async def sweep_serious_adverse_events(store: EventStore, protocol: ProtocolDefinition, *, now: datetime) -> int:
    """The checks that time alone can make hold (a serious adverse event's follow-up overdue), run for every
    subject with a serious adverse event; once an hour per subject at most, whichever replica runs it."""
    serious: set[tuple[str, str]] = set()
    for event_type in (AdverseEventReported.event_type, AdverseEventUpdated.event_type):
        for e in (await store.load(trial_wide(event_type))).events:
            if getattr(e.data, "serious", False) and e.envelope.siteid:
                serious.add((e.envelope.siteid, e.envelope.subject))
    hour = now.strftime("%Y-%m-%dT%H")
    recorded = 0
    for site, subject in sorted(serious):
        recorded += await run_edit_checks(
            store,
            protocol,
            site=site,
            subject=subject,
            because_of=uuid5(NAMESPACE_URL, f"edit-checks/{subject}/{hour}"),
            now=now,
            correlation_id=f"edit-checks-{hour}",
        )
    return recorded

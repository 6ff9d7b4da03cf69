"""Visits handlers: surgery, visits and withdrawal; and the missed-visit check."""

from collections.abc import Callable
from datetime import date
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog
from faststream.nats import NatsRouter

from services.visits import domain
from services.visits.settings import VisitsSettings
from shared.contracts.commands import (
    RECORD_PROCEDURE,
    RECORD_VISIT,
    WITHDRAW_SUBJECT,
    CommandReply,
    RecordProcedure,
    RecordVisit,
    WithdrawSubject,
)
from shared.contracts.events import DomainEvent, EventMetadata, GraftProcedurePerformed
from shared.runtime.decisions import decide_and_append
from shared.runtime.eventstore import History, subject_history, trial_wide
from shared.runtime.service import ServiceRuntime

log = structlog.get_logger(__name__)
Rule = Callable[..., list[DomainEvent]]


def build_router(runtime: ServiceRuntime, settings: VisitsSettings) -> NatsRouter:
    router = NatsRouter()
    protocol = runtime.protocol

    async def record(command: RecordProcedure | RecordVisit, rule: Rule) -> CommandReply:
        """Surgery and visits: recorded as they happened, with the deviations they imply."""
        ctx, form = command.context, command.form

        def decide(history: History) -> list[DomainEvent]:
            return rule(
                domain.replay(history.events),
                form,
                protocol=protocol,
                site=ctx.site,
                subject=ctx.subject,
                today=ctx.today,
                deviation_ids=lambda code: uuid5(ctx.command_id, code),
            )

        # A correction's reason travels in the envelope, where the audit trail shows it.
        return await runtime.execute(
            ctx, subject_filter=subject_history(ctx.site, ctx.subject), decide=decide, reason=form.reason
        )

    @router.subscriber(RECORD_PROCEDURE, queue=settings.command_queue)
    async def record_procedure(command: RecordProcedure) -> CommandReply:
        return await record(command, domain.record_procedure)

    @router.subscriber(RECORD_VISIT, queue=settings.command_queue)
    async def record_visit(command: RecordVisit) -> CommandReply:
        return await record(command, domain.record_visit)

    @router.subscriber(WITHDRAW_SUBJECT, queue=settings.command_queue)
    async def withdraw_subject(command: WithdrawSubject) -> CommandReply:
        ctx = command.context

        def decide(history: History) -> list[DomainEvent]:
            state = domain.replay(history.events)
            return domain.withdraw(
                state, command.form, protocol=protocol, site=ctx.site, subject=ctx.subject, today=ctx.today
            )

        return await runtime.execute(ctx, subject_filter=subject_history(ctx.site, ctx.subject), decide=decide)

    return router


async def record_missed_visits(runtime: ServiceRuntime, *, today: date) -> int:
    """Append VisitMissed for every window closed before `today` without a record.

    Idempotent and safe on every replica at once: each subject's decision expects its history's
    last sequence, and a run for the same day finds what an earlier run recorded.
    """
    operated = await runtime.store.load(trial_wide(GraftProcedurePerformed.event_type))
    subjects = sorted({(e.envelope.siteid, e.envelope.subject) for e in operated.events if e.envelope.siteid})
    recorded = 0
    for site, subject in subjects:
        assert site is not None
        meta = EventMetadata.recorded_by(
            runtime.name,
            site=site,
            subject=subject,
            correlation_id=f"missed-visits-{today}",
            protocol_version=runtime.protocol.version,
        )

        def decide(history: History) -> list[DomainEvent]:
            return domain.missed_visits(domain.replay(history.events), protocol=runtime.protocol, today=today)

        outcome = await decide_and_append(
            runtime.store,
            subject_filter=subject_history(site, subject),
            decide=decide,
            meta=meta,
            command_id=_missed_visit_run(subject, today),
            clock=runtime.clock,
        )
        if not outcome.replayed:
            recorded += len(outcome.events)
    if recorded:
        log.info("visits_missed", count=recorded, today=str(today))
    return recorded


def _missed_visit_run(subject: str, today: date) -> UUID:
    return uuid5(NAMESPACE_URL, f"missed-visits/{subject}/{today.isoformat()}")

"""Randomization handlers: allocate (serialized trial-wide), invalidate, and export the list to statisticians."""

import structlog
from faststream.nats import NatsRouter

from services.randomization import domain
from services.randomization.allocation import AllocationList
from services.randomization.settings import RandomizationSettings
from shared.contracts.casebook import refuse_if_locked
from shared.contracts.commands import (
    EXPORT_ALLOCATION_LIST,
    INVALIDATE_RANDOMIZATION,
    RANDOMIZE_SUBJECT,
    CommandReply,
    ExportReply,
    ExportRequest,
    InvalidateRandomization,
    RandomizeSubject,
)
from shared.contracts.events import DomainEvent, RecordedEvent, SubjectRandomized
from shared.runtime.eventstore import History, subject_history, trial_wide
from shared.runtime.service import ServiceRuntime

log = structlog.get_logger(__name__)

# Every randomization anywhere in the trial: appends expect this filter's last sequence, so two
# allocations can never be decided on the same view of the list or the cap.
ALL_RANDOMIZATIONS = trial_wide(SubjectRandomized.event_type)


def _allocation(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    randomized = next(e.data for e in events if isinstance(e.data, SubjectRandomized))
    # The stratum slot and block stay inside the service: sites see the arm and the number only.
    return randomized.model_dump(mode="json", include={"arm", "randomization_number", "stratum"})


def build_router(
    runtime: ServiceRuntime, settings: RandomizationSettings, allocation_list: AllocationList
) -> NatsRouter:
    router = NatsRouter()
    protocol = runtime.protocol
    allocations = domain.AllocationTally()

    @router.subscriber(RANDOMIZE_SUBJECT, queue=settings.command_queue)
    async def randomize_subject(command: RandomizeSubject) -> CommandReply:
        ctx, today = command.context, runtime.today(command.context)
        versions = await runtime.versions(ctx.site, today)

        async def decide(trial: History) -> list[DomainEvent]:
            subject = await runtime.store.load(subject_history(ctx.site, ctx.subject))
            refuse_if_locked(subject.events)
            return domain.randomize(
                domain.replay(subject.events),
                allocations.of(trial.events),
                allocation_list,
                protocol=versions.in_force(ctx.site, today),
                site=ctx.site,
                subject=ctx.subject,
                consent_required=versions.consent_required(ctx.site, today),
            )

        return await runtime.execute(ctx, subject_filter=ALL_RANDOMIZATIONS, decide=decide, result=_allocation)

    @router.subscriber(INVALIDATE_RANDOMIZATION, queue=settings.command_queue)
    async def invalidate_randomization(command: InvalidateRandomization) -> CommandReply:
        ctx = command.context
        return await runtime.decide(
            command, domain.replay, domain.invalidate, protocol=protocol, site=ctx.site, subject=ctx.subject
        )

    @router.subscriber(EXPORT_ALLOCATION_LIST, queue=settings.command_queue)
    async def export_allocation_list(request: ExportRequest) -> ExportReply:
        log.info(
            "allocation_list_exported", actor=request.actor, role=request.role, correlation_id=request.correlation_id
        )
        return ExportReply(content=allocation_list.to_csv().decode(), commitment=allocation_list.commitment)

    return router

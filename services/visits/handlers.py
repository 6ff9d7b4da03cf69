"""Visits handlers: surgery, visits and withdrawal; and the missed-visit check."""

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog
from faststream.nats import NatsRouter

from services.visits import collected, domain, photographs
from services.visits.settings import VisitsSettings
from shared.contracts.casebook import locked
from shared.contracts.commands import (
    ASSESS_ENDPOINT,
    RECORD_FORM,
    RECORD_PHOTOGRAPH,
    RECORD_PROCEDURE,
    RECORD_VISIT,
    WITHDRAW_SUBJECT,
    AssessEndpoint,
    Command,
    CommandReply,
    RecordForm,
    RecordPhotograph,
    RecordProcedure,
    RecordVisit,
    WithdrawSubject,
)
from shared.contracts.events import DomainEvent, GraftProcedurePerformed
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.decisions import record_on_subject
from shared.runtime.eventstore import trial_wide
from shared.runtime.service import ServiceRuntime

log = structlog.get_logger(__name__)
Rule = Callable[..., list[DomainEvent]]


def build_router(runtime: ServiceRuntime, settings: VisitsSettings) -> NatsRouter:
    router = NatsRouter()
    protocol = runtime.protocol
    if missing := collected.unruled(protocol.forms):
        raise collected.UndecidableForm(f"collected forms' conditions or rules without their counterpart: {missing}")

    def about(command: Command[Any]) -> dict[str, Any]:
        """What every visits rule decides with, beside the subject's state and the form."""
        ctx = command.context
        return {"protocol": protocol, "site": ctx.site, "subject": ctx.subject, "today": runtime.today(ctx)}

    async def on_schedule(command: Command[Any]) -> dict[str, Any]:
        """For the forms of the subject's schedule: the version the schedule was made under decides (unless an
        amendment in force reschedules), and a revised consent form in force is signed first."""
        ctx, today = command.context, runtime.today(command.context)
        versions = await runtime.versions(ctx.site, today)
        now = versions.in_force(ctx.site, today).version

        def scheduled(state: domain.FollowUpState) -> ProtocolDefinition:
            return versions.scheduled_under(state.scheduled_under or now, ctx.site, today)

        facts = {k: v for k, v in about(command).items() if k != "protocol"}
        return facts | {"under": scheduled, "consent_required": versions.consent_required(ctx.site, today)}

    def deviation_ids(command: Command[Any]) -> Callable[[str], UUID]:
        """Surgery and visits are recorded as they happened, with the deviations they imply: one id per code."""
        return lambda code: uuid5(command.context.command_id, code)

    @router.subscriber(RECORD_PROCEDURE, queue=settings.command_queue)
    async def record_procedure(command: RecordProcedure) -> CommandReply:
        return await runtime.decide(
            command,
            domain.replay,
            domain.record_procedure,
            **await on_schedule(command),
            deviation_ids=deviation_ids(command),
        )

    @router.subscriber(RECORD_VISIT, queue=settings.command_queue)
    async def record_visit(command: RecordVisit) -> CommandReply:
        return await runtime.decide(
            command,
            domain.replay,
            domain.record_visit,
            **await on_schedule(command),
            deviation_ids=deviation_ids(command),
        )

    @router.subscriber(RECORD_FORM, queue=settings.command_queue)
    async def record_form(command: RecordForm) -> CommandReply:
        ctx, record, today = command.context, command.form, runtime.today(command.context)
        versions = await runtime.versions(ctx.site, today)

        def entered_under(state: domain.FollowUpState) -> ProtocolDefinition:
            """A new record is entered under the version in force today; a correction keeps its record's version
            (its items, its code lists), unless an amendment in force since migrated the form."""
            name = f"{record.form}-{record.entry or record.visit}"
            if record.supersedes is not None and name in state.form_versions:
                return versions.for_correction(record.form, state.form_versions[name], ctx.site, today)
            return versions.in_force(ctx.site, today)

        return await runtime.decide(
            command,
            domain.replay,
            collected.record_form,
            result=collected.entry_of,
            **await on_schedule(command) | {"under": entered_under},
            entry_id=uuid5(command.context.command_id, "entry"),
        )

    @router.subscriber(RECORD_PHOTOGRAPH, queue=settings.command_queue)
    async def record_photograph(command: RecordPhotograph) -> CommandReply:
        return await runtime.decide(
            command, domain.replay, photographs.record_photograph, result=photographs.kept_as, **about(command)
        )

    @router.subscriber(ASSESS_ENDPOINT, queue=settings.command_queue)
    async def assess_endpoint(command: AssessEndpoint) -> CommandReply:
        # The assessor is blind to the arm, not to the record's state: a locked casebook takes no assessment.
        return await runtime.decide(command, domain.replay, photographs.assess_endpoint, **about(command))

    @router.subscriber(WITHDRAW_SUBJECT, queue=settings.command_queue)
    async def withdraw_subject(command: WithdrawSubject) -> CommandReply:
        return await runtime.decide(command, domain.replay, domain.withdraw, **about(command))

    return router


async def record_missed_visits(runtime: ServiceRuntime, *, now: datetime, today: date | None = None) -> int:
    """Append VisitMissed for every window closed before the site's today without a record.

    Each site's today is its local date at `now`, unless `today` names one date for every site (a run
    for a past day).

    Idempotent and safe on every replica at once: each subject's decision expects its history's
    last sequence, and a run for the same day finds what an earlier run recorded.
    """
    operated = await runtime.store.load(trial_wide(GraftProcedurePerformed.event_type))
    subjects = sorted({(e.envelope.siteid, e.envelope.subject) for e in operated.events if e.envelope.siteid})
    recorded = 0
    for site, subject in subjects:
        assert site is not None
        recorded += await _record_missed(runtime, site, subject, today or runtime.protocol.local_date(site, now))
    if recorded:
        log.info("visits_missed", count=recorded, at=now.isoformat())
    return recorded


async def _record_missed(runtime: ServiceRuntime, site: str, subject: str, today: date) -> int:
    versions = await runtime.versions(site, today)
    in_force = versions.in_force(site, today)

    def missed(state: domain.FollowUpState) -> list[DomainEvent]:
        """Each window as the subject's schedule has it: the version it was made under, unless rescheduled."""
        scheduled = versions.scheduled_under(state.scheduled_under or in_force.version, site, today)
        return domain.missed_visits(state, protocol=scheduled, site=site, today=today)

    outcome = await record_on_subject(
        runtime.store,
        recorder=runtime.name,
        site=site,
        subject=subject,
        # A locked casebook is left as it stands: its windows were settled before the lock.
        decide=lambda history: [] if locked(history.events) else missed(domain.replay(history.events)),
        because_of=_missed_visit_run(subject, today),
        correlation_id=f"missed-visits-{today}",
        protocol_version=in_force.version,
        clock=runtime.clock,
    )
    return 0 if outcome.replayed else len(outcome.events)


def _missed_visit_run(subject: str, today: date) -> UUID:
    return uuid5(NAMESPACE_URL, f"missed-visits/{subject}/{today.isoformat()}")

"""The edit checks as they run: on every new fact about a subject's forms (a reaction), and on a clock for the
checks that time alone can make hold. Each run reconciles the subject's queries with what the checks find."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog

from services.datamanagement import domain
from services.datamanagement.checks import CheckContext, checks_of, finding_query_id, findings
from shared.contracts.coding import TermDictionary
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    CasebookUnlocked,
    ConsentRecorded,
    DomainEvent,
    FormRecorded,
    GraftProcedurePerformed,
    QueryOpened,
    RandomizationInvalidated,
    RecordedEvent,
    SubjectRandomized,
    SubjectScreened,
    VisitCompleted,
)
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.decisions import Clock, record_on_subject
from shared.runtime.eventstore import EventStore, History, trial_wide

log = structlog.get_logger(__name__)
# The protocol version in force at a site now: its edit checks are the ones run there.
InForce = Callable[[str], Awaitable[ProtocolDefinition]]


async def run_edit_checks(
    store: EventStore,
    protocol: ProtocolDefinition,
    *,
    site: str,
    subject: str,
    because_of: UUID,
    now: datetime,
    correlation_id: str,
    drugs: TermDictionary,
    trigger_sequence: int = 0,
) -> int:
    """Run every edit check on the subject's casebook: open the queries found, close the ones resolved. Every run
    codes medications with the same drug dictionary: a run without it would close what another run found."""
    checks = checks_of(protocol)
    context = CheckContext(protocol, site, now, drugs)

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
    """Reaction: every new fact on a subject's forms runs the edit checks on the subject's casebook; several about
    one subject in a batch run them once, on the casebook with all of them (`OncePerSubject`)."""

    name = "edit-checks"
    once_per_subject: Literal[True] = True
    event_types: tuple[str, ...] = tuple(
        t.event_type
        for t in (
            ConsentRecorded,
            SubjectScreened,
            FormRecorded,
            SubjectRandomized,
            RandomizationInvalidated,
            GraftProcedurePerformed,
            VisitCompleted,
            AdverseEventReported,
            AdverseEventUpdated,
            CasebookUnlocked,
        )
    )

    def __init__(self, store: EventStore, in_force: InForce, clock: Clock, drugs: TermDictionary) -> None:
        """`in_force`: the protocol version in force at a site now, whose edit checks run there."""
        self._store = store
        self._in_force = in_force
        self._clock = clock
        self._drugs = drugs

    async def react(self, event: RecordedEvent) -> None:
        trigger = event.envelope
        assert trigger.siteid is not None
        # The trigger's id stands for the command id: a redelivered trigger finds what it recorded.
        await run_edit_checks(
            self._store,
            await self._in_force(trigger.siteid),
            site=trigger.siteid,
            subject=trigger.subject,
            because_of=trigger.id,
            now=self._clock(),
            correlation_id=trigger.correlationid,
            trigger_sequence=event.sequence,
            drugs=self._drugs,
        )


async def sweep_serious_adverse_events(
    store: EventStore, in_force: InForce, *, now: datetime, drugs: TermDictionary
) -> int:
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
            await in_force(site),
            site=site,
            subject=subject,
            because_of=uuid5(NAMESPACE_URL, f"edit-checks/{subject}/{hour}"),
            now=now,
            correlation_id=f"edit-checks-{hour}",
            drugs=drugs,
        )
    return recorded

"""Load → decide → append, retried on concurrency conflicts: the one way every service records facts.

A command carries an id (derived from the client's idempotency key). Event ids are derived from it,
and every event it produced names it as `causationid`, so a retried command finds its own earlier
events in the history and returns them instead of deciding again: no fact is ever recorded twice.
"""

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID, uuid5

import nats.errors
import structlog

from shared.contracts.events import DomainEvent, EventEnvelope, EventMetadata, RecordedEvent
from shared.contracts.rules import RecordedBefore, RuleViolation
from shared.runtime.eventstore import ConcurrencyConflict, EventStore, History, SameEventInFlight, subject_history
from shared.runtime.metrics import CONFLICTS_RETRIED

log = structlog.get_logger(__name__)

# A decision is pure; it may be async only to read more history (e.g. the subject's, for a trial-wide decision).
Decide = Callable[[History], Sequence[DomainEvent] | Awaitable[Sequence[DomainEvent]]]
Clock = Callable[[], datetime]
# How long to let another writer finish recording the same event before reading again, per attempt.
IN_FLIGHT_PAUSE = 0.05


def utc_now() -> datetime:
    return datetime.now(UTC)


def event_id(command_id: UUID, index: int) -> UUID:
    """The id of the index-th event a command produces: stable across retries of that command."""
    return uuid5(command_id, str(index))


@dataclass(frozen=True, slots=True)
class Outcome:
    events: tuple[RecordedEvent, ...]
    # True when the command had already been carried out and its earlier events are returned.
    replayed: bool


class TooMuchContention(Exception):
    """The stream kept changing under us; the caller should answer 503 and let the client retry."""


class HistoryBehind(nats.errors.Error):
    """Every read of the history stopped short of the sequence it must show: the bus is not answering up to
    date (a replica behind, a leader whose term has ended). Transient: the trigger is handled again later."""


async def decide_and_append(
    store: EventStore,
    *,
    subject_filter: str,
    decide: Decide,
    meta: EventMetadata,
    command_id: UUID,
    clock: Clock = utc_now,
    max_attempts: int = 5,
    at_least: int = 0,
    ids_from: UUID | None = None,
    decided_under: Callable[[], str] | None = None,
) -> Outcome:
    """`at_least`: a stream sequence the history must reach before anything is decided on it (a reaction's
    trigger, which a read from a replica behind, or from a leader whose term has ended, may not show yet).

    Its earlier events are those of this cause recorded by this actor: two reactions to one trigger (an alert and
    an edit check on the same adverse event) share the cause, and neither takes the other's facts for its own.
    `ids_from`: what the events' ids derive from, where the cause is shared (else the command id).
    `decided_under`: the protocol version the decision was made under, known once it is made (else the meta's)."""
    cause = str(command_id)
    meta = replace(meta, causation_id=cause)
    seed = ids_from or command_id
    trust_kept = True
    for attempt in range(1, max_attempts + 1):
        # First on the history this process already holds, without reading: if it is stale, the
        # append's expected sequence says so and the next attempt reads what is new. A refusal, or
        # nothing to record, is only ever concluded on the history as it is now.
        kept = store.kept(subject_filter) if trust_kept else None
        history = kept or await store.load(subject_filter)
        if history.last_sequence < at_least:
            # Deciding without the trigger would find nothing to do and record nothing: read again, later.
            if attempt == max_attempts:
                raise HistoryBehind(f"{subject_filter}: read up to {history.last_sequence}, not {at_least}")
            trust_kept = False
            await asyncio.sleep(IN_FLIGHT_PAUSE * attempt)
            continue
        earlier = tuple(e for e in history.caused_by(cause) if e.envelope.actor == meta.actor)
        # Decide on the history as it stood before this command's first event, if it has one: a
        # retry then decides exactly as the first attempt did, and only what is missing is appended.
        before = (
            History(subject_filter, tuple(e for e in history.events if e.sequence < earlier[0].sequence))
            if earlier
            else history
        )
        try:
            decided = decide(before)
            if inspect.isawaitable(decided):
                decided = await decided
        except RecordedBefore as done:
            if kept is not None:
                # Whether it still stands may hang on what came after it (a signature, a correction since):
                # concluded, like a refusal, only on the history as it is now.
                trust_kept = False
                continue
            # Append-only: a fact seen in any history stands recorded.
            standing = next(e for e in reversed(history.events) if e.data == done.fact)
            return Outcome((standing,), replayed=True)
        except RuleViolation:
            if earlier:  # a decision that also reads other history sees its own effect there: done
                return Outcome(earlier, replayed=True)
            if kept is not None:
                trust_kept = False
                continue
            raise
        missing = list(decided)[len(earlier) :]
        if earlier and not missing:
            return Outcome(earlier, replayed=True)
        if not missing and kept is not None:
            trust_kept = False
            continue
        now = earlier[0].envelope.time if earlier else clock()
        if decided_under is not None:
            meta = replace(meta, protocol_version=decided_under())
        envelopes = [
            EventEnvelope.wrap(event, meta, event_id=event_id(seed, len(earlier) + i), time=now)
            for i, event in enumerate(missing)
        ]
        try:
            recorded = await store.append(
                envelopes, subject_filter=subject_filter, expected_last_sequence=history.last_sequence
            )
            if earlier:
                log.warning(
                    "command_completed_after_interruption", subject_filter=subject_filter, appended=len(recorded)
                )
            return Outcome(earlier + tuple(recorded), replayed=bool(earlier))
        except ConcurrencyConflict as conflict:
            trust_kept = False
            CONFLICTS_RETRIED.inc()
            log.info("append_conflict_retrying", subject_filter=subject_filter, attempt=attempt)
            if isinstance(conflict, SameEventInFlight):
                await asyncio.sleep(IN_FLIGHT_PAUSE * attempt)
    raise TooMuchContention(f"{subject_filter}: still conflicting after {max_attempts} attempts")


async def record_on_subject(
    store: EventStore,
    *,
    recorder: str,
    site: str,
    subject: str,
    decide: Decide,
    because_of: UUID,
    correlation_id: str,
    protocol_version: str,
    clock: Clock = utc_now,
    trigger_sequence: int = 0,
) -> Outcome:
    """A fact the system records itself about one subject (an alert, an escalation, a missed visit).

    Decided on the subject's history like a command; `because_of` (the id of the trigger, or of the
    run) stands for the command id, so a redelivered trigger or a rerun finds what it recorded. Several
    recorders react to one trigger (the SAE alert and the edit checks to an adverse event): each finds only its
    own facts, and their ids derive from the trigger and the recorder, so one never passes for the other's. A
    reaction names its trigger's sequence: it decides only on a history that shows the trigger.
    """
    meta = EventMetadata.recorded_by(
        recorder, site=site, subject=subject, correlation_id=correlation_id, protocol_version=protocol_version
    )
    return await decide_and_append(
        store,
        subject_filter=subject_history(site, subject),
        decide=decide,
        meta=meta,
        command_id=because_of,
        clock=clock,
        at_least=trigger_sequence,
        ids_from=uuid5(because_of, recorder),
    )


async def record_once(store: EventStore, *, subject_filter: str, envelope: EventEnvelope) -> RecordedEvent:
    """Append a fact that may exist only once under `subject_filter` (e.g. EnrollmentClosed).

    Returns the fact already recorded when there is one, ours otherwise; replicas racing to record
    it end with exactly one, because every attempt expects the filter to be empty.
    """
    history = await store.load(subject_filter)
    if history.events:
        return history.events[0]
    try:
        [recorded] = await store.append([envelope], subject_filter=subject_filter, expected_last_sequence=0)
        return recorded
    except ConcurrencyConflict:
        return (await store.load(subject_filter)).events[0]

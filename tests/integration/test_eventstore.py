"""The event store against a real nats-server with JetStream."""

import asyncio
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import pytest
from nats.js import JetStreamContext, api

from shared.contracts.events import ConsentRecorded, DomainEvent, EventEnvelope, EventMetadata
from shared.contracts.rules import NotConsented
from shared.runtime.decisions import HistoryBehind, Outcome, decide_and_append, event_id
from shared.runtime.eventstore import (
    EVENTS_STREAM,
    AlreadyRecorded,
    ConcurrencyConflict,
    EventStore,
    History,
    event_subject,
    subject_history,
    trial_wide,
)
from tests.conftest import SubjectIds

pytestmark = pytest.mark.integration


def consent(version: str = "1.0") -> ConsentRecorded:
    return ConsentRecorded(
        consent_form_version=version,
        signed_on=date(2026, 11, 20),
        obtained_by="inv-01",
        signed_by_subject=True,
        signed_by_representative=False,
    )


def envelope(site: str, subject: str, event: DomainEvent | None = None, event_id: UUID | None = None) -> EventEnvelope:
    meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0")
    return EventEnvelope.wrap(event or consent(), meta, event_id=event_id or uuid4(), time=datetime.now(UTC))


async def test_the_legal_record_cannot_be_deleted_or_purged(js: JetStreamContext) -> None:
    config = (await js.stream_info(EVENTS_STREAM)).config
    assert config.deny_delete and config.deny_purge
    assert config.storage == api.StorageType.FILE
    assert not config.max_age
    assert config.duplicate_window and config.duplicate_window >= 3600


async def test_appended_events_load_back_in_order_with_their_sequences(store: EventStore) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    first = await store.append(
        [envelope(site, subject, consent("1.0"))], subject_filter=stream, expected_last_sequence=0
    )
    second = await store.append(
        [envelope(site, subject, consent("2.0"))], subject_filter=stream, expected_last_sequence=first[-1].sequence
    )
    history = await store.load(stream)
    assert [e.sequence for e in history.events] == [first[0].sequence, second[0].sequence]
    assert [e.envelope.data.consent_form_version for e in history.events] == ["1.0", "2.0"]  # type: ignore[attr-defined]
    assert history.last_sequence == second[0].sequence


async def test_loading_an_unknown_subject_gives_an_empty_history(store: EventStore) -> None:
    history = await store.load(subject_history(*SubjectIds.synthetic()))
    assert history.events == () and history.last_sequence == 0


async def test_two_concurrent_appends_with_the_same_expectation_exactly_one_wins(store: EventStore) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    results = await asyncio.gather(
        *(store.append([envelope(site, subject)], subject_filter=stream, expected_last_sequence=0) for _ in range(2)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, list) for r in results) == 1
    assert sum(isinstance(r, ConcurrencyConflict) for r in results) == 1
    assert len((await store.load(stream)).events) == 1


async def test_a_stale_expectation_is_a_concurrency_conflict(store: EventStore) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    await store.append([envelope(site, subject)], subject_filter=stream, expected_last_sequence=0)
    with pytest.raises(ConcurrencyConflict):
        await store.append([envelope(site, subject)], subject_filter=stream, expected_last_sequence=0)


async def test_the_same_event_id_published_twice_is_stored_once(store: EventStore) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    same = envelope(site, subject)
    first = await store.append([same], subject_filter=stream, expected_last_sequence=0)
    # A client whose ack was lost re-sends the same event: the server drops it and names the first sequence.
    with pytest.raises(AlreadyRecorded) as resent:
        await store.append([same], subject_filter=stream, expected_last_sequence=first[0].sequence)
    assert (resent.value.sequence, resent.value.event_id) == (first[0].sequence, str(same.id))
    assert len((await store.load(stream)).events) == 1


async def test_a_trial_wide_expectation_serializes_decisions_across_subjects(store: EventStore) -> None:
    # Two subjects, one filter over both: only one of two decisions based on the same view wins.
    site, _ = SubjectIds.synthetic()
    one, two = f"{site}-001", f"{site}-002"
    both = f"trial.events.{site}.*.ConsentRecorded"
    results = await asyncio.gather(
        store.append([envelope(site, one)], subject_filter=both, expected_last_sequence=0),
        store.append([envelope(site, two)], subject_filter=both, expected_last_sequence=0),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["ConcurrencyConflict", "list"]
    assert trial_wide("ConsentRecorded") == "trial.events.*.*.ConsentRecorded"


async def test_decide_and_append_decides_again_after_a_conflict(store: EventStore) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    seen: list[int] = []

    def decide(history: History) -> list[DomainEvent]:
        seen.append(len(history.events))
        return [consent(f"{len(history.events) + 1}.0")]

    meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0")
    real_load = store.load

    async def load_then_someone_else_appends(subject_filter: str) -> History:
        history = await real_load(subject_filter)
        if len(seen) == 0:  # a rival replica appends between our read and our write
            await store.append(
                [envelope(site, subject)], subject_filter=stream, expected_last_sequence=history.last_sequence
            )
        return history

    store_with_rival = EventStore.__new__(EventStore)
    store_with_rival.__dict__.update(store.__dict__)
    store_with_rival.load = load_then_someone_else_appends  # type: ignore[method-assign]
    outcome = await decide_and_append(
        store_with_rival, subject_filter=stream, decide=decide, meta=meta, command_id=uuid4()
    )
    assert seen == [0, 1]
    assert not outcome.replayed
    assert len((await store.load(stream)).events) == 2


async def test_a_retried_command_returns_its_first_events_and_records_nothing_new(store: EventStore) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0")
    command_id = uuid4()
    first = await decide_and_append(
        store, subject_filter=stream, decide=lambda h: [consent()], meta=meta, command_id=command_id
    )
    retry = await decide_and_append(
        store, subject_filter=stream, decide=lambda h: [consent()], meta=meta, command_id=command_id
    )
    assert retry.replayed and not first.replayed
    assert [e.envelope.id for e in retry.events] == [e.envelope.id for e in first.events]
    assert first.events[0].envelope.causationid == str(command_id)
    assert len((await store.load(stream)).events) == 1


async def test_a_command_interrupted_between_its_events_is_completed_by_its_retry(store: EventStore) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0", causation_id=None)
    command_id = uuid4()

    def decide(history: History) -> list[DomainEvent]:
        return [consent("1.0"), consent("2.0")]

    # The first attempt crashed after its first event: only that one is in the stream.
    first = EventEnvelope.wrap(
        consent("1.0"),
        EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0", causation_id=str(command_id)),
        event_id=event_id(command_id, 0),
        time=datetime.now(UTC),
    )
    await store.append([first], subject_filter=stream, expected_last_sequence=0)
    retried = await decide_and_append(store, subject_filter=stream, decide=decide, meta=meta, command_id=command_id)
    assert retried.replayed
    assert [e.envelope.id for e in retried.events] == [event_id(command_id, 0), event_id(command_id, 1)]
    versions = [e.data.consent_form_version for e in (await store.load(stream)).events]  # type: ignore[attr-defined]
    assert versions == ["1.0", "2.0"]
    again = await decide_and_append(store, subject_filter=stream, decide=decide, meta=meta, command_id=command_id)
    assert len(again.events) == 2 and len((await store.load(stream)).events) == 2


async def test_a_history_loaded_before_also_has_what_others_appended_since(js: JetStreamContext) -> None:
    site, subject = SubjectIds.synthetic()
    history = subject_history(site, subject)
    mine, theirs = EventStore(js), EventStore(js)
    [first] = await mine.append([envelope(site, subject)], subject_filter=history, expected_last_sequence=0)
    assert [e.sequence for e in (await mine.load(history)).events] == [first.sequence]
    [second] = await theirs.append(
        [envelope(site, subject)], subject_filter=history, expected_last_sequence=first.sequence
    )
    again = await mine.load(history)
    assert [(e.sequence, e.envelope.id) for e in again.events] == [
        (first.sequence, first.envelope.id),
        (second.sequence, second.envelope.id),
    ]
    assert again.events == (await EventStore(js).load(history)).events, "the same as a load from scratch"


async def record(store: EventStore, meta: EventMetadata, version: str, command_id: UUID | None = None) -> Outcome:
    def decide(history: History) -> list[DomainEvent]:
        return [consent(version)]

    stream = subject_history(meta.site or "", meta.subject)
    command = command_id or uuid4()
    return await decide_and_append(store, subject_filter=stream, decide=decide, meta=meta, command_id=command)


def versions(history: History) -> list[str]:
    return [e.data.consent_form_version for e in history.events]  # type: ignore[attr-defined]


async def test_a_decision_on_a_kept_history_made_stale_by_another_replica_is_taken_again(js: JetStreamContext) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0")
    mine, theirs = EventStore(js), EventStore(js)
    await record(mine, meta, "1.0")
    await record(theirs, meta, "9.0")
    seen: list[int] = []

    def decide(history: History) -> list[DomainEvent]:
        seen.append(len(history.events))
        return [consent(f"{len(history.events) + 1}.0")]

    outcome = await decide_and_append(mine, subject_filter=stream, decide=decide, meta=meta, command_id=uuid4())
    assert seen == [1, 2], "first on the history it kept, then on the current one the append demanded"
    assert versions(History(stream, outcome.events)) == ["3.0"]
    assert versions(await EventStore(js).load(stream)) == ["1.0", "9.0", "3.0"]


async def test_a_refusal_is_decided_on_the_current_history_never_on_a_kept_one(js: JetStreamContext) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0")
    mine, theirs = EventStore(js), EventStore(js)
    assert (await mine.load(stream)).events == ()  # kept: nothing yet
    await theirs.append([envelope(site, subject)], subject_filter=stream, expected_last_sequence=0)
    seen: list[int] = []

    def needs_consent(history: History) -> list[DomainEvent]:
        seen.append(len(history.events))
        if not history.events:
            raise NotConsented("no consent recorded")
        return [consent("2.0")]

    outcome = await decide_and_append(mine, subject_filter=stream, decide=needs_consent, meta=meta, command_id=uuid4())
    assert seen == [0, 1] and versions(History(stream, outcome.events)) == ["2.0"]


async def test_a_command_another_replica_recorded_is_answered_with_what_was_recorded(js: JetStreamContext) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0")
    mine, theirs = EventStore(js), EventStore(js)
    await record(mine, meta, "1.0")
    command = uuid4()
    await record(theirs, meta, "5.0", command)
    # The retry reaches this replica, whose kept history predates the first attempt: on it, it would
    # decide differently; it must answer with what was recorded and record nothing.
    retry = await decide_and_append(
        mine, subject_filter=stream, decide=lambda h: [consent(f"{len(h.events)}0.0")], meta=meta, command_id=command
    )
    assert retry.replayed and versions(History(stream, retry.events)) == ["5.0"]
    assert versions(await EventStore(js).load(stream)) == ["1.0", "5.0"]


async def test_a_replica_decides_on_what_it_appended_without_reading_it_back(js: JetStreamContext) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0")
    store = EventStore(js)
    await record(store, meta, "1.0")
    kept = store.kept(stream)
    assert kept is not None and versions(kept) == ["1.0"], "what it appended is kept, with its sequence"
    assert kept.events == (await EventStore(js).load(stream)).events


@pytest.mark.parametrize("confirm_on_leader", [False, True], ids=["one replica", "replicated"])
async def test_a_history_longer_than_a_direct_get_batch_loads_whole_and_in_order(
    js: JetStreamContext, confirm_on_leader: bool
) -> None:
    site, subject = SubjectIds.synthetic()
    other_site, other = SubjectIds.synthetic()
    appended: list[int] = []
    writer = EventStore(js)
    for _ in range(600):  # interleaved with another subject's, so the filter skips half the stream
        [recorded] = await writer.append(
            [envelope(site, subject)],
            subject_filter=subject_history(site, subject),
            expected_last_sequence=appended[-1] if appended else 0,
        )
        appended.append(recorded.sequence)
        noise = envelope(other_site, other)
        await js.publish(event_subject(other_site, other, noise.type), noise.to_json(), stream=EVENTS_STREAM)
    reader = EventStore(js, confirm_on_leader=confirm_on_leader)
    history = await reader.load(subject_history(site, subject))
    assert [e.sequence for e in history.events] == appended
    # Read again after one more: only what is new is read, and it joins what was kept.
    [last] = await writer.append(
        [envelope(site, subject)], subject_filter=subject_history(site, subject), expected_last_sequence=appended[-1]
    )
    again = await reader.load(subject_history(site, subject))
    assert [e.sequence for e in again.events] == [*appended, last.sequence]
    assert {e.envelope.subject for e in history.events} == {subject}


async def test_loading_histories_leaves_no_consumer_on_the_server(js: JetStreamContext) -> None:
    site, subject = SubjectIds.synthetic()
    store = EventStore(js)
    history = subject_history(site, subject)
    await store.append([envelope(site, subject)], subject_filter=history, expected_last_sequence=0)
    before = (await js.stream_info(EVENTS_STREAM)).state.consumer_count
    for _ in range(20):
        assert len((await EventStore(js).load(history)).events) == 1
    assert (await js.stream_info(EVENTS_STREAM)).state.consumer_count == before


async def test_a_reaction_decides_only_on_a_history_that_shows_its_trigger(store: EventStore) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0")
    [trigger] = await store.append([envelope(site, subject)], subject_filter=stream, expected_last_sequence=0)
    real_load = store.load
    reads: list[int] = []

    async def behind_twice(subject_filter: str) -> History:
        history = await real_load(subject_filter)
        reads.append(history.last_sequence)
        # A replica behind (or a leader whose term has ended) answers the first two reads without the trigger.
        return History(subject_filter, ()) if len(reads) <= 2 else history

    lagging = EventStore.__new__(EventStore)
    lagging.__dict__.update(store.__dict__)
    lagging._histories = type(store._histories)()  # nothing kept: every attempt reads
    lagging.load = behind_twice  # type: ignore[method-assign]
    decided_on: list[int] = []

    def decide(history: History) -> list[DomainEvent]:
        decided_on.append(history.last_sequence)
        return [consent("2.0")]

    outcome = await decide_and_append(
        lagging, subject_filter=stream, decide=decide, meta=meta, command_id=uuid4(), at_least=trigger.sequence
    )
    assert decided_on == [trigger.sequence] and len(reads) == 3
    assert [e.sequence for e in outcome.events] > [trigger.sequence]


async def test_a_history_that_never_shows_the_trigger_is_a_transient_error_and_nothing_is_recorded(
    store: EventStore,
) -> None:
    site, subject = SubjectIds.synthetic()
    stream = subject_history(site, subject)
    meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0")
    [trigger] = await store.append([envelope(site, subject)], subject_filter=stream, expected_last_sequence=0)
    with pytest.raises(HistoryBehind):
        await decide_and_append(
            store,
            subject_filter=stream,
            decide=lambda h: [consent("2.0")],
            meta=meta,
            command_id=uuid4(),
            at_least=trigger.sequence + 1_000_000,
        )
    assert (await store.load(stream)).events == (trigger,)

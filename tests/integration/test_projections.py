"""The projection runner against real JetStream and Postgres: exactly-once effects, crashes, poison events."""

import asyncio
import contextlib
import gc
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import nats.js.errors
import pytest
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from shared.contracts.events import RecordedEvent
from shared.runtime.deadletters import dead_letters, replay
from shared.runtime.eventstore import DEAD_LETTER_STREAM, EVENTS_STREAM, EventStore, event_subject, subject_history
from shared.runtime.postgres import SHARED_MIGRATIONS, apply_migrations
from shared.runtime.projections import (
    CheckpointMoved,
    ProjectionRunner,
    apply_following,
    applying,
    ensure_checkpoint,
    read_checkpoint,
    rebuild,
    skip_to,
    wait_for_checkpoint,
)
from shared.runtime.writebatch import WriteBatch
from tests.conftest import SubjectIds
from tests.integration.test_eventstore import envelope

pytestmark = pytest.mark.integration


class CountingProjection:
    """Counts how often each event was applied: any double application shows as times > 1."""

    name = "counting"
    tables: tuple[str, ...] = ("applied",)

    async def apply(self, conn: WriteBatch, event: RecordedEvent) -> None:
        await conn.execute(
            "INSERT INTO applied (sequence, event_id, times) VALUES ($1, $2, 1) "
            "ON CONFLICT (sequence) DO UPDATE SET times = applied.times + 1",
            event.sequence,
            event.envelope.id,
        )


class Crash(BaseException):
    """Stands for the process dying: not an error the runner may handle."""


class CrashingProjection(CountingProjection):
    def __init__(self, crash_at_sequence: int) -> None:
        self.crash_at = crash_at_sequence

    async def apply(self, conn: WriteBatch, event: RecordedEvent) -> None:
        if event.sequence == self.crash_at:
            raise Crash
        await super().apply(conn, event)


class BuggyProjection(CountingProjection):
    """Fails on one event until fixed: a bug, then the release that fixes it."""

    def __init__(self, bad_sequence: int) -> None:
        self.name = f"buggy_{uuid.uuid4().hex[:8]}"
        self.bad_sequence = bad_sequence
        self.fixed = False

    async def apply(self, conn: WriteBatch, event: RecordedEvent) -> None:
        if event.sequence == self.bad_sequence and not self.fixed:
            raise ValueError("no rule for this case yet")
        await super().apply(conn, event)


@pytest.fixture
async def read_model(pool: asyncpg.Pool) -> asyncpg.Pool:
    await apply_migrations(pool, "projections", SHARED_MIGRATIONS)
    await pool.execute("CREATE TABLE applied (sequence bigint PRIMARY KEY, event_id uuid NOT NULL, times int NOT NULL)")
    return pool


async def append_many(store: EventStore, count: int) -> list[int]:
    sequences = []
    for _ in range(count):
        site, subject = SubjectIds.synthetic()
        recorded = await store.append(
            [envelope(site, subject)], subject_filter=subject_history(site, subject), expected_last_sequence=0
        )
        sequences.append(recorded[0].sequence)
    return sequences


async def append_to(store: EventStore, site: str, subject: str) -> int:
    history = await store.load(subject_history(site, subject))
    [recorded] = await store.append(
        [envelope(site, subject)], subject_filter=history.subject_filter, expected_last_sequence=history.last_sequence
    )
    return recorded.sequence


@contextlib.asynccontextmanager
async def running(runner: ProjectionRunner) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        runner.stop()
        with contextlib.suppress(Crash):
            await asyncio.wait_for(task, 10)


async def snapshot(pool: asyncpg.Pool) -> list[tuple[int, int]]:
    return [
        (r["sequence"], r["times"]) for r in await pool.fetch("SELECT sequence, times FROM applied ORDER BY sequence")
    ]


async def test_runner_applies_every_event_once(
    store: EventStore, js: JetStreamContext, read_model: asyncpg.Pool
) -> None:
    sequences = await append_many(store, 5)
    async with running(ProjectionRunner(CountingProjection(), js, read_model, batch_size=2)):
        await wait_for_checkpoint(read_model, "counting", sequences[-1])
    rows = dict(await snapshot(read_model))
    assert all(rows[s] == 1 for s in sequences)
    assert set(rows.values()) == {1}


async def test_a_projection_killed_between_events_resumes_without_applying_anything_twice(
    store: EventStore, js: JetStreamContext, read_model: asyncpg.Pool
) -> None:
    sequences = await append_many(store, 12)
    crashing = ProjectionRunner(CrashingProjection(crash_at_sequence=sequences[7]), js, read_model, batch_size=3)
    task = asyncio.create_task(crashing.run())
    with pytest.raises(Crash):
        await asyncio.wait_for(task, 20)
    applied_before = await snapshot(read_model)
    assert applied_before, "batches before the crash were committed"
    assert sequences[7] not in dict(applied_before), "the batch in flight was rolled back"

    async with running(ProjectionRunner(CountingProjection(), js, read_model, batch_size=3)):
        await wait_for_checkpoint(read_model, "counting", sequences[-1])
    after_restart = await snapshot(read_model)
    assert {times for _, times in after_restart} == {1}

    [result] = (await rebuild([CountingProjection()], js, read_model)).values()
    assert result.unreadable == ()
    assert await snapshot(read_model) == after_restart
    assert result.live_sequence == result.last_sequence and result.equal, "checksums of live and rebuilt agree"


async def test_a_poison_event_goes_to_the_dead_letters_and_the_runner_goes_on(
    store: EventStore, js: JetStreamContext, read_model: asyncpg.Pool
) -> None:
    site, subject = SubjectIds.synthetic()
    poison = await js.publish(event_subject(site, subject, "ConsentRecorded"), b'{"type": "SubjectTeleported"}')
    after = await append_many(store, 1)
    runner = ProjectionRunner(CountingProjection(), js, read_model, batch_size=10)
    async with running(runner):
        await wait_for_checkpoint(read_model, "counting", after[-1])
    assert runner.dead_letters >= 1
    rows = dict(await snapshot(read_model))
    assert poison.seq not in rows and rows[after[-1]] == 1
    dead = await js.get_last_msg(DEAD_LETTER_STREAM, "trial.deadletters.projection.counting")
    assert dead.headers is not None
    assert dead.headers["Trial-Original-Sequence"] == str(poison.seq)
    assert "SubjectTeleported" in dead.headers["Trial-Dead-Letter-Reason"]
    assert json.loads(dead.data or b"") == {
        "stream": "TRIAL_EVENTS",
        "sequence": poison.seq,
        "subject": event_subject(site, subject, "ConsentRecorded"),
        "reason": dead.headers["Trial-Dead-Letter-Reason"],
    }, "a reference to the original, never a copy of its content"
    listed = await dead_letters(js, handler="projection:counting")
    assert [(d.original_sequence, d.handler) for d in listed][-1] == (poison.seq, "projection:counting")
    assert "SubjectTeleported" in listed[-1].reason


async def test_rebuild_replays_the_whole_stream_and_names_what_it_could_not_read(
    store: EventStore, js: JetStreamContext, read_model: asyncpg.Pool
) -> None:
    site, subject = SubjectIds.synthetic()
    poison = await js.publish(event_subject(site, subject, "ConsentRecorded"), b"not json")
    sequences = await append_many(store, 3)
    progress: list[tuple[int, int]] = []
    [result] = (
        await rebuild(
            [CountingProjection()], js, read_model, batch_size=2, progress=lambda d, t: progress.append((d, t))
        )
    ).values()
    assert poison.seq in result.unreadable
    assert result.last_sequence >= sequences[-1]
    rows = dict(await snapshot(read_model))
    assert all(rows[s] == 1 for s in sequences)
    assert progress[-1] == (result.last_sequence, result.last_sequence)


async def test_a_rebuild_replays_with_the_cyclic_collector_off_and_turns_it_back_on(
    store: EventStore, js: JetStreamContext, read_model: asyncpg.Pool
) -> None:
    await append_many(store, 2)
    collector_on: list[bool] = []

    class ObservingProjection(CountingProjection):
        async def apply(self, conn: WriteBatch, event: RecordedEvent) -> None:
            collector_on.append(gc.isenabled())
            await super().apply(conn, event)

    assert gc.isenabled()
    await rebuild([ObservingProjection()], js, read_model)
    assert collector_on and not any(collector_on)
    assert gc.isenabled()


async def test_a_dead_letter_is_counted_and_replayed_once_the_handler_is_fixed(
    store: EventStore, js: JetStreamContext, read_model: asyncpg.Pool
) -> None:
    sequences = await append_many(store, 3)
    projection = BuggyProjection(bad_sequence=sequences[1])
    handler = f"projection:{projection.name}"
    await read_model.execute(
        "INSERT INTO projection_checkpoints (projection, last_sequence) VALUES ($1, $2)",
        projection.name,
        sequences[0] - 1,
    )
    async with running(ProjectionRunner(projection, js, read_model, retry_delay=0.01)):
        await wait_for_checkpoint(read_model, projection.name, sequences[-1])
    assert REGISTRY.get_sample_value("trial_dead_letters_total", {"handler": handler}) == 1
    assert REGISTRY.get_sample_value("trial_consumer_lag_events", {"consumer": f"projection-{projection.name}"}) == 0
    assert sequences[1] not in dict(await snapshot(read_model)), "the runner went on without it"
    [letter] = await dead_letters(js, handler=handler)
    # The kind of failure, never its message (which may quote the event's values).
    assert letter.original_sequence == sequences[1] and letter.reason == "ValueError"

    still_broken = await replay(js, handler, applying(projection, read_model))
    assert (still_broken.replayed, [d.original_sequence for d, _ in still_broken.failed]) == ([], [sequences[1]])
    assert await dead_letters(js, handler=handler) == [letter], "a failed replay leaves it listed"

    projection.fixed = True
    replayed = await replay(js, handler, applying(projection, read_model))
    assert [d.original_sequence for d in replayed.replayed] == [sequences[1]] and replayed.failed == []
    assert dict(await snapshot(read_model))[sequences[1]] == 1
    assert await dead_letters(js, handler=handler) == []
    assert await dead_letters(js, handler=handler, include_resolved=True) == [letter]
    again = await replay(js, handler, applying(projection, read_model))
    assert again.replayed == [] and dict(await snapshot(read_model))[sequences[1]] == 1, "replayed once only"


class SelectiveProjection(CountingProjection):
    """Uses only the events of one subject: every other batch only moves the checkpoint."""

    name = "selective"

    def __init__(self, subject: str) -> None:
        self.subject = subject

    async def apply(self, conn: WriteBatch, event: RecordedEvent) -> None:
        if event.envelope.subject == self.subject:
            await super().apply(conn, event)


async def test_a_rebuild_under_a_running_runner_leaves_every_event_applied_once(
    store: EventStore, js: JetStreamContext, read_model: asyncpg.Pool
) -> None:
    site, subject = SubjectIds.synthetic()
    projection = SelectiveProjection(subject)
    async with running(ProjectionRunner(projection, js, read_model, batch_size=2)):
        ours = [await append_to(store, site, subject) for _ in range(3)]
        others = await append_many(store, 4)
        await wait_for_checkpoint(read_model, projection.name, others[-1])
        # The rebuild moves the checkpoint under the runner; the runner finds it moved and follows on from there.
        await rebuild([projection], js, read_model)
        later = await append_many(store, 2)
        ours.append(await append_to(store, site, subject))
        await wait_for_checkpoint(read_model, projection.name, max(later[-1], ours[-1]))
    assert dict(await snapshot(read_model)) == dict.fromkeys(ours, 1)


async def test_a_runner_whose_checkpoint_moved_under_it_applies_nothing_and_is_told(
    store: EventStore, js: JetStreamContext, read_model: asyncpg.Pool
) -> None:
    site, subject = SubjectIds.synthetic()
    sequence = await append_to(store, site, subject)
    [event] = (await store.load(subject_history(site, subject))).events
    async with read_model.acquire() as conn:
        await ensure_checkpoint(conn, "counting")
        await skip_to(conn, "counting", sequence - 1)
        counting = [CountingProjection()]
        assert await apply_following(conn, counting, [event], {"counting": sequence - 1}) == {"counting": sequence}
        assert await apply_following(conn, counting, [event], {"counting": sequence}) == {"counting": sequence}, "seen"
        # A runner that does not know its checkpoint moved (a rebuild took it) applies the event again: undone.
        with pytest.raises(CheckpointMoved):
            await apply_following(conn, counting, [event], {"counting": sequence - 1})
        await skip_to(conn, "counting", sequence + 5)
        ignoring = SelectiveProjection("nobody")  # a batch it ignores only moves the checkpoint, just as conditionally
        ignoring.name = "counting"
        with pytest.raises(CheckpointMoved):
            await apply_following(conn, [ignoring], [replace(event, sequence=sequence + 1)], {"counting": sequence})
        assert await read_checkpoint(conn, "counting") == sequence + 5
    assert dict(await snapshot(read_model)) == {sequence: 1}


class TallyProjection(CountingProjection):
    """A second read model, with a table of its own, to be fed together with `counting`."""

    name = "tally"
    tables: tuple[str, ...] = ("tallied",)

    async def apply(self, conn: WriteBatch, event: RecordedEvent) -> None:
        await conn.execute(
            "INSERT INTO tallied (sequence, times) VALUES ($1, 1) "
            "ON CONFLICT (sequence) DO UPDATE SET times = tallied.times + 1",
            event.sequence,
        )


@pytest.fixture
async def two_models(read_model: asyncpg.Pool) -> asyncpg.Pool:
    await read_model.execute("CREATE TABLE tallied (sequence bigint PRIMARY KEY, times int NOT NULL)")
    return read_model


async def tallies(pool: asyncpg.Pool) -> dict[int, int]:
    return {r["sequence"]: r["times"] for r in await pool.fetch("SELECT sequence, times FROM tallied")}


async def caught_up(pool: asyncpg.Pool, sequence: int, *names: str) -> None:
    for name in names:
        await wait_for_checkpoint(pool, name, sequence)


async def test_one_feed_applies_each_event_once_to_every_read_model_and_replaces_their_own_consumers(
    store: EventStore, js: JetStreamContext, two_models: asyncpg.Pool
) -> None:
    first = await append_many(store, 3)
    async with running(ProjectionRunner(CountingProjection(), js, two_models, batch_size=2)):  # fed alone, as before
        await wait_for_checkpoint(two_models, "counting", first[-1])
    later = await append_many(store, 5)

    feed = ProjectionRunner([CountingProjection(), TallyProjection()], js, two_models, feed="both", batch_size=2)
    async with running(feed):
        await caught_up(two_models, later[-1], "counting", "tally")

    applied, tallied = dict(await snapshot(two_models)), await tallies(two_models)
    assert [applied[s] for s in first + later] == [1] * 8 and set(applied.values()) == {1}
    assert [tallied[s] for s in first + later] == [1] * 8 and set(tallied.values()) == {1}, "from the record's start"
    assert (await js.consumer_info(EVENTS_STREAM, "projection-both")).config.durable_name == "projection-both"
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.consumer_info(EVENTS_STREAM, "projection-counting")  # the consumer that fed it alone is gone


async def test_a_feed_stands_by_while_a_runner_of_one_of_its_read_models_leads_then_takes_over(
    store: EventStore, js: JetStreamContext, two_models: asyncpg.Pool
) -> None:
    """A rolling update from one runner per read model to one feed: never two leaders of a read model."""
    sequences = await append_many(store, 2)
    alone = ProjectionRunner(CountingProjection(), js, two_models)
    leading = asyncio.create_task(alone.run())
    await wait_for_checkpoint(two_models, "counting", sequences[-1])
    async with running(ProjectionRunner([CountingProjection(), TallyProjection()], js, two_models, feed="both")):
        await asyncio.sleep(1.0)
        assert await tallies(two_models) == {}, "it leads all of its read models or none"
        alone.stop()
        await asyncio.wait_for(leading, 10)
        more = await append_many(store, 1)
        await caught_up(two_models, more[-1], "counting", "tally")
    assert set(dict(await snapshot(two_models)).values()) == {1} and set((await tallies(two_models)).values()) == {1}


async def test_an_event_one_read_model_fails_on_is_dead_lettered_for_it_alone(
    store: EventStore, js: JetStreamContext, two_models: asyncpg.Pool
) -> None:
    sequences = await append_many(store, 3)
    buggy = BuggyProjection(bad_sequence=sequences[1])
    for name in (buggy.name, "tally"):
        await two_models.execute(
            "INSERT INTO projection_checkpoints (projection, last_sequence) VALUES ($1, $2)", name, sequences[0] - 1
        )
    async with running(ProjectionRunner([buggy, TallyProjection()], js, two_models, feed="mixed", retry_delay=0.01)):
        await caught_up(two_models, sequences[-1], buggy.name, "tally")
    assert sorted(dict(await snapshot(two_models))) == [sequences[0], sequences[2]]
    assert await tallies(two_models) == dict.fromkeys(sequences, 1), "the other read model has every event"
    assert [d.original_sequence for d in await dead_letters(js, handler=f"projection:{buggy.name}")] == [sequences[1]]
    assert [d for d in await dead_letters(js, handler="projection:tally") if d.original_sequence in sequences] == []


async def test_one_read_model_rebuilt_alone_under_its_feed_leaves_each_event_applied_once_to_each(
    store: EventStore, js: JetStreamContext, two_models: asyncpg.Pool
) -> None:
    before = await append_many(store, 3)
    async with running(ProjectionRunner([CountingProjection(), TallyProjection()], js, two_models, feed="both")):
        await caught_up(two_models, before[-1], "counting", "tally")
        [result] = (await rebuild([TallyProjection()], js, two_models)).values()
        after = await append_many(store, 3)
        await caught_up(two_models, after[-1], "counting", "tally")
    assert result.equal
    applied, tallied = dict(await snapshot(two_models)), await tallies(two_models)
    assert set(applied.values()) == {1} and set(tallied.values()) == {1} and applied.keys() == tallied.keys()
    assert set(before + after) <= tallied.keys()


async def test_a_feed_whose_checkpoint_moved_for_one_read_model_applies_nothing_to_any(
    store: EventStore, js: JetStreamContext, two_models: asyncpg.Pool
) -> None:
    site, subject = SubjectIds.synthetic()
    sequence = await append_to(store, site, subject)
    [event] = (await store.load(subject_history(site, subject))).events
    both = [CountingProjection(), TallyProjection()]
    async with two_models.acquire() as conn:
        for name in ("counting", "tally"):
            await ensure_checkpoint(conn, name)
            await skip_to(conn, name, sequence - 1)
        await skip_to(conn, "tally", sequence)  # moved by a rebuild the feed does not know of
        with pytest.raises(CheckpointMoved):
            await apply_following(conn, both, [event], {"counting": sequence - 1, "tally": sequence - 1})
        assert await read_checkpoint(conn, "counting") == sequence - 1
    assert await snapshot(two_models) == [] and await tallies(two_models) == {}

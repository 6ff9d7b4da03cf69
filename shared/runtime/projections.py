"""Projection runner: applies the event stream to Postgres read models with exactly-once effects.

One consumer feeds a process's read models. Each batch is applied to all of them in one transaction that
also moves each one's checkpoint, so a redelivered or replayed event at or below a read model's checkpoint
changes nothing in it. One replica leads a read model (a Postgres advisory lock per read model, all of a
feed's or none); the others wait to take over.
"""

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from shared.contracts.events import RecordedEvent, UndecodableEvent
from shared.runtime.consumers import CHECK_SECONDS, drifted
from shared.runtime.deadletters import dead_letter
from shared.runtime.eventstore import (
    EVENTS_PREFIX,
    EVENTS_STREAM,
    DecodedEvents,
    PullFeed,
    StoredMessage,
    read_through,
)
from shared.runtime.logging import error_summary
from shared.runtime.metrics import CONSUMER_LAG
from shared.runtime.postgres import CONNECTION_ERRORS, Connection
from shared.runtime.writebatch import WriteBatch

log = structlog.get_logger(__name__)

FETCH_BATCH = 256
# A read model trails the record by at most this much more, and under load applies a few events per statement.
GATHER_SECONDS = 0.02
# Events a rebuild applies per batch: many, so each statement carries many rows.
REPLAY_BATCH = 2000
# Errors that say the database or the bus is unreachable, not that the event is bad: retried forever.
TRANSIENT: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, nats.errors.Error)


def durable_consumer(read_model: str) -> str:
    """The JetStream durable consumer that feeds a read model."""
    return f"projection-{read_model}"


class Projection(Protocol):
    """A read model: `apply` handles the event types it uses and ignores the rest; it owns `tables`.

    It writes to a `WriteBatch`, each write's first parameter naming the rows it writes (see `writebatch`).
    """

    name: str
    tables: tuple[str, ...]

    async def apply(self, writes: WriteBatch, event: RecordedEvent) -> None: ...


async def table_checksums(conn: Connection | asyncpg.Pool, tables: Sequence[str]) -> dict[str, str]:
    """An order-independent digest of each table's rows: equal tables, equal checksums."""
    sums = {}
    for table in tables:
        sums[table] = await conn.fetchval(
            f"SELECT md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) FROM {table} AS t"
        )
    return sums


async def ensure_checkpoint(conn: Connection, name: str) -> None:
    """The projection's checkpoint row exists (at 0 for a new projection)."""
    await conn.execute("INSERT INTO projection_checkpoints (projection) VALUES ($1) ON CONFLICT DO NOTHING", name)


async def read_checkpoint(conn: Connection | asyncpg.Pool, name: str) -> int:
    value = await conn.fetchval("SELECT last_sequence FROM projection_checkpoints WHERE projection = $1", name)
    return int(value or 0)


async def read_checkpoints(conn: Connection, projections: Sequence[Projection]) -> dict[str, int]:
    return {p.name: await read_checkpoint(conn, p.name) for p in projections}


async def wait_for_checkpoint(pool: asyncpg.Pool, name: str, sequence: int, timeout: float = 20.0) -> None:
    """Wait until a projection has applied the event at `sequence` (read-your-writes for callers)."""
    async with asyncio.timeout(timeout):
        while await read_checkpoint(pool, name) < sequence:
            await asyncio.sleep(0.02)


async def wait_for_read_models(pool: asyncpg.Pool, names: Sequence[str], sequence: int, timeout: float) -> None:
    """Wait until every one of these read models has applied the record through `sequence` (a client's
    read-your-writes: the `stream_sequence` of its own answer); TimeoutError when they have not in time."""
    async with asyncio.timeout(timeout):
        while await pool.fetchval(
            "SELECT count(*) FROM projection_checkpoints WHERE projection = ANY($1::text[]) AND last_sequence >= $2",
            list(names),
            sequence,
        ) < len(names):
            await asyncio.sleep(0.02)


class SequenceGap(Exception):
    """An event arrived before the one right after the checkpoint; nothing is applied, the runner re-reads."""


async def apply_batch(conn: Connection, projection: Projection, events: Sequence[RecordedEvent]) -> int:
    """Apply events above the checkpoint and move it, in the caller's transaction. Returns how many applied.

    The checkpoint row exists (`ensure_checkpoint`, once, before the first batch).

    The event stream has no gaps (nothing is ever deleted), so the next event must be checkpoint + 1:
    this keeps a read model in stream order even if two runners ever overlapped.
    """
    checkpoint = int(
        await conn.fetchval(
            "SELECT last_sequence FROM projection_checkpoints WHERE projection = $1 FOR UPDATE", projection.name
        )
    )
    fresh = following(projection, events, checkpoint)
    writes = WriteBatch(conn)
    for event in fresh:
        await projection.apply(writes, event)
    await writes.flush()
    await conn.execute(
        "UPDATE projection_checkpoints SET last_sequence = $2, updated_at = now() WHERE projection = $1",
        projection.name,
        fresh[-1].sequence if fresh else checkpoint,
    )
    return len(fresh)


def following(projection: Projection, events: Sequence[RecordedEvent], at: int) -> list[RecordedEvent]:
    """The events after checkpoint `at`; `SequenceGap` unless they follow it one by one."""
    fresh = [e for e in events if e.sequence > at]
    for before, event in zip([at, *(e.sequence for e in fresh)], fresh, strict=False):
        if event.sequence != before + 1:
            raise SequenceGap(f"{projection.name}: at {before}, got {event.sequence}")
    return fresh


class CheckpointMoved(Exception):
    """A checkpoint is not where the runner left it (a rebuild moved it): nothing applied, the runner re-reads."""


# Moves each checkpoint only from where the runner knows it stands; says how many moved.
ADVANCE = """
WITH moved AS (
    UPDATE projection_checkpoints AS c SET last_sequence = m.upto, updated_at = now()
      FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS m(projection, at, upto)
     WHERE c.projection = m.projection AND c.last_sequence = m.at
    RETURNING 1
)
SELECT count(*) FROM moved
"""


async def apply_following(
    conn: Connection, projections: Sequence[Projection], events: Sequence[RecordedEvent], at: Mapping[str, int]
) -> dict[str, int]:
    """`apply_batch` for the runner that leads these projections and so knows their checkpoints (`at`, by name):
    every read model's rows and every checkpoint move in one transaction, on the condition that each checkpoint
    still stands where `at` says (else `CheckpointMoved`, nothing applied). A batch the models ignore entirely only
    moves the checkpoints: one statement, no transaction. Returns the new checkpoints."""
    fresh = {p.name: following(p, events, at[p.name]) for p in projections}
    moved = {name: applied[-1].sequence for name, applied in fresh.items() if applied}
    if not moved:
        return dict(at)
    writes = WriteBatch(conn, begin_when_sending=True)
    try:
        for projection in projections:
            writes.scope = projection.name  # one read model's keys never order another's writes
            for event in fresh[projection.name]:
                await projection.apply(writes, event)
        await writes.flush()
        names = list(moved)
        if await conn.fetchval(ADVANCE, names, [at[n] for n in names], [moved[n] for n in names]) != len(names):
            # Without writes nothing was begun: the checkpoints that did move passed events their models ignore.
            raise CheckpointMoved(f"{', '.join(names)}: no longer at {dict(at)}")
        if writes.transaction is not None:
            await writes.transaction.commit()
    except BaseException:
        if writes.transaction is not None:
            await writes.transaction.rollback()
        raise
    return dict(at) | moved


# What stops the runner's follow loop: it pauses, then starts again from the checkpoint.
INTERRUPTIONS: tuple[type[Exception], ...] = (*TRANSIENT, SequenceGap, CheckpointMoved)


async def skip_to(conn: Connection, name: str, sequence: int) -> None:
    await conn.execute(
        "UPDATE projection_checkpoints SET last_sequence = GREATEST(last_sequence, $2), updated_at = now() "
        "WHERE projection = $1",
        name,
        sequence,
    )


def applying(projection: Projection, pool: asyncpg.Pool) -> Callable[[RecordedEvent], Awaitable[None]]:
    """Apply one event to the read model now, outside stream order: a dead letter's replay.

    (`rebuild` applies every event again in stream order, when order matters for the model.)
    """

    async def handle(event: RecordedEvent) -> None:
        async with pool.acquire() as conn, conn.transaction():
            writes = WriteBatch(conn)
            await projection.apply(writes, event)
            await writes.flush()

    return handle


class ProjectionRunner:
    """Read models fed from the record by one consumer: each batch of events is applied to all of them in one
    transaction that moves each one's checkpoint (`apply_following`), so the facts are delivered, acknowledged and
    committed once per batch, not once per read model. Each read model keeps its own checkpoint, so one can be
    rebuilt alone (`rebuild`) while the others go on; the runner then feeds each from where it stands.

    One runner leads a read model at a time: it holds each of its read models' advisory locks (the same lock a
    runner of that read model alone takes), or none of them and waits."""

    def __init__(
        self,
        projections: Projection | Sequence[Projection],
        js: JetStreamContext,
        pool: asyncpg.Pool,
        *,
        feed: str | None = None,
        max_attempts: int = 5,
        retry_delay: float = 0.5,
        batch_size: int = FETCH_BATCH,
        decoded: DecodedEvents | None = None,
        check_seconds: float = CHECK_SECONDS,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        """`feed`: the name of the consumer that feeds several read models (one read model's own name by
        default). `gather_seconds`: after a batch smaller than `batch_size`, how long to let the next one gather
        (under a steady stream of writes, fewer and larger batches; alone, an event is applied at once)."""
        self.projections = list(projections) if isinstance(projections, Sequence) else [projections]
        if feed is None and len(self.projections) != 1:
            raise ValueError("several read models are fed under a name of their own (`feed`)")
        # Shared by the runners of one process: each event is decoded once for all the read models.
        self._decoded = decoded or DecodedEvents()
        self._js = js
        self._pool = pool
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._batch_size = batch_size
        self._gather_seconds = gather_seconds
        self._check_seconds = check_seconds
        self._stopping = asyncio.Event()
        # Where each checkpoint stands, by read model, as this runner (their leader) last moved it.
        self._at: dict[str, int] = {}
        self.dead_letters = 0
        self.durable = durable_consumer(feed or self.projections[0].name)
        # The consumers that fed these read models one each, before they were fed together.
        self._superseded = [durable_consumer(p.name) for p in self.projections if feed is not None]
        self._lag = CONSUMER_LAG.labels(consumer=self.durable)
        self._log = log.bind(projection=feed or self.projections[0].name)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Follow the stream until `stop()`; survives restarts of NATS and Postgres."""
        keys = sorted(f"projection:{p.name}" for p in self.projections)
        while not self._stopping.is_set():
            try:
                # The advisory locks live as long as this connection: if it dies, another replica leads.
                # The runner writes through it too, so it needs exactly one connection.
                async with self._pool.acquire() as leader:
                    held = []
                    for key in keys:  # in one order everywhere: two runners meet at the first lock, not across
                        if not await leader.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
                            break
                        held.append(key)
                    try:
                        if len(held) < len(keys):
                            self._log.info("projection_standby")
                            await self._pause(2.0)
                            continue
                        self._log.info("projection_active")
                        await self._follow(leader)
                    finally:
                        with contextlib.suppress(*TRANSIENT):
                            for key in held:
                                await leader.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
            except INTERRUPTIONS as exc:
                self._log.warning("projection_interrupted", error=type(exc).__name__)
                await self._pause(self._retry_delay * 4)

    async def _follow(self, leader: Connection) -> None:
        # The checkpoints in Postgres are the truth: the consumer is re-created to start just after the lowest,
        # so a restart resumes at once and exactly there, whatever the consumer had acknowledged.
        for projection in self.projections:
            await ensure_checkpoint(leader, projection.name)
        self._at = await read_checkpoints(leader, self.projections)
        start = min(self._at.values()) + 1
        for durable in (*self._superseded, self.durable):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self._js.delete_consumer(EVENTS_STREAM, durable)
        config = api.ConsumerConfig(
            durable_name=self.durable,
            filter_subject=f"{EVENTS_PREFIX}.>",
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_policy=api.AckPolicy.ALL,
            ack_wait=60.0,
            max_ack_pending=self._batch_size * 4,
        )
        await self._js.add_consumer(EVENTS_STREAM, config=config)
        self._log.info("projection_following", from_sequence=start)
        loop = asyncio.get_running_loop()
        check_at = loop.time() + self._check_seconds
        async with PullFeed(self._js, EVENTS_STREAM, self.durable, batch=self._batch_size) as feed:
            while not self._stopping.is_set():
                if loop.time() >= check_at:
                    # Changed behind the runner's back: made again from the checkpoints, which nothing else moves.
                    if await drifted(self._js, EVENTS_STREAM, config):
                        return
                    check_at = loop.time() + self._check_seconds
                msgs = await feed.next()
                if not msgs:
                    self._lag.set(0)
                    await leader.fetchval("SELECT 1")  # still holding the locks? (raises if the link is gone)
                    continue
                await self._handle(leader, msgs)
                self._lag.set(msgs[-1].metadata.num_pending)
                # AckPolicy.ALL: acknowledging the last message acknowledges the whole batch.
                await msgs[-1].ack()
                if len(msgs) < self._batch_size:
                    await self._pause(self._gather_seconds)

    async def _handle(self, conn: Connection, msgs: Sequence[Msg]) -> None:
        try:
            events = [self._decoded.of(m) for m in msgs]
            self._at = await apply_following(conn, self.projections, events, self._at)
            return
        except INTERRUPTIONS:
            raise
        except Exception as exc:  # a bad event somewhere in the batch: isolate it, read model by read model
            self._log.warning(
                "projection_batch_failed", error=error_summary(exc), first=msgs[0].metadata.sequence.stream
            )
        for projection in self.projections:
            try:
                events = [self._decoded.of(m) for m in msgs]
                self._at |= await apply_following(conn, [projection], events, self._at)
                continue
            except INTERRUPTIONS:
                raise
            except Exception:  # this read model fails on one of them: one by one
                pass
            for msg in msgs:
                await self._handle_one(conn, projection, msg)
        self._at = await read_checkpoints(conn, self.projections)

    async def _handle_one(self, conn: Connection, projection: Projection, msg: Msg) -> None:
        sequence = msg.metadata.sequence.stream
        error: Exception | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                event = self._decoded.of(msg)
                async with conn.transaction():
                    await apply_batch(conn, projection, [event])
                return
            except INTERRUPTIONS:
                raise
            except UndecodableEvent as exc:
                error = exc
                break  # reading it again will not help
            except Exception as exc:
                error = exc
                self._log.warning(
                    "projection_event_failed",
                    read_model=projection.name,
                    sequence=sequence,
                    attempt=attempt,
                    error=error_summary(exc),
                )
                await self._pause(self._retry_delay * attempt)
        await self._dead_letter(conn, projection, msg, error_summary(error) if error else "failed")

    async def _dead_letter(self, conn: Connection, projection: Projection, msg: Msg, reason: str) -> None:
        sequence = msg.metadata.sequence.stream
        await dead_letter(self._js, msg, kind="projection", name=projection.name, reason=reason)
        async with conn.transaction():
            await skip_to(conn, projection.name, sequence)
        self.dead_letters += 1
        self._log.error(
            "projection_dead_letter", read_model=projection.name, sequence=sequence, subject=msg.subject, reason=reason
        )

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; True when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()


@dataclass(frozen=True, slots=True)
class RebuildResult:
    replayed: int
    last_sequence: int
    unreadable: tuple[int, ...]
    # The live model's position and table checksums just before, and the rebuilt model's after:
    # equal checksums when the live model had caught up (live_sequence == last_sequence).
    live_sequence: int
    live_checksums: dict[str, str]
    rebuilt_checksums: dict[str, str]

    @property
    def equal(self) -> bool:
        return self.live_checksums == self.rebuilt_checksums


async def rebuild(
    projections: Sequence[Projection],
    js: JetStreamContext,
    pool: asyncpg.Pool,
    *,
    batch_size: int = REPLAY_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, RebuildResult]:
    """Reset the read models and replay the whole stream into them, in one pass and atomically.

    Each event is read and decoded once for all the projections. One transaction: readers see the
    old models until the new ones are complete, and live runners wait on their checkpoint rows, then
    carry on from where the rebuild stopped.
    """
    info = await js.stream_info(EVENTS_STREAM)
    last = info.state.last_seq
    live: dict[str, tuple[int, dict[str, str]]] = {}
    async with pool.acquire() as conn, conn.transaction():
        for projection in projections:
            await ensure_checkpoint(conn, projection.name)
            # Holding the checkpoint row keeps the live runner still while both sides are measured.
            position = await conn.fetchval(
                "SELECT last_sequence FROM projection_checkpoints WHERE projection = $1 FOR UPDATE",
                projection.name,
            )
            live[projection.name] = (int(position), await table_checksums(conn, projection.tables))
            await conn.execute(
                "UPDATE projection_checkpoints SET last_sequence = 0, updated_at = now() WHERE projection = $1",
                projection.name,
            )
            await conn.execute(f"TRUNCATE {', '.join(projection.tables)}")
        replayed, unreadable = await replay_into(
            conn, projections, js, last=last, batch_size=batch_size, progress=progress
        )
        return {
            p.name: RebuildResult(
                replayed[p.name],
                last,
                unreadable,
                live[p.name][0],
                live[p.name][1],
                await table_checksums(conn, p.tables),
            )
            for p in projections
        }


async def replay_into(
    conn: Connection,
    projections: Sequence[Projection],
    js: JetStreamContext,
    *,
    last: int,
    batch_size: int = REPLAY_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, int], tuple[int, ...]]:
    """Apply the stream from its start through `last` to empty read models, in the caller's transaction.
    Returns how many events each applied, and the sequences of events no code can read (stepped over).

    A batch is decoded while the one before it is being written: Postgres and Python work at once.
    """
    with cyclic_collector_paused():
        return await _replay_into(conn, projections, js, last=last, batch_size=batch_size, progress=progress)


# Moves every replayed read model's checkpoint to where the batch ended, in the rebuild's transaction.
REPLAYED_TO = """
UPDATE projection_checkpoints SET last_sequence = $2, updated_at = now() WHERE projection = ANY($1::text[])
"""
# Events applied between two chances for the connection to send what the batch before has waiting.
REPLAY_YIELD_EVERY = 64


async def _replay_into(
    conn: Connection,
    projections: Sequence[Projection],
    js: JetStreamContext,
    *,
    last: int,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[dict[str, int], tuple[int, ...]]:
    names = [p.name for p in projections]
    replayed = dict.fromkeys(names, 0)
    filled = 0  # where every read model's checkpoint stands once the batches filled so far are sent
    unreadable: list[int] = []

    def runs(msgs: Sequence[StoredMessage]) -> list[tuple[list[RecordedEvent], int]]:
        """The batch decoded, in runs of events each with the sequence its checkpoint moves to: an event no
        code can read (already dead-lettered by the live runner) ends a run and is stepped over."""
        found: list[tuple[list[RecordedEvent], int]] = []
        events: list[RecordedEvent] = []
        for msg in msgs:
            try:
                events.append(msg.recorded())
            except UndecodableEvent as exc:
                sequence = msg.sequence
                log.error("rebuild_unreadable_event", sequence=sequence, error=error_summary(exc))
                unreadable.append(sequence)
                found.append((events, sequence))
                events = []
        found.append((events, msgs[-1].sequence))
        return found

    async def fill(batch: list[tuple[list[RecordedEvent], int]], after: Awaitable[None] | None) -> WriteBatch:
        """Every read model's rows for the batch, built while the batch before is sent (a read waits for it)."""
        nonlocal filled
        writes = WriteBatch(conn, after=after)
        applied = 0
        for events, upto in batch:
            for projection in projections:
                writes.scope = projection.name
                for event in following(projection, events, filled):
                    await projection.apply(writes, event)
                    replayed[projection.name] += 1
                    applied += 1
                    if applied % REPLAY_YIELD_EVERY == 0:
                        await asyncio.sleep(0)
            filled = upto
        return writes

    async def send(writes: WriteBatch, upto: int) -> None:
        await writes.flush()
        await conn.execute(REPLAYED_TO, names, upto)
        if progress:
            progress(upto, last)

    sending: asyncio.Task[None] | None = None
    try:
        async for msgs in read_through(js, last, batch_size=batch_size):
            batch = runs(msgs)  # decoded and its rows built while the batch before is being sent
            writes = await fill(batch, sending)
            if sending:
                await sending
            sending = asyncio.create_task(send(writes, batch[-1][1]))
        if sending:
            await sending
    finally:
        if sending and not sending.done():
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
    return replayed, tuple(unreadable)


_pauses = 0
_enabled_before = False


@contextlib.contextmanager
def cyclic_collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while any replay runs, as it was once the last one ends.

    A replay keeps thousands of decoded events alive while the next batch is decoded. The collector promotes them
    to its oldest generation, which fills up again and again, so it walked the whole heap every few batches: 40 %
    of the rebuild's Python CPU. Reference counting still frees what a replay drops; a replay leaves almost nothing
    in cycles (300 objects in 50,000 events), and that waits for the collector's next run after.
    """
    global _pauses, _enabled_before
    if _pauses == 0:
        _enabled_before = gc.isenabled()
        gc.disable()
    _pauses += 1
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0 and _enabled_before:
            gc.enable()


FOREIGN_KEYS = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'
"""


@contextlib.asynccontextmanager
async def read_models_as_of(
    projections: Sequence[Projection],
    js: JetStreamContext,
    pool: asyncpg.Pool,
    *,
    through: int,
    batch_size: int = REPLAY_BATCH,
) -> AsyncIterator[Connection]:
    """The read models as they stood at sequence `through`: replayed into temporary tables that shadow the live
    ones on one connection (Postgres looks in the session's temporary schema first), so every report and export
    reads them unchanged, while the live models, their readers and their runners are untouched."""
    tables = [*(t for p in projections for t in p.tables), "projection_checkpoints"]
    async with pool.acquire() as conn:
        # Read before the shadows exist: a definition printed after would name the live table outright.
        keys = {t: await conn.fetch(FOREIGN_KEYS, f"public.{t}") for t in tables}
        try:
            for table in tables:
                await conn.execute(f"CREATE TEMPORARY TABLE {table} (LIKE public.{table} INCLUDING ALL)")
            for table, constraints in keys.items():
                for name, definition in constraints:
                    await conn.execute(f"ALTER TABLE pg_temp.{table} ADD CONSTRAINT {name} {definition}")
            async with conn.transaction():
                for projection in projections:
                    await ensure_checkpoint(conn, projection.name)
                await replay_into(conn, projections, js, last=through, batch_size=batch_size)
            yield conn
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {', '.join(f'pg_temp.{t}' for t in tables)} CASCADE")

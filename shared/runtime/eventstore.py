"""The event store: the trial's legal record in JetStream, with optimistic concurrency per stream of facts.

Subjects are `trial.events.<site>.<subject>.<EventType>`; the last token is always the event type,
so `trial.events.<site>.<subject>.*` is one subject's history and
`trial.events.*.*.<EventType>` one kind of fact across the whole trial.
"""

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from shared.contracts.alerts import ALERTS_PREFIX, ALERTS_STREAM
from shared.contracts.events import EventEnvelope, RecordedEvent, decode_envelope
from shared.contracts.photographs import BUCKET as PHOTOGRAPHS_BUCKET
from shared.runtime.metrics import EVENTS_APPENDED

EVENTS_STREAM = "TRIAL_EVENTS"
EVENTS_PREFIX = "trial.events"
DEAD_LETTER_STREAM = "TRIAL_DEAD_LETTERS"
DEAD_LETTER_PREFIX = "trial.deadletters"

# JetStream API error codes (server `errors.json`), mapped to types rather than parsed from text.
ERR_WRONG_LAST_SEQUENCE = 10071
# A message with this Nats-Msg-Id is being stored right now (a replicated stream, another writer): its outcome is
# not known yet.
ERR_DUPLICATE_IN_PROCESS = 10158
ERR_STREAM_NOT_FOUND = 10059

EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
# Server 2.11+: the expectation is checked over a subject filter instead of the published subject.
EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"
MSG_ID = "Nats-Msg-Id"

# Direct gets: events per request, and the headers and statuses of the answers.
_DIRECT_BATCH = 256
_REPLICAS_RECHECK_SECONDS = 60.0
STATUS, SEQUENCE, SUBJECT, NUM_PENDING = "Status", "Nats-Sequence", "Nats-Subject", "Nats-Num-Pending"
END_OF_BATCH, NOT_FOUND = "204", "404"


# The site token of trial-level facts (no site code can start with "_").
TRIAL_SCOPE = "_trial"


def event_subject(site: str | None, subject: str, event_type: str) -> str:
    return f"{EVENTS_PREFIX}.{site or TRIAL_SCOPE}.{subject}.{event_type}"


def trial_history(trial_id: str, event_type: str = "*") -> str:
    """Filter over trial-level facts (no site): the allocation list's commitment, enrollment closing."""
    return f"{EVENTS_PREFIX}.{TRIAL_SCOPE}.{trial_id}.{event_type}"


def subject_history(site: str, subject: str) -> str:
    """Filter over every fact about one trial subject."""
    return f"{EVENTS_PREFIX}.{site}.{subject}.*"


def trial_wide(event_type: str) -> str:
    """Filter over one kind of fact across every site and subject (serializes trial-wide decisions)."""
    return f"{EVENTS_PREFIX}.*.*.{event_type}"


class ConcurrencyConflict(Exception):
    """Someone appended to the same stream of facts after we read it; decide again on fresh history."""

    def __init__(self, subject_filter: str, expected: int) -> None:
        super().__init__(f"{subject_filter}: last sequence is no longer {expected}")
        self.subject_filter = subject_filter
        self.expected = expected


class AlreadyRecorded(ConcurrencyConflict):
    """An event with this id is in the record already (at `sequence`): a re-sent append.

    The caller reads the history again and finds it there, with the content that was recorded,
    rather than assuming the content it just tried to append.
    """

    def __init__(self, subject_filter: str, expected: int, event_id: str, sequence: int) -> None:
        super().__init__(subject_filter, expected)
        self.args = (f"event {event_id} is already recorded at sequence {sequence}",)
        self.event_id = event_id
        self.sequence = sequence


class SameEventInFlight(ConcurrencyConflict):
    """Another writer is recording this very event (same id) at this moment, e.g. two replicas carrying out one
    command on a replicated stream. Its outcome is not known yet: the caller waits a moment, then reads the
    history again, where the event will be once recorded."""

    def __init__(self, subject_filter: str, expected: int, event_id: str) -> None:
        super().__init__(subject_filter, expected)
        self.args = (f"event {event_id} is being recorded by another writer",)
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class History:
    """The ordered facts matching a filter, and the stream sequence an append must expect."""

    subject_filter: str
    events: tuple[RecordedEvent, ...]
    # Each cause's events (the command, or the trigger, that recorded them): a decision looks for its own earlier
    # events on every attempt, and a trial-wide history holds thousands. Built once, then carried on (`extended`).
    _by_cause: dict[str, tuple[RecordedEvent, ...]] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self._by_cause is None:
            object.__setattr__(self, "_by_cause", _indexed_by_cause(self.events, {}))

    @property
    def last_sequence(self) -> int:
        return self.events[-1].sequence if self.events else 0

    def caused_by(self, cause: str) -> tuple[RecordedEvent, ...]:
        """The events recorded because of `cause` (a command's id, or a trigger's), in stream order."""
        assert self._by_cause is not None
        return self._by_cause.get(cause, ())

    def extended(self, later: Sequence[RecordedEvent]) -> "History":
        """This history and the facts recorded after it (itself when there are none: nothing copied)."""
        assert self._by_cause is not None
        if not later:
            return self
        return History(self.subject_filter, self.events + tuple(later), _indexed_by_cause(later, dict(self._by_cause)))


def _indexed_by_cause(
    events: Sequence[RecordedEvent], known: dict[str, tuple[RecordedEvent, ...]]
) -> dict[str, tuple[RecordedEvent, ...]]:
    for event in events:
        if (cause := event.envelope.causationid) is not None:
            known[cause] = (*known.get(cause, ()), event)
    return known


@dataclass(frozen=True, slots=True)
class StreamSettings:
    replicas: int = 1
    # Long enough to cover any client retry of the same command: a re-sent event id is dropped.
    duplicate_window: timedelta = timedelta(days=1)


def _legal_record(name: str, prefix: str, description: str, settings: StreamSettings) -> api.StreamConfig:
    """File storage, nothing ever deleted or purged, no age limit: the stream is the legal record."""
    return api.StreamConfig(
        name=name,
        subjects=[f"{prefix}.>"],
        description=description,
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        max_age=0,
        deny_delete=True,
        deny_purge=True,
        num_replicas=settings.replicas,
        allow_direct=True,
        duplicate_window=settings.duplicate_window.total_seconds(),
    )


def stream_configs(settings: StreamSettings) -> list[api.StreamConfig]:
    """The three streams: the trial's facts, the SAE alerts, and the dead letters."""
    return [
        _legal_record(EVENTS_STREAM, EVENTS_PREFIX, "Every fact about the trial's subjects.", settings),
        _legal_record(ALERTS_STREAM, ALERTS_PREFIX, "Serious adverse event alerts and escalations.", settings),
        _legal_record(DEAD_LETTER_STREAM, DEAD_LETTER_PREFIX, "Messages no handler could process, with why.", settings),
    ]


async def provision_streams(js: JetStreamContext, settings: StreamSettings | None = None) -> None:
    """Create the streams, or bring an existing one to the configuration in code, and the photographs' object
    store, replicated as they are. Idempotent."""
    settings = settings or StreamSettings()
    try:
        await js.object_store(PHOTOGRAPHS_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        bucket = api.ObjectStoreConfig(
            bucket=PHOTOGRAPHS_BUCKET,
            description="scalp photographs (source documents), by the SHA-256 of the stored image",
            storage=api.StorageType.FILE,
            replicas=settings.replicas,
        )
        await js.create_object_store(PHOTOGRAPHS_BUCKET, config=bucket)
    for config in stream_configs(settings):
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except nats.js.errors.NotFoundError:
            try:
                await js.add_stream(config)
                continue
            except nats.js.errors.BadRequestError:
                pass  # another replica created it in between: fall through to update
        await js.update_stream(config)


class StreamsMissing(Exception):
    """The streams were not provisioned (`python -m ops.provision`, the migration job)."""


async def streams_ready(js: JetStreamContext, *, timeout: float = 30.0) -> None:
    """Wait for the streams a service writes to; services never create or change them themselves."""
    deadline = asyncio.get_running_loop().time() + timeout
    for name in (EVENTS_STREAM, ALERTS_STREAM):
        while True:
            try:
                await js.stream_info(name)
                break
            except nats.js.errors.NotFoundError as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise StreamsMissing(f"stream {name} does not exist; run python -m ops.provision") from exc
                await asyncio.sleep(0.5)


class EventStore:
    """Appends with optimistic concurrency; loads histories, reading only what is new since the last load.

    The record is append-only (no deletes, no purges), so the events matching a filter up to a given
    sequence never change: a history loaded once is kept (for the `cached_histories` most recently
    used filters) and the next load of that filter fetches and decodes only the events after it.
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        timeout: float = 5.0,
        cached_histories: int = 256,
        confirm_on_leader: bool | None = None,
    ) -> None:
        """`confirm_on_leader`: whether a history read asks the stream's leader for the last word; by default,
        when the stream has more than one replica."""
        self._js = js
        self._timeout = timeout
        self._histories: OrderedDict[str, History] = OrderedDict()
        self._cached_histories = cached_histories
        self._confirm_on_leader = confirm_on_leader
        self._direct = DirectGets(js)
        self._replicas = 1
        self._replicas_checked_at: float | None = None

    async def append(
        self, events: Sequence[EventEnvelope], *, subject_filter: str, expected_last_sequence: int
    ) -> list[RecordedEvent]:
        """Append events in order, each only if the last sequence over `subject_filter` is as expected.

        A re-sent event (same id, inside the duplicate window) is not stored twice: `AlreadyRecorded`
        (a `ConcurrencyConflict`) names its sequence. Raises `ConcurrencyConflict` when someone else
        appended first. The events before the one refused are recorded.
        """
        recorded: list[RecordedEvent] = []
        expected = expected_last_sequence
        for envelope in events:
            nats_subject = event_subject(envelope.siteid, envelope.subject, envelope.type)
            headers = {
                MSG_ID: str(envelope.id),
                EXPECTED_LAST_SUBJECT_SEQUENCE: str(expected),
                EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT: subject_filter,
            }
            try:
                ack = await self._js.publish(
                    nats_subject, envelope.to_json(), timeout=self._timeout, stream=EVENTS_STREAM, headers=headers
                )
            except nats.js.errors.APIError as exc:
                if exc.err_code == ERR_WRONG_LAST_SEQUENCE:
                    raise ConcurrencyConflict(subject_filter, expected) from exc
                if exc.err_code == ERR_DUPLICATE_IN_PROCESS:
                    raise SameEventInFlight(subject_filter, expected, str(envelope.id)) from exc
                raise
            if ack.duplicate:
                raise AlreadyRecorded(subject_filter, expected, str(envelope.id), ack.seq)
            recorded.append(RecordedEvent(sequence=ack.seq, nats_subject=nats_subject, envelope=envelope))
            EVENTS_APPENDED.labels(type=envelope.type).inc()
            expected = ack.seq
        kept = self._histories.get(subject_filter)
        if kept is not None and kept.last_sequence == expected_last_sequence:
            # The server checked that nothing else matched the filter in between: the kept history
            # and what we appended are the whole history now.
            self._keep(kept.extended(recorded))
        return recorded

    def kept(self, subject_filter: str) -> History | None:
        """The history of this filter as this process last saw it (loaded or appended), without reading."""
        return self._histories.get(subject_filter)

    def _keep(self, history: History) -> None:
        self._histories.pop(history.subject_filter, None)
        self._histories[history.subject_filter] = history
        if len(self._histories) > self._cached_histories:
            self._histories.popitem(last=False)

    async def load(self, subject_filter: str) -> History:
        """The whole ordered history matching a filter: what was loaded before, and what is new since."""
        known = self._histories.get(subject_filter) or History(subject_filter, ())
        history = known.extended(await self._read_after(subject_filter, known.last_sequence))
        self._keep(history)
        return history

    async def last(self, subject: str) -> RecordedEvent | None:
        """The last fact on one subject, by a direct read (no consumer, nothing left on the server)."""
        return await self._get(subject=subject, direct=True)

    async def _get(self, **request: Any) -> RecordedEvent | None:
        """One message of the event stream by `get_msg` (direct, or from the stream's leader); None if none."""
        try:
            raw = await self._js.get_msg(EVENTS_STREAM, **request)
        except nats.js.errors.NotFoundError:
            return None
        assert raw.data is not None and raw.subject is not None and raw.seq is not None
        return RecordedEvent(sequence=raw.seq, nats_subject=raw.subject, envelope=decode_envelope(raw.data))

    async def _read_after(self, subject_filter: str, sequence: int) -> tuple[RecordedEvent, ...]:
        """The events matching the filter after `sequence`, read without a consumer: nothing per read is left
        on the server, and readers need no right to create consumers over the record.

        On a stream of one replica, batched direct gets answer alone (one request). On a replicated stream any
        replica may answer a direct get, possibly one that is behind: there the stream's leader has the last
        word (`STREAM.MSG.GET`, the next event after what we have), what follows comes in bulk by direct gets,
        and the leader is asked again after each bulk read.
        """
        if not (self._confirm_on_leader if self._confirm_on_leader is not None else await self._replicated()):
            return tuple(await self._direct_after(subject_filter, sequence))
        events: list[RecordedEvent] = []
        after = sequence
        while (following := await self._get(seq=after + 1, subject=subject_filter, next=True)) is not None:
            events.append(following)
            events.extend(await self._direct_after(subject_filter, following.sequence))
            after = events[-1].sequence
        return tuple(events)

    async def _replicated(self) -> bool:
        """Whether the event stream has more than one replica, asked again every minute (a stream scaled up)."""
        now = asyncio.get_running_loop().time()
        if self._replicas_checked_at is None or now - self._replicas_checked_at > _REPLICAS_RECHECK_SECONDS:
            self._replicas = (await self._js.stream_info(EVENTS_STREAM)).config.num_replicas or 1
            self._replicas_checked_at = now
        return self._replicas > 1

    async def _direct_after(self, subject_filter: str, sequence: int) -> list[RecordedEvent]:
        """Batched direct gets (server 2.11+) from `sequence` + 1 until the answering server has no more."""
        return [
            stored.recorded()
            async for batch in self._direct.after(subject_filter, sequence, batch=_DIRECT_BATCH, timeout=self._timeout)
            for stored in batch
        ]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message of a stream as a direct get returns it: no consumer, no acknowledgement."""

    sequence: int
    subject: str
    data: bytes
    headers: dict[str, str]

    def recorded(self) -> RecordedEvent:
        """Decoded as an event of the record; raises `UndecodableEvent` with the reason."""
        return RecordedEvent(sequence=self.sequence, nats_subject=self.subject, envelope=decode_envelope(self.data))


@dataclass
class _DirectBatch:
    replies: list[StoredMessage]
    ended: asyncio.Future[dict[str, str]]


class DirectGets:
    """Batched direct gets (server 2.11+) of one stream over one connection, their answers routed from one
    subscription. This is how every service reads the record and the dead letters: no consumer is made, so no bus
    user needs the right to create consumers beyond its own durable ones (a right to create unnamed ones is a right
    to create or update any, since the server takes the name from the request's body).

    nats.py has no batched direct get. As its request/reply does, the answers of every request (the messages, then
    an end-of-batch status) come to one wildcard inbox, each request to a token of its own: one message sent per
    request, no subscription made or removed per request.
    """

    def __init__(self, js: JetStreamContext, stream: str = EVENTS_STREAM) -> None:
        # The context's own connection and API prefix (nats.py keeps them private).
        self._nc, self._api = js._nc, js._prefix
        self._stream = stream
        self._inbox = self._nc.new_inbox()
        self._subscription: Any = None
        self._asked = 0
        self._pending: dict[str, _DirectBatch] = {}

    async def close(self) -> None:
        """Unsubscribe its inbox: for one made for a single read (a long-lived one stays open)."""
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _route(self, msg: Msg) -> None:
        batch = self._pending.get(msg.subject.rpartition(".")[2])
        if batch is None:
            return  # the asker gave up (timed out)
        headers = msg.headers or {}
        if STATUS not in headers:
            batch.replies.append(StoredMessage(int(headers[SEQUENCE]), headers[SUBJECT], msg.data, headers))
        elif not batch.ended.done():
            batch.ended.set_result(headers)

    async def ask(self, request: dict[str, object], timeout: float) -> tuple[list[StoredMessage], str, str | None]:
        """One batched direct get: the messages, then the closing status and how many remain."""
        if self._subscription is None:
            self._subscription = await self._nc.subscribe(f"{self._inbox}.*", cb=self._route)
        self._asked += 1
        token = str(self._asked)
        batch = self._pending[token] = _DirectBatch([], asyncio.get_running_loop().create_future())
        try:
            await self._nc.publish(
                f"{self._api}.DIRECT.GET.{self._stream}", json.dumps(request).encode(), reply=f"{self._inbox}.{token}"
            )
            async with asyncio.timeout(timeout):
                end = await batch.ended
        finally:
            del self._pending[token]
        return batch.replies, end[STATUS], end.get(NUM_PENDING)

    async def after(
        self, subject_filter: str, sequence: int, *, batch: int, timeout: float
    ) -> AsyncIterator[list[StoredMessage]]:
        """The messages matching the filter after `sequence`, in batches, until the answering server has no more."""
        while True:
            request = {"seq": sequence + 1, "next_by_subj": subject_filter, "batch": batch}
            replies, status, pending = await self.ask(request, timeout)
            if replies:
                yield replies
            if status == NOT_FOUND or (status == END_OF_BATCH and pending == "0"):
                return
            if status != END_OF_BATCH or not replies:
                raise nats.js.errors.ServiceUnavailableError(description=f"direct get answered {status}")
            sequence = replies[-1].sequence


# A pull request's end, from the server: no messages (404), expired (408), or ended otherwise (409: leadership
# changed, too many unacknowledged, the consumer deleted or changed).
_REQUEST_ENDED = {"404", "408", "409"}
_HEARTBEAT = "100"


class PullFeed:
    """A durable pull consumer's messages as they arrive: what is there is handed over at once, up to a batch.

    Not nats.py's `fetch(n)`, which waits for the rest of a batch until the server ends the request. When a fetch
    gives up an instant before the server expires its request, the next fetch takes that expiry as its own answer
    and asks again, leaving a second request open; a message that later meets the older one is held until that
    request expires (measured: 2 messages in 60, arriving 25 ms apart, each held 0.5–0.6 s; an SAE alert once
    held 0.76 s). Here one pull request at a time is counted open; it ends when the server says so (a status to
    that request's own reply subject), when it has delivered its whole batch, or, should its status be lost (a
    reconnect), once it has expired. Messages are taken whichever request they came for.
    """

    def __init__(self, js: JetStreamContext, stream: str, durable: str, *, batch: int, expires: float = 1.0) -> None:
        # The context's own connection and API prefix (nats.py keeps them private).
        self._nc = js._nc
        self._next = f"{js._prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = self._nc.new_inbox()
        self._batch = batch
        self._expires = expires
        self._sub: Any = None
        self._asked = 0
        self._open_reply = ""  # the reply subject of the request counted open
        self._open = 0  # messages it may still deliver; 0: none open
        self._open_until = 0.0

    async def __aenter__(self) -> "PullFeed":
        self._sub = await self._nc.subscribe(f"{self._inbox}.*")
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(nats.errors.Error):
            await self._sub.unsubscribe()

    async def next(self, wait: float = 1.0) -> list[Msg]:
        """What has arrived, up to the batch size, as soon as anything has; none when nothing arrives within
        `wait` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            if self._open == 0 or loop.time() > self._open_until:
                await self._request(loop.time())
            try:
                msg = await self._sub.next_msg(timeout=max(deadline - loop.time(), 0.001))
            except TimeoutError:  # nats.py's own is one too
                return []
            status = (msg.headers or {}).get(STATUS)
            if status is None:
                return await self._with_what_else_is_here(msg)
            if status == _HEARTBEAT:
                continue
            if status not in _REQUEST_ENDED:
                raise nats.js.errors.APIError.from_msg(msg)  # e.g. 503: no such consumer
            if msg.subject != self._open_reply:
                continue  # the end of a request already given up
            self._open = 0
            if status == "409":  # not a plain expiry: ask again, but not in a tight loop
                await asyncio.sleep(min(0.05, max(deadline - loop.time(), 0.0)))

    async def _request(self, now: float) -> None:
        self._asked += 1
        self._open_reply = f"{self._inbox}.{self._asked}"
        request = {"batch": self._batch, "expires": int(self._expires * 1e9)}
        await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._open_reply)
        self._open = self._batch
        # Past this its end is taken as lost (a reconnect): a request still open after all only delivers
        # messages, which are taken, and its end is ignored.
        self._open_until = now + self._expires + 0.1

    async def _with_what_else_is_here(self, first: Msg) -> list[Msg]:
        msgs = [first]
        while len(msgs) < self._batch and self._sub.pending_msgs > 0:
            msg = await self._sub.next_msg(timeout=1.0)
            status = (msg.headers or {}).get(STATUS)
            if status is None:
                msgs.append(msg)
            elif status in _REQUEST_ENDED and msg.subject == self._open_reply:
                self._open = 0
        # Delivered for an earlier request too, perhaps: a request never counts below nothing left open.
        self._open = max(self._open - len(msgs), 0)
        return msgs


async def read_through(
    js: JetStreamContext, last: int, *, batch_size: int, timeout: float = 10.0
) -> AsyncIterator[list[StoredMessage]]:
    """The event stream from its start through sequence `last`, in batches of up to `batch_size` messages, by
    batched direct gets (no consumer). A replica that answers before it has caught up with `last` is asked again;
    `TimeoutError` when the stream has not reached `last` within `timeout` seconds."""
    if last < 1:
        return
    direct = DirectGets(js)
    read = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while read < last:
            async for batch in direct.after(f"{EVENTS_PREFIX}.>", read, batch=batch_size, timeout=timeout):
                wanted = [m for m in batch if m.sequence <= last]
                if wanted:
                    yield wanted
                    read = wanted[-1].sequence
                    deadline = loop.time() + timeout
                if read >= last or len(wanted) < len(batch):
                    return
            if loop.time() > deadline:
                raise TimeoutError(f"the event stream answered up to {read}, not {last}")
            await asyncio.sleep(0.05)
    finally:
        await direct.close()


def to_recorded(msg: Msg) -> RecordedEvent:
    """Decode a JetStream message of the event stream; raises `UndecodableEvent` with the reason."""
    return RecordedEvent(
        sequence=msg.metadata.sequence.stream, nats_subject=msg.subject, envelope=decode_envelope(msg.data)
    )


class DecodedEvents:
    """Events of the record decoded once for every consumer in a process that reads the same server's
    stream (e.g. the reporting service's read models), by stream sequence, the most recent kept."""

    def __init__(self, size: int = 1024) -> None:
        self._events: OrderedDict[int, RecordedEvent] = OrderedDict()
        self._size = size

    def of(self, msg: Msg) -> RecordedEvent:
        sequence = msg.metadata.sequence.stream
        event = self._events.get(sequence)
        if event is None:
            event = self._events[sequence] = to_recorded(msg)
            if len(self._events) > self._size:
                self._events.popitem(last=False)
        return event

"""Reactions: services acting on facts others recorded (e.g. safety raising an alert on a serious AE).

A durable JetStream consumer per reaction, shared by the service's replicas, explicit ack after the
reaction succeeds. A crash before the ack means redelivery (after `ack_wait`: short, since an SAE
alert waits on it), so reactions must be idempotent (they derive their event ids from the triggering
event). A message that keeps failing is dead-lettered.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol, runtime_checkable

import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from shared.contracts.events import RecordedEvent, UndecodableEvent
from shared.runtime.consumers import CHECK_SECONDS, drifted
from shared.runtime.deadletters import dead_letter
from shared.runtime.eventstore import EVENTS_STREAM, PullFeed, to_recorded, trial_wide
from shared.runtime.logging import error_summary
from shared.runtime.metrics import CONSUMER_LAG
from shared.runtime.projections import TRANSIENT

log = structlog.get_logger(__name__)


class Reaction(Protocol):
    name: str
    event_types: tuple[str, ...]

    async def react(self, event: RecordedEvent) -> None: ...


@runtime_checkable
class OncePerSubject(Protocol):
    """A reaction whose work is on one subject's whole record, whatever the fact that triggers it (the edit checks):
    of several triggers about one subject in a batch, only the last is reacted to, on a history that shows the
    ones before it, which are acknowledged as done by it."""

    once_per_subject: Literal[True]


def covered(nats_subjects: Sequence[str]) -> set[int]:
    """The positions of the triggers a later one in the batch covers: the same subject's record (the NATS subject
    less its last token, the event type)."""
    last = {s.rpartition(".")[0]: i for i, s in enumerate(nats_subjects)}
    return {i for i, s in enumerate(nats_subjects) if last[s.rpartition(".")[0]] != i}


def reacting(reaction: Reaction) -> Callable[[RecordedEvent], Awaitable[None]]:
    """React to one event again: a dead letter's replay (reactions are idempotent by construction)."""
    return reaction.react


class ReactionRunner:
    def __init__(
        self,
        reaction: Reaction,
        js: JetStreamContext,
        *,
        max_attempts: int = 5,
        max_deliveries: int = 10,
        retry_delay: float = 0.5,
        ack_wait: float = 10.0,
        batch_size: int = 16,
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self.reaction = reaction
        self._js = js
        self._max_attempts = max_attempts
        self._max_deliveries = max_deliveries
        self._retry_delay = retry_delay
        self._ack_wait = ack_wait
        self._batch_size = batch_size
        self._check_seconds = check_seconds
        self._stopping = asyncio.Event()
        self.durable = f"reaction-{reaction.name}"
        self._lag = CONSUMER_LAG.labels(consumer=self.durable)
        self.dead_letters = 0
        self._once_per_subject = isinstance(reaction, OncePerSubject)
        self.covered = 0  # triggers acknowledged as done by a later one about the same subject (`OncePerSubject`)
        self._log = log.bind(reaction=reaction.name)

    def stop(self) -> None:
        self._stopping.set()

    def consumer_config(self) -> api.ConsumerConfig:
        return api.ConsumerConfig(
            durable_name=self.durable,
            filter_subjects=[trial_wide(t) for t in self.reaction.event_types],
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            max_ack_pending=self._batch_size * 8,
        )

    async def ensure_consumer(self) -> None:
        """The consumer as this reaction makes it. One found delivering otherwise (changed behind its back: its
        acknowledgements may have passed facts never reacted to) is made again from the record's start: reactions
        are idempotent, so every trigger is reacted to once more and what was missed is done now."""
        config = self.consumer_config()
        # Looked at before anything is written: an update would put the filter back, but not what it let pass.
        if await drifted(self._js, EVENTS_STREAM, config, gone=False):
            await self._js.delete_consumer(EVENTS_STREAM, self.durable)
            self._log.warning("reaction_consumer_made_again", from_sequence=1)
        try:
            # Creating a consumer that exists with the same configuration is a no-op.
            await self._js.add_consumer(EVENTS_STREAM, config=config)
        except nats.js.errors.BadRequestError as exc:
            # Another acknowledgement wait or batch, from an earlier version: keep it (and its acknowledgements).
            self._log.warning("reaction_consumer_differs", error=exc.description)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.ensure_consumer()
                async with PullFeed(self._js, EVENTS_STREAM, self.durable, batch=self._batch_size) as feed:
                    await self._consume(feed)
            except TRANSIENT as exc:
                self._log.warning("reaction_interrupted", error=type(exc).__name__)
                await self._pause(self._retry_delay * 4)

    async def _consume(self, feed: PullFeed) -> None:
        """Until stopped, or until the consumer is found changed (then `run` makes it again)."""
        loop = asyncio.get_running_loop()
        check_at = loop.time() + self._check_seconds
        while not self._stopping.is_set():
            msgs = await feed.next()
            renew_at = loop.time() + self._ack_wait / 2
            done_later = covered([m.subject for m in msgs]) if self._once_per_subject else set()
            for done, msg in enumerate(msgs):
                if loop.time() >= renew_at:
                    # Half the acknowledgement wait gone: what is left of the batch is still ours, not to redeliver.
                    for waiting in msgs[done:]:
                        await waiting.in_progress()
                    renew_at = loop.time() + self._ack_wait / 2
                if done in done_later:
                    # The later trigger is acknowledged only once reacted to: until then, it is there to do it.
                    await msg.ack()
                    self.covered += 1
                    continue
                await self._handle(msg)
            self._lag.set(msgs[-1].metadata.num_pending if msgs else 0)
            if loop.time() >= check_at:
                if await drifted(self._js, EVENTS_STREAM, self.consumer_config()):
                    return
                check_at = loop.time() + self._check_seconds

    async def _handle(self, msg: Msg) -> None:
        sequence = msg.metadata.sequence.stream
        try:
            event = to_recorded(msg)
        except UndecodableEvent as exc:
            await self._dead_letter(msg, error_summary(exc))
            return
        if msg.metadata.num_delivered > self._max_deliveries:
            await self._dead_letter(msg, f"delivered {msg.metadata.num_delivered} times without success")
            return
        error: Exception | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                if attempt > 1:
                    await msg.in_progress()  # still ours after the pause: no redelivery while we try again
                await self.reaction.react(event)
                await msg.ack()
                return
            except TRANSIENT:
                raise
            except Exception as exc:
                error = exc
                self._log.warning("reaction_failed", sequence=sequence, attempt=attempt, error=error_summary(exc))
                await self._pause(self._retry_delay * attempt)
        await self._dead_letter(msg, error_summary(error) if error else "failed")

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        await dead_letter(self._js, msg, kind="reaction", name=self.reaction.name, reason=reason)
        await msg.ack()
        self.dead_letters += 1
        self._log.error("reaction_dead_letter", sequence=msg.metadata.sequence.stream, reason=reason)

    async def _pause(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

"""A reaction's runner: each trigger reacted to once, even when a batch takes longer than the acknowledgement wait."""

import asyncio
import contextlib
from collections import Counter
from datetime import UTC, date, datetime
from typing import Literal
from uuid import uuid4

import pytest
from nats.aio.client import Client

from shared.contracts.events import ConsentRecorded, EventEnvelope, EventMetadata, RecordedEvent
from shared.contracts.protocol import load_protocol
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.reactions import ReactionRunner, covered
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

pytestmark = pytest.mark.integration
PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)


class Slow:
    """Takes `seconds` over each consent of the given subjects, counting how often it saw each."""

    event_types: tuple[str, ...] = (ConsentRecorded.event_type,)

    def __init__(self, subjects: set[str], seconds: float) -> None:
        self.name = f"slow-{uuid4().hex[:8]}"
        self.subjects, self.seconds = subjects, seconds
        self.seen: Counter[str] = Counter()

    async def react(self, event: RecordedEvent) -> None:
        if event.envelope.subject in self.subjects:
            self.seen[event.envelope.subject] += 1
            await asyncio.sleep(self.seconds)


async def consented(store: EventStore, subject: str) -> None:
    meta = EventMetadata("/trial/test", "NFH", subject, "inv-01", "setup", PROTOCOL.version)
    consent = ConsentRecorded(
        consent_form_version="1.0",
        signed_on=date(2026, 12, 1),
        obtained_by="inv-01",
        signed_by_subject=True,
        signed_by_representative=False,
    )
    envelope = EventEnvelope.wrap(consent, meta, event_id=uuid4(), time=datetime.now(UTC))
    history = await store.load(subject_history("NFH", subject))
    await store.append([envelope], subject_filter=history.subject_filter, expected_last_sequence=history.last_sequence)


async def test_a_batch_outlasting_the_acknowledgement_wait_is_still_reacted_to_once_per_trigger(
    own_nc: Client,
) -> None:
    js = own_nc.jetstream()
    store = EventStore(js)
    subjects = [f"NFH-{n:03d}" for n in range(901, 906)]
    for subject in subjects:
        await consented(store, subject)
    # Five in one batch, 0.7 s each, against a 2 s wait: the last two begin after it, and end 2.8 and 3.5 s in.
    reaction = Slow(set(subjects), seconds=0.7)
    runner = ReactionRunner(reaction, js, ack_wait=2.0, batch_size=16)
    running = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(10):
            while sum(reaction.seen.values()) < len(subjects):
                await asyncio.sleep(0.05)
        await asyncio.sleep(2.5)  # long enough for a redelivery of anything left unacknowledged
    finally:
        runner.stop()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert reaction.seen == Counter(subjects), "each consent once: none redelivered while being reacted to"
    assert runner.dead_letters == 0


class SlowOncePerSubject(Slow):
    once_per_subject: Literal[True] = True

    def __init__(self, subjects: set[str], seconds: float) -> None:
        super().__init__(subjects, seconds)
        self.sequences: dict[str, list[int]] = {}

    async def react(self, event: RecordedEvent) -> None:
        if event.envelope.subject in self.subjects:
            self.sequences.setdefault(event.envelope.subject, []).append(event.sequence)
        await super().react(event)


async def test_several_triggers_about_one_subject_in_a_batch_are_reacted_to_once_for_the_last(
    own_nc: Client,
) -> None:
    js = own_nc.jetstream()
    store = EventStore(js)
    first, second = "NFH-911", "NFH-912"
    for subject in (first, first, first, second, first, second):
        await consented(store, subject)
    last = {s: (await store.load(subject_history("NFH", s))).last_sequence for s in (first, second)}
    # Slow on what comes first, so the rest of the six is waiting in one batch when it is done.
    reaction = SlowOncePerSubject({first, second}, seconds=0.3)
    runner = ReactionRunner(reaction, js, batch_size=16)
    running = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(10):
            while not all(s in reaction.sequences and reaction.sequences[s][-1] == last[s] for s in last):
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    finally:
        runner.stop()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    reacted = sum(len(v) for v in reaction.sequences.values())
    assert reacted <= 3 and runner.covered >= 3, f"the later triggers came in one batch: {reaction.sequences}"
    info = await js.consumer_info("TRIAL_EVENTS", runner.durable)
    assert info.num_pending == 0 and info.num_ack_pending == 0


def test_a_trigger_is_covered_by_a_later_one_about_the_same_subject_only() -> None:
    subjects = [
        "trial.events.NFH.NFH-001.ConsentRecorded",
        "trial.events.NFH.NFH-002.ConsentRecorded",
        "trial.events.NFH.NFH-001.SubjectScreened",
        "trial.events.GZ2.NFH-001.SubjectScreened",  # another site's record, however named
        "trial.events.NFH.NFH-001.FormRecorded",
    ]
    assert covered(subjects) == {0, 2}

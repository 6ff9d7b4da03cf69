"""A reaction's runner: each trigger reacted to once, even when a batch takes longer than the acknowledgement wait."""

import asyncio
import contextlib
from collections import Counter
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest
from nats.aio.client import Client

from shared.contracts.events import ConsentRecorded, EventEnvelope, EventMetadata, RecordedEvent
from shared.contracts.protocol import load_protocol
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.reactions import ReactionRunner
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

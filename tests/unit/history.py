"""Facts as a service reads them back: the given part of a domain test, in its stream envelope."""

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from uuid import uuid4

from shared.contracts.events import DomainEvent, EventEnvelope, EventMetadata, RecordedEvent

META = EventMetadata("/trial/test", "NFH", "NFH-001", "tester", "corr", "1.0")


def recorded(event: DomainEvent, on: date = date(2026, 1, 10)) -> RecordedEvent:
    time = datetime(on.year, on.month, on.day, 9, tzinfo=UTC)
    meta = replace(META, reason="as the test records it") if event.needs_reason else META
    return RecordedEvent(0, "", EventEnvelope.wrap(event, meta, event_id=uuid4(), time=time))


def given(events: Iterable[DomainEvent]) -> list[RecordedEvent]:
    return [recorded(event) for event in events]

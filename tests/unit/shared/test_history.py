"""A history finds the events each cause recorded at once, however it was built: whole, or extended bit by bit."""

from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import hypothesis
from hypothesis import strategies as st

from shared.contracts.events import EventEnvelope, RecordedEvent
from shared.runtime.eventstore import History
from tests.unit.datamanagement.casebooks import CONSENT
from tests.unit.history import META

CAUSES = ("command-a", "command-b", "trigger-c", None)


def events(causes: list[str | None]) -> list[RecordedEvent]:
    time = datetime(2026, 1, 2, 9, tzinfo=UTC)
    return [
        RecordedEvent(
            sequence, "", EventEnvelope.wrap(CONSENT, replace(META, causation_id=cause), event_id=uuid4(), time=time)
        )
        for sequence, cause in enumerate(causes, start=1)
    ]


@hypothesis.given(st.lists(st.sampled_from(CAUSES), max_size=30))
def test_a_history_finds_each_causes_events_in_stream_order(causes: list[str | None]) -> None:
    recorded = events(causes)
    history = History("trial.events.NFH.NFH-001.>", tuple(recorded))
    for cause in CAUSES[:-1]:
        assert history.caused_by(cause) == tuple(e for e in recorded if e.envelope.causationid == cause)


@hypothesis.given(st.lists(st.sampled_from(CAUSES), max_size=30), st.lists(st.integers(0, 30), max_size=4))
def test_a_history_extended_bit_by_bit_is_the_history_built_whole(causes: list[str | None], cuts: list[int]) -> None:
    recorded = events(causes)
    whole = History("trial.events.NFH.NFH-001.>", tuple(recorded))
    grown = History(whole.subject_filter, ())
    start = 0
    for cut in [*sorted(c for c in cuts if c <= len(recorded)), len(recorded)]:
        grown = grown.extended(recorded[start:cut])
        start = max(start, cut)
    assert grown == whole
    for cause in CAUSES[:-1]:
        assert grown.caused_by(cause) == whole.caused_by(cause)


def test_extending_a_history_leaves_the_one_it_extends_as_it_was() -> None:
    first, second = events(["command-a", "command-a"])
    before = History("trial.events.NFH.NFH-001.>", (first,))
    after = before.extended([second])
    assert before.caused_by("command-a") == (first,)
    assert after.caused_by("command-a") == (first, second)

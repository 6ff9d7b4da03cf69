"""The crash test's own checks find a lost, a doubled and an unanswered-yet-recorded fact."""

import dataclasses
from datetime import UTC, datetime
from uuid import UUID, uuid4

from chaos.load import ISSUER, Answer
from chaos.verify import Findings, check_answers
from services.gateway.idempotency import command_id, key_scope
from shared.contracts.events import EventEnvelope, EventMetadata, RecordedEvent
from tests.unit.shared.test_envelope import CONSENT


def answer(status: int, event_ids: list[UUID], key: str = "consent-1") -> Answer:
    body = {"event_ids": [str(e) for e in event_ids]} if status == 201 else {"rule": "consent.once"}
    return Answer("consent", "NFH", "NFH-001", "/v1/x", {}, key, "inv-nfh", status, body, 1, 0.0, 0.1)


def recorded(sequence: int, key: str = "consent-1", event_id: UUID | None = None) -> RecordedEvent:
    meta = EventMetadata(
        source="/trial/screening",
        site="NFH",
        subject="NFH-001",
        actor="inv-nfh",
        correlation_id="c",
        protocol_version="1.0",
        causation_id=str(command_id(key_scope(ISSUER, "inv-nfh", "NFH"), key)),
    )
    envelope = EventEnvelope.wrap(CONSENT, meta, event_id=event_id or uuid4(), time=datetime(2026, 11, 25, tzinfo=UTC))
    return RecordedEvent(sequence, "trial.events.NFH.NFH-001.ConsentRecorded", envelope)


def problems(answers: list[Answer], events: list[RecordedEvent]) -> list[str]:
    findings = Findings()
    check_answers(answers, tuple(events), findings)
    return findings.problems


def test_an_answered_fact_in_the_record_once_passes() -> None:
    event = recorded(1)
    assert problems([answer(201, [event.envelope.id])], [event]) == []


def test_a_201_whose_fact_is_missing_is_found() -> None:
    assert any("×0" in p for p in problems([answer(201, [uuid4()])], []))


def test_a_fact_recorded_twice_for_one_key_is_found() -> None:
    first, second = recorded(1), recorded(2)
    found = problems([answer(201, [first.envelope.id])], [first, second])
    assert any("key produced" in p for p in found)


def test_a_refused_request_that_left_a_fact_is_found() -> None:
    assert any("refused (409) yet recorded" in p for p in problems([answer(409, [])], [recorded(1)]))


def test_a_server_error_as_final_answer_is_found() -> None:
    failed = dataclasses.replace(answer(409, []), status=500)
    assert any("final answer 500" in p for p in problems([failed], []))


def test_one_event_id_twice_in_the_record_is_found() -> None:
    event = recorded(1)
    again = dataclasses.replace(event, sequence=2)
    assert any("×2" in p for p in problems([answer(201, [event.envelope.id])], [event, again]))

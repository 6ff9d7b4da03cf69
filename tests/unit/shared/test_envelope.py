import dataclasses
import json
from datetime import UTC, date, datetime
from typing import ClassVar
from uuid import uuid4

import pytest
from pydantic import ValidationError

from shared.contracts.events import (
    ConsentRecorded,
    DomainEvent,
    EventEnvelope,
    EventMetadata,
    UndecodableEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
    decode_envelope,
    register,
)

META = EventMetadata(
    source="/trial/screening",
    site="NFH",
    subject="NFH-001",
    actor="inv-01",
    correlation_id="corr-1",
    protocol_version="1.0",
    causation_id="cmd-1",
)
CONSENT = ConsentRecorded(
    consent_form_version="1.0",
    signed_on=date(2026, 11, 20),
    obtained_by="inv-01",
    signed_by_subject=True,
    signed_by_representative=False,
)


def wrap(event: DomainEvent = CONSENT, meta: EventMetadata = META) -> EventEnvelope:
    return EventEnvelope.wrap(event, meta, event_id=uuid4(), time=datetime(2026, 11, 25, 9, 0, tzinfo=UTC))


def test_envelope_is_cloudevents_structured_json_with_the_trial_extensions() -> None:
    document = json.loads(wrap().to_json())
    assert document["specversion"] == "1.0"
    assert document["type"] == "ConsentRecorded"
    assert document["datacontenttype"] == "application/json"
    assert document["subject"] == "NFH-001"
    for extension in ("siteid", "actor", "protocolversion", "schemaversion", "correlationid", "causationid"):
        assert extension in document
    assert document["data"]["signed_on"] == "2026-11-20"


def test_decoding_returns_the_typed_event_that_was_encoded() -> None:
    envelope = wrap()
    decoded = decode_envelope(envelope.to_json())
    assert decoded == envelope
    assert isinstance(decoded.data, ConsentRecorded)


def test_unknown_event_type_is_a_clear_error() -> None:
    document = json.loads(wrap().to_json()) | {"type": "SubjectTeleported"}
    with pytest.raises(UnknownEventType, match="SubjectTeleported"):
        decode_envelope(json.dumps(document).encode())


def test_unreadable_schema_version_is_a_clear_error() -> None:
    document = json.loads(wrap().to_json()) | {"schemaversion": 9}
    with pytest.raises(UnsupportedSchemaVersion, match="schemaversion 9"):
        decode_envelope(json.dumps(document).encode())


def test_payload_that_breaks_its_schema_is_undecodable() -> None:
    document = json.loads(wrap().to_json())
    document["data"]["signed_on"] = "not a date"
    with pytest.raises(UndecodableEvent, match="signed_on"):
        decode_envelope(json.dumps(document).encode())


def test_non_json_is_undecodable() -> None:
    with pytest.raises(UndecodableEvent):
        decode_envelope(b"\xff not json")


def test_type_must_match_the_data_model() -> None:
    document = json.loads(wrap().to_json())
    with pytest.raises(ValidationError, match="do not match"):
        EventEnvelope.model_validate({**document, "type": "Other", "data": CONSENT})


@register
class _ConsentCorrectedForTest(DomainEvent):
    event_type: ClassVar[str] = "ConsentCorrectedForTest"
    is_correction: ClassVar[bool] = True
    note: str


def test_a_correction_without_a_reason_is_refused() -> None:
    with pytest.raises(ValidationError, match="reason"):
        wrap(_ConsentCorrectedForTest(note="x"))
    corrected = wrap(_ConsentCorrectedForTest(note="x"), dataclasses.replace(META, reason="typo in date"))
    assert corrected.reason == "typo in date"


def test_an_event_type_and_version_is_registered_once() -> None:
    with pytest.raises(TypeError, match="already registered"):

        @register
        class _Again(DomainEvent):
            event_type: ClassVar[str] = "ConsentRecorded"


def test_a_fact_a_service_records_itself_names_the_service_as_source_and_actor() -> None:
    meta = EventMetadata.recorded_by(
        "safety", site="NFH", subject="NFH-001", correlation_id="c-1", protocol_version="1.0"
    )
    assert (meta.source, meta.actor, meta.site, meta.subject) == ("/trial/safety", "service:safety", "NFH", "NFH-001")
    assert meta.causation_id is None and meta.actor_role is None

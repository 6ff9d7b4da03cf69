"""The time-based edit check on a record of its own: an SAE without follow-up for over 7 days gets one query, once
per hour at most whoever runs the sweep, and the follow-up's arrival closes it on the next run."""

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from nats.aio.client import Client

from services.datamanagement.editchecks import sweep_serious_adverse_events
from shared.contracts.coding import TermDictionary
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    ConsentRecorded,
    DomainEvent,
    EventEnvelope,
    EventMetadata,
    QueryClosed,
    QueryOpened,
)
from shared.contracts.protocol import ProtocolDefinition, load_protocol
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

pytestmark = pytest.mark.integration
PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
DRUGS = TermDictionary()  # the serious adverse events' checks code no medication
NOW = datetime.now(UTC)
REPORTED = NOW - timedelta(days=8)
AE_ID = uuid4()


async def append(store: EventStore, fact: DomainEvent, at: datetime) -> None:
    meta = EventMetadata("/trial/test", "NFH", "NFH-001", "inv-01", "sweep", PROTOCOL.version)
    history = await store.load(subject_history("NFH", "NFH-001"))
    envelope = EventEnvelope.wrap(fact, meta, event_id=uuid4(), time=at)
    await store.append([envelope], subject_filter=history.subject_filter, expected_last_sequence=history.last_sequence)


async def test_an_overdue_sae_follow_up_is_queried_once_and_the_query_closes_when_it_arrives(own_nc: Client) -> None:
    store = EventStore(own_nc.jetstream())
    consent = ConsentRecorded(
        consent_form_version="1.0",
        signed_on=date(2026, 1, 5),
        obtained_by="inv-01",
        signed_by_subject=True,
        signed_by_representative=False,
    )
    await append(store, consent, REPORTED - timedelta(days=30))
    sae = AdverseEventReported(
        ae_id=AE_ID,
        term="Scalp necrosis",
        onset_date=REPORTED.date() - timedelta(days=1),
        site_aware_at=REPORTED - timedelta(hours=2),
        grade=3,
        seriousness=("hospitalization_or_prolongation",),
        serious=True,
        relationship={"fat_graft": "possible", "hair_transplantation": "possible"},
        action_taken="hospitalized",
        outcome="recovering",
    )
    await append(store, sae, REPORTED)

    assert await sweep_serious_adverse_events(store, first_version, now=NOW, drugs=DRUGS) == 1
    assert await sweep_serious_adverse_events(store, first_version, now=NOW, drugs=DRUGS) == 0, (
        "the same hour, the same decision"
    )
    assert await sweep_serious_adverse_events(store, first_version, now=NOW + timedelta(hours=1), drugs=DRUGS) == 0, (
        "still open"
    )
    history = (await store.load(subject_history("NFH", "NFH-001"))).events
    [opened] = [e.data for e in history if isinstance(e.data, QueryOpened)]
    assert (opened.check, opened.form, opened.parameters) == ("SAE_FOLLOW_UP_OVERDUE", f"ae-{AE_ID}", {"days": "7"})

    await append(store, AdverseEventUpdated(ae_id=AE_ID, site_aware_at=NOW, outcome="recovered", serious=True), NOW)
    assert await sweep_serious_adverse_events(store, first_version, now=NOW + timedelta(hours=2), drugs=DRUGS) == 1
    history = (await store.load(subject_history("NFH", "NFH-001"))).events
    [closed] = [e.data for e in history if isinstance(e.data, QueryClosed)]
    assert closed.query_id == opened.query_id


async def first_version(site: str) -> ProtocolDefinition:
    """The version in force at every site: the definition file's (no amendment here)."""
    return PROTOCOL

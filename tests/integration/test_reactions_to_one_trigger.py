"""Two reactions to one fact: a serious adverse event treated with a medication both raises its SAE alert (safety)
and asks for the medication that treated it (an edit check, data management). Both take the trigger's id as
their cause; whichever records first, the other still records its own fact, once, under an id of its own."""

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from nats.aio.client import Client

from services.datamanagement.editchecks import run_edit_checks
from services.safety.alerting import SeriousAdverseEventAlerts
from shared.contracts.coding import TermDictionary
from shared.contracts.events import (
    AdverseEventReported,
    ConsentRecorded,
    EventEnvelope,
    EventMetadata,
    QueryOpened,
    RecordedEvent,
    SeriousAdverseEventAlertRaised,
)
from shared.contracts.protocol import load_protocol
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

pytestmark = pytest.mark.integration
PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
NOW = datetime.now(UTC)
SITE = "NFH"


async def treated_sae(store: EventStore, subject: str) -> RecordedEvent:
    meta = EventMetadata("/trial/test", SITE, subject, "inv-01", "one-trigger", PROTOCOL.version)
    consent = ConsentRecorded(
        consent_form_version="1.0",
        signed_on=date(2026, 1, 5),
        obtained_by="inv-01",
        signed_by_subject=True,
        signed_by_representative=False,
    )
    sae = AdverseEventReported(
        ae_id=uuid4(),
        term="Wound infection",
        onset_date=NOW.date() - timedelta(days=1),
        site_aware_at=NOW - timedelta(hours=1),
        grade=3,
        seriousness=("hospitalization_or_prolongation",),
        serious=True,
        relationship={"fat_graft": "possible", "hair_transplantation": "possible"},
        action_taken="treatment_given",
        outcome="recovering",
    )
    envelopes = [EventEnvelope.wrap(fact, meta, event_id=uuid4(), time=NOW) for fact in (consent, sae)]
    recorded = await store.append(envelopes, subject_filter=subject_history(SITE, subject), expected_last_sequence=0)
    return recorded[-1]


async def check(store: EventStore, trigger: RecordedEvent) -> None:
    await run_edit_checks(
        store,
        PROTOCOL,
        site=SITE,
        subject=trigger.envelope.subject,
        because_of=trigger.envelope.id,
        now=NOW,
        correlation_id="one-trigger",
        drugs=TermDictionary(),
        trigger_sequence=trigger.sequence,
    )


@pytest.mark.parametrize(("subject", "edit_check_first"), [("NFH-101", True), ("NFH-102", False)])
async def test_the_alert_and_the_edit_check_each_record_their_own_fact_whichever_comes_first(
    own_nc: Client, subject: str, edit_check_first: bool
) -> None:
    store = EventStore(own_nc.jetstream())
    trigger = await treated_sae(store, subject)
    alerts = SeriousAdverseEventAlerts(store, own_nc.jetstream(), PROTOCOL)

    async def both() -> None:
        first, second = (check(store, trigger), alerts.react(trigger))[:: 1 if edit_check_first else -1]
        await first
        await second

    await both()
    await both()  # the trigger redelivered to each: nothing more
    history = (await store.load(subject_history(SITE, subject))).events
    recorded = [e for e in history if isinstance(e.data, QueryOpened | SeriousAdverseEventAlertRaised)]
    assert sorted(type(e.data).__name__ for e in recorded) == ["QueryOpened", "SeriousAdverseEventAlertRaised"]
    assert all(e.envelope.causationid == str(trigger.envelope.id) for e in recorded), "both caused by the report"
    assert len({e.envelope.id for e in recorded}) == 2, "ids of their own: neither is taken for a duplicate"

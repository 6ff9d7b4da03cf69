"""The database lock on a record of its own: decided on the whole record, recorded once at trial level, and
then no casebook is unlocked and nobody new enters the trial (each service as its own bus user)."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest
from faststream import TestApp
from nats.aio.client import Client
from pydantic import BaseModel

from devstack.servers import EmbeddedNats
from services.datamanagement.app import build_app
from services.datamanagement.settings import DataManagementSettings
from services.screening.app import build_app as build_screening_app
from services.screening.settings import ScreeningSettings
from shared.contracts.access import Role
from shared.contracts.commands import (
    DECLINE_CONSENT,
    LOCK_DATABASE,
    RECORD_CONSENT,
    UNLOCK_CASEBOOK,
    ActorContext,
    CommandContext,
    CommandReply,
    DeclineConsent,
    LockDatabase,
    RecordConsent,
    UnlockCasebook,
)
from shared.contracts.events import CasebookLocked, ConsentRecorded, DatabaseLocked, EventEnvelope, EventMetadata
from shared.contracts.forms import CasebookUnlock, ConsentForm, ConsentRefusalForm, DatabaseLock
from shared.contracts.protocol import load_protocol
from shared.runtime.eventstore import EventStore, subject_history, trial_history
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.conftest import COMMAND_VERIFY_KEYS, as_gateway

pytestmark = pytest.mark.integration
PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CONSENT = ConsentRecorded(
    consent_form_version="1.0",
    signed_on=date(2026, 11, 20),
    obtained_by="inv-01",
    signed_by_subject=True,
    signed_by_representative=False,
)


@pytest.fixture(scope="module")
async def record(own_server: EmbeddedNats, own_nc: Client) -> AsyncIterator[Client]:
    """The data management and screening services on a record of its own (a database lock is decided on the whole
    record), each connected as its own least-privilege user."""
    data_management = DataManagementSettings(
        nats_url=own_server.url_for("datamanagement"), command_verify_keys=COMMAND_VERIFY_KEYS
    )
    screening = ScreeningSettings(nats_url=own_server.url_for("screening"), command_verify_keys=COMMAND_VERIFY_KEYS)
    async with TestApp(build_app(data_management)), TestApp(build_screening_app(screening)):
        yield own_nc


def actor() -> ActorContext:
    return ActorContext(
        command_id=uuid4(),
        correlation_id="corr-db-lock",
        actor="dm-1",
        role=Role.DATA_MANAGER,
        token_id="test-token",
        received_at=NOW,
    )


async def send(
    nc: Client, subject: str, command: BaseModel, site: str | None, role: Role = Role.DATA_MANAGER
) -> CommandReply:
    payload = command.model_dump_json().encode()
    headers = as_gateway(subject, payload, site=site, role=role)
    return CommandReply.model_validate_json((await nc.request(subject, payload, timeout=10, headers=headers)).data)


async def casebook(store: EventStore, subject: str, *, lock: bool) -> None:
    meta = EventMetadata("/trial/test", "NFH", subject, "setup", "setup", PROTOCOL.version)
    facts = [CONSENT, CasebookLocked(through_sequence=1)] if lock else [CONSENT]
    envelopes = [EventEnvelope.wrap(f, meta, event_id=uuid4(), time=NOW) for f in facts]
    await store.append(envelopes, subject_filter=subject_history("NFH", subject), expected_last_sequence=0)


async def test_the_database_is_locked_once_every_casebook_is_and_no_casebook_is_unlocked_after(
    record: Client,
) -> None:
    store = EventStore(record.jetstream())
    await casebook(store, "NFH-001", lock=True)
    await casebook(store, "NFH-002", lock=False)
    refused = await send(record, LOCK_DATABASE, LockDatabase(context=actor(), form=DatabaseLock()), None)
    assert refused.rejection is not None and refused.rejection.rule == "database.casebooks_locked"
    assert "NFH-002" in refused.rejection.detail

    meta = EventMetadata("/trial/test", "NFH", "NFH-002", "setup", "setup", PROTOCOL.version)
    history = await store.load(subject_history("NFH", "NFH-002"))
    lock = EventEnvelope.wrap(CasebookLocked(through_sequence=history.last_sequence), meta, event_id=uuid4(), time=NOW)
    [locked] = await store.append(
        [lock], subject_filter=subject_history("NFH", "NFH-002"), expected_last_sequence=history.last_sequence
    )
    accepted = await send(record, LOCK_DATABASE, LockDatabase(context=actor(), form=DatabaseLock()), None)
    assert accepted.accepted and accepted.result["subject"] == PROTOCOL.trial_id, accepted
    [frozen] = (await store.load(trial_history(PROTOCOL.trial_id, DatabaseLocked.event_type))).events
    assert frozen.data == DatabaseLocked(through_sequence=locked.sequence, subjects=2)
    assert (frozen.envelope.siteid, frozen.envelope.actor, frozen.envelope.actorrole) == (None, "dm-1", "data_manager")

    again = await send(record, LOCK_DATABASE, LockDatabase(context=actor(), form=DatabaseLock()), None)
    assert again.rejection is not None and again.rejection.rule == "database.locked"
    context = CommandContext(**actor().model_dump(), site="NFH", subject="NFH-002")
    unlock = UnlockCasebook(context=context, form=CasebookUnlock(reason="a late query on the consent"))
    kept = await send(record, UNLOCK_CASEBOOK, unlock, "NFH")
    assert kept.rejection is not None and kept.rejection.rule == "database.locked"

    newcomer = CommandContext(**actor().model_dump(), site="NFH", subject="NFH-003")
    coordinator = newcomer.model_copy(update={"role": Role.SITE_COORDINATOR, "actor_site": "NFH"})
    consent = ConsentForm(
        consent_form_version="1.0", signed_on=date(2026, 11, 24), obtained_by="inv-01", signed_by_subject=True
    )
    refusal = ConsentRefusalForm(declined_on=date(2026, 11, 24), recorded_by="crc-01")
    for subject, command in (
        (RECORD_CONSENT, RecordConsent(context=coordinator, form=consent)),
        (DECLINE_CONSENT, DeclineConsent(context=coordinator, form=refusal)),
    ):
        enrolled = await send(record, subject, command, "NFH", role=Role.SITE_COORDINATOR)
        assert enrolled.rejection is not None and enrolled.rejection.rule == "database.locked", enrolled
    assert not (await store.load(subject_history("NFH", "NFH-003"))).events

"""The screening service's handlers on a real broker: command in, events appended, reply out."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import pytest
from faststream import TestApp
from nats.aio.client import Client

from services.screening.app import build_app
from services.screening.settings import ScreeningSettings
from shared.contracts.commands import RECORD_CONSENT, CommandContext, CommandReply, RecordConsent
from shared.contracts.forms import ConsentForm
from shared.runtime.eventstore import EventStore, subject_history
from tests.conftest import COMMAND_VERIFY_KEYS, Servers, SubjectIds, as_gateway

pytestmark = pytest.mark.integration

FORM = ConsentForm(
    consent_form_version="1.0", signed_on=date(2026, 11, 20), obtained_by="inv-01", signed_by_subject=True
)


@pytest.fixture(scope="module")
async def screening(servers: Servers) -> AsyncIterator[None]:
    async with TestApp(
        build_app(ScreeningSettings(nats_url=servers.nats_url, command_verify_keys=COMMAND_VERIFY_KEYS))
    ):
        yield


def command(site: str, subject: str, command_id: UUID | None = None, form: ConsentForm = FORM) -> RecordConsent:
    context = CommandContext(
        command_id=command_id or uuid4(),
        correlation_id="corr-42",
        actor="sc-7",
        role="site_coordinator",
        actor_site=site,
        token_id="test-token",
        site=site,
        subject=subject,
        received_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    )
    return RecordConsent(context=context, form=form)


async def send(nc: Client, cmd: RecordConsent) -> CommandReply:
    payload = cmd.model_dump_json().encode()
    reply = await nc.request(
        RECORD_CONSENT, payload, timeout=5, headers=as_gateway(RECORD_CONSENT, payload, site=cmd.context.site)
    )
    return CommandReply.model_validate_json(reply.data)


async def test_consent_is_appended_with_who_why_and_which_protocol(
    screening: None, nc: Client, store: EventStore, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh()
    cmd = command(site, subject)
    reply = await send(nc, cmd)
    assert reply.accepted and not reply.replayed
    [recorded] = (await store.load(subject_history(site, subject))).events
    envelope = recorded.envelope
    assert envelope.id == reply.event_ids[0] and recorded.sequence == reply.last_sequence
    assert (envelope.type, envelope.siteid, envelope.subject) == ("ConsentRecorded", site, subject)
    assert (envelope.actor, envelope.correlationid, envelope.causationid) == (
        "sc-7",
        "corr-42",
        str(cmd.context.command_id),
    )
    assert (envelope.source, envelope.protocolversion) == ("/trial/screening", "1.0")


async def test_the_same_command_twice_records_one_fact(
    screening: None, nc: Client, store: EventStore, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh()
    command_id = uuid4()
    first = await send(nc, command(site, subject, command_id))
    again = await send(nc, command(site, subject, command_id))
    assert again.replayed and again.event_ids == first.event_ids
    assert len((await store.load(subject_history(site, subject))).events) == 1


async def test_a_refusal_names_the_rule_and_records_nothing(
    screening: None, nc: Client, store: EventStore, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh()
    reply = await send(nc, command(site, subject, form=FORM.model_copy(update={"signed_on": date(2026, 12, 1)})))
    assert not reply.accepted and reply.rejection is not None
    assert (reply.rejection.rule, reply.rejection.kind, reply.rejection.field) == (
        "date.not_future",
        "invalid",
        "signed_on",
    )
    assert (await store.load(subject_history(site, subject))).events == ()

"""A token stands until its holder ends it (sign-out, the gateway's own table) or a data manager revokes its holder's
access (read from the record itself): no read model, nor any role that writes read models, decides who gets in."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest
from nats.aio.client import Client

from services.gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS
from services.gateway.auth import Principal, Role
from services.gateway.tokens import TokenStanding
from shared.contracts.events import DomainEvent, EventEnvelope, EventMetadata, UserAccessRestored, UserAccessRevoked
from shared.runtime.eventstore import EventStore, trial_history
from shared.runtime.postgres import SHARED_MIGRATIONS, apply_migrations

pytestmark = pytest.mark.integration
TRIAL = "NCT06646146"


def holder(actor: str) -> Principal:
    expires = datetime.now(UTC) + timedelta(hours=1)
    return Principal(actor=actor, role=Role.MONITOR, token_id=uuid4().hex, issuer="test", expires_at=expires)


async def record(store: EventStore, fact: DomainEvent) -> None:
    meta = EventMetadata("/trial/test", None, TRIAL, "dm-1", "access", "1.0", reason="left the study team")
    history = await store.load(trial_history(TRIAL))
    envelope = EventEnvelope.wrap(fact, meta, event_id=uuid4(), time=datetime.now(UTC))
    await store.append([envelope], subject_filter=history.subject_filter, expected_last_sequence=history.last_sequence)


@pytest.fixture
async def standing(pool: asyncpg.Pool, own_nc: Client) -> TokenStanding:
    """The gateway's own tables only: no read model exists in this database at all."""
    await apply_migrations(pool, "projections", SHARED_MIGRATIONS)
    await apply_migrations(pool, "gateway", GATEWAY_MIGRATIONS)
    return TokenStanding(pool, EventStore(own_nc.jetstream()), TRIAL)


async def test_a_revocation_in_the_record_refuses_its_user_with_no_read_model_behind_it(
    standing: TokenStanding, own_nc: Client
) -> None:
    store = EventStore(own_nc.jetstream())
    leaver, colleague = holder("crc-leaver"), holder("crc-stays")
    assert await standing.refusal(leaver) is None

    await record(store, UserAccessRevoked(user="crc-leaver"))
    assert await standing.refusal(leaver) == "access revoked"
    assert await standing.refusal(colleague) is None

    await record(store, UserAccessRestored(user="crc-leaver"))
    assert await standing.refusal(leaver) is None

    await record(store, UserAccessRevoked(user="crc-leaver"))  # revoked again, after the restoration
    assert await standing.refusal(leaver) == "access revoked"


async def test_an_ended_token_is_refused_and_another_token_of_the_same_person_is_not(standing: TokenStanding) -> None:
    ended, other = holder("mon-1"), holder("mon-1")
    await standing.end(ended)
    await standing.end(ended)  # twice: the same
    assert await standing.refusal(ended) == "signed out: sign in again"
    assert await standing.refusal(other) is None

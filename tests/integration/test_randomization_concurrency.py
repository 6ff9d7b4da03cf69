"""Three randomization replicas, sixty simultaneous requests, forty places: never one too many.

Runs on a nats-server of its own: the enrollment cap is trial-wide, so this test needs a stream
that no other test has randomized into.
"""

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import asyncpg
import nats
import nats.errors
import pytest
from nats.aio.client import Client

from devstack.servers import EmbeddedNats, env_with
from devstack.stack import ServiceProcesses
from services.randomization.app import allocation_list_for
from services.randomization.settings import RandomizationSettings
from services.reporting.app import MIGRATIONS as REPORTING_MIGRATIONS
from services.reporting.projections import RandomizationsProjection
from shared.contracts.commands import RANDOMIZE_SUBJECT, CommandContext, CommandReply, RandomizeSubject
from shared.contracts.events import (
    ConsentRecorded,
    EnrollmentClosed,
    EventEnvelope,
    EventMetadata,
    SubjectRandomized,
    SubjectScreened,
)
from shared.contracts.forms import RandomizationRequest, ScreeningForm
from shared.contracts.protocol import load_protocol
from shared.runtime.eventstore import EventStore, subject_history, trial_history, trial_wide
from shared.runtime.postgres import SHARED_MIGRATIONS, apply_migrations
from shared.runtime.projections import ProjectionRunner, wait_for_checkpoint
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.conftest import COMMAND_KEYS, as_gateway
from tests.e2e.api import TEST_SEED

pytestmark = pytest.mark.integration

PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
SITES = [s.code for s in PROTOCOL.sites]
SUBJECTS = [(site, f"{site}-{n:03d}") for n in range(1, 21) for site in SITES]  # 60, interleaved


@pytest.fixture(scope="module")
def replicas(
    own_server: EmbeddedNats, own_nc: Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcesses]:
    env = env_with(RANDOMIZATION_SEED=TEST_SEED, LOG_LEVEL="WARNING", **COMMAND_KEYS)
    processes = ServiceProcesses(
        env,
        log_dir=tmp_path_factory.mktemp("randomization-logs"),
        nats_urls={"randomization": own_server.url_for("randomization")},
    )
    processes.start("randomization#1", "randomization#2", "randomization#3")
    yield processes
    processes.stop()


async def eligible(store: EventStore, site: str, subject: str) -> None:
    meta = EventMetadata("/trial/test", site, subject, "tester", "setup", PROTOCOL.version)
    now = datetime.now(UTC)
    consent = ConsentRecorded(
        consent_form_version="1.0",
        signed_on=date(2026, 11, 1),
        obtained_by="inv-01",
        signed_by_subject=True,
        signed_by_representative=False,
    )
    form = ScreeningForm(
        screening_date=date(2026, 11, 2), age_years=30, sex="male", height_cm=Decimal(170), weight_kg=Decimal(65)
    )
    screened = SubjectScreened(
        screening_number=1,
        screening_date=form.screening_date,
        eligible=True,
        bmi=Decimal("22.5"),
        criteria=(),
        form=form,
    )
    envelopes = [EventEnvelope.wrap(e, meta, event_id=uuid4(), time=now) for e in (consent, screened)]
    await store.append(envelopes, subject_filter=subject_history(site, subject), expected_last_sequence=0)


def command(site: str, subject: str, command_id: UUID) -> bytes:
    context = CommandContext(
        command_id=command_id,
        correlation_id=f"load-{subject}",
        actor="sc-load",
        role="site_coordinator",
        actor_site=site,
        token_id="test-token",
        site=site,
        subject=subject,
        received_at=datetime.now(UTC),
    )
    return RandomizeSubject(context=context, form=RandomizationRequest()).model_dump_json().encode()


async def request_until_answered(
    nc: Client, site: str, subject: str, answered: list[str], command_id: UUID | None = None
) -> CommandReply:
    """What a site app does through the gateway: retry the same command (same key) until it is answered."""
    command_id = command_id or uuid5(NAMESPACE_URL, f"randomize/{subject}")
    for _ in range(60):
        with contextlib.suppress(nats.errors.TimeoutError, nats.errors.NoRespondersError):
            payload = command(site, subject, command_id)
            headers = as_gateway(RANDOMIZE_SUBJECT, payload, site=site)
            msg = await nc.request(RANDOMIZE_SUBJECT, payload, timeout=3, headers=headers)
            reply = CommandReply.model_validate_json(msg.data)
            if not reply.unavailable:
                answered.append(subject)
                return reply
        await asyncio.sleep(0.2)
    raise AssertionError(f"{subject}: never answered")


async def test_sixty_simultaneous_requests_fill_forty_places_exactly_once_even_when_a_replica_dies(
    own_nc: Client, replicas: ServiceProcesses, pool: asyncpg.Pool
) -> None:
    store = EventStore(own_nc.jetstream())
    await asyncio.gather(*(eligible(store, site, subject) for site, subject in SUBJECTS))
    answered: list[str] = []

    async def kill_one_replica_mid_run() -> None:
        while len(answered) < 12:
            await asyncio.sleep(0.01)
        replicas.kill("randomization#2")

    replies, _ = await asyncio.gather(
        asyncio.gather(*(request_until_answered(own_nc, site, subject, answered) for site, subject in SUBJECTS)),
        kill_one_replica_mid_run(),
    )
    accepted = [r for r in replies if r.accepted]
    refused = [r for r in replies if not r.accepted]
    assert len(accepted) == 40
    assert sorted(r.result["randomization_number"] for r in accepted) == list(range(1, 41))
    assert {r.rejection.rule for r in refused if r.rejection} == {"enrollment.cap"} and len(refused) == 20

    recorded = (await store.load(trial_wide("SubjectRandomized"))).events
    assert len(recorded) == 40
    assert len({e.envelope.subject for e in recorded}) == 40, "no subject has two allocations"
    allocation_list = allocation_list_for(PROTOCOL, RandomizationSettings(randomization_seed=TEST_SEED))
    by_stratum: dict[str, list[SubjectRandomized]] = defaultdict(list)
    for event in recorded:
        assert isinstance(event.data, SubjectRandomized)
        by_stratum[event.data.stratum].append(event.data)
    for stratum, allocations in by_stratum.items():
        allocations.sort(key=lambda r: r.stratum_slot)
        assert [r.stratum_slot for r in allocations] == list(range(1, len(allocations) + 1)), (
            "every slot once, in order"
        )
        expected = [s.arm for s in allocation_list.slots[stratum][: len(allocations)]]
        assert [r.arm for r in allocations] == expected, "arms exactly as the list says"
    # Enrollment closes by a reaction to the 40th allocation, shortly after it, exactly once.
    closed_filter = trial_history(PROTOCOL.trial_id, EnrollmentClosed.event_type)
    async with asyncio.timeout(20):
        while not (closed := (await store.load(closed_filter)).events):
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # time for a second close to appear, were there one
    closed = (await store.load(closed_filter)).events
    assert len(closed) == 1 and closed[0].data == EnrollmentClosed(randomized=40, cap=40)

    # A retry of an allocated subject's command, even with the trial full, answers its allocation.
    site, subject = next(x for x in SUBJECTS if x[1] == recorded[0].envelope.subject)
    replay = await request_until_answered(own_nc, site, subject, [])
    assert replay.accepted and replay.replayed
    assert replay.result == next(r for r in accepted if r.event_ids == replay.event_ids).result

    await apply_migrations(pool, "projections", SHARED_MIGRATIONS)
    await apply_migrations(pool, "reporting", REPORTING_MIGRATIONS)
    runner = ProjectionRunner(RandomizationsProjection(PROTOCOL), own_nc.jetstream(), pool)
    task = asyncio.create_task(runner.run())
    try:
        await wait_for_checkpoint(pool, "randomizations", max(e.sequence for e in (*recorded, *closed)), timeout=20)
    finally:
        runner.stop()
        await task
    assert await pool.fetchval("SELECT count(*) FROM randomizations") == 40
    assert await pool.fetchval("SELECT randomized FROM enrollment") == 40

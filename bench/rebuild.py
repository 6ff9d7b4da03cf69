"""Read-model rebuild rate from a large stream, beside raw JetStream consumption, raw asyncpg inserts, and the
read models' own rows written again by COPY (the fastest way into Postgres)."""

import asyncio
import io
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import nats
import psutil

from bench.measure import cpu_seconds
from services.reporting.app import MIGRATIONS
from services.reporting.projections import all_projections
from services.screening.eligibility import evaluate
from shared.contracts.events import (
    AdverseEventReported,
    ConsentRecorded,
    DomainEvent,
    EventEnvelope,
    EventMetadata,
    SubjectScreened,
    decode_envelope,
    registered_types,
)
from shared.contracts.forms import ScreeningForm
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.eventstore import event_subject, provision_streams, read_through
from shared.runtime.postgres import SHARED_MIGRATIONS, apply_migrations, create_pool
from shared.runtime.progress import progress, shown_on
from shared.runtime.projections import REPLAY_BATCH, rebuild


def sample_events(protocol: ProtocolDefinition) -> list[DomainEvent]:
    """A subject's consent, screening (the largest payload) and an adverse event: the bulk of a real stream."""
    form = ScreeningForm(
        screening_date=date(2026, 1, 5), age_years=40, sex="female", height_cm=Decimal(160), weight_kg=Decimal(58)
    )
    result = evaluate(form, protocol.eligibility, consent_form_version="1.0")
    return [
        ConsentRecorded(
            consent_form_version="1.0",
            signed_on=date(2026, 1, 2),
            obtained_by="inv-01",
            signed_by_subject=True,
            signed_by_representative=False,
        ),
        SubjectScreened(
            screening_number=1,
            screening_date=form.screening_date,
            eligible=result.eligible,
            bmi=result.bmi,
            criteria=result.criteria,
            form=form,
        ),
        AdverseEventReported(
            ae_id=uuid.uuid4(),
            term="Pruritus",
            onset_date=date(2026, 1, 20),
            site_aware_at=datetime(2026, 1, 20, 9, tzinfo=UTC),
            grade=1,
            seriousness=(),
            serious=False,
            relationship={"fat_graft": "unlikely", "hair_transplantation": "possible"},
            action_taken="none",
            outcome="recovered",
        ),
    ]


def sample_envelopes(protocol: ProtocolDefinition) -> list[bytes]:
    """The sample events as the record stores them."""
    meta = EventMetadata("/bench", "BA", "BA-001", "bench", "bench", protocol.version)
    now = datetime.now(UTC)
    return [EventEnvelope.wrap(e, meta, event_id=uuid.uuid4(), time=now).to_json() for e in sample_events(protocol)]


def decoded_via_python_objects(raw: bytes) -> EventEnvelope:
    """The decoder the record was read with before: the JSON parsed into Python objects first, then validated
    (the data by its event's model, then the envelope around it). Kept here as the benchmark's comparison."""
    document = json.loads(raw)
    model = registered_types()[(document["type"], document["schemaversion"])]
    return EventEnvelope.model_validate({**document, "data": model.model_validate(document["data"])})


@dataclass(frozen=True)
class DecoderRun:
    in_use_us_per_event: float  # `decode_envelope`: pydantic's JSON parser, each type's envelope model, one pass
    via_python_objects_us_per_event: float


def decoder_rates(protocol: ProtocolDefinition, rounds: int = 3000) -> DecoderRun:
    """Microseconds per event of each decoder over the sample events (the stream's mix), one after the other,
    the best of three passes each (the least disturbed by the rest of the machine)."""
    raws = sample_envelopes(protocol)

    def best(decode: Callable[[bytes], EventEnvelope]) -> float:
        passes = []
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(rounds):
                for raw in raws:
                    decode(raw)
            passes.append((time.perf_counter() - started) / (rounds * len(raws)))
        return round(1e6 * min(passes), 1)

    return DecoderRun(best(decode_envelope), best(decoded_via_python_objects))


async def fill_stream(nats_url: str, protocol: ProtocolDefinition, total: int) -> int:
    """Append `total` events across many subjects, 256 acknowledgements in flight."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await provision_streams(js)
    samples = sample_events(protocol)
    gate = asyncio.Semaphore(256)
    now = datetime.now(UTC)

    async def publish(i: int) -> None:
        subject_number = i // len(samples)
        site = f"B{subject_number // 999:05d}"
        subject = f"{site}-{subject_number % 999 + 1:03d}"
        event = samples[i % len(samples)]
        if isinstance(event, AdverseEventReported):
            event = event.model_copy(update={"ae_id": uuid.uuid4()})
        meta = EventMetadata("/bench", site, subject, "bench", "bench", protocol.version)
        envelope = EventEnvelope.wrap(event, meta, event_id=uuid.uuid4(), time=now)
        async with gate:
            await js.publish(event_subject(site, subject, envelope.type), envelope.to_json())

    with progress(total=total, desc="fill stream", unit="event") as bar:
        for start in range(0, total, 2000):
            await asyncio.gather(*(publish(i) for i in range(start, min(total, start + 2000))))
            bar.update(min(total, start + 2000) - start)
    await nc.close()
    return total


async def raw_consume(nats_url: str, total: int, *, decode: bool = False) -> float:
    """Messages per second read the way a rebuild reads them (`read_through`), doing nothing with them, or only
    decoding each into its validated event (`decode`): the floor under any rebuild that reads the record."""
    nc = await nats.connect(nats_url)
    started = time.perf_counter()
    read = 0
    async for batch in read_through(nc.jetstream(), total, batch_size=REPLAY_BATCH):
        read += len(batch)
        if decode:
            for msg in batch:
                msg.recorded()
    elapsed = time.perf_counter() - started
    await nc.close()
    assert read == total
    return total / elapsed


async def raw_inserts(database_url: str, total: int) -> float:
    """Rows per second into Postgres with batched `unnest` inserts of 500, no NATS involved."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE TEMP TABLE bench_rows (sequence bigint PRIMARY KEY, subject text, payload jsonb)")
    started = time.perf_counter()
    for start in range(0, total, 500):
        numbers = list(range(start, min(total, start + 500)))
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO bench_rows SELECT * FROM unnest($1::bigint[], $2::text[], $3::jsonb[])",
                numbers,
                [f"B{n:07d}" for n in numbers],
                ['{"type": "bench"}'] * len(numbers),
            )
    elapsed = time.perf_counter() - started
    await conn.close()
    return total / elapsed


@dataclass(frozen=True)
class RebuildRun:
    events_per_s: float
    # CPU per event, microseconds: this process (read, decode, apply, driver) and Postgres (every backend).
    python_us_per_event: float
    postgres_us_per_event: float


async def rebuild_rate(
    nats_url: str, database_url: str, protocol: ProtocolDefinition, postgres: psutil.Process
) -> RebuildRun:
    """Events per second for the rebuild of every read model in one pass, and the CPU each side spent."""
    nc = await nats.connect(nats_url)
    pool = await create_pool(database_url, max_size=2)
    await apply_migrations(pool, "projections", SHARED_MIGRATIONS)
    await apply_migrations(pool, "reporting", MIGRATIONS)
    try:
        bar = progress(desc="rebuild read models", unit="event")
        with bar:
            database = cpu_seconds(postgres, with_children=True)
            started, cpu = time.perf_counter(), time.process_time()
            results = await rebuild(all_projections(protocol), nc.jetstream(), pool, progress=shown_on(bar))
            elapsed = time.perf_counter() - started
            cpu, database = time.process_time() - cpu, cpu_seconds(postgres, with_children=True) - database
    finally:
        await pool.close()
        await nc.close()
    events = next(iter(results.values())).last_sequence
    return RebuildRun(events / elapsed, 1e6 * cpu / events, 1e6 * database / events)


@dataclass(frozen=True)
class CopyRun:
    events_per_s: float
    postgres_us_per_event: float


async def copy_back(database_url: str, tables: Sequence[str], events: int, postgres: psutil.Process) -> CopyRun:
    """The rows a rebuild left in the read models, written again into the same tables (their indexes and all) by
    binary COPY in one transaction: Postgres's fastest way in, so the floor under any rebuild of these read models,
    per event of the stream they came from."""
    conn = await asyncpg.connect(database_url)
    try:
        rows: dict[str, bytes] = {}
        for table in tables:
            dump = io.BytesIO()
            await conn.copy_from_table(table, output=dump, format="binary")
            rows[table] = dump.getvalue()
        database = cpu_seconds(postgres, with_children=True)
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute(f"TRUNCATE {', '.join(tables)}")
            for table, dumped in rows.items():
                await conn.copy_to_table(table, source=io.BytesIO(dumped), format="binary")
        elapsed = time.perf_counter() - started
        database = cpu_seconds(postgres, with_children=True) - database
    finally:
        await conn.close()
    return CopyRun(events / elapsed, 1e6 * database / events)

"""The export files (SDTM domains, ADaM datasets, define.json, the ODM snapshot), live or as of the database lock.

Once the database is locked for analysis, every export is made from the record through the lock's sequence: the
same bytes every time, whatever safety information comes after. The reporting service makes them once, right
after the lock reaches its read model, and keeps them (`frozen_exports`); the gateway serves those from then on.
"""

import asyncio
import contextlib
from datetime import UTC, datetime

import asyncpg
import structlog
from nats.js import JetStreamContext

from services.reporting.projections import all_projections
from services.reporting.reports import datasets
from services.reporting.reports.odm import odm_snapshot
from services.reporting.settings import ReportingSettings
from shared.contracts.coding import Dictionaries
from shared.contracts.events import DatabaseLocked, RecordedEvent
from shared.contracts.protocol import ProtocolDefinition, load_protocol
from shared.readmodels.amendments import protocol_versions
from shared.readmodels.datamanagement import LOCK_FILE, DatabaseLockFile
from shared.runtime import bus
from shared.runtime.eventstore import EventStore, trial_history
from shared.runtime.logging import error_summary
from shared.runtime.postgres import Connection, create_pool
from shared.runtime.projections import read_models_as_of

log = structlog.get_logger(__name__)

STORE_FROZEN = """
INSERT INTO frozen_exports (name, content, through_sequence) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
ON CONFLICT DO NOTHING
"""


async def export_files(
    conn: Connection, protocol: ProtocolDefinition, dictionaries: Dictionaries, *, as_of: datetime
) -> dict[str, str]:
    """The export files from the read models on `conn`, by file name: every form and item of every version of the
    protocol (`exported_forms`), whichever version each record was entered under."""
    forms = (await protocol_versions(conn, protocol)).exported_forms
    files = {
        f"{name.lower()}.csv": datasets.to_csv(name, await build(conn, protocol), forms)
        for name, build in datasets.builders(dictionaries, forms).items()
    }
    files["odm.xml"] = await odm_snapshot(conn, protocol, as_of)
    files["define.json"] = datasets.define_json(forms)
    return files


async def database_lock(js: JetStreamContext, protocol: ProtocolDefinition) -> RecordedEvent | None:
    locks = (await EventStore(js).load(trial_history(protocol.trial_id, DatabaseLocked.event_type))).events
    return locks[0] if locks else None


async def files_as_of_lock(
    js: JetStreamContext,
    pool: asyncpg.Pool,
    protocol: ProtocolDefinition,
    dictionaries: Dictionaries,
    lock: RecordedEvent,
) -> dict[str, str]:
    """The export files as the read models stood at the lock's sequence, with `database-lock.json` saying which."""
    assert isinstance(lock.data, DatabaseLocked)
    through = lock.data.through_sequence
    async with read_models_as_of(all_projections(protocol), js, pool, through=through) as conn:
        files = await export_files(conn, protocol, dictionaries, as_of=lock.envelope.time)
    summary = DatabaseLockFile(through_sequence=through, locked_at=lock.envelope.time, by=lock.envelope.actor)
    return files | {LOCK_FILE: summary.model_dump_json(indent=2)}


async def exports(settings: ReportingSettings) -> dict[str, str]:
    """Every export file by name: made from the record as of the lock once the database is locked (an independent
    reproduction of what the gateway serves), else from the live read models."""
    protocol = load_protocol(settings.protocol_file)
    dictionaries = settings.dictionaries()
    nc = await bus.connect(settings.nats_url, name="trial-reporting-export")
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        js = nc.jetstream()
        lock = await database_lock(js, protocol)
        if lock is not None:
            return await files_as_of_lock(js, pool, protocol, dictionaries, lock)
        async with pool.acquire() as conn:
            return await export_files(conn, protocol, dictionaries, as_of=datetime.now(UTC))
    finally:
        await pool.close()
        await nc.close()


async def freeze_exports(
    js: JetStreamContext, pool: asyncpg.Pool, protocol: ProtocolDefinition, dictionaries: Dictionaries
) -> bool:
    """Once the lock is in the read model and its exports are not made yet: make and keep them. Whether they are
    kept now (replicas racing to make them keep the first: the same bytes)."""
    locked = await pool.fetchval("SELECT through_sequence FROM database_lock")
    if locked is None:
        return False
    if await pool.fetchval("SELECT count(*) FROM frozen_exports"):
        return True
    lock = await database_lock(js, protocol)
    if lock is None:
        return False  # the read model is ahead of this reader's view of the stream: next time
    files = await files_as_of_lock(js, pool, protocol, dictionaries, lock)
    names = sorted(files)
    await pool.execute(STORE_FROZEN, names, [files[n] for n in names], [locked] * len(names))
    log.info("exports_frozen_at_lock", through_sequence=locked, files=len(names))
    return True


async def freeze_when_locked(
    js: JetStreamContext,
    pool: asyncpg.Pool,
    protocol: ProtocolDefinition,
    dictionaries: Dictionaries,
    *,
    every: float,
    stopping: asyncio.Event,
) -> None:
    """Look for the lock every few seconds until its exports are kept; a failure is logged and tried again."""
    while not stopping.is_set():
        try:
            if await freeze_exports(js, pool, protocol, dictionaries):
                return
        except Exception as exc:  # a server away, a statement cancelled: the next round tries again
            log.warning("freezing_exports_failed", error=error_summary(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every)

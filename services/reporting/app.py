"""Wiring of the reporting service: migrations, then one runner feeding every read model until stopped."""

import asyncio
import contextlib
import signal
from pathlib import Path

import nats.errors
import structlog

from services.reporting.exports import freeze_when_locked
from services.reporting.projections import all_projections
from services.reporting.settings import ReportingSettings
from shared.contracts.protocol import load_protocol
from shared.readmodels.catalogue import READ_MODELS_FEED
from shared.runtime import bus
from shared.runtime.deadletters import Replay, dead_letters, print_letters, print_replay
from shared.runtime.deadletters import replay as replay_letters
from shared.runtime.eventstore import streams_ready
from shared.runtime.health import HealthServer, nats_connected, postgres_reachable
from shared.runtime.metrics import OPEN_SAE_ALERTS
from shared.runtime.postgres import (
    SHARED_MIGRATIONS,
    apply_migrations,
    create_pool,
    create_pool_when_up,
)
from shared.runtime.progress import progress, shown_on
from shared.runtime.projections import (
    Projection,
    ProjectionRunner,
    RebuildResult,
    applying,
    rebuild,
)
from shared.runtime.runner import exit_within

log = structlog.get_logger(__name__)
MIGRATIONS = Path(__file__).parent / "sql"


async def migrate(settings: ReportingSettings) -> None:
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        await apply_migrations(pool, "projections", SHARED_MIGRATIONS)
        await apply_migrations(pool, "reporting", MIGRATIONS)
    finally:
        await pool.close()


def stop_all(runner: ProjectionRunner, stopping: asyncio.Event) -> None:
    exit_within()
    stopping.set()
    runner.stop()


async def serve(settings: ReportingSettings, projections: list[Projection] | None = None) -> None:
    """Run every projection until SIGTERM/SIGINT; the batch in flight is finished, then all is closed.

    The schema is migrated beforehand by its owner (`migrate`, the migration job), not by this role.
    """
    nc = await bus.connect(settings.nats_url, name="trial-reporting", max_reconnect_attempts=-1)
    chosen = projections or all_projections(load_protocol(settings.protocol_file))
    # One connection for the read models' runner (their leadership locks and their writes), and room for the rest.
    pool = await create_pool_when_up(settings.database_url, max_size=1 + settings.pool_size)
    js = nc.jetstream()
    await streams_ready(js)
    runner = ProjectionRunner(chosen, js, pool, feed=READ_MODELS_FEED, check_seconds=settings.consumer_check_seconds)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_all, runner, stopping)
    following = asyncio.create_task(runner.run())
    protocol = load_protocol(settings.protocol_file)
    dictionaries = settings.dictionaries()
    freezer = asyncio.create_task(
        freeze_when_locked(js, pool, protocol, dictionaries, every=settings.lock_check_seconds, stopping=stopping)
    )

    async def projections_running() -> bool:
        return not following.done()

    async def count_open_alerts() -> None:
        OPEN_SAE_ALERTS.set(await pool.fetchval("SELECT count(*) FROM sae_alerts WHERE acknowledged_at IS NULL"))

    health = HealthServer(
        settings.health_port,
        {"nats": nats_connected(nc), "postgres": postgres_reachable(pool), "projections": projections_running},
        refresh=count_open_alerts,
    )
    await health.start()
    log.info("reporting_started", projections=[p.name for p in runner.projections])
    try:
        await following
    finally:
        stopping.set()
        await freezer
        await health.stop()
        await pool.close()
        with contextlib.suppress(nats.errors.Error):  # the bus may be gone already (stopped with everything)
            await nc.drain()
        log.info("reporting_stopped")


async def rebuild_all(settings: ReportingSettings) -> dict[str, RebuildResult]:
    """Reset every read model and replay the stream into it, showing progress."""
    nc = await bus.connect(settings.nats_url, name="trial-reporting-rebuild")
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        bar = progress(desc="rebuild read models", unit="event")
        with bar:
            projections = all_projections(load_protocol(settings.protocol_file))
            replayed = await rebuild(projections, nc.jetstream(), pool, progress=shown_on(bar))
    finally:
        await pool.close()
        await nc.close()
    return replayed


async def replay_dead_letters(settings: ReportingSettings, *, replay: bool) -> int:
    """List the read models' dead letters; with `replay`, apply each original again (after a fix)."""
    nc = await bus.connect(settings.nats_url, name="trial-reporting-dead-letters")
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        js = nc.jetstream()
        projections = all_projections(load_protocol(settings.protocol_file))
        if not replay:
            print_letters([d for d in await dead_letters(js) if d.handler.startswith("projection:")])
            return 0
        outcome = Replay()
        for p in projections:
            done = await replay_letters(js, f"projection:{p.name}", applying(p, pool))
            outcome.replayed += done.replayed
            outcome.failed += done.failed
        return print_replay(outcome)
    finally:
        await pool.close()
        await nc.close()

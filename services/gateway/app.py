"""The gateway's FastAPI app: `create_app(settings)` wires the routers (forms, subjects, safety, reports),
the idempotency keys, the command bus and the error handling."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi_offline import FastAPIOffline

from services.gateway.command_bus import CommandBus
from services.gateway.errors import ProblemError, install_error_handlers, problem_responses
from services.gateway.idempotency import IdempotencyKeys
from services.gateway.middleware import BodySizeLimit, CorrelationId, RequestMetrics
from services.gateway.oidc import trusted_issuers
from services.gateway.openapi import install_openapi
from services.gateway.params import known_query_parameters
from services.gateway.routes.casebook import casebook_router
from services.gateway.routes.exports import exports_router
from services.gateway.routes.forms import CollectedRoutes, forms_router
from services.gateway.routes.photographs import UPLOAD, photographs_router
from services.gateway.routes.protocol import protocol_router
from services.gateway.routes.reports import reports_router
from services.gateway.routes.safety import safety_router
from services.gateway.routes.session import session_router
from services.gateway.routes.subjects import subjects_router
from services.gateway.routes.trial import AMENDMENT_BYTES, AMENDMENTS, trial_router
from services.gateway.settings import GatewaySettings
from services.gateway.tokens import ACCESS_FACTS, TokenStanding
from shared.contracts.amendments import ProtocolVersions
from shared.contracts.attestation import CommandSigner
from shared.contracts.photographs import MAX_BYTES as PHOTOGRAPH_BYTES
from shared.readmodels.amendments import deployed_amendments
from shared.runtime import bus
from shared.runtime.decisions import Clock, utc_now
from shared.runtime.eventstore import EventStore
from shared.runtime.health import HealthServer, nats_connected, postgres_reachable
from shared.runtime.postgres import apply_migrations, create_pool, create_pool_when_up
from shared.runtime.versions import HeldVersions

log = structlog.get_logger(__name__)
MIGRATIONS = Path(__file__).parent / "sql"


async def migrate(settings: GatewaySettings) -> None:
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        await apply_migrations(pool, "gateway", MIGRATIONS)
    finally:
        await pool.close()


async def look_for_amendments(app: FastAPI, routes: CollectedRoutes) -> None:
    """Every amendment deployed, read again: the collected forms it adds get their routes (the API document
    follows, `install_openapi`)."""
    try:
        routes.take(await app.state.versions.at())
    except Exception as exc:  # the read models not yet made, or unreachable: the next look may find them
        log.error("amendments_not_read", error=type(exc).__name__)


async def following_amendments(app: FastAPI, routes: CollectedRoutes, seconds: float) -> None:
    """Looking for amendments again and again: one takes effect from a later day, so a minute is soon enough."""
    while True:
        await asyncio.sleep(seconds)
        await look_for_amendments(app, routes)


def create_app(settings: GatewaySettings, *, clock: Clock = utc_now) -> FastAPI:
    # Refuse to start rather than accept tokens or send commands that nobody should trust.
    provider_http = httpx.AsyncClient(timeout=5)
    issuers = trusted_issuers(settings, provider_http)
    signer = CommandSigner(settings.serving_command_signing_key())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Its schema is migrated beforehand by the owner (`migrate`, the migration job).
        # Idempotency keys and read-model reads: nothing the gateway does outlives a statement or transaction.
        pool = await create_pool_when_up(settings.database_url, max_size=settings.pool_size, stateless=True)
        nc = await bus.connect(settings.nats_url, name="trial-gateway", max_reconnect_attempts=-1)
        app.state.pool = pool
        app.state.versions = HeldVersions(settings.protocol(), lambda: deployed_amendments(pool), clock)
        await look_for_amendments(app, collected)
        following = asyncio.create_task(following_amendments(app, collected, settings.amendment_check_seconds))
        app.state.nc = nc
        app.state.bus = CommandBus(nc, timeout=settings.command_timeout_seconds, signer=signer)
        app.state.idempotency = IdempotencyKeys(pool, lease_seconds=settings.idempotency_lease_seconds)
        app.state.standing = TokenStanding(
            pool, EventStore(nc.jetstream(), cached_histories=len(ACCESS_FACTS)), settings.protocol().trial_id
        )
        # Metrics on the health port, as every service: not on the public port behind the ingress.
        health = HealthServer(settings.health_port, {"nats": nats_connected(nc), "postgres": postgres_reachable(pool)})
        await health.start()
        log.info("gateway_started")
        try:
            yield
        finally:
            following.cancel()
            await health.stop()
            await nc.drain()
            await pool.close()
            await provider_http.aclose()
            log.info("gateway_stopped")

    # The docs pages load Swagger UI and ReDoc from the gateway itself, never from a CDN.
    app = FastAPIOffline(
        title="NCT06646146 trial gateway",
        version="1.0",
        description="Forms from the sites, reads for monitors, acknowledgements for the safety team.",
        lifespan=lifespan,
        dependencies=[Depends(known_query_parameters)],
    )
    app.state.settings = settings
    app.state.issuers = issuers
    # Read once at start: a dictionary file that cannot be used stops the gateway with the file named.
    app.state.dictionaries = settings.dictionaries()
    install_error_handlers(app)
    # A photograph's body is larger than any form's: its own limit, on its own path.
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, larger={UPLOAD: PHOTOGRAPH_BYTES, AMENDMENTS: AMENDMENT_BYTES}
    )
    app.add_middleware(CorrelationId)
    app.add_middleware(RequestMetrics)

    @app.get("/healthz", tags=["operations"], operation_id="healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        operation_id="readyz",
        summary="Readiness: NATS and Postgres reachable",
        responses=problem_responses(503),
    )
    async def readyz(request: Request) -> dict[str, str]:
        nc = request.app.state.nc
        try:
            await request.app.state.pool.fetchval("SELECT 1", timeout=2)
            await nc.flush(timeout=2)
        except Exception as exc:
            raise ProblemError(503, "not-ready", "Not ready", f"dependency unreachable: {type(exc).__name__}") from exc
        return {"status": "ready"}

    app.include_router(forms_router(settings.protocol()))
    collected = CollectedRoutes(app.router)
    collected.take(ProtocolVersions(settings.protocol()))
    app.include_router(subjects_router())
    app.include_router(casebook_router())
    app.include_router(trial_router())
    app.include_router(protocol_router())
    app.include_router(safety_router())
    app.include_router(reports_router())
    app.include_router(exports_router())
    app.include_router(session_router())
    app.include_router(photographs_router(settings.protocol()))
    install_openapi(app)
    return app

"""Least privilege in Postgres: projections write only the read models, the gateway only reads them and
keeps its idempotency keys; nobody connects as a superuser."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from devstack.servers import SERVICE_ROLES, database_url_as
from services.gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS
from services.reporting.app import MIGRATIONS as REPORTING_MIGRATIONS
from shared.runtime.postgres import SHARED_MIGRATIONS, apply_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
async def migrated(pool: asyncpg.Pool) -> asyncpg.Pool:
    await apply_migrations(pool, "projections", SHARED_MIGRATIONS)
    await apply_migrations(pool, "reporting", REPORTING_MIGRATIONS)
    await apply_migrations(pool, "gateway", GATEWAY_MIGRATIONS)
    return pool


@pytest.fixture
async def as_role(migrated: asyncpg.Pool, database_url: str) -> AsyncIterator[dict[str, asyncpg.Connection]]:
    connections = {
        service: await asyncpg.connect(database_url_as(database_url, role)) for service, role in SERVICE_ROLES.items()
    }
    yield connections
    for conn in connections.values():
        await conn.close()


ROW = (
    "INSERT INTO subjects (subject_id, site, state, first_event_at, last_event_at, last_event_type, last_sequence)"
    " VALUES ('NFH-001', 'NFH', 'consented', now(), now(), 'ConsentRecorded', 1)"
)
KEY = "INSERT INTO idempotency_keys (scope, key, request_hash, state) VALUES ('x', 'k', 'h', 'in_flight')"


async def test_no_service_role_is_a_superuser_or_owns_the_schema(as_role: dict[str, asyncpg.Connection]) -> None:
    for conn in as_role.values():
        assert (
            await conn.fetchval("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user") is False
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE intruder (x int)")


async def test_the_gateway_role_reads_the_read_models_and_cannot_write_them(
    as_role: dict[str, asyncpg.Connection],
) -> None:
    gateway = as_role["gateway"]
    assert await gateway.fetchval("SELECT count(*) FROM subjects") == 0
    for statement in (
        ROW,
        "DELETE FROM audit_trail",
        "TRUNCATE subjects",
        "UPDATE projection_checkpoints SET last_sequence = 0",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await gateway.execute(statement)
    await gateway.execute(KEY)  # its own table


async def test_the_projections_role_writes_read_models_and_not_the_gateways_keys(
    as_role: dict[str, asyncpg.Connection],
) -> None:
    projections = as_role["reporting"]
    await projections.execute(ROW)
    await projections.execute("TRUNCATE subjects")  # a rebuild
    # Neither the gateway's keys nor its ended tokens (a sign-out undone would let a copied session in again).
    for statement in (KEY, "SELECT * FROM idempotency_keys", "DELETE FROM ended_tokens", "DROP TABLE subjects"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await projections.execute(statement)

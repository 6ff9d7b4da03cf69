"""PostgreSQL connections and versioned migrations, applied once per component under a lock."""

import asyncio
import hashlib
import json
from pathlib import Path

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

log = structlog.get_logger(__name__)

SHARED_MIGRATIONS = Path(__file__).parent / "sql"

# The server or the link to it failing, not the statement: the caller retries later, nothing was committed.
# (A connection killed mid-statement can also surface as the client's "another operation is in progress".)
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.CannotConnectNowError,
    OSError,
    TimeoutError,
)

# A connection of our own or one lent by a pool: everything that runs SQL takes either.
Connection = asyncpg.Connection | PoolConnectionProxy


class JsonText(str):
    """A value already encoded as JSON (by pydantic, once): a json or jsonb parameter takes it as it is."""


def _encode_json(value: object) -> bytes:
    return (value if isinstance(value, JsonText) else json.dumps(value)).encode()


# jsonb's binary form is a version byte, then the JSON text: binary, so that rows can also be sent by COPY.
JSONB_VERSION = b"\x01"


def _encode_jsonb(value: object) -> bytes:
    return JSONB_VERSION + _encode_json(value)


def _decode_jsonb(data: bytes) -> object:
    return json.loads(data[1:])


async def _init_connection(conn: Connection) -> None:
    await conn.set_type_codec("json", encoder=_encode_json, decoder=json.loads, schema="pg_catalog", format="binary")
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )


class _StatelessSession(asyncpg.Connection):
    """A connection whose users leave no session state behind (no SET, advisory lock, LISTEN or cursor outside
    a transaction): given back to the pool without the reset query, one round trip fewer per use. An open
    transaction is still rolled back."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10, stateless: bool = False) -> asyncpg.Pool:
    """`stateless`: every user of the pool leaves no session state (see `_StatelessSession`)."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        connection_class=_StatelessSession if stateless else asyncpg.Connection,
    )
    assert pool is not None
    return pool


async def create_pool_when_up(
    url: str, *, max_size: int = 10, stateless: bool = False, longest_pause: float = 5.0
) -> asyncpg.Pool:
    """A service that starts while the database is down (both restarted at once) waits for it, saying so:
    a transient fault never ends the process. Wrong credentials or a missing database still fail at once."""
    pause = 0.2
    while True:
        try:
            return await create_pool(url, max_size=max_size, stateless=stateless)
        except CONNECTION_ERRORS as exc:
            log.warning("postgres_unavailable", error=type(exc).__name__, retry_in=pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, longest_pause)


class MigrationChanged(Exception):
    """An applied migration file was edited; migrations are immutable once applied."""


async def apply_migrations(pool: asyncpg.Pool, component: str, directory: Path) -> list[str]:
    """Apply `NNN_name.sql` files in order, each in its own transaction; returns what was applied."""
    applied: list[str] = []
    async with pool.acquire() as conn:
        # Several replicas may start at once: one migrates, the others wait and find nothing to do.
        await conn.execute("SELECT pg_advisory_lock(hashtext('schema_migrations'))")
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       component  text NOT NULL,
                       version    text NOT NULL,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now(),
                       PRIMARY KEY (component, version))"""
            )
            done = {
                r["version"]: r["checksum"]
                for r in await conn.fetch(
                    "SELECT version, checksum FROM schema_migrations WHERE component = $1", component
                )
            }
            for path in sorted(directory.glob("[0-9][0-9][0-9]_*.sql")):  # noqa: ASYNC240 - a few small files at start-up
                sql = path.read_text(encoding="utf-8")
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if path.stem in done:
                    if done[path.stem] != checksum:
                        raise MigrationChanged(f"{component}/{path.name} changed after it was applied")
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (component, version, checksum) VALUES ($1, $2, $3)",
                        component,
                        path.stem,
                        checksum,
                    )
                log.info("migration_applied", component=component, version=path.stem)
                applied.append(path.stem)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext('schema_migrations'))")
    return applied

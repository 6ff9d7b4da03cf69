"""Idempotency keys in a real Postgres: one answer per key, whichever replica asks."""

import asyncio

import asyncpg
import pytest

from services.gateway.app import MIGRATIONS
from services.gateway.errors import ProblemError
from services.gateway.idempotency import IdempotencyKeys, StoredResponse, command_id, request_hash
from shared.runtime.postgres import apply_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
async def keys(pool: asyncpg.Pool) -> IdempotencyKeys:
    await apply_migrations(pool, "gateway", MIGRATIONS)
    return IdempotencyKeys(pool, lease_seconds=30)


async def test_the_first_answer_is_returned_byte_for_byte(keys: IdempotencyKeys) -> None:
    fingerprint = request_hash("POST", "/v1/x", b'{"a":1}')
    assert await keys.claim("sc-1", "key-00001", fingerprint) is None
    await keys.complete("sc-1", "key-00001", StoredResponse(201, b'{"event_id":"e1"}'))
    assert await keys.claim("sc-1", "key-00001", fingerprint) == StoredResponse(201, b'{"event_id":"e1"}')


async def test_the_same_key_with_another_body_is_422(keys: IdempotencyKeys) -> None:
    await keys.claim("sc-1", "key-00002", request_hash("POST", "/v1/x", b'{"a":1}'))
    with pytest.raises(ProblemError) as refused:
        await keys.claim("sc-1", "key-00002", request_hash("POST", "/v1/x", b'{"a":2}'))
    assert refused.value.problem.status == 422 and refused.value.problem.field == "Idempotency-Key"


async def test_a_request_still_in_flight_with_the_same_key_is_409_after_waiting(keys: IdempotencyKeys) -> None:
    fingerprint = request_hash("POST", "/v1/x", b"{}")
    await keys.claim("sc-1", "key-00003", fingerprint)
    with pytest.raises(ProblemError) as refused:
        await keys.claim("sc-1", "key-00003", fingerprint, wait=0.1)
    assert refused.value.problem.status == 409


async def test_a_repeat_waiting_on_the_first_gets_its_answer(keys: IdempotencyKeys) -> None:
    fingerprint = request_hash("POST", "/v1/x", b"{}")
    await keys.claim("sc-1", "key-00006", fingerprint)
    waiting = asyncio.create_task(keys.claim("sc-1", "key-00006", fingerprint, wait=5))
    await asyncio.sleep(0.1)
    await keys.complete("sc-1", "key-00006", StoredResponse(201, b"first"))
    assert await waiting == StoredResponse(201, b"first")


async def test_a_claim_left_by_a_crashed_replica_can_be_taken_over(pool: asyncpg.Pool) -> None:
    await apply_migrations(pool, "gateway", MIGRATIONS)
    short = IdempotencyKeys(pool, lease_seconds=0.001)
    fingerprint = request_hash("POST", "/v1/x", b"{}")
    await short.claim("sc-1", "key-00004", fingerprint)
    await pool.execute("SELECT pg_sleep(0.01)")
    assert await short.claim("sc-1", "key-00004", fingerprint) is None


async def test_a_released_claim_is_processed_afresh(keys: IdempotencyKeys) -> None:
    fingerprint = request_hash("POST", "/v1/x", b"{}")
    await keys.claim("sc-1", "key-00005", fingerprint)
    await keys.release("sc-1", "key-00005")
    assert await keys.claim("sc-1", "key-00005", fingerprint) is None


def test_keys_of_different_people_are_different_commands() -> None:
    assert command_id("sc-1", "key-1") == command_id("sc-1", "key-1")
    assert command_id("sc-1", "key-1") != command_id("sc-2", "key-1")


# This connection's own flushes of the WAL to disk (Postgres 18: I/O statistics per backend).
WAL_SYNCS = "SELECT coalesce(sum(fsyncs), 0) FROM pg_stat_get_backend_io(pg_backend_pid()) WHERE object = 'wal'"


async def test_a_claim_does_not_wait_for_the_disk_and_the_answer_does(database_url: str) -> None:
    """On one connection, whose own flushes of the WAL Postgres counts: none for the claims, one per stored answer."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        await apply_migrations(pool, "gateway", MIGRATIONS)
        keys = IdempotencyKeys(pool, lease_seconds=30)

        async def syncs() -> int:
            async with pool.acquire() as conn:
                await conn.execute("SELECT pg_stat_force_next_flush()")
                await conn.execute("SELECT 1")  # the statement after the forced flush sees it
                return int(await conn.fetchval(WAL_SYNCS))

        fingerprint = request_hash("POST", "/v1/x", b"{}")
        before = await syncs()
        for n in range(20):
            assert await keys.claim("sc-quick", f"key-q{n:04d}", fingerprint) is None
        claimed = await syncs()
        for n in range(20):
            await keys.complete("sc-quick", f"key-q{n:04d}", StoredResponse(201, b"answer"))
        answered = await syncs()
        assert claimed - before == 0, "a claim waits for nobody's disk"
        assert answered - claimed >= 20, "each answer is on disk before it is given"
        assert await pool.fetchval("SHOW synchronous_commit") == "on", "the connection itself is left as it was"
    finally:
        await pool.close()

"""Pools against a real Postgres: what a connection carries back into the pool."""

import pytest

from shared.runtime.postgres import create_pool

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("stateless", [False, True], ids=["default", "stateless"])
async def test_only_a_stateless_pool_gives_connections_back_without_resetting_the_session(
    database_url: str, stateless: bool
) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1, stateless=stateless)
    try:
        async with pool.acquire() as conn:
            default = await conn.fetchval("SHOW application_name")
            await conn.execute("SET application_name = 'left behind'")
        async with pool.acquire() as conn:  # the same connection: the pool holds one
            left = await conn.fetchval("SHOW application_name")
            async with conn.transaction():
                await conn.execute("CREATE TEMPORARY TABLE scratch (n int) ON COMMIT DROP")
        assert left == ("left behind" if stateless else default)
        async with pool.acquire() as conn:  # an open transaction is rolled back either way
            assert not conn.is_in_transaction()
    finally:
        await pool.close()

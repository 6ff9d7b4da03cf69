"""Batched read-model writes against real Postgres: the same rows as one statement at a time, in far fewer trips."""

import asyncio
import random
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.runtime.postgres import Connection, JsonText
from shared.runtime.writebatch import COPY_FROM_ROWS, Insert, WriteBatch

pytestmark = pytest.mark.integration

# Writes on one key that do not commute with each other: their order decides the row.
CREATE = "INSERT INTO rows (key, text, number) VALUES ($1, $2, 1) ON CONFLICT (key) DO NOTHING"
APPEND = "UPDATE rows SET text = text || $2 WHERE key = $1"
DOUBLE = "UPDATE rows SET number = number * 2 + length(text) WHERE key = $1"
REMOVE = "DELETE FROM rows WHERE key = $1"
STATEMENTS = (CREATE, APPEND, DOUBLE, REMOVE)


def random_writes(seed: int, count: int, keys: int) -> list[tuple[str, tuple[object, ...]]]:
    chance = random.Random(seed)
    writes: list[tuple[str, tuple[object, ...]]] = []
    for _ in range(count):
        statement = chance.choices(STATEMENTS, weights=(3, 4, 2, 1))[0]
        key = f"k{chance.randrange(keys)}"
        writes.append((statement, (key, chance.choice("abc")) if statement in (CREATE, APPEND) else (key,)))
    return writes


async def rows(conn: Connection) -> list[tuple[str, str, int]]:
    return [tuple(r) for r in await conn.fetch("SELECT key, text, number FROM rows ORDER BY key")]


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    async with pool.acquire() as conn:
        await conn.execute("CREATE TEMPORARY TABLE rows (key text PRIMARY KEY, text text NOT NULL, number int)")
        yield conn


async def test_writes_in_a_batch_leave_the_rows_as_one_statement_at_a_time_does(conn: Connection) -> None:
    for seed in range(40):
        writes = random_writes(seed, count=60, keys=random.Random(seed).choice((1, 3, 8)))
        async with conn.transaction():
            for statement, args in writes:
                await conn.execute(statement, *args)
            expected = await rows(conn)
            await conn.execute("TRUNCATE rows")
            batch = WriteBatch(conn)
            for statement, args in writes:
                await batch.execute(statement, *args)
            await batch.flush()
            assert await rows(conn) == expected, f"seed {seed}"
            await conn.execute("TRUNCATE rows")


async def test_a_batch_sends_one_statement_per_wave_not_per_row(conn: Connection) -> None:
    batch = WriteBatch(conn)
    for key in range(500):
        await batch.execute(CREATE, f"k{key}", "a")
        await batch.execute(APPEND, f"k{key}", "b")
        await batch.execute(APPEND, f"k{key}", "c")  # the same statement again: the same wave
    await batch.flush()
    assert batch.round_trips == 2
    assert {text for _, text, _ in await rows(conn)} == {"abc"}


async def test_a_read_in_a_batch_sees_the_writes_made_before_it(conn: Connection) -> None:
    batch = WriteBatch(conn)
    await batch.executemany(CREATE, [("k1", "a"), ("k2", "b")])
    assert await batch.fetchval("SELECT string_agg(text, '' ORDER BY key) FROM rows") == "ab"
    await batch.execute(REMOVE, "k1")
    assert [r["key"] for r in await batch.fetch("SELECT key FROM rows")] == ["k2"]


async def test_a_batch_filled_while_the_one_before_is_sent_reads_and_writes_after_it(conn: Connection) -> None:
    first = WriteBatch(conn)
    await first.executemany(CREATE, [("k1", "a"), ("k2", "b")])
    await first.execute("SELECT pg_sleep(0.2)")  # still being sent while the next batch is filled
    sending = asyncio.create_task(first.flush())
    second = WriteBatch(conn, after=sending)
    await second.execute(APPEND, "k1", "c")
    # The read waits for the first batch, then sends the second's writes before it: it sees both, in order.
    assert await second.fetchval("SELECT string_agg(text, '' ORDER BY key) FROM rows") == "acb"
    assert sending.done()


async def test_inserts_go_as_one_statement_or_by_copy_and_leave_the_same_rows(conn: Connection) -> None:
    await conn.execute("CREATE TEMPORARY TABLE facts (key text, n int, data jsonb, at date)")
    insert = Insert("facts", ("key", "n", "data", "at"))
    for count in (1, 5, COPY_FROM_ROWS - 1, COPY_FROM_ROWS, 3 * COPY_FROM_ROWS):
        made = [(f"k{n % 7}", n, JsonText(f'{{"n": {n}}}') if n % 2 else {"n": [n]}, None) for n in range(count)]
        batch = WriteBatch(conn)
        await batch.executemany(insert, made)
        await batch.execute(APPEND, "none", "x")  # another statement in the same wave
        await batch.flush()
        assert batch.round_trips == 2, "one statement or one COPY for the inserts, whatever their number"
        found = await conn.fetch("SELECT key, n, data, at FROM facts ORDER BY n")
        assert [tuple(r) for r in found] == [(k, n, {"n": n} if n % 2 else {"n": [n]}, at) for k, n, _, at in made]
        await conn.execute("TRUNCATE facts")

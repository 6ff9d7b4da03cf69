"""The benchmark's floor under a rebuild: the read models' rows COPYed back leave the tables exactly as they were."""

import asyncpg
import psutil
import pytest

from bench.rebuild import copy_back
from shared.runtime.projections import table_checksums

pytestmark = pytest.mark.integration


async def test_copying_the_rows_back_leaves_every_table_as_it_was(pool: asyncpg.Pool, database_url: str) -> None:
    await pool.execute(
        "CREATE TABLE forms (subject_id text PRIMARY KEY, data jsonb NOT NULL, recorded_at timestamptz);"
        "CREATE INDEX forms_time ON forms (recorded_at);"
        "CREATE TABLE criteria (subject_id text, code text, blocks boolean, PRIMARY KEY (subject_id, code))"
    )
    await pool.execute(
        "INSERT INTO forms SELECT 'S' || n, jsonb_build_object('n', n, 'codes', ARRAY['IN01', 'EX05']), now() "
        "FROM generate_series(1, 300) AS n"
    )
    await pool.execute("INSERT INTO criteria SELECT 'S' || n, 'IN0' || n % 9, n % 2 = 0 FROM generate_series(1, 300) n")
    before = await table_checksums(pool, ["forms", "criteria"])
    run = await copy_back(database_url, ["forms", "criteria"], events=300, postgres=psutil.Process())
    assert await table_checksums(pool, ["forms", "criteria"]) == before
    assert await pool.fetchval("SELECT count(*) FROM forms") == 300
    assert run.events_per_s > 0

"""The embedded servers behind `make run`, the tests and the crash tests come back after a SIGKILL."""

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest

from devstack.servers import EmbeddedPostgres

pytestmark = pytest.mark.integration


def test_postgres_restarts_after_a_kill_even_when_its_parent_folder_was_made_private(tmp_path: Path) -> None:
    """As root the server runs as a system user; a folder above its data made private again (as another
    pytest session does to /tmp/pytest-of-<user>) must not keep it from coming back."""
    parent = tmp_path / "private"
    postgres = EmbeddedPostgres(parent / "pg", database="probe")
    url = postgres.start()
    try:
        postgres.kill()
        os.chmod(parent, 0o700)
        postgres.restart()
        assert asyncio.run(answers(url)) == 1
    finally:
        postgres.stop()


async def answers(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()

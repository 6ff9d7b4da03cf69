"""Kill every component once, in a random order, under a mixed write load; nothing acknowledged may be lost.

The short form of `make chaos`: one round, a few clients, on servers of its own.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.crash import chaos_system, crash_and_verify
from devstack.system import COMPONENTS, LocalSystem
from shared.readmodels.catalogue import ReadModel

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    data: Path = tmp_path_factory.mktemp("chaos")
    running = chaos_system(data)
    try:
        running.start(log_dir=data / "logs")
        yield running
    finally:
        running.stop()


async def test_killing_any_component_under_load_loses_doubles_and_leaves_stuck_nothing(system: LocalSystem) -> None:
    lines: list[str] = []
    run = await crash_and_verify(system, rounds=1, clients=4, seed=23, say=lines.append)
    assert run.failure is None, run.failure
    assert run.findings.problems == [], "\n".join(run.findings.problems + lines)
    # The crashes really happened under load, and the load really felt them.
    assert sorted(c.component for c in run.crashes) == sorted(COMPONENTS)
    assert run.findings.counts["answers_201"] > 100
    assert run.findings.counts["requests_retried"] > 0
    assert run.findings.counts["sae_reported"] > 0
    assert run.findings.counts["read_models_compared"] == len(ReadModel)

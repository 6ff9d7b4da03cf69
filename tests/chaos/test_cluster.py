"""The system on a three-node JetStream cluster, every stream replicated on each node: under a mixed write load
the event stream's leader, a follower and the metadata leader are SIGKILLed and restarted, and a node is cut
off (SIGSTOP) for longer than an election takes. Nothing acknowledged is lost or doubled, every SAE alert
arrives once, the read models equal a rebuild, and no key is left in flight.

The short form of `make chaos CLUSTER=3`: one round, a few clients.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.crash import CLUSTER_FAULTS, chaos_system, crash_and_verify
from devstack.servers import NatsCluster
from devstack.system import LocalSystem
from shared.readmodels.catalogue import ReadModel
from shared.runtime import bus
from shared.runtime.eventstore import ALERTS_STREAM, EVENTS_STREAM

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    data: Path = tmp_path_factory.mktemp("chaos-cluster")
    running = chaos_system(data, cluster=3)
    try:
        running.start(log_dir=data / "logs")
        yield running
    finally:
        running.stop()


async def test_the_streams_are_replicated_on_every_node(system: LocalSystem) -> None:
    nc = await bus.connect(system.nats_url, name="trial-test-cluster")
    try:
        for stream in (EVENTS_STREAM, ALERTS_STREAM):
            info = await nc.jetstream().stream_info(stream)
            assert info.config.num_replicas == 3 and info.cluster is not None
            assert info.cluster.leader and len(info.cluster.replicas or []) == 2, info.cluster
    finally:
        await nc.close()


async def test_losing_leaders_and_a_cut_off_node_under_load_loses_doubles_and_leaves_stuck_nothing(
    system: LocalSystem,
) -> None:
    assert isinstance(system.nats, NatsCluster)
    lines: list[str] = []
    run = await crash_and_verify(system, rounds=1, clients=4, seed=29, say=lines.append)
    assert run.failure is None, "\n".join([run.failure, *lines])
    assert run.findings.problems == [], "\n".join(run.findings.problems + lines)
    # Every fault really happened, each to the node that held the role then, under a load that felt them.
    assert [c.component.partition(" (")[2].rstrip(")") for c in run.crashes] == list(CLUSTER_FAULTS)
    assert [c.fault for c in run.crashes] == ["SIGKILL"] * 3 + ["partition"]
    assert len({c.leader for c in run.leaders if c.leader}) >= 2, "the stream's leadership moved"
    assert run.findings.counts["answers_201"] > 50
    assert run.findings.counts["sae_reported"] > 0
    assert run.findings.counts["read_models_compared"] == len(ReadModel)

"""The system on a three-node JetStream cluster, every stream replicated on each node: under a mixed write load
the event stream's leader, a follower and the metadata leader are SIGKILLed and restarted, and a node is cut
off (SIGSTOP) for longer than an election takes. Nothing acknowledged is lost or doubled, every SAE alert
arrives once, the read models equal a rebuild, and no key is left in flight.

The short form of `make chaos CLUSTER=3`: one round, a few clients.
"""

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from chaos.crash import CLUSTER_FAULTS, chaos_system, crash_and_verify
from devstack.servers import NatsCluster
from devstack.system import LocalSystem
from shared.contracts.alerts import ALERTS_STREAM
from shared.contracts.events import EventMetadata
from shared.readmodels.catalogue import ReadModel
from shared.runtime import bus
from shared.runtime.decisions import decide_and_append
from shared.runtime.eventstore import EVENTS_STREAM, ConcurrencyConflict, EventStore, subject_history
from tests.conftest import SubjectIds
from tests.integration.test_eventstore import consent, envelope

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


async def test_two_writers_recording_the_same_event_at_once_record_it_once_and_the_other_is_told(
    system: LocalSystem,
) -> None:
    """Two replicas carrying out one command append the same event at the same moment: on a replicated stream
    the server may answer the second that the first is still being stored. That is a conflict the writer reads
    again after, never an error that fails the command or a replica's start."""
    writers = [await bus.connect(system.nats_url, name=f"trial-test-writer-{i}") for i in range(2)]
    outcomes: Counter[str] = Counter()
    try:
        stores = [EventStore(nc.jetstream()) for nc in writers]
        for _ in range(30):
            site, subject = SubjectIds.synthetic()
            event, history = envelope(site, subject), subject_history(site, subject)
            answers = await asyncio.gather(
                *(s.append([event], subject_filter=history, expected_last_sequence=0) for s in stores),
                return_exceptions=True,
            )
            assert all(isinstance(a, list | ConcurrencyConflict) for a in answers), answers
            outcomes.update(type(a).__name__ for a in answers)
            recorded = await EventStore(writers[0].jetstream()).load(history)
            assert [e.envelope.id for e in recorded.events] == [event.id]
    finally:
        for nc in writers:
            await nc.close()
    assert outcomes["list"] == 30, outcomes  # each time exactly one writer recorded it


async def test_two_replicas_carrying_out_one_command_at_once_both_answer_with_the_one_fact(
    system: LocalSystem,
) -> None:
    writers = [await bus.connect(system.nats_url, name=f"trial-test-replica-{i}") for i in range(2)]
    try:
        stores = [EventStore(nc.jetstream()) for nc in writers]
        for _ in range(10):
            site, subject = SubjectIds.synthetic()
            meta = EventMetadata("/trial/test", site, subject, "tester", "corr", "1.0")
            command = uuid4()
            outcomes = await asyncio.gather(
                *(
                    decide_and_append(
                        store,
                        subject_filter=subject_history(site, subject),
                        decide=lambda _: [consent()],
                        meta=meta,
                        command_id=command,
                    )
                    for store in stores
                )
            )
            assert sorted(o.replayed for o in outcomes) == [False, True]
            assert [e.envelope.id for e in outcomes[0].events] == [e.envelope.id for e in outcomes[1].events]
            recorded = await stores[0].load(subject_history(site, subject))
            assert len(recorded.events) == 1
    finally:
        for nc in writers:
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

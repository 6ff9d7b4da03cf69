"""The cyclic garbage collector is off while any replay runs and as it was once the last one ends."""

import contextlib
import gc
from collections.abc import Iterator

import pytest

from shared.runtime.projections import cyclic_collector_paused


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_the_collector_is_off_during_a_replay_and_on_after() -> None:
    with cyclic_collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_stays_off_until_the_last_of_two_overlapping_replays_ends() -> None:
    first, second = cyclic_collector_paused(), cyclic_collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first ends while the second still runs
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_replay_that_fails_turns_the_collector_back_on() -> None:
    with contextlib.suppress(RuntimeError), cyclic_collector_paused():
        raise RuntimeError("the stream went away")
    assert gc.isenabled()


def test_a_collector_turned_off_before_the_replay_stays_off_after() -> None:
    gc.disable()
    with cyclic_collector_paused():
        pass
    assert not gc.isenabled()

"""A service's clock (missed visits, escalations, the time-based edit checks): it ticks from start, keeps
ticking through a failure it may not meet next time, and stops with the service."""

import asyncio

import nats.errors
import pytest
from nats.aio.client import Client

from shared.runtime.service import ServiceRuntime
from shared.runtime.settings import TrialSettings
from tests.conftest import Servers

pytestmark = pytest.mark.integration


async def test_a_clock_ticks_from_start_through_a_transient_failure_and_stops_with_the_service(
    servers: Servers, nc: Client
) -> None:
    runtime = ServiceRuntime.create("clock-probe", TrialSettings(nats_url=servers.nats_url), answers_commands=False)
    ticks: list[int] = []
    three = asyncio.Event()

    async def job() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise nats.errors.TimeoutError  # the bus was away this once
        if len(ticks) == 3:
            three.set()

    runtime.every(0.01, job, name="probe_check")
    await runtime.start()
    try:
        await asyncio.wait_for(three.wait(), timeout=10)
    finally:
        await runtime.stop()
        await runtime.broker.stop()
    stopped_at = len(ticks)
    await asyncio.sleep(0.1)
    assert stopped_at >= 3 and len(ticks) == stopped_at, "the clock stops with the service"

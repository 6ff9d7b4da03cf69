"""A durable consumer's messages are handed over as they arrive, whatever pull request they meet on the server."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import nats.js.errors
import pytest
from nats.js import JetStreamContext, api

from shared.runtime.eventstore import PullFeed

pytestmark = pytest.mark.integration


@pytest.fixture
async def stream(js: JetStreamContext) -> AsyncIterator[str]:
    """A scratch stream of its own with one durable consumer, `feed`, acknowledging each message."""
    name = f"FEED_{uuid.uuid4().hex[:8]}"
    await js.add_stream(api.StreamConfig(name=name, subjects=[f"{name}.>"], storage=api.StorageType.MEMORY))
    await js.add_consumer(name, api.ConsumerConfig(durable_name="feed", ack_policy=api.AckPolicy.EXPLICIT))
    yield name
    await js.delete_stream(name)


async def test_a_message_meeting_a_request_served_in_part_is_handed_over_before_the_request_expires(
    js: JetStreamContext, stream: str
) -> None:
    async with PullFeed(js, stream, "feed", batch=16, expires=30) as feed:
        await js.publish(f"{stream}.a", b"first")
        [first] = await feed.next(wait=10)
        await first.ack()
        # The request is still open on the server, 15 messages short: the next message meets it.
        await js.publish(f"{stream}.a", b"second")
        async with asyncio.timeout(10):  # a third of the request's life: held until it expired, this would fail
            [second] = await feed.next(wait=30)
    assert (first.data, second.data) == (b"first", b"second")


async def test_every_message_comes_once_in_order_and_no_batch_is_larger_than_asked(
    js: JetStreamContext, stream: str
) -> None:
    for i in range(40):
        await js.publish(f"{stream}.a", str(i).encode())
    received: list[int] = []
    async with PullFeed(js, stream, "feed", batch=16) as feed:
        while len(received) < 40:
            msgs = await feed.next(wait=5)
            assert 0 < len(msgs) <= 16
            for msg in msgs:
                received.append(int(msg.data))
                await msg.ack()
        assert await feed.next(wait=0.3) == []
    assert received == list(range(40))


async def test_nothing_within_the_wait_is_an_empty_batch_and_a_message_after_it_still_comes(
    js: JetStreamContext, stream: str
) -> None:
    async with PullFeed(js, stream, "feed", batch=4, expires=0.5) as feed:
        assert await feed.next(wait=1.2) == []  # its requests expired meanwhile, and were asked again
        await js.publish(f"{stream}.a", b"late")
        [late] = await feed.next(wait=10)
    assert late.data == b"late"


async def test_a_consumer_deleted_under_the_feed_is_an_error_for_its_owner_to_act_on(
    js: JetStreamContext, stream: str
) -> None:
    async with PullFeed(js, stream, "feed", batch=4) as feed:
        await js.delete_consumer(stream, "feed")
        with pytest.raises(nats.js.errors.Error):
            async with asyncio.timeout(10):
                while True:
                    await feed.next(wait=0.5)


async def test_the_end_of_a_request_given_up_on_leaves_no_more_requests_open_than_before(
    js: JetStreamContext, stream: str
) -> None:
    async with PullFeed(js, stream, "feed", batch=4, expires=0.3) as feed:
        for _ in range(6):
            assert await feed.next(wait=0.05) == []
            # The event loop held past the request's life, on purpose: its end is read late, after another ask.
            time.sleep(0.5)  # noqa: ASYNC251
        for _ in range(4):
            assert await feed.next(wait=0.4) == []
        waiting = (await js.consumer_info(stream, "feed")).num_waiting
        await js.publish(f"{stream}.a", b"still")
        [still] = await feed.next(wait=10)
    assert waiting <= 2 and still.data == b"still"

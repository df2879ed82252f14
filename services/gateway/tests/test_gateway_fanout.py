"""Watch fan-out: bounded queues, drop on overflow, close on shutdown."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.errors import ApiError, ErrorKind
from gateway.core.fanout import Hub, SubscriberClosed


async def test_subscribers_get_matching_changes_in_order() -> None:
    hub: Hub[int] = Hub(capacity=10)
    evens = hub.subscribe(lambda n: n % 2 == 0)
    every = hub.subscribe(lambda n: True)
    for n in range(5):
        hub.publish(n)
    assert [await evens.next() for _ in range(3)] == [0, 2, 4]
    assert [await every.next() for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_a_waiting_subscriber_wakes_on_publish() -> None:
    hub: Hub[str] = Hub(capacity=2)
    sub = hub.subscribe(lambda s: True)
    waiter = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    hub.publish("x")
    assert await asyncio.wait_for(waiter, 1) == "x"


async def test_a_slow_subscriber_is_dropped_and_the_others_keep_going() -> None:
    hub: Hub[int] = Hub(capacity=3)
    slow = hub.subscribe(lambda n: True)
    fast = hub.subscribe(lambda n: True)
    for n in range(3):
        hub.publish(n)
        assert await fast.next() == n
    hub.publish(3)  # slow has 3 buffered: this one overflows it
    assert await fast.next() == 3
    assert len(hub) == 1 and hub.dropped == 1 and slow.pending == 0  # its buffer is freed at once
    with pytest.raises(ApiError) as err:
        await slow.next()
    assert err.value.kind is ErrorKind.RESOURCE_EXHAUSTED and "resubscribe" in err.value.message
    hub.publish(4)
    assert await fast.next() == 4


async def test_close_all_ends_every_subscriber_after_what_it_has() -> None:
    hub: Hub[int] = Hub(capacity=5)
    sub = hub.subscribe(lambda n: True)
    hub.publish(1)
    hub.close_all()
    assert await sub.next() == 1
    with pytest.raises(SubscriberClosed):
        await sub.next()
    late = hub.subscribe(lambda n: True)
    with pytest.raises(SubscriberClosed):
        await late.next()


async def test_leaving_the_context_unsubscribes() -> None:
    hub: Hub[int] = Hub(capacity=5)
    with hub.subscribe(lambda n: True):
        assert len(hub) == 1
    assert len(hub) == 0

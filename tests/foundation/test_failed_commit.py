"""A commit that fails across a rebalance does not count as made (smartcity.streams.transport).

Faust's own bookkeeping around the broker: the broker's two calls the race needs (the commit
and the seek's read of committed offsets) are the test's, so that it can interleave them as a
broker restart did: the new generation's seek runs while the old generation's commit is in
flight, and the commit then fails ("already rebalanced").
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.types import TP

import smartcity.streams.transport  # noqa: F401  (registers smartcity://)
from smartcity.streams import RewindingConsumer

TOPIC = TP("camera.heartbeats.v1", 2)


class _Broker:
    """What the broker holds of the group: its committed offset; a commit held until released."""

    def __init__(self, committed: int) -> None:
        self.committed = committed
        self.release = asyncio.Event()
        self.in_flight = asyncio.Event()
        self.rebalanced = False

    async def commit(self, offsets: Any) -> bool:
        self.in_flight.set()
        await self.release.wait()
        if self.rebalanced:
            return False  # what the driver answers to CommitFailedError "already rebalanced"
        self.committed = offsets[TOPIC]
        return True

    async def seek_to_committed(self) -> dict[TP, int]:
        return {TOPIC: self.committed}


def _consumer(broker: _Broker) -> RewindingConsumer:
    app = faust.App("test-failed-commit", broker="smartcity://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    assert isinstance(consumer, RewindingConsumer)
    consumer.assignment = lambda: {TOPIC}  # type: ignore[method-assign]
    consumer._commit = broker.commit  # type: ignore[method-assign]
    consumer.seek_to_committed = broker.seek_to_committed  # type: ignore[method-assign]

    async def flushed() -> None:
        return None

    app.producer.flush = flushed  # type: ignore[method-assign]
    return consumer


def _process(consumer: RewindingConsumer, offsets: range) -> None:
    consumer._acked[TOPIC].extend(offsets)
    consumer._acked_index[TOPIC].update(offsets)


@pytest.mark.parametrize("rebalanced", [True, False])
async def test_a_commit_failed_across_a_seek_leaves_the_records_read_again_to_commit(
    rebalanced: bool,
) -> None:
    broker = _Broker(committed=78)
    consumer = _consumer(broker)
    await consumer.perform_seek()
    _process(consumer, range(78, 128))
    commit = asyncio.ensure_future(consumer.commit())
    await broker.in_flight.wait()
    if rebalanced:  # the group rebalances under the commit; the new generation seeks
        broker.rebalanced = True
        await consumer.perform_seek()
    broker.release.set()
    assert await commit is not rebalanced
    if rebalanced:  # the records from 78 on are read and processed again
        assert consumer._committed_offset[TOPIC] == 78
        _process(consumer, range(78, 128))
        broker.rebalanced = False
        broker.release.set()
        assert await consumer.commit()
    assert broker.committed == 128

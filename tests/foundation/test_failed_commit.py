"""Faust's commit bookkeeping, as the platform's consumer corrects it (smartcity.streams.transport):
a commit that fails across a rebalance does not count as made, and records fetched before the
start-up seek are no gap.

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


async def _deliver(consumer: RewindingConsumer, offsets: range) -> None:
    """Records of TOPIC through the consumer's delivery (as its fetch loop hands them over), to
    a stream that drops them (the test acks them with `_process`)."""

    async def dropped(message: Any) -> None:
        return None

    consumer.app.topics._tp_to_callback[TOPIC] = dropped
    for offset in offsets:
        message = faust.types.Message(TOPIC.topic, TOPIC.partition, offset, 0.0, 0, None, b"k", b"v", None,
                                      tp=TOPIC, generation_id=consumer.app.consumer_generation_id)
        await consumer.callback(message)


async def test_records_fetched_before_the_start_seek_are_not_a_gap() -> None:
    """Faust's start-up seek moves its last read offset back to the committed one while records
    fetched before it are still delivered: the next one is no gap over what was processed."""
    broker = _Broker(committed=595)
    consumer = _consumer(broker)
    await consumer.perform_seek()
    await _deliver(consumer, range(595, 627))
    _process(consumer, range(595, 622))
    await consumer.perform_seek()  # the read offset back at 595, records up to 626 delivered
    await consumer._add_gap(TOPIC, 596, 627)  # what Faust's fetch loop does for the record at 627
    await _deliver(consumer, range(627, 628))
    _process(consumer, range(622, 628))
    broker.release.set()
    assert await consumer.commit()
    assert broker.committed == 628  # Faust's own: 597, then one offset a commit


async def test_offsets_never_fetched_are_a_gap_and_the_record_after_it_is_not() -> None:
    broker = _Broker(committed=90)
    consumer = _consumer(broker)
    await consumer.perform_seek()
    await _deliver(consumer, range(90, 101))
    _process(consumer, range(90, 101))
    await consumer._add_gap(TOPIC, 101, 105)  # 101-104 do not exist (compacted away)
    await _deliver(consumer, range(105, 106))
    broker.release.set()
    assert await consumer.commit()
    assert broker.committed == 101  # nothing past the gap processed yet
    _process(consumer, range(105, 106))
    assert await consumer.commit()
    assert broker.committed == 106

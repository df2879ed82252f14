"""A rebuild worker's write queue: its batches written one at a time, in the order read, and
none after one that failed (a later batch's offsets never reach the checkpoint alone)."""

from __future__ import annotations

import asyncio
import functools
import threading

import pytest

from gateway.adapters.rebuild import _OrderedWrites


async def test_writes_run_one_at_a_time_in_order_with_at_most_so_many_queued() -> None:
    writes = _OrderedWrites(ahead=2)
    done: list[int] = []
    running = threading.Lock()
    release = threading.Event()

    def write(n: int) -> None:
        assert running.acquire(blocking=False), "two writes at once"
        try:
            release.wait(5)
            done.append(n)
        finally:
            running.release()

    writes.submit(lambda: write(0))
    writes.submit(lambda: write(1))
    room = asyncio.ensure_future(writes.room())
    await asyncio.sleep(0.05)
    assert not room.done()  # two queued, none finished: no room for a third
    release.set()
    await room
    for n in range(2, 6):
        await writes.room()
        writes.submit(functools.partial(write, n))
    await writes.drain()
    writes.close()
    assert done == [0, 1, 2, 3, 4, 5]


async def test_after_a_failed_write_none_that_follows_runs() -> None:
    writes = _OrderedWrites(ahead=4)
    done: list[str] = []

    def failing() -> None:
        raise OSError("disk full")

    writes.submit(lambda: done.append("first"))
    writes.submit(failing)
    writes.submit(lambda: done.append("after the failure"))
    with pytest.raises(OSError, match="disk full"):
        await writes.drain()
    with pytest.raises(RuntimeError, match="an earlier write of this worker failed"):
        await writes.drain()
    writes.close()
    assert done == ["first"]

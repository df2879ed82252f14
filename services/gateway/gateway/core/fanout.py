"""Fan-out of view changes to watch streams, with a bounded queue per subscriber.

Policy for slow subscribers: each subscriber buffers at most `capacity` changes. When a change
arrives and its buffer is full, the subscriber is dropped: it is removed from the hub at once
(so it costs nothing more) and its stream ends with RESOURCE_EXHAUSTED; the client resubscribes
with send_snapshot=true to resynchronise. Dropping (rather than coalescing by key) keeps the
order of changes intact for everyone who keeps up and makes falling behind visible. Publishing
never waits, so one slow subscriber never holds up the projector or the others.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from gateway.core.errors import ApiError, ErrorKind

T = TypeVar("T")


class SubscriberClosed(Exception):
    """The hub closed (the gateway is shutting down)."""


class Subscriber(Generic[T]):
    def __init__(self, hub: Hub[T], accept: Callable[[T], bool], capacity: int) -> None:
        self._hub = hub
        self._accept = accept
        self._capacity = capacity
        self._items: deque[T] = deque()
        self._wakeup = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def offer(self, item: T) -> None:
        if self.overflowed or self.closed or not self._accept(item):
            return
        if len(self._items) >= self._capacity:
            self.overflowed = True
            self._items.clear()
            self._hub.remove(self)
        else:
            self._items.append(item)
        self._wakeup.set()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    async def next(self) -> T:
        """The next change; raises ApiError(RESOURCE_EXHAUSTED) after an overflow."""
        while True:
            if self.overflowed:
                raise ApiError(
                    ErrorKind.RESOURCE_EXHAUSTED,
                    f"watch stream fell more than {self._capacity} changes behind and was "
                    "dropped; read faster or resubscribe with send_snapshot",
                )
            if self._items:
                return self._items.popleft()
            if self.closed:
                raise SubscriberClosed()
            self._wakeup.clear()
            await self._wakeup.wait()

    @property
    def pending(self) -> int:
        return len(self._items)

    def __enter__(self) -> Subscriber[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self._hub.remove(self)


class Hub(Generic[T]):
    """Subscribers of one kind of change."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._subscribers: set[Subscriber[T]] = set()
        self.dropped = 0
        self.closed = False

    def subscribe(self, accept: Callable[[T], bool]) -> Subscriber[T]:
        sub = Subscriber(self, accept, self.capacity)
        if self.closed:
            sub.close()
        else:
            self._subscribers.add(sub)
        return sub

    def remove(self, sub: Subscriber[T]) -> None:
        if sub in self._subscribers:
            self._subscribers.discard(sub)
            if sub.overflowed:
                self.dropped += 1

    def publish(self, item: T) -> None:
        for sub in list(self._subscribers):
            sub.offer(item)

    def close_all(self) -> None:
        self.closed = True
        for sub in list(self._subscribers):
            sub.close()
        self._subscribers.clear()

    def __len__(self) -> int:
        return len(self._subscribers)

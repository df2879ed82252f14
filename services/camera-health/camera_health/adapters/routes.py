"""Where an edge batch's heartbeat is applied: here at once, or forwarded through by-camera.

    edge batch (key site, partition p) ─► each heartbeat of camera c, partition q = murmur2(c)
        q owned here, its barrier read back ─────────────► applied at once (no second hop)
        q owned here, its barrier not read back yet ─────► forwarded to by-camera[q] and held;
                                                            applied when the barrier is read,
                                                            its forwarded copy skipped then
        q owned by another worker ───────────────────────► forwarded to by-camera[q]

A camera's state lives with its partition q (the partition its single heartbeats and its ticks
come on), not with its site's batch partition. When this worker owns q it applies the camera's
batch heartbeats itself. It must not overtake heartbeats of the same camera still waiting on
by-camera q, forwarded there before a rebalance (by the batch partition's previous owner, or by
a run of this worker that crashed). So at each generation the worker first sends a barrier
record to every owned q: everything forwarded before lies behind it. Until the agent has read
a partition's barrier, that partition's batch heartbeats are forwarded (so they are stored
before their batch is acknowledged) and held in memory; when the barrier is read, the held
ones are applied (they come right after it in by-camera order), and their forwarded copies,
which carry this generation's token, are skipped when read. Per camera the heartbeats therefore
reach the state in their batch partition's order, whichever way each took; a crash before the
barrier is read leaves the forwarded copies to be applied when read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Generic, TypeVar

# The key of a barrier record on by-camera (its value is an empty batch: an older worker reads
# it as a batch without heartbeats).
BARRIER_KEY = b"barrier"
# The header of a forwarded record naming the worker generation that sent it (and holds it).
FORWARDED_BY_HEADER = "camera.forwarded.by"

H = TypeVar("H")


class CameraRoutes(Generic[H]):
    """Per camera partition: whether this worker applies a batch's heartbeat at once, and
    what it holds until that partition's barrier is read."""

    def __init__(self) -> None:
        self.owned: frozenset[int] = frozenset()
        self.token = b""
        self._barriers: dict[int, int] = {}  # partition -> offset of this generation's barrier
        self._ready: set[int] = set()
        self._held: dict[int, list[H]] = {}

    def reset(self, owned: Iterable[int]) -> None:
        """A new generation (or a failed batch): nothing ready until its barriers are read."""
        self.owned = frozenset(owned)
        self.token = uuid.uuid4().hex.encode()
        self._barriers.clear()
        self._ready.clear()
        self._held.clear()

    def barrier_sent(self, partition: int, offset: int) -> None:
        """The broker stored this generation's barrier for `partition` at `offset`."""
        self._barriers[partition] = offset

    def direct(self, partition: int) -> bool:
        """Whether a batch heartbeat of `partition` is applied here now."""
        return partition in self._ready

    @property
    def ready(self) -> frozenset[int] | set[int]:
        """The partitions `direct` is true of (live: it only grows until the next `reset`)."""
        return self._ready

    def forwarded(self, partition: int, heartbeat: H) -> None:
        """A batch heartbeat of `partition` was sent to by-camera: held when it is this worker's."""
        if partition in self.owned:
            self._held.setdefault(partition, []).append(heartbeat)

    def read(self, partition: int, offset: int) -> list[H]:
        """The agent read by-camera `partition` at `offset`: when that reaches the partition's
        barrier, the partition is ready and the held heartbeats are returned, to apply now."""
        barrier = self._barriers.get(partition)
        if barrier is None or offset < barrier or partition in self._ready:
            return []
        self._ready.add(partition)
        return self._held.pop(partition, [])

    def skips(self, partition: int, token: bytes | None) -> bool:
        """Whether a forwarded record was this generation's own to a partition it owns, so
        applied from what it held. (One to a partition it did not own was not held: should the
        agent read it anyway, say while the assignment it saw was incomplete, it applies it.)"""
        return token is not None and token == self.token and partition in self.owned

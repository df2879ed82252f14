"""When each entity is next due, so a timer looks only at the entities that are due (pure Python).

    set("cam-1", 105.0) ─► heap (105.0, "cam-1") ─► pop_due(now=110.0) ─► ["cam-1"]
    set("cam-1", 120.0)    (the older entry is skipped when it comes up: lazy deletion)

A timer that scans every entity at every tick costs the whole fleet per tick whatever happens;
with deadlines a tick costs the entities that are due (a heap push per change, a pop per due).
"""

from __future__ import annotations

import heapq


class Deadlines:
    """Keys by the time they are next due; one deadline per key (setting it again replaces it)."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def set(self, key: str, at: float) -> None:
        if self._due.get(key) == at:
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, key))

    def discard(self, key: str) -> None:
        self._due.pop(key, None)

    def pop_due(self, now: float) -> list[str]:
        """The keys due before `now`, soonest first; they have no deadline any more."""
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] < now:
            at, key = heapq.heappop(heap)
            if self._due.get(key) == at:
                del self._due[key]
                due.append(key)
        if len(heap) > 4 * len(self._due) + 64:  # mostly replaced entries: rebuild
            self._heap = [(at, key) for key, at in self._due.items()]
            heapq.heapify(self._heap)
        return due

    def clear(self) -> None:
        self._due.clear()
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._due)

"""A short-lived cache of rendered public listings (GET /requests without ids).

A map of open requests is what every citizen's app asks for, with the same parameters: within
OPEN311_LIST_CACHE_S (1 s) the same listing is served from here instead of paging through the
gateway again. That is no weaker than the gateway itself, whose replicas' listings follow Kafka
a moment behind; a POST through this replica clears the cache, so its caller sees its own
request in the next listing. Bounded: the least recently stored entry goes first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class ListingCache:
    def __init__(self, ttl_s: float, max_entries: int = 256) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored, body = entry
        if now - stored >= self.ttl_s or now < stored:
            del self._entries[key]
            return None
        return body

    def put(self, key: Hashable, body: bytes, now: float) -> None:
        if self.ttl_s <= 0:
            return
        self._entries[key] = (now, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

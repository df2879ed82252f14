"""Rate limits per caller: one token bucket per api_key (hashed) or client address.

Unlike the gateway's callers, which come from its token file, the facade's callers are anyone
on the internet: the buckets live in a bounded LRU map, so a flood of new addresses evicts the
idlest buckets instead of growing memory. An evicted caller starts again with a full bucket,
which only ever errs on the side of serving.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from open311.core.errors import TOO_MANY_REQUESTS, Open311Error


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate: float, burst: float, max_callers: int = 10000) -> None:
        if rate <= 0 or burst < 1 or max_callers < 1:
            raise ValueError("rate > 0, burst >= 1 and max_callers >= 1 are required")
        self.rate, self.burst, self.max_callers = rate, burst, max_callers
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, caller: str, now: float) -> None:
        """Takes one token of the caller's bucket, or raises the 429 Open311Error."""
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = Bucket(self.burst, now)
            if len(self._buckets) > self.max_callers:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(caller)
            bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait_s = (1.0 - bucket.tokens) / self.rate
        raise Open311Error(
            TOO_MANY_REQUESTS,
            f"rate limit of {self.rate:g} requests/s (burst {self.burst:g}) exceeded; "
            f"retry in {wait_s:.1f} s",
            retry_after_s=wait_s,
        )


def caller_of(api_key: str, address: str) -> str:
    """The rate-limit key: the api_key's hash when there is one (never the key itself), else the address."""
    if api_key:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]
    return "addr:" + address

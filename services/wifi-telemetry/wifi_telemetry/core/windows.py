"""Event-time tumbling windows of the site statistics, and the per-site state behind them.

Windows are minute, hour and day, aligned to local time (`tz_offset_s`, WIB by default, so
"day" means the Purbalingga calendar day). Each number of a window is kept so that applying the
same input twice, or in another order across APs, gives the same result:

- rx/tx bytes: per AP, inside the AP's own state (applied once per seq); when an AP's bucket
  leaves its retention the site keeps the AP's final totals (`SiteState.closed`, replaced, not
  added, so a redelivery rewrites the same value);
- peak clients: per minute, the sum over the site's APs of each AP's highest client count in
  that minute; a window's peak is the highest such minute. The site keeps every AP's highest
  count per minute (`SiteState.minutes`, max updates) until no AP of the site can take data for
  that minute any more, so a minute's sum is complete whatever the order in which the APs'
  data arrive or were redelivered after a crash; the peaks are only ever raised (max). So a
  peak is a function of the accepted readings, idempotent and order-free;
- unique users and sessions started: exact sets of members (the first 64 bits of the client's
  HMAC, or of a hash of ap/session id), split in shards so one table record stays small; the
  count is the sum of the shard sizes. Counting is exact except for 64-bit hash collisions
  (probability about n^2 / 2^65: ~3e-12 for 10,000 users).

Data may change a window until `allowed_lateness_s` (event time) after it ended; later data for
it is dropped and counted. A heartbeat is judged against its own AP's newest heartbeat, a
session against the newest session its AP reported before (both that AP's order in its input
partition, so a function of the log; see processor.py). The site forgets a window once its
newest heartbeat is past keeping it (`kept_for`): such a window is never published again.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wifi_telemetry.config import WINDOW_SIZES

USERS = "u"
SESSIONS = "s"
# Shards per window: a day of a busy site holds thousands of members, a minute a handful.
SHARDS: dict[str, int] = {"minute": 1, "hour": 4, "day": 32}
MINUTE_S = WINDOW_SIZES["minute"]


def bucket_start(t: float, size: int, tz_offset_s: int) -> int:
    """Start (epoch seconds) of the window of length `size` holding event time `t`."""
    return math.floor((t + tz_offset_s) / size) * size - tz_offset_s


def bucket_key(window: str, start: int) -> str:
    return f"{window}:{start}"


# Window keys are parsed on every reading (is this window still open, still kept?) and there
# are only a few live ones at a time: each key is parsed once.
@functools.lru_cache(maxsize=1 << 16)
def split_bucket_key(key: str) -> tuple[str, int]:
    window, _, start = key.partition(":")
    return window, int(start)


@functools.lru_cache(maxsize=1 << 16)
def _bounds(key: str) -> tuple[int, int]:
    """(end, end + the window's length) of window `key`."""
    window, start = split_bucket_key(key)
    size = WINDOW_SIZES[window]
    return start + size, start + 2 * size


def bucket_end(key: str) -> int:
    return _bounds(key)[0]


def open_for(key: str, now: float, lateness_s: float) -> bool:
    """Whether data for window `key` still counts when the newest event time is `now`."""
    return _bounds(key)[0] + lateness_s >= now


def kept_for(key: str, now: float, lateness_s: float) -> bool:
    """Whether the site still keeps (and publishes) window `key`: one window longer than open."""
    return _bounds(key)[1] + lateness_s >= now


def user_member(client_hash: str) -> str:
    return client_hash[:16]


def session_member(ap_id: str, session_id: str) -> str:
    return hashlib.blake2b(f"{ap_id}\x1f{session_id}".encode(), digest_size=8).hexdigest()


def shard_of(member: str, window: str) -> int:
    return int(member[:8], 16) % SHARDS[window]


def distinct_key(site_id: str, kind: str, key: str, shard: int) -> str:
    return f"d/{site_id}/{kind}/{key}/{shard}"


def distinct_keys(site_id: str, kind: str, key: str) -> list[str]:
    window, _ = split_bucket_key(key)
    return [distinct_key(site_id, kind, key, shard) for shard in range(SHARDS[window])]


@dataclass
class SiteState:
    """What the site keeps besides its APs' states (one table record per site)."""

    site_id: str
    aps: list[str] = field(default_factory=list)
    # "<window>:<start>" -> peak clients.
    peaks: dict[str, int] = field(default_factory=dict)
    # "minute:<start>" -> ap_id -> the AP's highest client count in that minute, while open.
    minutes: dict[str, dict[str, int]] = field(default_factory=dict)
    # "<window>:<start>" -> ap_id -> [rx, tx] of buckets the AP no longer keeps.
    closed: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # Windows that have distinct-member shards in the table (to delete them later).
    distinct: list[str] = field(default_factory=list)
    partition: int = -1
    # Every window of peaks/closed/distinct by the time it stops being kept, oldest first (a
    # heap; entries of windows already forgotten are skipped): `prune` looks only at windows
    # that expired, never at all of them. Not stored, made on first use.
    _expiries: list[tuple[int, str]] | None = field(default=None, init=False, repr=False, compare=False)
    _distinct_set: set[str] | None = field(default=None, init=False, repr=False, compare=False)

    # Derived from the fields above, kept in step by the methods below (not stored): the set of
    # `aps`, each open minute's total over its APs, and the earliest end of those minutes.
    _ap_set: set[str] | None = field(default=None, init=False, repr=False, compare=False)
    _minute_totals: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _minutes_end: float | None = field(default=None, init=False, repr=False, compare=False)

    def add_ap(self, ap_id: str) -> bool:
        if self._ap_set is None:
            self._ap_set = set(self.aps)
        if ap_id in self._ap_set:
            return False
        self._ap_set.add(ap_id)
        self.aps = sorted([*self.aps, ap_id])
        return True

    def raise_peak(self, key: str, value: int) -> bool:
        if value <= self.peaks.get(key, 0):
            return False
        if key not in self.peaks:
            self._track(key)
        self.peaks[key] = value
        return True

    def note_minute_clients(self, minute: str, ap_id: str, clients: int) -> int:
        """Raises the AP's highest count of `minute`; the site's total of that minute after it."""
        per_ap = self.minutes.get(minute)
        if per_ap is None:
            per_ap = self.minutes[minute] = {}
            if self._minutes_end is not None:
                self._minutes_end = min(self._minutes_end, bucket_end(minute))
        before = per_ap.get(ap_id, 0)
        after = per_ap[ap_id] = max(before, int(clients))
        total = self._minute_totals.get(minute)
        # The running total, or the sum once (a minute loaded from the table has none yet).
        total = sum(per_ap.values()) if total is None else total + after - before
        self._minute_totals[minute] = total
        return total

    def may_forget_minutes(self, high: float, lateness_s: float) -> bool:
        """Whether `forget_minutes(low)` can forget anything for some `low` <= `high`: False
        while even the oldest minute is open for `high`."""
        if self._minutes_end is None:
            self._minutes_end = min((bucket_end(k) for k in self.minutes), default=math.inf)
        return self._minutes_end + lateness_s < high

    def forget_minutes(self, low: float, lateness_s: float) -> bool:
        """Drops the per-AP counts of the minutes no AP can take data for any more: those not
        open for event time `low` (the oldest newest-heartbeat of the site's APs)."""
        if self._minutes_end is None:
            self._minutes_end = min((bucket_end(k) for k in self.minutes), default=math.inf)
        if self._minutes_end + lateness_s >= low:
            return False  # the common case: even the oldest minute is still open, no scan
        kept = {k: v for k, v in self.minutes.items() if open_for(k, low, lateness_s)}
        changed = len(kept) != len(self.minutes)
        self.minutes = kept
        self._minute_totals = {k: v for k, v in self._minute_totals.items() if k in kept}
        self._minutes_end = min((bucket_end(k) for k in kept), default=math.inf)
        return changed

    def keep_closed(self, ap_id: str, retired: Mapping[str, list[int]]) -> bool:
        changed = False
        for key, totals in retired.items():
            value = [int(totals[0]), int(totals[1])]
            if self.closed.get(key, {}).get(ap_id) != value:
                if key not in self.closed:
                    self._track(key)
                self.closed.setdefault(key, {})[ap_id] = value
                changed = True
        return changed

    def note_distinct(self, key: str) -> bool:
        if self._distinct_set is None:
            self._distinct_set = set(self.distinct)
        if key in self._distinct_set:
            return False
        self._distinct_set.add(key)
        self._track(key)
        self.distinct = [*self.distinct]  # a new list, as before: a reader may hold the old one
        bisect.insort(self.distinct, key)
        return True

    def _track(self, key: str) -> None:
        """A window just added to peaks, closed or distinct."""
        if self._expiries is not None:
            heapq.heappush(self._expiries, (_bounds(key)[1], key))

    def prune(self, now: float, lateness_s: float) -> tuple[bool, list[str]]:
        """Forgets windows past keeping: (anything forgotten, distinct windows whose shards must go)."""
        if self._expiries is None:
            self._expiries = [(_bounds(k)[1], k) for k in self.windows()]
            heapq.heapify(self._expiries)
        heap = self._expiries
        if not heap or heap[0][0] + lateness_s >= now:
            return False, []  # the common case, a reading inside the windows kept
        expired = set()
        while heap and heap[0][0] + lateness_s < now:  # not kept_for(key, now, lateness_s)
            expired.add(heapq.heappop(heap)[1])
        if not expired:
            return False, []  # the common case, a reading inside the windows kept
        # What expired is a few windows, what is kept may be thousands (a backlog of sessions
        # read ahead of the heartbeats keeps every window between): look up the few, and let
        # the copies and removals below run in C, not a comprehension over all that is kept.
        if self._distinct_set is None:
            self._distinct_set = set(self.distinct)
        gone = sorted(k for k in expired if k in self._distinct_set)  # in `distinct`'s order
        peaks = [k for k in expired if k in self.peaks]
        closed = [k for k in expired if k in self.closed]
        if not (gone or peaks or closed):
            return False, []
        self.peaks, self.closed = _without(self.peaks, peaks), _without(self.closed, closed)
        distinct = [*self.distinct]  # a new list, as before: a reader may hold the old one
        for key in gone:
            distinct.remove(key)
            self._distinct_set.discard(key)
        self.distinct = distinct
        return True, gone

    def windows(self) -> set[str]:
        return set(self.peaks) | set(self.closed) | set(self.distinct)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.site_id, "aps": list(self.aps), "pk": dict(self.peaks),
                "mn": {k: dict(v) for k, v in self.minutes.items()},
                "cl": {k: {a: list(t) for a, t in v.items()} for k, v in self.closed.items()},
                "ds": list(self.distinct), "p": self.partition}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SiteState:
        return cls(
            site_id=str(data["id"]), aps=[str(a) for a in data.get("aps", [])],
            peaks={str(k): int(v) for k, v in dict(data.get("pk", {})).items()},
            minutes={str(k): {str(a): int(c) for a, c in dict(v).items()}
                     for k, v in dict(data.get("mn", {})).items()},
            closed={str(k): {str(a): [int(x) for x in t] for a, t in dict(v).items()}
                    for k, v in dict(data.get("cl", {})).items()},
            distinct=[str(k) for k in data.get("ds", [])], partition=int(data.get("p", -1)),
        )


def _without(mapping: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """A copy of `mapping` without `keys` (all of them in it), in its order."""
    copy = dict(mapping)
    for key in keys:
        del copy[key]
    return copy


def windows_of(t: float, tz_offset_s: int) -> list[str]:
    """The window keys (minute, hour, day) that event time `t` falls in."""
    return list(window_keys(t, tz_offset_s))


# Every reading needs its three window keys, and a minute holds many readings: the keys are
# made once per minute. Exact: a minute lies inside one hour and one day (60 divides 3600 and
# 86400, and all windows start at the same offset).
@functools.lru_cache(maxsize=1 << 12)
def _windows_of_minute(minute_start: int, tz_offset_s: int) -> tuple[str, ...]:
    return tuple(bucket_key(w, bucket_start(minute_start, size, tz_offset_s))
                 for w, size in WINDOW_SIZES.items())


def window_keys(t: float, tz_offset_s: int) -> tuple[str, ...]:
    """`windows_of` as a shared tuple (do not change it): what the hot path uses."""
    return _windows_of_minute(bucket_start(t, MINUTE_S, tz_offset_s), tz_offset_s)


@functools.lru_cache(maxsize=1 << 12)
def _bounds_of_minute(minute_start: int, tz_offset_s: int) -> tuple[tuple[str, int, int], ...]:
    return tuple((key, *_bounds(key)) for key in _windows_of_minute(minute_start, tz_offset_s))


def window_bounds(t: float, tz_offset_s: int) -> tuple[tuple[str, int, int], ...]:
    """`window_keys` with each window's end and the end of its keeping: (key, `_bounds(key)`):
    open for `now` while end + lateness >= now (`open_for`), kept while the second one is
    (`kept_for`)."""
    return _bounds_of_minute(bucket_start(t, MINUTE_S, tz_offset_s), tz_offset_s)


@functools.lru_cache(maxsize=1 << 12)
def _ends_of_minute(minute_start: int, tz_offset_s: int) -> tuple[tuple[str, int], ...]:
    return tuple((key, _bounds(key)[0]) for key in _windows_of_minute(minute_start, tz_offset_s))


def window_ends(t: float, tz_offset_s: int) -> tuple[tuple[str, int], ...]:
    """`window_keys` with each window's end: (key, `bucket_end(key)`), minute first."""
    return _ends_of_minute(bucket_start(t, MINUTE_S, tz_offset_s), tz_offset_s)


def minute_parents(minute_key: str, tz_offset_s: int) -> tuple[str, ...]:
    """The minute itself and the hour and day windows containing it."""
    _, start = split_bucket_key(minute_key)
    return _windows_of_minute(start, tz_offset_s)


def newest(times: Iterable[float | None]) -> float | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None

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

import functools
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wifi_telemetry.config import WINDOW_SIZES

USERS = "u"
SESSIONS = "s"
# Shards per window: a day of a busy site holds thousands of members, a minute a handful.
SHARDS: dict[str, int] = {"minute": 1, "hour": 4, "day": 32}


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
    # (lateness, sizes of peaks/closed/distinct, earliest time a window stops being kept) of the
    # last full scan of `prune`: windows are only ever removed by `prune`, so while the sizes
    # are unchanged no window was added and nothing expires before that time. Not stored.
    _kept_until: tuple[float, tuple[int, int, int], float] | None = field(
        default=None, init=False, repr=False, compare=False)

    def add_ap(self, ap_id: str) -> bool:
        if ap_id in self.aps:
            return False
        self.aps = sorted([*self.aps, ap_id])
        return True

    def raise_peak(self, key: str, value: int) -> bool:
        if value <= self.peaks.get(key, 0):
            return False
        self.peaks[key] = value
        return True

    def note_minute_clients(self, minute: str, ap_id: str, clients: int) -> int:
        """Raises the AP's highest count of `minute`; the site's total of that minute after it."""
        per_ap = self.minutes.setdefault(minute, {})
        per_ap[ap_id] = max(per_ap.get(ap_id, 0), int(clients))
        return sum(per_ap.values())

    def forget_minutes(self, still_open: Callable[[str], bool]) -> bool:
        """Drops the per-AP counts of the minutes no AP can take data for any more."""
        kept = {k: v for k, v in self.minutes.items() if still_open(k)}
        changed = len(kept) != len(self.minutes)
        self.minutes = kept
        return changed

    def keep_closed(self, ap_id: str, retired: Mapping[str, list[int]]) -> bool:
        changed = False
        for key, totals in retired.items():
            value = [int(totals[0]), int(totals[1])]
            if self.closed.get(key, {}).get(ap_id) != value:
                self.closed.setdefault(key, {})[ap_id] = value
                changed = True
        return changed

    def note_distinct(self, key: str) -> bool:
        if key in self.distinct:
            return False
        self.distinct = sorted([*self.distinct, key])
        return True

    def prune(self, now: float, lateness_s: float) -> tuple[bool, list[str]]:
        """Forgets windows past keeping: (anything forgotten, distinct windows whose shards must go)."""
        sizes = (len(self.peaks), len(self.closed), len(self.distinct))
        memo = self._kept_until
        if memo is not None and memo[0] == lateness_s and memo[1] == sizes and now <= memo[2]:
            return False, []  # the common case, a reading inside the windows kept: no scan
        changed, gone = self._prune(now, lateness_s)
        keys = [*self.peaks, *self.closed, *self.distinct]
        until = min((_bounds(k)[1] + lateness_s for k in keys), default=math.inf)
        self._kept_until = (lateness_s, (len(self.peaks), len(self.closed), len(self.distinct)), until)
        return changed, gone

    def _prune(self, now: float, lateness_s: float) -> tuple[bool, list[str]]:
        peaks = {k: v for k, v in self.peaks.items() if kept_for(k, now, lateness_s)}
        closed = {k: v for k, v in self.closed.items() if kept_for(k, now, lateness_s)}
        gone = [k for k in self.distinct if not kept_for(k, now, lateness_s)]
        changed = bool(gone) or len(peaks) != len(self.peaks) or len(closed) != len(self.closed)
        if changed:
            self.peaks, self.closed = peaks, closed
            self.distinct = [k for k in self.distinct if k not in gone]
        return changed, gone

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


def windows_of(t: float, tz_offset_s: int) -> list[str]:
    """The window keys (minute, hour, day) that event time `t` falls in."""
    return [bucket_key(w, bucket_start(t, size, tz_offset_s)) for w, size in WINDOW_SIZES.items()]


def minute_parents(minute_key: str, tz_offset_s: int) -> list[str]:
    """The minute itself and the hour and day windows containing it."""
    _, start = split_bucket_key(minute_key)
    return windows_of(float(start), tz_offset_s)


def newest(times: Iterable[float | None]) -> float | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None

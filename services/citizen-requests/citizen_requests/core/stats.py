"""Request statistics per category and per OPD, kept incrementally and idempotently.

The book holds the latest summary of every request in the window (newest version wins, so a redelivered or
re-emitted version changes nothing) and, per scope, what those summaries add up to. When a
request changes, its old contribution is taken out and the new one put in, so an update costs
O(log n) plus a list insert, whatever the number of requests.

"Today" is the calendar day at the city's UTC offset (WIB) of the `now` the stats are read at;
counts per day are kept so the figures roll over at midnight without recomputation. Times to
acknowledge and to resolve are over every request the book holds (median and p90, linear
interpolation between closest ranks).

Rolling window: `evict(now)` takes out, exactly as `update` takes out an old version, every
finished request (RESOLVED, CLOSED, REJECTED) whose last change is older than the window
(default 90 days). Open requests never leave, however old, so open and overdue stay exact; a
request finished today is never evicted, so today's counts are unaffected. Finished versions
wait in a heap ordered by last change, so a pass costs O(log n) per request it evicts and O(1)
when there is none.

Re-entry. Each pass raises the book's `horizon` (now - window). A version of a request the book
does not hold is kept out when it changed before the horizon and
- it is finished: judged by its own last-change time, no memory needed (it would be evicted at
  once anyway), whether it is a redelivered version of an evicted request or not; or
- it is open and the request was evicted at this version or a later one: a version from before
  the request finished, redelivered. Those are remembered (request id -> evicted version) for
  one window after the eviction, so the memory is bounded by the window too.
An open version the book has no memory of is taken in however old (a late or re-read request
is still open, and open counts stay exact); its finished successor, which follows it on the
single-partition topic, takes it out again. A reopen is a new change (its time is the
reopen's), so the request comes back. A book rebuilt after a restart evicts at once, which sets
the horizon before any further version is read; its memory starts empty.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from google.protobuf.duration_pb2 import Duration

from smartcity.codec import from_timestamp, to_timestamp
from smartcity.request_rules import is_open, is_overdue
from smartcity.v1 import requests_pb2 as pb

Scope = tuple[pb.StatsScope, str]  # (scope, key)

DEFAULT_WINDOW_DAYS = 90.0
DAY_S = 86400.0
# The times of a request version; the latest of them is its last change.
_TIMES = ("requested_time", "updated_time", "acknowledged_time", "resolved_time", "closed_time")

SCOPE_PREFIX = {pb.STATS_SCOPE_CATEGORY: "category", pb.STATS_SCOPE_OPD: "opd"}


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of sorted values, interpolating between closest ranks; None if empty."""
    if not sorted_values:
        return None
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside 0..1")
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def day_of(seconds: float, utc_offset_h: float) -> int:
    """Days since the epoch at the given UTC offset: requests of one local day share a number."""
    return math.floor((seconds + utc_offset_h * 3600.0) / 86400.0)


def stats_key(scope: Scope) -> str:
    """The stats topic key of a scope: "category:<c>" or "opd:<code>"."""
    return f"{SCOPE_PREFIX[scope[0]]}:{scope[1]}"


@dataclass(frozen=True)
class Contribution:
    """What one request version adds to the statistics of its scopes."""

    request_id: str
    version: int
    category: str
    opd: str
    open: bool
    overdue: bool
    submitted_day: int
    resolved_day: int | None
    breach_days: tuple[int, ...]
    time_to_acknowledge_s: float | None
    time_to_resolve_s: float | None
    # When this version last changed (event time): what the window is measured against.
    last_change: float = 0.0

    @property
    def scopes(self) -> tuple[Scope, Scope]:
        return (pb.STATS_SCOPE_CATEGORY, self.category), (pb.STATS_SCOPE_OPD, self.opd)


def _elapsed(request: pb.ServiceRequest, name: str) -> float | None:
    if not request.HasField(name):
        return None
    return max(0.0, from_timestamp(getattr(request, name)) - from_timestamp(request.requested_time))


def last_change_of(request: pb.ServiceRequest) -> float:
    """The event time of a version's last change: its updated_time, or a later time it carries."""
    return max((from_timestamp(getattr(request, name)) for name in _TIMES if request.HasField(name)),
               default=0.0)


def contribution_of(request: pb.ServiceRequest, utc_offset_h: float) -> Contribution:
    sla = request.sla
    breach_days = tuple(day_of(from_timestamp(due), utc_offset_h)
                        for breached, due in ((sla.acknowledge_breached, sla.acknowledge_due),
                                              (sla.resolve_breached, sla.resolve_due)) if breached)
    resolved = request.HasField("resolved_time")
    return Contribution(
        request_id=request.request_id, version=request.version, category=request.category,
        opd=request.opd_code, open=is_open(request), overdue=is_overdue(request),
        submitted_day=day_of(from_timestamp(request.requested_time), utc_offset_h),
        resolved_day=day_of(from_timestamp(request.resolved_time), utc_offset_h) if resolved else None,
        breach_days=breach_days, time_to_acknowledge_s=_elapsed(request, "acknowledged_time"),
        time_to_resolve_s=_elapsed(request, "resolved_time"), last_change=last_change_of(request),
    )


@dataclass
class ScopeTotals:
    total: int = 0
    open: int = 0
    overdue: int = 0
    submitted_by_day: Counter[int] = field(default_factory=Counter)
    resolved_by_day: Counter[int] = field(default_factory=Counter)
    breaches_by_day: Counter[int] = field(default_factory=Counter)
    # Sorted, for the percentiles.
    acknowledge_s: list[float] = field(default_factory=list)
    resolve_s: list[float] = field(default_factory=list)

    def apply(self, c: Contribution, sign: int) -> None:
        """Adds (sign 1) or takes out (sign -1) one request's contribution."""
        self.total += sign
        self.open += sign * c.open
        self.overdue += sign * c.overdue
        _count(self.submitted_by_day, c.submitted_day, sign)
        if c.resolved_day is not None:
            _count(self.resolved_by_day, c.resolved_day, sign)
        for day in c.breach_days:
            _count(self.breaches_by_day, day, sign)
        _sorted_apply(self.acknowledge_s, c.time_to_acknowledge_s, sign)
        _sorted_apply(self.resolve_s, c.time_to_resolve_s, sign)


def _count(counter: Counter[int], key: int, sign: int) -> None:
    counter[key] += sign
    if counter[key] == 0:
        del counter[key]


def _sorted_apply(values: list[float], value: float | None, sign: int) -> None:
    if value is None:
        return
    if sign > 0:
        bisect.insort(values, value)
        return
    index = bisect.bisect_left(values, value)
    if index < len(values) and values[index] == value:
        values.pop(index)


def _duration(seconds: float | None) -> Duration | None:
    if seconds is None:
        return None
    duration = Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration


@dataclass
class Eviction:
    """What one eviction pass took out: the request ids (oldest first) and the scopes touched."""

    request_ids: list[str] = field(default_factory=list)
    scopes: set[Scope] = field(default_factory=set)


class StatsBook:
    """The latest version of every request in the window, and the totals of each category and OPD."""

    def __init__(self, utc_offset_h: float = 7.0, window_days: float = DEFAULT_WINDOW_DAYS) -> None:
        if not window_days > 0:
            raise ValueError(f"the stats window must be positive, not {window_days} days")
        self.utc_offset_h = utc_offset_h
        self.window_s = window_days * DAY_S
        # Versions of requests the book does not hold that last changed before this are not taken
        # in (they were evicted, or would be at once); raised by each `evict` pass.
        self.horizon = -math.inf
        self._requests: dict[str, Contribution] = {}
        self._scopes: dict[Scope, ScopeTotals] = {}
        # (last change, request id, version) of finished versions, oldest first. Superseded
        # entries are skipped when they come up; each leaves within one window of its time.
        self._finished: list[tuple[float, str, int]] = []
        # Evicted requests: id -> version, and (horizon at eviction, id, version) oldest first,
        # to forget them one window later.
        self._evicted: dict[str, int] = {}
        self._evictions: deque[tuple[float, str, int]] = deque()
        # Open and overdue per (category, opd) pair, for the gauges.
        self.open_by_pair: Counter[tuple[str, str]] = Counter()
        self.overdue_by_pair: Counter[tuple[str, str]] = Counter()

    def __len__(self) -> int:
        return len(self._requests)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._requests

    def version_of(self, request_id: str) -> int:
        known = self._requests.get(request_id)
        return known.version if known else 0

    @property
    def remembered_evictions(self) -> int:
        """Evicted requests still remembered (for at most one window)."""
        return len(self._evicted)

    def expired(self, request: pb.ServiceRequest) -> bool:
        """A version to keep out: of a request the book does not hold, changed before the horizon,
        and finished, or open but from before the request's remembered eviction."""
        if request.request_id in self._requests or last_change_of(request) >= self.horizon:
            return False
        return not is_open(request) or self._evicted.get(request.request_id, 0) >= request.version

    def update(self, request: pb.ServiceRequest) -> set[Scope]:
        """Takes a request version in; returns the scopes whose figures changed (none if stale
        or out of the window)."""
        old = self._requests.get(request.request_id)
        if old is not None and old.version >= request.version:
            return set()
        if old is None and self.expired(request):
            return set()
        new = contribution_of(request, self.utc_offset_h)
        touched = self._apply(old, -1) | self._apply(new, 1)
        self._requests[request.request_id] = new
        if not new.open:
            heapq.heappush(self._finished, (new.last_change, new.request_id, new.version))
        return touched

    def evict(self, now: float, limit: int | None = None) -> Eviction:
        """Takes out the finished requests whose last change is older than `now` minus the window.

        `limit` bounds the requests taken out in one pass (the rest go at the next one)."""
        cutoff = now - self.window_s
        self.horizon = max(self.horizon, cutoff)
        self._forget(self.horizon - self.window_s)
        eviction = Eviction()
        finished = self._finished
        while finished and finished[0][0] < cutoff and (limit is None or len(eviction.request_ids) < limit):
            _, request_id, version = heapq.heappop(finished)
            current = self._requests.get(request_id)
            if current is None or current.version != version or current.open:
                continue  # superseded since: a newer version has its own entry if finished
            eviction.scopes |= self._apply(current, -1)
            del self._requests[request_id]
            self._evicted[request_id] = version
            self._evictions.append((self.horizon, request_id, version))
            eviction.request_ids.append(request_id)
        return eviction

    def _forget(self, before: float) -> None:
        evictions = self._evictions
        while evictions and evictions[0][0] < before:
            _, request_id, version = evictions.popleft()
            if self._evicted.get(request_id) == version:
                del self._evicted[request_id]

    def _apply(self, contribution: Contribution | None, sign: int) -> set[Scope]:
        if contribution is None:
            return set()
        for scope in contribution.scopes:
            self._scopes.setdefault(scope, ScopeTotals()).apply(contribution, sign)
        pair = (contribution.category, contribution.opd)
        self.open_by_pair[pair] += sign * contribution.open
        self.overdue_by_pair[pair] += sign * contribution.overdue
        return set(contribution.scopes)

    def update_all(self, requests: Iterable[pb.ServiceRequest]) -> set[Scope]:
        touched: set[Scope] = set()
        for request in requests:
            touched |= self.update(request)
        return touched

    def scopes(self) -> list[Scope]:
        return sorted(self._scopes)

    def stats(self, scope: Scope, now: float) -> pb.RequestStats:
        totals = self._scopes.get(scope, ScopeTotals())
        today = day_of(now, self.utc_offset_h)
        stats = pb.RequestStats(
            scope=scope[0], key=scope[1], open=totals.open, overdue=totals.overdue,
            submitted_today=totals.submitted_by_day[today], resolved_today=totals.resolved_by_day[today],
            sla_breaches_today=totals.breaches_by_day[today], total=totals.total,
            updated_time=to_timestamp(now),
        )
        for name, values, q in (("median_time_to_acknowledge", totals.acknowledge_s, 0.5),
                                ("p90_time_to_acknowledge", totals.acknowledge_s, 0.9),
                                ("median_time_to_resolve", totals.resolve_s, 0.5),
                                ("p90_time_to_resolve", totals.resolve_s, 0.9)):
            duration = _duration(percentile(values, q))
            if duration is not None:
                getattr(stats, name).CopyFrom(duration)
        return stats

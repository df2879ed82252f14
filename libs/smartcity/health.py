"""The device health model shared by WiFi access points and CCTV cameras.

Pure Python, no Kafka, Faust or gRPC. Borrowed from OpenWISP and Prometheus `for:`:

- a device runs named checks; each sample of the device says which checks fail right now;
- a check *fires* only once its condition has held for its tolerance (event time), and stops
  firing once the condition has been clear for its recovery time (so a flapping device does
  not storm incidents);
- missing heartbeats past a tolerance fire the CRITICAL `heartbeat` check (offline);
- the device's health is the worst severity of its firing checks: OK, PROBLEM or CRITICAL.

Only changes of health are reported (`HealthChange`); what to do with them is the caller's.
Times are seconds since the epoch, in event time. State round-trips through `to_dict` so a
Faust table can hold it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

HEARTBEAT_CHECK = "heartbeat"


class Health(IntEnum):
    """Values equal the protobuf HealthState numbers."""

    OK = 1
    PROBLEM = 2
    CRITICAL = 3


@dataclass(frozen=True)
class CheckSpec:
    """A check's severity when it fires, how long its condition must hold, how long to clear."""

    name: str
    severity: Health
    tolerance_s: float = 0.0
    recovery_s: float = 0.0


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one sample."""

    failing: bool
    detail: str = ""


@dataclass(frozen=True)
class Reason:
    """A firing check, as shown to operators."""

    check: str
    severity: Health
    detail: str
    since: float


@dataclass(frozen=True)
class HealthChange:
    device_id: str
    before: Health
    after: Health
    at: float
    reasons: tuple[Reason, ...]


@dataclass
class _CheckState:
    failing_since: float | None = None
    clear_since: float | None = None
    firing: bool = False
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"fs": self.failing_since, "cs": self.clear_since, "f": self.firing, "d": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _CheckState:
        return cls(data.get("fs"), data.get("cs"), bool(data.get("f")), str(data.get("d", "")))


@dataclass
class DeviceHealth:
    """Health state of one device under a fixed set of checks."""

    device_id: str
    specs: Mapping[str, CheckSpec]
    heartbeat_tolerance_s: float
    health: Health = Health.OK
    health_since: float = 0.0
    last_seen: float | None = None
    checks: dict[str, _CheckState] = field(default_factory=dict)

    def observe(self, at: float, results: Mapping[str, CheckResult]) -> HealthChange | None:
        """Applies one sample (a heartbeat) taken at event time `at`."""
        if self.last_seen is None:
            self.health_since = at
        self.last_seen = at if self.last_seen is None else max(self.last_seen, at)
        self._clear_heartbeat(at)
        for name, result in results.items():
            spec = self.specs.get(name)
            if spec is None:
                raise KeyError(f"unknown check {name!r} for {self.device_id}")
            self._apply(spec, self.checks.setdefault(name, _CheckState()), at, result)
        return self._settle(at)

    def check_silence(self, now: float) -> HealthChange | None:
        """Fires the heartbeat check when nothing was heard for longer than the tolerance."""
        if self.last_seen is None or now - self.last_seen <= self.heartbeat_tolerance_s:
            return None
        state = self.checks.setdefault(HEARTBEAT_CHECK, _CheckState())
        if not state.firing:
            state.firing, state.failing_since, state.clear_since = True, self.last_seen, None
            # Not "for <now - last_seen>": `now` may be the wall clock (a live silence), and the
            # reason must read the same whenever it was first noticed (replays, restarts).
            state.detail = f"no heartbeat for more than {self.heartbeat_tolerance_s:.0f}s"
        return self._settle(self.last_seen + self.heartbeat_tolerance_s)

    def reasons(self) -> tuple[Reason, ...]:
        firing = [
            Reason(name, self._severity_of(name), state.detail, state.failing_since or 0.0)
            for name, state in sorted(self.checks.items())
            if state.firing
        ]
        return tuple(sorted(firing, key=lambda r: (-r.severity, r.check)))

    def _severity_of(self, name: str) -> Health:
        return Health.CRITICAL if name == HEARTBEAT_CHECK else self.specs[name].severity

    def _clear_heartbeat(self, at: float) -> None:
        state = self.checks.get(HEARTBEAT_CHECK)
        if state is not None and state.firing:
            self.checks[HEARTBEAT_CHECK] = _CheckState()

    @staticmethod
    def _apply(spec: CheckSpec, state: _CheckState, at: float, result: CheckResult) -> None:
        if result.failing:
            state.clear_since = None
            if state.failing_since is None:
                state.failing_since = at
            state.detail = result.detail or state.detail
            if not state.firing and at - state.failing_since >= spec.tolerance_s:
                state.firing = True
            return
        if not state.firing:
            state.failing_since = None
            return
        if state.clear_since is None:
            state.clear_since = at
        if at - state.clear_since >= spec.recovery_s:
            state.firing, state.failing_since, state.clear_since = False, None, None

    def _settle(self, at: float) -> HealthChange | None:
        if self.health == Health.OK and not any(state.firing for state in self.checks.values()):
            return None  # the common case, nothing firing and nothing was: no reasons to sort
        reasons = self.reasons()
        after = max((r.severity for r in reasons), default=Health.OK)
        if after == self.health:
            return None
        change = HealthChange(self.device_id, self.health, after, at, reasons)
        self.health, self.health_since = after, at
        return change

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.device_id,
            "h": int(self.health),
            "hs": self.health_since,
            "ls": self.last_seen,
            "c": {name: state.to_dict() for name, state in self.checks.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], specs: Mapping[str, CheckSpec],
                  heartbeat_tolerance_s: float) -> DeviceHealth:
        return cls(
            device_id=str(data["id"]),
            specs=specs,
            heartbeat_tolerance_s=heartbeat_tolerance_s,
            health=Health(int(data["h"])),
            health_since=float(data["hs"]),
            last_seen=data.get("ls"),
            checks={name: _CheckState.from_dict(s) for name, s in dict(data.get("c", {})).items()},
        )


HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY


def _time(change: tuple[float, bool]) -> float:
    return change[0]


# Up to this many segments in a window are walked; more are read from the running totals (the
# walk is exact to the last bit and cheap for a device that seldom changes).
_SCAN_AT_MOST = 32


def _scanned_down(changes: list[tuple[float, bool]], first: int, before_now: int,
                  start: float, now: float) -> float:
    """Down seconds in [start, now] of the segments first..before_now-1, walked one by one (the
    last one ends at `now`)."""
    down = 0.0
    for index in range(first, before_now):
        t, was_down = changes[index]
        end = changes[index + 1][0] if index + 1 < before_now else now
        lo, hi = max(t, start), min(end, now)
        if was_down and hi > lo:
            down += hi - lo
    return down


def _running_down(changes: list[tuple[float, bool]]) -> list[float]:
    """Down seconds from the first change point to each one (`Availability._down_until`)."""
    totals, total = [], 0.0
    for index, (t, _down) in enumerate(changes):
        if index:
            previous_at, previous_down = changes[index - 1]
            total += t - previous_at if previous_down else 0.0
        totals.append(total)
    return totals


@dataclass
class Availability:
    """Share of time a device was not CRITICAL, from its health changes in event time.

    Keeps the change points of the last week (plus the state before the oldest one), so memory
    per device is bounded by how often it changes, and `ratio` is exact over any window. A
    flapping device has thousands of points a week: `ratio` reads the down time of whole
    segments from running totals (`_down_until`, built on first use, kept up as points come
    and go) instead of walking them, so a status costs the same whatever the device's history.
    """

    first_seen: float | None = None
    # (time, was_down) change points in ascending time order.
    changes: list[tuple[float, bool]] = field(default_factory=list)
    # _down_until[i]: down seconds from changes[0] to changes[i] (only differences are read, so
    # dropping the oldest point keeps it valid); None until a ratio needs it. Derived: neither
    # stored nor compared.
    _down_until: list[float] | None = field(default=None, compare=False, repr=False)

    def record(self, at: float, health: Health) -> None:
        down = health == Health.CRITICAL
        if self.first_seen is None:
            self.first_seen = at
        changes = self.changes
        if changes and changes[-1][1] == down:
            return
        if changes and at < changes[-1][0]:
            at = changes[-1][0]  # a change never goes back in time
        totals = self._down_until
        if totals is not None:
            last_at, last_down = changes[-1] if changes else (at, False)
            totals.append((totals[-1] if totals else 0.0) + (at - last_at if last_down else 0.0))
        changes.append((at, down))
        self._trim(at)

    def ratio(self, now: float, window_s: float) -> float:
        """Up time / observed time over [now - window, now]; 1.0 before anything was seen."""
        changes = self.changes
        if len(changes) < 2 and not (changes and changes[0][1]):
            return 1.0  # never down (most devices): no down time in any window, as `_ratio` finds
        return self._ratio(now, window_s)

    def _ratio(self, now: float, window_s: float) -> float:
        """`ratio` the general way."""
        if self.first_seen is None:
            return 1.0
        changes = self.changes
        start = max(now - window_s, self.first_seen)
        if now <= start:
            return 1.0 if not self._down_at(now) else 0.0
        # Only the points from the one in force at `start` to the last before `now` can add
        # down time (a segment that ends before the window adds none).
        before_now = bisect_left(changes, now, key=_time)
        index = max(0, bisect_right(changes, start, key=_time) - 1)
        if before_now - index > _SCAN_AT_MOST:
            down = self._down_between(index, before_now, start, now)
        else:
            down = _scanned_down(changes, index, before_now, start, now)
        return max(0.0, 1.0 - down / (now - start))

    def _down_between(self, first: int, before_now: int, start: float, now: float) -> float:
        """Down seconds in [start, now] of the segments first..before_now-1 (more than one): the
        two ends cut to the window, the whole ones between from the running totals."""
        totals = self._down_until
        if totals is None:
            totals = self._down_until = _running_down(self.changes)
        changes, last = self.changes, before_now - 1
        down = _scanned_down(changes, first, first + 1, start, changes[first + 1][0])
        down += totals[last] - totals[first + 1]
        return down + _scanned_down(changes, last, before_now, changes[last][0], now)

    def _down_at(self, at: float) -> bool:
        index = bisect_right(self.changes, at, key=_time) - 1
        return self.changes[index][1] if index >= 0 else False

    def _trim(self, now: float) -> None:
        horizon = now - WEEK
        keep_from = bisect_right(self.changes, horizon, key=_time) - 1  # the last at or before
        if keep_from > 0:
            del self.changes[:keep_from]
            if self._down_until is not None:
                del self._down_until[:keep_from]

    def to_dict(self) -> dict[str, Any]:
        return {"fs": self.first_seen, "c": [[t, d] for t, d in self.changes]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Availability:
        return cls(first_seen=data.get("fs"), changes=[(float(t), bool(d)) for t, d in data.get("c", [])])

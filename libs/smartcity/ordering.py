"""Puts one source's events back in seq order, once each: the reorder buffer of the device
services (pure Python).

An event is anything with a `seq` (strictly increasing per source) and an `event_time`
(seconds). Per source, a `SeqCursor`:

- seq == last applied + 1: applied at once, then any waiting successors;
- seq already applied (<= last applied) or already waiting: a duplicate (or a late arrival whose
  place was given up) and ignored, unless `restarts` is on and its event time is newer than
  everything seen: the source restarted its counter, and the cursor restarts at that seq;
- seq skips ahead: it waits (in the cursor, which the caller stores, so it survives a crash) for
  the missing ones until the newest waiting event is `window_s` of event time younger than the
  oldest waiting one, or more than `max_pending` wait, or `release_until(now)` passes its time
  plus `window_s`. Then the gap is given up and the waiting events are applied in seq order; a
  missing event that turns up after that is late and ignored (never applied out of order).

So duplicates never change results, and reordering within the window never does either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, NamedTuple, Protocol, TypeVar


class Sequenced(Protocol):
    """What the cursor needs of an event."""

    @property
    def seq(self) -> int: ...

    @property
    def event_time(self) -> float: ...


E = TypeVar("E", bound=Sequenced)


class Arrival(StrEnum):
    """What became of an arriving event (also the `outcome` label of the services' metrics)."""

    APPLIED = "applied"      # applied now (possibly with waiting events released after it)
    BUFFERED = "buffered"    # waits for a gap in seq to fill
    DUPLICATE = "duplicate"  # seq already applied, already waiting, or its gap was given up
    RESTARTED = "restarted"  # the source restarted its counter: applied, the cursor restarted


class Accepted(NamedTuple, Generic[E]):
    arrival: Arrival
    ready: list[E]  # to apply now, in this order


@dataclass
class SeqCursor(Generic[E]):
    last_seq: int | None = None
    newest_at: float | None = None  # newest event time applied (restart detection)
    pending: dict[int, E] = field(default_factory=dict)

    def accept(self, event: E, window_s: float, max_pending: int,
               restarts: bool = True) -> Accepted[E]:
        """Verdict on an event and the events now ready to apply, in order."""
        if self.last_seq is None or (event.seq == self.last_seq + 1 and not self.pending):
            return Accepted(Arrival.APPLIED, [self._take(event)])  # also the common case: next in line
        if event.seq <= self.last_seq or event.seq in self.pending:
            if restarts and self._is_restart(event):
                ready = self._drain_all()
                self.last_seq = None
                return Accepted(Arrival.RESTARTED, [*ready, self._take(event)])
            return Accepted(Arrival.DUPLICATE, [])
        self.pending[event.seq] = event
        ready = self._release(lambda lowest: self._window_passed(lowest, window_s)
                              or len(self.pending) > max_pending)
        arrival = Arrival.APPLIED if any(e.seq == event.seq for e in ready) else Arrival.BUFFERED
        return Accepted(arrival, ready)

    def release_until(self, now: float, window_s: float) -> list[E]:
        """Gives up gaps whose waiting events are older than `now - window_s`."""
        return self._release(lambda lowest: lowest.event_time <= now - window_s)

    def _release(self, give_up: Callable[[E], bool]) -> list[E]:
        ready: list[E] = []
        while self.pending:
            lowest = self.pending[min(self.pending)]
            next_in_line = self.last_seq is not None and lowest.seq == self.last_seq + 1
            if not next_in_line and not give_up(lowest):
                break
            ready.append(self._take(self.pending.pop(lowest.seq)))
        return ready

    def _window_passed(self, lowest: E, window_s: float) -> bool:
        newest = max(e.event_time for e in self.pending.values())
        return newest - lowest.event_time >= window_s

    def _is_restart(self, event: E) -> bool:
        seen = [e.event_time for e in self.pending.values()] + [self.newest_at or event.event_time]
        return event.event_time > max(seen)

    def _drain_all(self) -> list[E]:
        return [self._take(self.pending.pop(seq)) for seq in sorted(self.pending)]

    def to_dict(self, encode: Callable[[E], Any]) -> dict[str, Any]:
        """The cursor as JSON-able data (what a Faust table keeps), events through `encode`."""
        return {"seq": self.last_seq, "at": self.newest_at,
                "pend": [encode(e) for _, e in sorted(self.pending.items())]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], decode: Callable[[Any], E]) -> SeqCursor[E]:
        pending = [decode(d) for d in data.get("pend", [])]
        return cls(data.get("seq"), data.get("at"), {e.seq: e for e in pending})

    def _take(self, event: E) -> E:
        self.last_seq = event.seq
        at = event.event_time
        self.newest_at = at if self.newest_at is None else max(self.newest_at, at)
        return event


def gaps_skipped(previous_seq: int | None, applied: list[E]) -> int:
    """How many seq gaps were given up to apply `applied` after `previous_seq`."""
    skipped, last = 0, previous_seq
    for event in applied:
        if last is not None and event.seq != last + 1:
            skipped += 1
        last = event.seq
    return skipped

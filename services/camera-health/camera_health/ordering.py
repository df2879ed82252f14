"""Puts one source's heartbeats of one camera back in seq order, once each.

Strategy (per camera and per source, since the agent and the prober count separately):

- seq == last applied + 1: applied at once, then any waiting successors;
- seq already applied (<= last applied) or already waiting: ignored (a duplicate, or a late
  arrival whose place was given up), unless its event time is newer than everything seen, which
  means the agent restarted its counter: the cursor then restarts at that seq;
- seq skips ahead: it waits (in the camera's state, so it survives a crash) for the missing
  ones until the newest waiting heartbeat is `window_s` of event time younger than the oldest
  waiting one, or more than `max_pending` wait, or the silence timer's clock passes its time
  plus `window_s`. Then the gap is given up and the waiting heartbeats are applied in seq order;
  a missing heartbeat that turns up after that is late and ignored (counted, never applied out
  of order, so it cannot rewind the health model).

So duplicates never change results, and reordering within the window never does either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from camera_health.model import Sample

APPLIED = "applied"
BUFFERED = "buffered"
STALE = "stale"
RESTARTED = "restarted"


@dataclass
class SourceCursor:
    last_seq: int | None = None
    newest_at: float | None = None
    pending: dict[int, Sample] = field(default_factory=dict)

    def accept(self, sample: Sample, window_s: float, max_pending: int) -> tuple[str, list[Sample]]:
        """Verdict on a sample and the samples now ready to apply, in order."""
        if self.last_seq is None:
            return APPLIED, [self._take(sample)]
        if sample.seq <= self.last_seq or sample.seq in self.pending:
            if self._is_restart(sample):
                ready = self._drain_all()
                self.last_seq = None
                return RESTARTED, [*ready, self._take(sample)]
            return STALE, []
        self.pending[sample.seq] = sample
        ready = self._release(lambda lowest: self._window_passed(lowest, window_s)
                              or len(self.pending) > max_pending)
        verdict = APPLIED if any(s.seq == sample.seq for s in ready) else BUFFERED
        return verdict, ready

    def release_until(self, now: float, window_s: float) -> list[Sample]:
        """Gives up gaps whose waiting heartbeats are older than `now - window_s`."""
        return self._release(lambda lowest: lowest.at <= now - window_s)

    def _release(self, give_up: Callable[[Sample], bool]) -> list[Sample]:
        ready: list[Sample] = []
        while self.pending:
            lowest = self.pending[min(self.pending)]
            next_in_line = self.last_seq is not None and lowest.seq == self.last_seq + 1
            if not next_in_line and not give_up(lowest):
                break
            ready.append(self._take(self.pending.pop(lowest.seq)))
        return ready

    def _window_passed(self, lowest: Sample, window_s: float) -> bool:
        newest = max(s.at for s in self.pending.values())
        return newest - lowest.at >= window_s

    def _is_restart(self, sample: Sample) -> bool:
        newest = max([s.at for s in self.pending.values()] + [self.newest_at or sample.at])
        return sample.at > newest

    def _drain_all(self) -> list[Sample]:
        return [self._take(self.pending.pop(seq)) for seq in sorted(self.pending)]

    def _take(self, sample: Sample) -> Sample:
        self.last_seq = sample.seq
        self.newest_at = sample.at if self.newest_at is None else max(self.newest_at, sample.at)
        return sample

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.last_seq, "at": self.newest_at,
                "pend": [s.to_dict() for _, s in sorted(self.pending.items())]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceCursor:
        pending = [Sample.from_dict(d) for d in data.get("pend", [])]
        return cls(data.get("seq"), data.get("at"), {s.seq: s for s in pending})

"""Possible duplicates: earlier reports of the same category close by in space and time.

Citizens report the same flood, pothole or fallen tree many times. The earliest report of a
place, category and time window is the original: a request is flagged with the ids of the
requests of its category submitted before it (by `requested_time`, ties by request id) within
`duplicate_window_s` and `duplicate_distance_m`, nearest first (ties by id), at most
`MAX_DUPLICATES`. The OPD decides.

That makes the flag a function of the submitted requests alone, not of which partition's
commands a worker read first, nor of what it held in memory when it restarted: the worker keeps
the requests in a changelogged table (the statistics stage's summaries, one partition, one
owner), and whenever a request arrives it recomputes the flags it can change (its own and those
of its later neighbours) and sends each changed one to the request's partition. So a request's
flags may be filled in a moment after it was submitted, and grow when an earlier report
arrives late; the last value is the same whatever the arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from smartcity.codec import from_timestamp
from smartcity.inventory import distance_m
from smartcity.v1 import requests_pb2 as pb

# A flood brings dozens of reports: the first few ids are what an operator can use.
MAX_DUPLICATES = 5


@dataclass(frozen=True)
class Candidate:
    """What duplicate flagging knows of a request (none of it changes after the submit)."""

    request_id: str
    category: str
    latitude: float
    longitude: float
    requested_s: float

    @property
    def order(self) -> tuple[float, str]:
        """Which of two reports came first: requested time, then request id."""
        return self.requested_s, self.request_id


def candidate_of(request: pb.ServiceRequest) -> Candidate | None:
    """The request as a duplicate candidate: only requests with a location take part."""
    if not request.HasField("location"):
        return None
    return Candidate(request.request_id, request.category, request.location.latitude,
                     request.location.longitude, from_timestamp(request.requested_time))


def possible_duplicates(target: Candidate, candidates: Iterable[Candidate], max_distance_m: float,
                        window_s: float) -> list[str]:
    """Ids of the earlier candidates `target` may duplicate, nearest first."""
    near: list[tuple[float, str]] = []
    for cand in candidates:
        if cand.category != target.category or not cand.order < target.order:
            continue
        if target.requested_s - cand.requested_s > window_s:
            continue
        distance = distance_m(target.latitude, target.longitude, cand.latitude, cand.longitude)
        if distance <= max_distance_m:
            near.append((distance, cand.request_id))
    return [request_id for _, request_id in sorted(near)[:MAX_DUPLICATES]]


# Metres per degree of latitude, rounded down (110,574 m at the equator): a cell this many
# degrees tall is at least `max_distance_m` tall everywhere.
_METRES_PER_DEGREE = 110_000.0

Cell = tuple[str, int, int]  # (category, latitude row, longitude column)


class DuplicateIndex:
    """The candidates by category on a grid of cells about `max_distance_m` wide; says which
    requests' flags a new one decides.

    A request's possible duplicates lie within `max_distance_m`, so in its own cell or a
    neighbouring one: a new request is compared with the requests of those few cells, not with
    every request of its category (a whole city's reports of a stats window).
    """

    def __init__(self, max_distance_m: float, window_s: float) -> None:
        self.max_distance_m = max_distance_m
        self.window_s = window_s
        self._cell_deg = max(max_distance_m, 1.0) / _METRES_PER_DEGREE
        self._cells: dict[Cell, dict[str, Candidate]] = {}
        self._cell_of: dict[str, Cell] = {}

    def add(self, candidate: Candidate) -> dict[str, list[str]]:
        """Takes a candidate in (again: idempotent); the flags of every request it may change.

        Those are its own and those of the later requests of its category within the window.
        """
        self.discard(candidate.request_id)
        cell = self._cell(candidate)
        self._cells.setdefault(cell, {})[candidate.request_id] = candidate
        self._cell_of[candidate.request_id] = cell
        affected = [c for c in self._near(candidate)
                    if c.order >= candidate.order and c.requested_s - candidate.requested_s <= self.window_s
                    and (c is candidate or distance_m(c.latitude, c.longitude, candidate.latitude,
                                                      candidate.longitude) <= self.max_distance_m)]
        return {c.request_id: self.flags_of(c) for c in affected}

    def flags_of(self, candidate: Candidate) -> list[str]:
        return possible_duplicates(candidate, self._near(candidate), self.max_distance_m, self.window_s)

    def _cell(self, candidate: Candidate) -> Cell:
        return (candidate.category, math.floor(candidate.latitude / self._cell_deg),
                math.floor(candidate.longitude / self._cell_deg))

    def _near(self, candidate: Candidate) -> list[Candidate]:
        """The candidates of its category in the cells within `max_distance_m` of it."""
        category, row, column = self._cell(candidate)
        # A degree of longitude shrinks with the cosine of the latitude: more columns to reach.
        widest = math.radians(min(89.0, abs(candidate.latitude) + self._cell_deg))
        reach = math.ceil(1.0 / math.cos(widest))
        near: list[Candidate] = []
        for r in (row - 1, row, row + 1):
            for c in range(column - reach, column + reach + 1):
                cell = self._cells.get((category, r, c))
                if cell:
                    near.extend(cell.values())
        return near

    def discard(self, request_id: str) -> None:
        cell = self._cell_of.pop(request_id, None)
        if cell is None:
            return
        members = self._cells[cell]
        members.pop(request_id, None)
        if not members:
            del self._cells[cell]

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._cell_of

    def __len__(self) -> int:
        return len(self._cell_of)


def flags_to_send(decided: Mapping[str, list[str]], current: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The decided flags that differ from what the requests carry now."""
    return {request_id: flags for request_id, flags in decided.items()
            if list(current.get(request_id, [])) != flags}

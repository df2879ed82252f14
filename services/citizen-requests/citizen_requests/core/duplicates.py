"""Possible duplicates: open requests of the same category close by in space and time.

Citizens report the same flood, pothole or fallen tree many times. A new request is flagged with
the ids of open requests of its category within a distance and a time window; the OPD decides.
The index holds the open requests a worker knows of (its own writes and those of other workers,
read back from the service's summary topic), newest version wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from smartcity.codec import from_timestamp
from smartcity.inventory import distance_m
from smartcity.request_rules import OPEN_STATUSES
from smartcity.v1 import requests_pb2 as pb

# A flood brings dozens of reports: the first few ids are what an operator can use.
MAX_DUPLICATES = 5


@dataclass(frozen=True)
class Candidate:
    request_id: str
    category: str
    latitude: float
    longitude: float
    requested_s: float
    version: int


def candidate_of(request: pb.ServiceRequest) -> Candidate | None:
    """The request as a duplicate candidate: only open requests with a location qualify."""
    if request.status not in OPEN_STATUSES or not request.HasField("location"):
        return None
    return Candidate(request.request_id, request.category, request.location.latitude,
                     request.location.longitude, from_timestamp(request.requested_time), request.version)


def find_possible_duplicates(request: pb.ServiceRequest, candidates: Iterable[Candidate],
                             max_distance_m: float, window_s: float) -> list[str]:
    """Ids of the candidates `request` may duplicate, nearest first."""
    if not request.HasField("location"):
        return []
    requested = from_timestamp(request.requested_time)
    lat, lon = request.location.latitude, request.location.longitude
    near: list[tuple[float, str]] = []
    for cand in candidates:
        if cand.request_id == request.request_id or cand.category != request.category:
            continue
        if abs(cand.requested_s - requested) > window_s:
            continue
        distance = distance_m(lat, lon, cand.latitude, cand.longitude)
        if distance <= max_distance_m:
            near.append((distance, cand.request_id))
    return [request_id for _, request_id in sorted(near)[:MAX_DUPLICATES]]


class OpenRequestIndex:
    """Open requests with a location, by category; fed with every version of every request."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._by_category: dict[str, dict[str, Candidate]] = {}

    def observe(self, request: pb.ServiceRequest) -> None:
        """Takes a request version in; older versions than the one known are ignored."""
        if self._versions.get(request.request_id, 0) >= request.version:
            return
        self._versions[request.request_id] = request.version
        bucket = self._by_category.setdefault(request.category, {})
        candidate = candidate_of(request)
        if candidate is None:
            bucket.pop(request.request_id, None)
        else:
            bucket[request.request_id] = candidate

    def candidates(self, category: str) -> Iterator[Candidate]:
        yield from self._by_category.get(category, {}).values()

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._by_category.values())

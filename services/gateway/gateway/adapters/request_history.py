"""The request read model: open requests in memory, every request and every trail on disk.

    projector ──batch of records──► RequestHistory.apply ──► HistoryStore (one transaction:
      (requests.state, .events,        │                      rows + offsets)
       camera.incidents)               ├──► memory: open requests (Views), counts
                                       └──► changes for watch streams (after the commit)
    API ──► get / list / trail ──► memory for open and overdue listings, the store otherwise

The memory holds what is live (open requests, the per-key counts) and stays the same size
whatever the history; the store holds the history. Both change only between batches, and a batch
is committed before any of its changes or command outcomes go out, so a caller that saw an
outcome reads it back (read-your-writes) and a watcher never hears of a version the store lacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, NamedTuple, Protocol

from google.protobuf.message import DecodeError

from gateway.adapters.history_store import HistoryStore, Partition
from gateway.core.history import (
    Arrival,
    ListingKey,
    RequestBatch,
    RequestCounts,
    RequestFilter,
    StateRow,
    StoredEvent,
    TrailRow,
    event_key,
    plan_requests,
    stored_event,
    stored_parts,
    trail_position,
)
from smartcity.v1 import requests_pb2

log = logging.getLogger(__name__)

Change = Any  # a ServiceRequest version a watch stream hears
# An event record carrying a request, as a rebuild reads the event topic: (its index in the
# batch's trail rows, the carried request's id and version, the record's bytes).
Carried = tuple[int, str, int, bytes]


class OpenRequests(Protocol):
    """Where the open requests live in memory (gateway views)."""

    def place_request(self, request_id: str, request: Any | None) -> None:
        """Keeps the request when it is open, forgets it otherwise (None: deleted)."""


class HistoryRecord(NamedTuple):
    """One record of a store-backed topic, decoded (message None: a tombstone). A tuple: a
    rebuild makes millions of them."""

    view: str  # "requests" | "events" | "incidents"
    partition: int
    offset: int
    key: str
    message: Any | None


class RequestHistory:
    def __init__(self, store: HistoryStore, memory: OpenRequests, open_statuses: Iterable[int]) -> None:
        self.store = store
        self._memory = memory
        self._open_statuses = frozenset(open_statuses)
        self.counts = RequestCounts()

    # ---------------- start ----------------

    def load(self) -> int:
        """Fills the memory from the store (a warm start); returns how many requests are open."""
        self.counts = RequestCounts(self.store.counts())
        loaded = 0
        for request in self.store.open_requests(self._open_statuses):
            self._memory.place_request(request.request_id, request)
            loaded += 1
        return loaded

    # ---------------- the projector ----------------

    def apply(self, records: Iterable[HistoryRecord], offsets: dict[Partition, int]) -> list[Change]:
        """`write`, then `remember`: one batch, on the calling thread."""
        return self.remember(self.write(records, offsets))

    def write(
        self,
        records: Iterable[HistoryRecord],
        offsets: dict[Partition, int],
        owned: bool = False,
        marks: dict[Partition, str] | None = None,
    ) -> RequestBatch:
        """Writes one batch with the offsets it was read up to (one transaction). Touches the
        store only, so the projector runs it off the event loop; `remember` follows on it.

        `owned`: the messages are the caller's to spend (while rebuilding: nobody else reads
        them), so contact fields and histories are stripped off them instead of off copies."""
        arrivals: list[Arrival] = []
        trail: list[tuple[str, str, int, Any]] = []
        carried: list[Arrival] = []  # the requests the trail's events carry
        incidents: list[Any] = []
        deleted = False
        for record in records:
            message = record.message
            if record.view == "requests":
                arrivals.append((message.request_id if message is not None else record.key, message))
                deleted = deleted or message is None
            elif record.view == "events" and message is not None:
                if message.HasField("request") and message.request.request_id:
                    carried.append((message.request.request_id, message.request))
                key = event_key(message, record.partition, record.offset)
                position = trail_position(record.partition, record.offset)
                trail.append((message.request_id or record.key, key, position, message))
            elif record.view == "incidents" and message is not None:
                incidents.append(message)
        arrivals.extend(self._newer_than_stored(carried, deleted))
        known = self.store.known({request_id for request_id, _ in arrivals})
        batch = plan_requests(arrivals, known)
        # The winners' rows first: stripping the trail's events in place takes their requests'
        # history and contact fields, which a winner's row keeps. Open requests also go to the
        # memory whole: never stripped in place.
        bodies = {
            request_id: stored_parts(request, in_place=owned and not self._is_open(request))
            for request_id, request in batch.winners.items()
            if request is not None
        }
        open_statuses = self._open_statuses
        events = [
            (
                request_id,
                key,
                position,
                stored_event(event, in_place=owned and event.request.status not in open_statuses),
            )
            for request_id, key, position, event in trail
        ]
        self.store.commit(batch, known, events, incidents, offsets, bodies=bodies, marks=marks)
        return batch

    def write_states(
        self,
        arrivals: list[tuple[str, StateRow | None]],
        offsets: dict[Partition, int],
        marks: dict[Partition, str] | None = None,
    ) -> RequestBatch:
        """Writes one batch of the state topic read by a rebuild (`rebuild.state_batch` made
        its rows straight from the records: (request id, row or None for a tombstone), in
        arrival order) with the offsets it was read up to, in one transaction: planned as
        `write` plans requests, so the store ends as `write` of the decoded records leaves it."""
        if self.store.appending:
            # No requests' index to look up or upsert by (HistoryStore.append_requests): the
            # batch's own winners are appended, after the tombstones of the requests it deletes.
            batch = plan_requests(arrivals, {})
            deleted = list(dict.fromkeys(request_id for request_id, row in arrivals if row is None))
            rows = [row for row in batch.winners.values() if row is not None]
            self.store.append_rows(rows, deleted, offsets, marks or {})
            return batch
        known = self.store.known({request_id for request_id, _ in arrivals})
        batch = plan_requests(arrivals, known)
        self.store.commit_rows(batch, offsets, marks)
        return batch

    def write_trail(
        self,
        rows: list[TrailRow],
        carried: list[Carried],
        offsets: dict[Partition, int],
        marks: dict[Partition, str] | None = None,
    ) -> RequestBatch:
        """Writes one batch of the event topic read by a rebuild (`trail_row` made its rows,
        nothing decoded whole) with the offsets it was read up to, in one transaction.

        The state topic was read first, so the stored version of nearly every request is the
        newest: only the events carrying a newer one are decoded whole, and their requests
        planned as `write` plans them. Another gateway may read the event topic before the
        state topic catches up (a request submitted a moment ago): the event's version wins."""
        newer = self.store.newer_than_stored([(request_id, version) for _, request_id, version, _ in carried])
        arrivals: list[Arrival] = []
        dropped: set[int] = set()
        for index, request_id, version, value in carried:
            if (request_id, version) not in newer:
                continue
            try:
                arrivals.append((request_id, requests_pb2.RequestEvent.FromString(value).request))
            except DecodeError as exc:
                log.warning("skipping an undecodable event of request %s: %s", request_id, exc)
                dropped.add(index)
        if dropped:
            rows = [row for index, row in enumerate(rows) if index not in dropped]
        known = self.store.known({request_id for request_id, _ in arrivals})
        batch = plan_requests(arrivals, known)
        bodies = {
            request_id: stored_parts(request, in_place=not self._is_open(request))
            for request_id, request in batch.winners.items()
            if request is not None
        }
        self.store.commit(batch, known, rows, (), offsets, bodies=bodies, marks=marks)
        return batch

    def _newer_than_stored(self, carried: list[Arrival], deleted: bool) -> list[Arrival]:
        """The requests events carry that may be newer than the stored version: while catching
        up, the state topic was read first and nearly every event carries an older version, so
        only the few newer ones go through the planning (which would drop the others anyway).
        With a tombstone in the batch all of them go (after a delete, any version counts)."""
        if deleted or not carried:
            return carried
        newer = self.store.newer_than_stored([(rid, request.version) for rid, request in carried])
        return [(rid, request) for rid, request in carried if (rid, request.version) in newer]

    def _is_open(self, request: Any) -> bool:
        return request.status in self._open_statuses

    def remember(self, batch: RequestBatch) -> list[Change]:
        """The memory's side of a committed batch; returns the versions watchers should hear,
        in arrival order."""
        self.counts.apply(batch.count_deltas)
        for request_id, winner in batch.winners.items():
            self._memory.place_request(request_id, winner)
        return batch.changes

    # ---------------- the API ----------------

    def get(self, request_id: str) -> Any | None:
        return self.store.get_request(request_id)

    def uses_memory(self, status: int, open_only: bool, overdue_only: bool) -> bool:
        """Open and overdue listings (and those of an open status) are all in memory."""
        return open_only or overdue_only or status in self._open_statuses

    def list_requests(
        self, flt: RequestFilter, after: ListingKey | None, limit: int
    ) -> tuple[list[Any], bool, int]:
        """(up to `limit` requests after `after`, whether more follow, total matching)."""
        found = self.store.list_requests(flt, after, limit + 1)
        total = self.counts.total(
            opd_code=flt.opd_code, category=flt.category, status=flt.status, visible=_visibility(flt)
        )
        return found[:limit], len(found) > limit, total

    def trail(self, request_id: str, after: int, limit: int) -> tuple[list[StoredEvent], bool]:
        found = self.store.list_events(request_id, after, limit + 1)
        return found[:limit], len(found) > limit

    def of_subject(self, subject_id: str) -> list[Any]:
        return self.store.of_subject(subject_id)

    def contact_uses(self, subject_ids: Collection[str]) -> Iterator[Any]:
        return self.store.contact_uses(subject_ids)

    def every_request(self) -> Iterator[Any]:
        """Every request in listing order as of now, streamed (WatchRequests' snapshot): later
        batches are not in it, so a watcher subscribed before the first item hears them once."""
        return self.store.snapshot_requests()


def _visibility(flt: RequestFilter) -> Callable[[str, str], bool] | None:
    """Which (opd_code, submitted_by) a caller without requests:read:all sees (None: all)."""
    if flt.visible_to is None:
        return None
    opd_code, client_id = flt.visible_to

    def visible(opd: str, client: str) -> bool:
        return (bool(opd_code) and opd == opd_code) or client == client_id

    return visible

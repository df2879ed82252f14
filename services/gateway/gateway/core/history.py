"""Rules of the gateway's request history (the on-disk read model): pure, no I/O.

The projector reads the request topics in batches. For each batch it asks the history store
what it already knows of the requests named in it (their version and the counting key), and
these rules decide:

- which version of each request the store keeps (the newest; a tombstone deletes),
- which versions a watch stream hears (every version newer than any seen before, in arrival
  order: the same as the in-memory view answered one record at a time),
- how the per-(OPD, category, status, submitter) counts move, which give ListRequests its
  `total_size` without counting rows,
- what an audit-trail event looks like on disk: without its request's history (the trail itself
  is the history) and without the reporter's contact fields, which live once per request in a
  column of their own so that they can be dropped or re-read apart from everything else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as _ProtobufDecodeError

from smartcity.codec import from_timestamp
from smartcity.v1 import requests_pb2

# What ListRequests' counts are kept by: (opd_code, category, status, submitted_by_client).
CountKey = tuple[str, str, int, str]
# Where a listing page starts: (listing_time, request_id), newest first, ties by id.
ListingKey = tuple[float, str]
# One record of the request topics, in arrival order: (request_id, the request, or None for a
# tombstone on the state topic).
Arrival = tuple[str, Any]


def count_key(request: Any) -> CountKey:
    return request.opd_code, request.category, int(request.status), request.submitted_by_client


def listing_time(request: Any) -> float:
    """The first part of the listing order (newest first): minus the requested time."""
    return -from_timestamp(request.requested_time)


@dataclass(frozen=True)
class Known:
    """What the store holds of a request before a batch."""

    version: int
    count_key: CountKey
    listing_time: float = 0.0

    def placed_as(self, request: Any) -> bool:
        """Whether a new version leaves the request where the listings have it (the usual case:
        only status, version and body change), so the store needs to touch no listing index."""
        opd, category, _, client = self.count_key
        return (opd, category, client, self.listing_time) == (
            request.opd_code,
            request.category,
            request.submitted_by_client,
            listing_time(request),
        )


@dataclass
class RequestBatch:
    """What one batch of request records does."""

    # request_id -> the version to keep (None: delete the request).
    winners: dict[str, Any] = field(default_factory=dict)
    # Versions a watch stream hears, in arrival order.
    changes: list[Any] = field(default_factory=list)
    count_deltas: Counter[CountKey] = field(default_factory=Counter)


def plan_requests(arrivals: Iterable[Arrival], known: Mapping[str, Known]) -> RequestBatch:
    """Newest version per request wins; an older one arriving later (the state topic lagging
    the event topic, a redelivery) changes nothing, nor does the same version again (the state
    topic and the event topic both carry every version: they are the same request)."""
    batch = RequestBatch()
    seen: dict[str, int | None] = {}  # request_id -> version so far (None: absent)
    for request_id, request in arrivals:
        before = seen[request_id] if request_id in seen else _known_version(known, request_id)
        if request is None:
            batch.winners[request_id] = None
            seen[request_id] = None
            continue
        if before is not None and before >= request.version:
            continue
        batch.changes.append(request)
        batch.winners[request_id] = request
        seen[request_id] = request.version
    for request_id, winner in batch.winners.items():
        old = known.get(request_id)
        if old is not None:
            batch.count_deltas[old.count_key] -= 1
        if winner is not None:
            batch.count_deltas[count_key(winner)] += 1
    return batch


def _known_version(known: Mapping[str, Known], request_id: str) -> int | None:
    old = known.get(request_id)
    return None if old is None else old.version


class RequestCounts:
    """How many requests the store holds per (OPD, category, status, submitter).

    A few hundred keys at most, whatever the history: totals are sums over them."""

    def __init__(self, counts: Mapping[CountKey, int] | None = None) -> None:
        self._counts: dict[CountKey, int] = {k: n for k, n in (counts or {}).items() if n}

    def apply(self, deltas: Mapping[CountKey, int]) -> None:
        for key, delta in deltas.items():
            n = self._counts.get(key, 0) + delta
            if n:
                self._counts[key] = n
            else:
                self._counts.pop(key, None)

    def total(
        self,
        *,
        opd_code: str = "",
        category: str = "",
        status: int = 0,
        visible: Callable[[str, str], bool] | None = None,
    ) -> int:
        """Requests matching the filter (empty = any) that `visible(opd_code, submitted_by)` lets through."""
        found = 0
        for (opd, cat, st, client), n in self._counts.items():
            if (opd_code and opd != opd_code) or (category and cat != category) or (status and st != status):
                continue
            if visible is None or visible(opd, client):
                found += n
        return found

    def as_dict(self) -> dict[CountKey, int]:
        return dict(self._counts)


# ---------------- the audit trail on disk ----------------


def event_key(event: Any, partition: int, offset: int) -> str:
    """What makes an event the same event when it is delivered twice."""
    return event.event_id or f"@{partition}:{offset}"


def stored_event(event: Any, in_place: bool = False) -> bytes:
    """The event as the trail keeps it: its request without history and without contact fields
    (the sealed contact is kept once, with the request; a plaintext one never).

    `in_place`: strip the caller's message itself (cheaper; it must not be needed whole after)."""
    if not event.HasField("request"):
        return bytes(event.SerializeToString())
    kept = event
    if not in_place:
        kept = requests_pb2.RequestEvent()
        kept.CopyFrom(event)
    for name in ("history", "reporter", "encrypted_reporter"):
        kept.request.ClearField(name)
    return bytes(kept.SerializeToString())


# ---------------- while rebuilding: no full decode ----------------
#
# A rebuild reads every request version and every event ever written, and needs only a few of
# their fields: a request's columns (id, version, OPD, category, status, submitter, times, whose
# contact), and its bytes without contact fields; an event's request id, its key, and its bytes
# without its request's history and contact fields (the state topic, read first, gave every
# request's newest version, so only an event carrying a newer one needs its request whole).
# `StateRequest` and `TrailEvent` are message types wire-compatible with ServiceRequest and
# RequestEvent that know only those fields (with the same names): every other field stays
# undecoded, as an unknown field, and is written back byte for byte. So the bytes stored are
# those `stored_request` and `stored_event` make of the full messages, in a fraction of the time
# (no history entry, location or timestamp of the rest is parsed, no Python object made for it).


def _slim_types() -> dict[str, Any]:
    fd = descriptor_pb2.FieldDescriptorProto
    string, uint64, int32, int64, raw, message = (
        fd.TYPE_STRING,
        fd.TYPE_UINT64,
        fd.TYPE_INT32,
        fd.TYPE_INT64,
        fd.TYPE_BYTES,
        fd.TYPE_MESSAGE,
    )
    # Each message type: (name, [(field name, number, type, repeated, message type name)]).
    shapes: list[tuple[str, list[tuple[str, int, int, bool, str]]]] = [
        ("Timestamp", [("seconds", 1, int64, False, ""), ("nanos", 2, int32, False, "")]),
        ("Opaque", []),  # a message whose fields are all kept undecoded
        ("Envelope", [("subject_id", 1, string, False, "")]),  # EncryptedContact
        (
            "StateRequest",  # ServiceRequest
            [
                ("request_id", 1, string, False, ""),
                ("category", 2, string, False, ""),
                ("opd_code", 4, string, False, ""),
                ("status", 6, int32, False, ""),
                ("version", 7, uint64, False, ""),
                ("reporter", 13, message, False, "Opaque"),
                ("submitted_by_client", 16, string, False, ""),
                ("requested_time", 17, message, False, "Timestamp"),
                ("updated_time", 18, message, False, "Timestamp"),
                ("encrypted_reporter", 26, message, False, "Envelope"),
            ],
        ),
        (
            "TrailRequest",  # ServiceRequest, as an event carries it
            [
                ("request_id", 1, string, False, ""),
                ("version", 7, uint64, False, ""),
                # The fields a trail never keeps: their bytes only (not parsed), dropped.
                ("reporter", 13, raw, False, ""),
                ("history", 23, raw, True, ""),
                ("encrypted_reporter", 26, raw, False, ""),
            ],
        ),
        (
            "TrailEvent",  # RequestEvent
            [
                ("event_id", 1, string, False, ""),
                ("request_id", 2, string, False, ""),
                ("request", 15, message, False, "TrailRequest"),
            ],
        ),
    ]
    file = descriptor_pb2.FileDescriptorProto(
        name="gateway/slim.proto", package="gateway.slim", syntax="proto3"
    )
    for name, fields in shapes:
        shape = file.message_type.add(name=name)
        for field_name, number, kind, repeated, type_name in fields:
            field = shape.field.add(
                name=field_name,
                number=number,
                type=kind,
                label=fd.LABEL_REPEATED if repeated else fd.LABEL_OPTIONAL,
            )
            if type_name:
                field.type_name = f".gateway.slim.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"gateway.slim.{name}"))
        for name, _ in shapes
    }


_SLIM = _slim_types()
# A ServiceRequest as far as a rebuild reads it: what `plan_requests`, `stored_request` and
# the store's columns use of a request, under the same names (so it goes through them as is).
StateRequest = _SLIM["StateRequest"]
TrailEvent = _SLIM["TrailEvent"]
# A trail row: (request id, event key, trail position, stored event bytes), as
# HistoryStore.commit takes it.
TrailRow = tuple[str, str, int, bytes]

# Bits of a trail position that hold the event's partition (`trail_position`).
TRAIL_PARTITION_BITS = 10


def trail_position(partition: int, offset: int) -> int:
    """An event's place in its request's trail: where the event topic holds it, so every
    replica's store gives an event the same position and a page token of one replica reads
    on from the same place on another (a store's own row ids depend on how its rebuild's
    workers took turns). A request's events share one partition (keyed by the request), so
    its trail runs in offset order; the partition in the low bits keeps positions unique.
    Positions start above 0, the token of a trail's first page (`after` 0)."""
    check_trail_partition(partition)
    return (offset + 1) << TRAIL_PARTITION_BITS | partition


def check_trail_partition(partition: int) -> None:
    """Raises ValueError when the partition does not fit a trail position's low bits."""
    if not 0 <= partition < 1 << TRAIL_PARTITION_BITS:
        raise ValueError(f"event partition {partition} does not fit a trail position's "
                         f"{TRAIL_PARTITION_BITS} bits (the event topic has too many partitions)")


class StateRow(NamedTuple):
    """A request as a rebuild reads it off the state topic: its row of the store's requests
    table, column for column, made straight from the record (rebuild.state_batch). It has the
    attributes `plan_requests` and `count_key` read of a request, so it is planned as one."""

    request_id: str
    version: int
    opd_code: str
    category: str
    status: int
    submitted_by_client: str
    listing_time: float
    subject_id: str | None
    updated_time: float
    body: bytes  # `stored_request` of the request: no contact fields
    contact: bytes | None  # the sealed contact as the topic carried it


# What parsing bytes that are no event raises (upb: DecodeError; other protobuf runtimes also
# RuntimeError or ValueError).
TRAIL_PARSE_ERRORS = (_ProtobufDecodeError, RuntimeError, ValueError)


class NotAnEvent(ValueError):
    """Bytes that do not parse as a RequestEvent (as far as the trail reads them)."""


def trail_row(value: bytes, key: str, partition: int, offset: int) -> tuple[TrailRow, str, int]:
    """(the trail row of an event record, the id and version of the request it carries: "" and
    0 when none). `key` is the record's key (the request id), used when the event names none.

    The row's bytes equal `stored_event` of the decoded event: the event with its request's
    history and both contact fields (plaintext and sealed) taken off."""
    try:
        event = TrailEvent.FromString(value)
    except TRAIL_PARSE_ERRORS as exc:
        raise NotAnEvent(str(exc)) from exc
    carried_id, carried_version = "", 0
    if event.HasField("request"):
        request = event.request
        carried_id, carried_version = request.request_id, request.version
        request.ClearField("history")
        request.ClearField("reporter")
        request.ClearField("encrypted_reporter")
    row = (
        event.request_id or key,
        event.event_id or f"@{partition}:{offset}",
        trail_position(partition, offset),
        event.SerializeToString(),
    )
    return row, carried_id, carried_version


def stored_request(request: Any, in_place: bool = False) -> tuple[bytes, bytes | None]:
    """(the request without contact fields, its sealed contact as the topic carried it).

    A plaintext `reporter` (records from before contact data was sealed) is never stored.
    `in_place`: take the contact fields off the caller's message itself (cheaper)."""
    if not request.HasField("reporter") and not request.HasField("encrypted_reporter"):
        return bytes(request.SerializeToString()), None
    contact = (
        bytes(request.encrypted_reporter.SerializeToString())
        if request.HasField("encrypted_reporter")
        else None
    )
    kept = request
    if not in_place:
        kept = type(request)()  # a ServiceRequest, or a StateRequest while rebuilding
        kept.CopyFrom(request)
    kept.ClearField("reporter")
    kept.ClearField("encrypted_reporter")
    return bytes(kept.SerializeToString()), contact


def stored_parts(request: Any, in_place: bool = False) -> tuple[bytes, bytes | None, str | None]:
    """(body, sealed contact, whose contact) of a request's row: `stored_request`, with the
    subject taken before the contact fields are (in place) taken off."""
    subject = subject_of(request)
    return (*stored_request(request, in_place), subject)


def subject_of(request: Any) -> str | None:
    """Whose contact a request carries (the subject of its data key), None when none."""
    return str(request.encrypted_reporter.subject_id) if request.HasField("encrypted_reporter") else None


def with_contact(message: Any, contact: bytes | None) -> Any:
    """Puts the sealed contact back into a stored request (or an event's request)."""
    if contact is not None:
        message.encrypted_reporter.MergeFromString(contact)
    return message


# ---------------- what the API reads ----------------


@dataclass(frozen=True)
class RequestFilter:
    """The SQL side of a ListRequests call (open/overdue listings are answered from memory)."""

    opd_code: str = ""
    category: str = ""
    status: int = 0
    # (opd_code, client_id) of a caller without requests:read:all: its OPD's and its own
    # submissions only. None: every request.
    visible_to: tuple[str, str] | None = None


@dataclass(frozen=True)
class StoredEvent:
    position: int  # where the event topic holds it (trail_position); page tokens carry it
    event: Any


class RequestReads(Protocol):
    """The request read model as the API sees it (gateway.adapters.request_history)."""

    def get(self, request_id: str) -> Any | None:
        """The newest version of a request, None when unknown."""

    def uses_memory(self, status: int, open_only: bool, overdue_only: bool) -> bool:
        """Whether a listing with this filter is answered from the open requests in memory."""

    def list_requests(
        self, flt: RequestFilter, after: ListingKey | None, limit: int
    ) -> tuple[list[Any], bool, int]:
        """(up to `limit` requests after `after`, whether more follow, total matching)."""

    def trail(self, request_id: str, after: int, limit: int) -> tuple[list[StoredEvent], bool]:
        """(up to `limit` events of the trail after position `after`, whether more follow)."""

    def every_request(self) -> Iterator[Any]:
        """Every request in listing order as of the call, streamed."""

    def of_subject(self, subject_id: str) -> list[Any]:
        """The requests carrying a subject's sealed contact (erasure, discarding a data key)."""

    def contact_uses(self, subject_ids: Collection[str]) -> Iterator[Any]:
        """The requests carrying the sealed contact of one of `subject_ids`, reduced to what
        the retention rule reads (id, status, updated time, the contact's subject), streamed."""

"""What the service keeps per request id: the request and the outcomes of its recent commands.

Each record remembers the events every recent command produced (bounded), so a redelivered
command can re-emit its original outcome (see ledger.py for why and how).

Records are stored as bytes in a changelog-backed table: a small length-prefixed frame around
the protobuf request and events (no schema of its own to keep in step with the protos).

The remembered events are needed only when a command comes again, so they stay the bytes they
were stored as (`StoredEvents`, decoded on first access): reading a record and writing it back
costs no event decode and no event encode, where it cost one of each per remembered event.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import overload

from smartcity.v1 import requests_pb2 as pb

_MAGIC = b"CR1"
_NO_REQUEST = 0xFFFFFFFF


class RecordError(ValueError):
    """Bytes that are not a stored record."""


class StoredEvents(Sequence[pb.RequestEvent]):
    """A command's remembered events as their stored bytes, each decoded when first read."""

    __slots__ = ("_decoded", "encoded")

    def __init__(self, encoded: list[bytes]) -> None:
        self.encoded = encoded
        self._decoded: list[pb.RequestEvent] | None = None

    @classmethod
    def of(cls, events: Iterable[pb.RequestEvent]) -> StoredEvents:
        return cls([event.SerializeToString(deterministic=True) for event in events])

    def _events(self) -> list[pb.RequestEvent]:
        if self._decoded is None:
            self._decoded = [pb.RequestEvent.FromString(raw) for raw in self.encoded]
        return self._decoded

    @overload
    def __getitem__(self, index: int) -> pb.RequestEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[pb.RequestEvent]: ...

    def __getitem__(self, index: int | slice) -> pb.RequestEvent | list[pb.RequestEvent]:
        return self._events()[index]

    def __len__(self) -> int:
        return len(self.encoded)

    def __eq__(self, other: object) -> bool:  # the events, compared as messages
        if not isinstance(other, Sequence):
            return NotImplemented
        return list(self) == list(other)

    # A sequence that compares by value: unhashable, like a list.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StoredEvents({list(self)!r})"


def _encoded_events(events: Sequence[pb.RequestEvent]) -> list[bytes]:
    if isinstance(events, StoredEvents):
        return events.encoded
    return [event.SerializeToString(deterministic=True) for event in events]


@dataclass
class RequestRecord:
    """One request id's record: the request (None: no such request) and its recent outcomes."""

    request: pb.ServiceRequest | None = None
    # (command_id, events without their `request`), oldest first.
    outcomes: list[tuple[str, Sequence[pb.RequestEvent]]] = field(default_factory=list)

    def outcome_of(self, command_id: str) -> Sequence[pb.RequestEvent] | None:
        for seen, events in reversed(self.outcomes):
            if seen == command_id:
                return events
        return None


def encode_record(record: RequestRecord, request_bytes: bytes | None = None) -> bytes:
    """The record's bytes. `request_bytes`: its request already serialised (deterministic), when
    the caller has them (the state it publishes is the same request)."""
    parts = [_MAGIC]
    if record.request is None:
        parts.append(struct.pack(">I", _NO_REQUEST))
    else:
        body = request_bytes
        if body is None:
            body = record.request.SerializeToString(deterministic=True)
        parts += [struct.pack(">I", len(body)), body]
    parts.append(struct.pack(">H", len(record.outcomes)))
    for command_id, events in record.outcomes:
        cid = command_id.encode()
        encoded = _encoded_events(events)
        parts += [struct.pack(">HH", len(cid), len(encoded)), cid]
        for body in encoded:
            parts += [struct.pack(">I", len(body)), body]
    return b"".join(parts)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise RecordError("truncated record")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def decode_record(data: bytes) -> RequestRecord:
    reader = _Reader(data)
    if reader.take(len(_MAGIC)) != _MAGIC:
        raise RecordError("not a citizen-requests record")
    (size,) = reader.unpack(">I")
    request = None if size == _NO_REQUEST else pb.ServiceRequest.FromString(reader.take(size))
    (count,) = reader.unpack(">H")
    outcomes: list[tuple[str, Sequence[pb.RequestEvent]]] = []
    for _ in range(count):
        cid_size, n_events = reader.unpack(">HH")
        command_id = reader.take(cid_size).decode()
        events = StoredEvents([reader.take(reader.unpack(">I")[0]) for _ in range(n_events)])
        outcomes.append((command_id, events))
    return RequestRecord(request, outcomes)

"""What the service keeps per request id: the request and the outcomes of its recent commands.

Each record remembers the events every recent command produced (bounded), so a redelivered
command can re-emit its original outcome (see ledger.py for why and how).

Records are stored as bytes in a changelog-backed table: a small length-prefixed frame around
the protobuf request and events (no schema of its own to keep in step with the protos).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from smartcity.v1 import requests_pb2 as pb

_MAGIC = b"CR1"
_NO_REQUEST = 0xFFFFFFFF


class RecordError(ValueError):
    """Bytes that are not a stored record."""


@dataclass
class RequestRecord:
    """One request id's record: the request (None: no such request) and its recent outcomes."""

    request: pb.ServiceRequest | None = None
    # (command_id, events without their `request`), oldest first.
    outcomes: list[tuple[str, list[pb.RequestEvent]]] = field(default_factory=list)

    def outcome_of(self, command_id: str) -> list[pb.RequestEvent] | None:
        for seen, events in reversed(self.outcomes):
            if seen == command_id:
                return events
        return None


def encode_record(record: RequestRecord) -> bytes:
    parts = [_MAGIC]
    if record.request is None:
        parts.append(struct.pack(">I", _NO_REQUEST))
    else:
        body = record.request.SerializeToString(deterministic=True)
        parts += [struct.pack(">I", len(body)), body]
    parts.append(struct.pack(">H", len(record.outcomes)))
    for command_id, events in record.outcomes:
        cid = command_id.encode()
        parts += [struct.pack(">HH", len(cid), len(events)), cid]
        for event in events:
            body = event.SerializeToString(deterministic=True)
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
    outcomes: list[tuple[str, list[pb.RequestEvent]]] = []
    for _ in range(count):
        cid_size, n_events = reader.unpack(">HH")
        command_id = reader.take(cid_size).decode()
        events = [pb.RequestEvent.FromString(reader.take(reader.unpack(">I")[0])) for _ in range(n_events)]
        outcomes.append((command_id, events))
    return RequestRecord(request, outcomes)

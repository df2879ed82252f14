"""The hot path's shortcuts held equal to the general path they stand for (no Kafka).

- event ids: computed from SHA-1 directly, equal to `uuid.uuid5`'s;
- stored records: remembered events kept as their bytes, the record's bytes equal to those of
  serialising every event again, and a record read back equal to the one written;
- a record written with its request's bytes given equals one serialising the request itself.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citizen_requests.config import load_config
from citizen_requests.core import lifecycle
from citizen_requests.core.ledger import process_commands
from citizen_requests.core.records import RequestRecord, StoredEvents, decode_record, encode_record
from citizen_requests.core.routing import RequestsConfig
from citizen_requests.sim.command_builders import STAFF, action_command, actor, submit_command
from smartcity.v1 import requests_pb2 as pb

T0 = 1_767_225_600.0
BY = actor(STAFF, "sari", "DLH")
ACTIONS = ("acknowledge", "assign", "start", "resolve", "close", "reopen", "comment", "reject")
FIELDS: dict[str, dict[str, Any]] = {"assign": {"assignee": "tim-1"}, "comment": {"text": "dicek"},
                                     "reject": {"reason": "duplikat"}, "reopen": {"reason": "belum beres"}}


@pytest.fixture(scope="module")
def config() -> RequestsConfig:
    return load_config()


def uuid5_event_id(*parts: str) -> str:
    """The general path: the event id as `uuid.uuid5` makes it."""
    return "evt-" + uuid.uuid5(lifecycle._EVENT_NAMESPACE, "\x1f".join(parts)).hex[:24]


@given(st.lists(st.text(max_size=40), min_size=1, max_size=4))
@settings(max_examples=400, deadline=None)
def test_event_ids_are_uuid5s(parts: list[str]) -> None:
    assert lifecycle.event_id(*parts) == uuid5_event_id(*parts)


def encode_every_event(record: RequestRecord) -> bytes:
    """The general path: the record's frame with every event serialised again."""
    out = [b"CR1"]
    if record.request is None:
        out.append(struct.pack(">I", 0xFFFFFFFF))
    else:
        body = record.request.SerializeToString(deterministic=True)
        out += [struct.pack(">I", len(body)), body]
    out.append(struct.pack(">H", len(record.outcomes)))
    for command_id, events in record.outcomes:
        cid = command_id.encode()
        out += [struct.pack(">HH", len(cid), len(events)), cid]
        for event in list(events):
            body = event.SerializeToString(deterministic=True)
            out += [struct.pack(">I", len(body)), body]
    return b"".join(out)


# A request's commands: a submit, then actions (some rejected, some repeated: replays).
steps = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 3)), max_size=12)


@given(steps, st.integers(1, 5), st.integers(1, 6), st.sampled_from([60.0, 86_400.0 * 3]))
@settings(max_examples=150, deadline=None)
def test_stored_records_equal_the_general_encoding(config: RequestsConfig, actions: list[tuple[str, int]],
                                                   memory: int, batch_size: int, gap_s: float) -> None:
    """Days between commands make SLA breaches: outcomes of several events."""
    sub = submit_command(client_id="gw", idempotency_key="k", category="waste", description="Sampah",
                         issued_at=T0, latitude=-7.3867, longitude=109.3655)
    commands = [sub]
    for i, (action, repeat) in enumerate(actions):
        command = action_command(sub.request_id, action, issued_at=T0 + gap_s * (i + 1), by=BY,
                                 client_id="sim", **FIELDS.get(action, {}))
        commands.append(command)
        if repeat == 0:
            commands.append(command)  # redelivered: its outcome is replayed from the record
    stored: dict[str, bytes] = {}

    def load(request_id: str) -> RequestRecord | None:
        raw = stored.get(request_id)
        return decode_record(raw) if raw else None

    for start in range(0, len(commands), batch_size):
        batch = process_commands(load, commands[start:start + batch_size], config, outcome_memory=memory)
        for request_id, record in batch.records.items():
            raw = encode_record(record)
            assert raw == encode_every_event(record)
            given_bytes = (None if record.request is None
                           else record.request.SerializeToString(deterministic=True))
            assert encode_record(record, given_bytes) == raw
            back = decode_record(raw)
            assert back == record
            assert all(isinstance(events, StoredEvents) for _, events in back.outcomes)
            assert encode_record(back) == raw  # written back untouched: the same bytes
            stored[request_id] = raw


def test_stored_events_decode_to_the_events_they_were_made_of() -> None:
    events = [pb.RequestEvent(event_id="e1", version=1), pb.RequestEvent(event_id="e2", note="x")]
    kept = StoredEvents.of(events)
    assert len(kept) == 2 and list(kept) == events and kept[1] == events[1] and kept == events
    assert kept != [events[0]]

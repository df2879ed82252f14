"""Redelivered commands, retried submits and the stored record (no Kafka)."""

from __future__ import annotations

from typing import Any

import pytest

from citizen_requests.config import load_config
from citizen_requests.core.ledger import Ledger, process_command
from citizen_requests.core.records import RecordError, RequestRecord, decode_record, encode_record
from citizen_requests.core.routing import RequestsConfig
from citizen_requests.sim.command_builders import STAFF, action_command, actor, submit_command
from smartcity.v1 import requests_pb2 as pb

T0 = 1_767_225_600.0
BY = actor(STAFF, "sari", "DLH")


@pytest.fixture(scope="module")
def config() -> RequestsConfig:
    return load_config()


def submit(key: str = "k1", at: float = T0) -> pb.RequestCommand:
    return submit_command(client_id="gw", idempotency_key=key, category="waste",
                          description="Sampah menumpuk", issued_at=at, latitude=-7.3867, longitude=109.3655)


def act(request_id: str, action: str, at: float, **fields: Any) -> pb.RequestCommand:
    return action_command(request_id, action, issued_at=at, by=BY, client_id="sim-dlh", **fields)


def test_a_redelivered_command_re_emits_its_outcome_and_applies_nothing(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    sub = submit()
    first = ledger.command(sub)
    ack = act(sub.request_id, "acknowledge", T0 + 60)
    applied = ledger.command(ack)
    again = ledger.command(ack)
    assert again.replayed and not again.record_changed
    assert [e.event_id for e in again.events] == [e.event_id for e in applied.events]
    assert [e.type for e in again.events] == [pb.REQUEST_EVENT_TYPE_ACKNOWLEDGED]
    assert again.events[0].request.version == 2 == ledger.requests()[sub.request_id].version
    resubmitted = ledger.command(sub)
    assert resubmitted.replayed and resubmitted.events[0].event_id == first.events[0].event_id
    assert ledger.requests()[sub.request_id].version == 2


def test_a_rejected_command_stays_rejected_when_redelivered_after_the_request_moved_on(
        config: RequestsConfig) -> None:
    """Redelivery after a crash meets a newer state: the command must not succeed the second time."""
    ledger = Ledger(config)
    sub = submit()
    ledger.command(sub)
    early_assign = act(sub.request_id, "assign", T0 + 30, assignee="tim-2")
    assert ledger.command(early_assign).events[0].type == pb.REQUEST_EVENT_TYPE_COMMAND_REJECTED
    ledger.command(act(sub.request_id, "acknowledge", T0 + 60))
    again = ledger.command(early_assign)
    assert again.events[0].type == pb.REQUEST_EVENT_TYPE_COMMAND_REJECTED
    assert ledger.requests()[sub.request_id].status == pb.REQUEST_STATUS_ACKNOWLEDGED


def test_a_command_for_an_unknown_id_stays_not_found_after_the_submit(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    sub = submit()
    ghost_ack = act(sub.request_id, "acknowledge", T0)
    assert ledger.command(ghost_ack).events[0].rejection_code == pb.REJECTION_CODE_NOT_FOUND
    ledger.command(sub)
    assert ledger.command(ghost_ack).events[0].rejection_code == pb.REJECTION_CODE_NOT_FOUND
    assert ledger.requests()[sub.request_id].version == 1


def test_a_retried_submit_yields_one_request(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    first = ledger.command(submit())
    retry = ledger.command(submit(at=T0 + 5))  # new command id, same client and key
    assert not retry.replayed
    assert [e.type for e in retry.events] == [pb.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED]
    assert retry.events[0].request == first.state
    assert retry.state is None  # nothing new to publish
    assert len(ledger.requests()) == 1


def test_replayed_outcomes_carry_the_callers_correlation_id(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    sub = submit()
    ledger.command(sub)
    retry = pb.RequestCommand()
    retry.CopyFrom(sub)
    retry.correlation_id = "corr-retry"
    assert ledger.command(retry).events[0].correlation_id == "corr-retry"


def test_outcome_memory_is_bounded(config: RequestsConfig) -> None:
    record = None
    sub = submit()
    record = process_command(record, sub, config, outcome_memory=3).record
    for i in range(5):
        cmd = act(sub.request_id, "comment", T0 + i, text=f"c{i}")
        record = process_command(record, cmd, config, outcome_memory=3).record
    assert len(record.outcomes) == 3
    assert record.outcome_of(sub.command_id) is None


def test_records_round_trip_through_bytes(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    sub = submit()
    ledger.command(sub)
    ledger.command(act(sub.request_id, "reject", T0 + 1, reason="duplikat"))
    ledger.command(act(sub.request_id, "start", T0 + 2))
    record = ledger.records[sub.request_id]
    assert decode_record(encode_record(record)) == record
    empty = RequestRecord(None, [("cmd-x", [pb.RequestEvent(event_id="e")])])
    assert decode_record(encode_record(empty)) == empty
    stored_events = [e for _, events in record.outcomes for e in events]
    assert not any(e.HasField("request") for e in stored_events)  # outcomes are kept lean
    with pytest.raises(RecordError):
        decode_record(b"nonsense")
    with pytest.raises(RecordError):
        decode_record(encode_record(record)[:-3])

"""Commands: building them, waiting for their outcome, mapping rejections (no Kafka)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.core.auth import Principal
from gateway.core.command_bus import CommandBus, check_outcome, new_command, set_transition, submit_action
from gateway.core.errors import ApiError, ErrorKind
from smartcity.v1 import common_pb2, gateway_pb2, requests_pb2

CALLER = Principal("dpmptsp-app", "DPMPTSP", frozenset({"requests:write"}))


def outcome(command: Any, **fields: Any) -> Any:
    return requests_pb2.RequestEvent(
        **({"request_id": command.request_id, "correlation_id": command.correlation_id} | fields)
    )


def test_new_command_carries_actor_client_and_unique_ids() -> None:
    one, two = new_command(CALLER, "req-1", 1000.0, 3), new_command(CALLER, "req-1", 1000.0)
    assert one.actor.kind == requests_pb2.ACTOR_KIND_OPD_STAFF and one.actor.opd_code == "DPMPTSP"
    assert one.client_id == "dpmptsp-app" and one.expected_version == 3 and one.issued_time.seconds == 1000
    assert one.command_id != two.command_id and one.correlation_id != two.correlation_id


def test_submit_action_copies_the_request_but_never_the_reporter_in_clear() -> None:
    req = gateway_pb2.SubmitRequestRequest(
        idempotency_key="k-000001",
        category="roads",
        title="t",
        description="d",
        location=common_pb2.GeoPoint(latitude=1),
        reporter=requests_pb2.Reporter(name="n"),
    )
    action = submit_action(req, 50.0)
    assert (action.category, action.location.latitude) == ("roads", 1)
    assert not action.HasField("reporter")  # the API seals it into encrypted_reporter
    assert action.requested_time.seconds == 50


@pytest.mark.parametrize(
    "action, oneof, field, value",
    [
        (gateway_pb2.REQUEST_ACTION_ACKNOWLEDGE, "acknowledge", "note", "n"),
        (gateway_pb2.REQUEST_ACTION_ASSIGN, "assign", "assignee", "budi"),
        (gateway_pb2.REQUEST_ACTION_START, "start", "note", "n"),
        (gateway_pb2.REQUEST_ACTION_RESOLVE, "resolve", "note", "n"),
        (gateway_pb2.REQUEST_ACTION_CLOSE, "close", "note", "n"),
        (gateway_pb2.REQUEST_ACTION_REJECT, "reject", "reason", "n"),
        (gateway_pb2.REQUEST_ACTION_REOPEN, "reopen", "reason", "n"),
    ],
)
def test_every_action_has_its_command(action: Any, oneof: str, field: str, value: str) -> None:
    command = new_command(CALLER, "req-1", 0.0)
    set_transition(
        command,
        gateway_pb2.TransitionRequestRequest(request_id="req-1", action=action, note="n", assignee="budi"),
    )
    assert command.WhichOneof("action") == oneof and getattr(getattr(command, oneof), field) == value


@pytest.mark.parametrize(
    "code, kind",
    [
        (requests_pb2.REJECTION_CODE_INVALID_TRANSITION, ErrorKind.FAILED_PRECONDITION),
        (requests_pb2.REJECTION_CODE_NOT_FOUND, ErrorKind.NOT_FOUND),
        (requests_pb2.REJECTION_CODE_VERSION_CONFLICT, ErrorKind.ABORTED),
        (requests_pb2.REJECTION_CODE_INVALID_COMMAND, ErrorKind.INVALID_ARGUMENT),
        (requests_pb2.REJECTION_CODE_ALREADY_EXISTS, ErrorKind.ALREADY_EXISTS),
        (requests_pb2.REJECTION_CODE_UNSPECIFIED, ErrorKind.FAILED_PRECONDITION),
        (77, ErrorKind.FAILED_PRECONDITION),
    ],
)
def test_rejections_become_status_codes_with_the_reason(code: Any, kind: ErrorKind) -> None:
    event = requests_pb2.RequestEvent(
        type=requests_pb2.REQUEST_EVENT_TYPE_COMMAND_REJECTED, rejection_code=code, rejection_reason="because"
    )
    with pytest.raises(ApiError) as err:
        check_outcome(event)
    assert err.value.kind is kind and "because" in err.value.message


async def test_execute_returns_the_event_of_its_correlation_id() -> None:
    sent: list[Any] = []

    async def send(request_id: str, command: Any) -> None:
        sent.append(command)
        loop = asyncio.get_running_loop()
        loop.call_soon(bus.on_event, outcome(command, correlation_id="someone-else"))
        loop.call_soon(
            bus.on_event, outcome(command, type=requests_pb2.REQUEST_EVENT_TYPE_ACKNOWLEDGED, version=2)
        )

    bus = CommandBus(send)
    command = new_command(CALLER, "req-1", 0.0)
    event = await bus.execute(command, timeout_s=2)
    assert event.version == 2 and sent == [command] and bus.waiting == 0


async def test_a_breach_flagged_on_the_way_is_not_the_outcome() -> None:
    # citizen-requests answers a late acknowledge with [SLA_BREACHED, ACKNOWLEDGED], both
    # carrying the command's correlation id: the caller gets the acknowledgement.
    async def send(request_id: str, command: Any) -> None:
        loop = asyncio.get_running_loop()
        breach = outcome(command, type=requests_pb2.REQUEST_EVENT_TYPE_SLA_BREACHED, version=2)
        acked = outcome(command, type=requests_pb2.REQUEST_EVENT_TYPE_ACKNOWLEDGED, version=3)
        loop.call_soon(bus.on_event, breach)
        loop.call_soon(bus.on_event, acked)

    bus = CommandBus(send)
    event = await bus.execute(new_command(CALLER, "req-1", 0.0), timeout_s=2)
    assert event.type == requests_pb2.REQUEST_EVENT_TYPE_ACKNOWLEDGED and event.version == 3


async def test_execute_times_out_with_deadline_exceeded() -> None:
    async def send(request_id: str, command: Any) -> None:
        return None

    bus = CommandBus(send)
    with pytest.raises(ApiError) as err:
        await bus.execute(new_command(CALLER, "req-9", 0.0), timeout_s=0.05)
    assert err.value.kind is ErrorKind.DEADLINE_EXCEEDED and "req-9" in err.value.message
    assert bus.waiting == 0
    with pytest.raises(ApiError) as err:
        await bus.execute(new_command(CALLER, "req-9", 0.0), timeout_s=0)
    assert err.value.kind is ErrorKind.DEADLINE_EXCEEDED

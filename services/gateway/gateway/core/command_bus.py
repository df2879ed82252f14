"""The command bus: API writes turned into RequestCommands, and the wait for their outcome events.

Pure of Kafka and metrics: `CommandBus` is given a `send` coroutine (the command publisher in
the service, a list in unit tests), an `on_outcome` callback (the commands metric) and is fed
every RequestEvent the gateway reads. A caller registers its correlation id *before* the
command is sent, so the outcome cannot slip past.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.core.auth import Principal
from gateway.core.errors import ApiError, ErrorKind
from smartcity.codec import to_timestamp
from smartcity.ids import new_id
from smartcity.v1 import gateway_pb2, requests_pb2

Send = Callable[[str, Any], Awaitable[None]]  # (request_id, RequestCommand) -> sent
OnOutcome = Callable[[str, str], None]  # (action, outcome label) of every command sent

_ACTOR_KINDS = {
    "citizen": requests_pb2.ACTOR_KIND_CITIZEN,
    "opd_staff": requests_pb2.ACTOR_KIND_OPD_STAFF,
    "command_center": requests_pb2.ACTOR_KIND_COMMAND_CENTER,
    "system": requests_pb2.ACTOR_KIND_SYSTEM,
}

# What each outcome of a command means for the caller.
_REJECTIONS = {
    requests_pb2.REJECTION_CODE_NOT_FOUND: ErrorKind.NOT_FOUND,
    requests_pb2.REJECTION_CODE_VERSION_CONFLICT: ErrorKind.ABORTED,
    requests_pb2.REJECTION_CODE_INVALID_COMMAND: ErrorKind.INVALID_ARGUMENT,
    requests_pb2.REJECTION_CODE_ALREADY_EXISTS: ErrorKind.ALREADY_EXISTS,
    requests_pb2.REJECTION_CODE_INVALID_TRANSITION: ErrorKind.FAILED_PRECONDITION,
}


def actor_of(principal: Principal) -> Any:
    kind = _ACTOR_KINDS.get(principal.actor_kind, requests_pb2.ACTOR_KIND_UNSPECIFIED)
    return requests_pb2.Actor(kind=kind, id=principal.client_id, opd_code=principal.opd_code)


def new_command(principal: Principal, request_id: str, now: float, expected_version: int = 0) -> Any:
    return requests_pb2.RequestCommand(
        command_id=new_id("cmd"),
        request_id=request_id,
        correlation_id=uuid.uuid4().hex,
        actor=actor_of(principal),
        issued_time=to_timestamp(now),
        expected_version=expected_version,
        client_id=principal.client_id,
    )


def submit_action(req: gateway_pb2.SubmitRequestRequest, now: float) -> Any:
    action = requests_pb2.SubmitAction(
        idempotency_key=req.idempotency_key,
        category=req.category,
        title=req.title,
        description=req.description,
        address=req.address,
        media_url=req.media_url,
        priority=req.priority,
        requested_time=to_timestamp(now),
    )
    if req.HasField("location"):
        action.location.CopyFrom(req.location)
    # The reporter never goes in clear: the API seals it into action.encrypted_reporter.
    return action


def set_transition(command: Any, req: gateway_pb2.TransitionRequestRequest) -> None:
    """Puts the action of a TransitionRequest (validated) into the command."""
    action, note = req.action, req.note
    if action == gateway_pb2.REQUEST_ACTION_ACKNOWLEDGE:
        command.acknowledge.note = note
    elif action == gateway_pb2.REQUEST_ACTION_ASSIGN:
        command.assign.assignee, command.assign.note = req.assignee, note
    elif action == gateway_pb2.REQUEST_ACTION_START:
        command.start.note = note
    elif action == gateway_pb2.REQUEST_ACTION_RESOLVE:
        command.resolve.note = note
    elif action == gateway_pb2.REQUEST_ACTION_CLOSE:
        command.close.note = note
    elif action == gateway_pb2.REQUEST_ACTION_REJECT:
        command.reject.reason = note
    elif action == gateway_pb2.REQUEST_ACTION_REOPEN:
        command.reopen.reason = note
    else:
        raise ValueError(f"no command for action {action}")


def check_outcome(event: Any) -> Any:
    """The event if the command was applied (or deduplicated), else the caller's ApiError."""
    if event.type != requests_pb2.REQUEST_EVENT_TYPE_COMMAND_REJECTED:
        return event
    kind = _REJECTIONS.get(event.rejection_code, ErrorKind.FAILED_PRECONDITION)
    code = (
        requests_pb2.RejectionCode.Name(event.rejection_code)
        if (event.rejection_code in requests_pb2.RejectionCode.DESCRIPTOR.values_by_number)
        else str(event.rejection_code)
    )
    reason = event.rejection_reason or "no reason given"
    raise ApiError(kind, f"command rejected ({code}): {reason}")


class CommandBus:
    """Sends commands and resolves each caller's wait with the event of its correlation id."""

    def __init__(self, send: Send, on_outcome: OnOutcome | None = None) -> None:
        self._send = send
        self._on_outcome = on_outcome or _ignore
        self._waiting: dict[str, asyncio.Future[Any]] = {}

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def on_event(self, event: Any) -> None:
        # A breach citizen-requests flags on the way (a late command) carries the command's
        # correlation id too, before the command's own event: it is not the outcome.
        if event.type == requests_pb2.REQUEST_EVENT_TYPE_SLA_BREACHED:
            return
        future = self._waiting.get(event.correlation_id) if event.correlation_id else None
        if future is not None and not future.done():
            future.set_result(event)

    async def execute(self, command: Any, timeout_s: float) -> Any:
        """Sends the command and returns its outcome event (rejections raise ApiError)."""
        if timeout_s <= 0:
            raise ApiError(ErrorKind.DEADLINE_EXCEEDED, "the deadline passed before the command was sent")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[command.correlation_id] = future
        try:
            async with asyncio.timeout(timeout_s):
                await self._send(command.request_id, command)
                event = await future
        except TimeoutError:
            self._on_outcome(_action_of(command), "timeout")
            raise ApiError(
                ErrorKind.DEADLINE_EXCEEDED,
                f"no outcome for command {command.command_id} on request {command.request_id} within "
                f"{timeout_s:.1f} s; it may still be applied: read the request or retry with the same "
                "idempotency key",
            ) from None
        finally:
            self._waiting.pop(command.correlation_id, None)
        self._on_outcome(_action_of(command), outcome_label(event))
        return check_outcome(event)


def _ignore(action: str, outcome: str) -> None:
    pass


def _action_of(command: Any) -> str:
    return str(command.WhichOneof("action") or "none")


def outcome_label(event: Any) -> str:
    """The `outcome` label of smartcity_gateway_commands_total for an outcome event."""
    if event.type == requests_pb2.REQUEST_EVENT_TYPE_COMMAND_REJECTED:
        return "rejected"
    if event.type == requests_pb2.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED:
        return "deduplicated"
    return "applied"

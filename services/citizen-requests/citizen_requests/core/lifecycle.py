"""The citizen request lifecycle: commands in, events and the new request out. No Kafka here.

The transition table, the text limits and what open and overdue mean are the shared request
rules (`smartcity.request_rules`, which the gateway uses too):

    SUBMITTED -> ACKNOWLEDGED -> ASSIGNED -> IN_PROGRESS -> RESOLVED -> CLOSED
    REJECTED from SUBMITTED or ACKNOWLEDGED; RESOLVED -> IN_PROGRESS on reopen;
    comments on any state but CLOSED and REJECTED.

Every applied command bumps the version and appends a history entry; a command that cannot be
applied yields one COMMAND_REJECTED event and changes nothing. SLA due times are computed from
the request's own time (event time). A breach is flagged once per request and SLA kind, as an
SLA_BREACHED event timed at the due time: by the timer (`flag_overdue`) or, when a command's
event time is already past a due time, right before the command takes effect. Event ids are
derived from the command id (or request id and SLA kind), so re-running the same input yields
the same events.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from citizen_requests.core.routing import RequestsConfig
from citizen_requests.core.sla import overdue_kinds
from smartcity.codec import from_timestamp, to_timestamp
from smartcity.request_rules import (
    DESCRIPTION_REQUIRED,
    MAX_DESCRIPTION,
    MAX_NOTE,
    MAX_TITLE,
    REASON_REQUIRED,
    TITLE_REQUIRED,
    TRANSITIONS,
    sla_due,
)
from smartcity.v1 import requests_pb2 as pb

SERVICE_ACTOR = pb.Actor(kind=pb.ACTOR_KIND_SYSTEM, id="citizen-requests")
DEFAULT_HISTORY_LIMIT = 200

_EVENT_NAMESPACE = uuid.UUID("0b7f3c52-2d7e-5c1a-8d40-6b5f0e3a9c11")
_EVENT_NAMESPACE_BYTES = _EVENT_NAMESPACE.bytes


class Rejection(Exception):
    """A command that cannot be applied: its code and a reason a human can act on."""

    def __init__(self, code: pb.RejectionCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class LifecycleOutcome:
    """What a command or a timer tick did: the events, in order, and the request afterwards."""

    events: list[pb.RequestEvent]
    request: pb.ServiceRequest | None
    # False when the request is unchanged (rejections, deduplications, nothing overdue).
    changed: bool


def status_name(status: pb.RequestStatus) -> str:
    return pb.RequestStatus.Name(status).removeprefix("REQUEST_STATUS_")


def event_type_name(event_type: pb.RequestEventType) -> str:
    return pb.RequestEventType.Name(event_type).removeprefix("REQUEST_EVENT_TYPE_")


def rejection_code_name(code: pb.RejectionCode) -> str:
    return pb.RejectionCode.Name(code).removeprefix("REJECTION_CODE_")


def sla_kind_name(kind: pb.SlaKind) -> str:
    return pb.SlaKind.Name(kind).removeprefix("SLA_KIND_")


def event_id(*parts: str) -> str:
    """A deterministic event id: the same input yields the same id (consumers deduplicate on it).

    The first 24 hex digits of the name-based UUID (version 5) of the parts in our namespace,
    computed straight from its SHA-1 (a fifth of `uuid.uuid5`'s cost, which builds a UUID
    object): the same ids as ever (a test holds them equal to `uuid.uuid5`'s)."""
    digest = bytearray(hashlib.sha1(_EVENT_NAMESPACE_BYTES + "\x1f".join(parts).encode()).digest()[:12])
    digest[6] = (digest[6] & 0x0F) | 0x50  # the version: 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the variant: RFC 4122
    return "evt-" + digest.hex()


# ---- envelope validation (a command failing it is malformed: it goes to the dead-letter topic)

def validate_envelope(command: pb.RequestCommand) -> None:
    """Raises ValueError for a command nobody can answer sensibly (used as the codec's validator)."""
    missing = [name for name in ("command_id", "request_id") if not getattr(command, name)]
    if not command.HasField("issued_time"):
        missing.append("issued_time")
    if command.WhichOneof("action") is None:
        missing.append("action")
    if missing:
        raise ValueError("missing required field(s): " + ", ".join(missing))


# ---- building blocks

def _append_history(request: pb.ServiceRequest, event: pb.RequestEvent, limit: int) -> None:
    request.history.append(pb.HistoryEntry(version=event.version, type=event.type, status=event.status_after,
                                           actor=event.actor, note=event.note, time=event.event_time))
    if len(request.history) > limit:
        del request.history[: len(request.history) - limit]


def _touch(request: pb.ServiceRequest, at: float) -> None:
    if at > from_timestamp(request.updated_time):
        request.updated_time.CopyFrom(to_timestamp(at))


def _snapshot(request: pb.ServiceRequest) -> pb.ServiceRequest:
    copy = pb.ServiceRequest()
    copy.CopyFrom(request)
    return copy


def _breach(request: pb.ServiceRequest, kind: pb.SlaKind, history_limit: int) -> pb.RequestEvent:
    """Flags one SLA breach on `request` (mutated) and returns its event."""
    due = sla_due(request, kind)
    if kind == pb.SLA_KIND_ACKNOWLEDGE:
        request.sla.acknowledge_breached = True
    else:
        request.sla.resolve_breached = True
    request.version += 1
    _touch(request, due)
    event = pb.RequestEvent(
        # The due time tells a reopened request's second resolve breach from its first.
        event_id=event_id(request.request_id, "sla", str(kind), f"{due:.3f}"), request_id=request.request_id,
        type=pb.REQUEST_EVENT_TYPE_SLA_BREACHED, version=request.version, actor=SERVICE_ACTOR,
        note=f"{sla_kind_name(kind).lower()} SLA breached", event_time=to_timestamp(due),
        status_before=request.status, status_after=request.status,
        sla_breach=pb.SlaBreach(kind=kind, due_time=to_timestamp(due)),
    )
    _append_history(request, event, history_limit)
    event.request.CopyFrom(request)
    return event


def _flag_breaches(request: pb.ServiceRequest, as_of: float, history_limit: int) -> list[pb.RequestEvent]:
    return [_breach(request, kind, history_limit) for kind in overdue_kinds(request, as_of)]


def _rejected(current: pb.ServiceRequest | None, command: pb.RequestCommand,
              rejection: Rejection) -> pb.RequestEvent:
    event = pb.RequestEvent(
        event_id=event_id(command.command_id, "rejected"), request_id=command.request_id,
        correlation_id=command.correlation_id, command_id=command.command_id,
        type=pb.REQUEST_EVENT_TYPE_COMMAND_REJECTED, version=current.version if current else 0,
        actor=command.actor, event_time=command.issued_time, rejection_code=rejection.code,
        rejection_reason=rejection.reason,
    )
    if current is not None:
        event.status_before = event.status_after = current.status
        event.request.CopyFrom(current)
    return event


# ---- commands

def handle_command(current: pb.ServiceRequest | None, command: pb.RequestCommand, config: RequestsConfig,
                   history_limit: int = DEFAULT_HISTORY_LIMIT) -> LifecycleOutcome:
    """Applies one command to the request it names (None: no such request yet).

    A submit is not flagged as a possible duplicate here: that needs every partition's
    requests (see core/duplicates.py) and reaches the request afterwards (`set_duplicates`).
    """
    action = command.WhichOneof("action")
    try:
        if action == "submit":
            return _submit(current, command, config, history_limit)
        if action not in TRANSITIONS:
            raise Rejection(pb.REJECTION_CODE_INVALID_COMMAND, f"unknown action {action!r}")
        if current is None:
            raise Rejection(pb.REJECTION_CODE_NOT_FOUND, f"no request {command.request_id}")
        if command.expected_version and command.expected_version != current.version:
            raise Rejection(pb.REJECTION_CODE_VERSION_CONFLICT,
                            f"request is at version {current.version}, not {command.expected_version}")
        return _transition(current, command, action, config, history_limit)
    except Rejection as rejection:
        return LifecycleOutcome([_rejected(current, command, rejection)], current, changed=False)


def _transition(current: pb.ServiceRequest, command: pb.RequestCommand, action: str,
                config: RequestsConfig, history_limit: int) -> LifecycleOutcome:
    transition = TRANSITIONS[action]
    if current.status not in transition.allowed_from:
        allowed = ", ".join(sorted(status_name(s) for s in transition.allowed_from))
        raise Rejection(pb.REJECTION_CODE_INVALID_TRANSITION,
                        f"cannot {action} a request that is {status_name(current.status)} "
                        f"(only from {allowed})")
    note = _note_of(command, action)
    at = from_timestamp(command.issued_time)
    request = _snapshot(current)
    events = _flag_breaches(request, at, history_limit)
    request.version += 1
    before = request.status
    if transition.to is not None:
        request.status = transition.to
    _apply_effects(request, command, action, at, config)
    _touch(request, at)
    event = pb.RequestEvent(
        event_id=event_id(command.command_id, action), request_id=request.request_id,
        correlation_id=command.correlation_id, command_id=command.command_id,
        type=transition.event_type, version=request.version, actor=command.actor, note=note,
        event_time=command.issued_time, status_before=before, status_after=request.status,
    )
    _append_history(request, event, history_limit)
    event.request.CopyFrom(request)
    for earlier in events:  # breaches flagged on the way belong to this command's outcome
        earlier.correlation_id, earlier.command_id = command.correlation_id, command.command_id
    return LifecycleOutcome([*events, event], request, changed=True)


def _note_of(command: pb.RequestCommand, action: str) -> str:
    """The note of a transition, checking what the action requires."""
    payload = getattr(command, action)
    if action == "assign" and not str(payload.assignee).strip():
        raise Rejection(pb.REJECTION_CODE_INVALID_COMMAND, "assign needs an assignee")
    if action == "comment":
        text = str(payload.text).strip()
        if not text:
            raise Rejection(pb.REJECTION_CODE_INVALID_COMMAND, "a comment needs text")
        return text[:MAX_NOTE]
    if action in REASON_REQUIRED:
        reason = str(payload.reason).strip()
        if not reason:
            raise Rejection(pb.REJECTION_CODE_INVALID_COMMAND, f"{action} needs a reason")
        return reason[:MAX_NOTE]
    note = str(payload.note).strip()[:MAX_NOTE]
    if action == "assign":
        return note or f"assigned to {str(payload.assignee).strip()}"
    return note


def _apply_effects(request: pb.ServiceRequest, command: pb.RequestCommand, action: str, at: float,
                   config: RequestsConfig) -> None:
    stamp = to_timestamp(at)
    if action == "acknowledge":
        request.acknowledged_time.CopyFrom(stamp)
    elif action == "assign":
        request.assignee = command.assign.assignee.strip()
    elif action == "resolve":
        request.resolved_time.CopyFrom(stamp)
    elif action == "close":
        request.closed_time.CopyFrom(stamp)
    elif action == "reopen":
        # Time to resolve counts to the final resolution, not the first one. The problem is back:
        # the OPD gets a whole resolve window from the reopen (a breach before it stays in the
        # history), instead of a due time that may have passed while the request was resolved.
        request.ClearField("resolved_time")
        rule = config.sla_for(request.category, request.priority)
        request.sla.resolve_due.CopyFrom(to_timestamp(at + rule.resolve_s))
        request.sla.resolve_breached = False
    elif action == "comment":
        request.comment_count += 1


def _text_problem(name: str, value: str, max_len: int, required: bool) -> str | None:
    """What is wrong with one text of a submit, by the shared request rules (None: nothing)."""
    if required and not value.strip():
        return f"{name} is empty"
    if len(value) > max_len:
        return f"{name} longer than {max_len} characters"
    return None


def _validate_submit(submit: pb.SubmitAction, config: RequestsConfig) -> None:
    problems: list[str] = []
    if not submit.idempotency_key:
        problems.append("idempotency_key is required")
    if config.category(submit.category) is None:
        known = ", ".join(sorted(config.categories))
        problems.append(f"unknown category {submit.category!r} (known: {known})")
    for name, value, max_len, required in (("description", submit.description, MAX_DESCRIPTION,
                                            DESCRIPTION_REQUIRED),
                                           ("title", submit.title, MAX_TITLE, TITLE_REQUIRED)):
        problem = _text_problem(name, value, max_len, required)
        if problem:
            problems.append(problem)
    if not submit.HasField("location") and not submit.address.strip():
        problems.append("a location or an address is required")
    if submit.HasField("location") and not (-90 <= submit.location.latitude <= 90
                                            and -180 <= submit.location.longitude <= 180):
        problems.append("location is not a WGS 84 coordinate")
    if submit.media_url and not submit.media_url.startswith(("http://", "https://")):
        problems.append("media_url must be an http(s) URL")
    if problems:
        raise Rejection(pb.REJECTION_CODE_INVALID_COMMAND, "; ".join(problems))


def _submit(current: pb.ServiceRequest | None, command: pb.RequestCommand, config: RequestsConfig,
            history_limit: int) -> LifecycleOutcome:
    submit = command.submit
    if current is not None:
        if submit.idempotency_key and submit.idempotency_key == current.idempotency_key:
            differing = submit_differences(current, submit, config)
            if differing:
                raise Rejection(pb.REJECTION_CODE_ALREADY_EXISTS,
                                f"idempotency key {submit.idempotency_key!r} was used for request "
                                f"{current.request_id} with a different {', '.join(differing)}; a retry "
                                "must repeat the same body, a new request needs a new key")
            return LifecycleOutcome([_deduplicated(current, command)], current, changed=False)
        raise Rejection(pb.REJECTION_CODE_ALREADY_EXISTS,
                        f"request {command.request_id} already exists with another idempotency key")
    _validate_submit(submit, config)
    request = _new_request(command, config)
    note = f"routed to {request.opd_code}"
    event = pb.RequestEvent(
        event_id=event_id(command.command_id, "submit"), request_id=request.request_id,
        correlation_id=command.correlation_id, command_id=command.command_id,
        type=pb.REQUEST_EVENT_TYPE_SUBMITTED, version=1, actor=command.actor, note=note,
        event_time=command.issued_time, status_after=pb.REQUEST_STATUS_SUBMITTED,
    )
    _append_history(request, event, history_limit)
    event.request.CopyFrom(request)
    # Submitted late (requested long before it reached us): breaches already due show at once.
    breaches = _flag_breaches(request, from_timestamp(command.issued_time), history_limit)
    for breach in breaches:
        breach.correlation_id, breach.command_id = command.correlation_id, command.command_id
    return LifecycleOutcome([event, *breaches], request, changed=True)


def _new_request(command: pb.RequestCommand, config: RequestsConfig) -> pb.ServiceRequest:
    submit = command.submit
    requested = submit.requested_time if submit.HasField("requested_time") else command.issued_time
    priority = submit.priority or config.default_priority(submit.category)
    rule = config.sla_for(submit.category, priority)
    start = from_timestamp(requested)
    request = pb.ServiceRequest(
        request_id=command.request_id, category=submit.category, service_code=submit.category,
        opd_code=config.opd_for(submit.category), priority=priority, status=pb.REQUEST_STATUS_SUBMITTED,
        version=1, title=submit.title.strip(), description=submit.description.strip(),
        address=submit.address.strip(), media_url=submit.media_url,
        idempotency_key=submit.idempotency_key, submitted_by_client=command.client_id,
        requested_time=requested, updated_time=command.issued_time,
        sla=pb.SlaStatus(acknowledge_due=to_timestamp(start + rule.acknowledge_s),
                         resolve_due=to_timestamp(start + rule.resolve_s)),
    )
    if submit.HasField("location"):
        request.location.CopyFrom(submit.location)
    # Contact details travel encrypted (docs/personal-data.md): the envelope is carried as it
    # came; a plaintext reporter (from a producer that is not the gateway) is never kept.
    if submit.HasField("encrypted_reporter"):
        request.encrypted_reporter.CopyFrom(submit.encrypted_reporter)
    return request


def submit_differences(current: pb.ServiceRequest, submit: pb.SubmitAction,
                       config: RequestsConfig) -> list[str]:
    """The fields in which a submit differs from the request its idempotency key made.

    Compared as `_new_request` stores them (texts stripped, the category's default priority for
    an unspecified one); the requested time is the retry's own and never compared; the reporter
    by the subject of its sealed contact. Payment APIs
    do the same: one key, one body; a different body under a known key is the caller's bug, and
    answering with the original request would hide it."""
    differing = [name for name in ("category", "media_url")
                 if getattr(submit, name) != getattr(current, name)]
    differing += [name for name in ("title", "description", "address")
                  if getattr(submit, name).strip() != getattr(current, name)]
    if submit.HasField("location") != current.HasField("location") or submit.location != current.location:
        differing.append("location")
    if (submit.priority or config.default_priority(submit.category)) != current.priority:
        differing.append("priority")
    if _contact_subject(submit) != _contact_subject(current):
        differing.append("reporter")
    return differing


def _contact_subject(entity: pb.SubmitAction | pb.ServiceRequest) -> str:
    """Who the contact data belongs to, comparable across retries: the sealed reporter's subject
    (a keyed hash of the normalised contact). The ciphertexts themselves never compare equal,
    since each seal draws a fresh nonce."""
    return entity.encrypted_reporter.subject_id if entity.HasField("encrypted_reporter") else ""


def _deduplicated(current: pb.ServiceRequest, command: pb.RequestCommand) -> pb.RequestEvent:
    return pb.RequestEvent(
        event_id=event_id(command.command_id, "dedup"), request_id=current.request_id,
        correlation_id=command.correlation_id, command_id=command.command_id,
        type=pb.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED, version=current.version, actor=command.actor,
        note="same idempotency key: the original request", event_time=command.issued_time,
        status_before=current.status, status_after=current.status, request=current,
    )


def set_duplicates(current: pb.ServiceRequest | None, flags: Iterable[str]) -> LifecycleOutcome:
    """The request with its possible-duplicate flags replaced (core/duplicates.py decides them).

    Not a lifecycle step: no event, the same version. The flags are a derived annotation that
    converges to the same value whatever the arrival order; a version bump per change would
    make the versions depend on that order.
    """
    flags = list(flags)
    if current is None or list(current.possible_duplicate_of) == flags:
        return LifecycleOutcome([], current, changed=False)
    request = _snapshot(current)
    del request.possible_duplicate_of[:]
    request.possible_duplicate_of.extend(flags)
    return LifecycleOutcome([], request, changed=True)


# ---- the timer

def flag_overdue(current: pb.ServiceRequest | None, as_of: float,
                 history_limit: int = DEFAULT_HISTORY_LIMIT) -> LifecycleOutcome:
    """Flags every running SLA of the request whose due time lies before `as_of`."""
    if current is None:
        return LifecycleOutcome([], None, changed=False)
    request = _snapshot(current)
    events = _flag_breaches(request, as_of, history_limit)
    if not events:
        return LifecycleOutcome([], current, changed=False)
    return LifecycleOutcome(events, request, changed=True)

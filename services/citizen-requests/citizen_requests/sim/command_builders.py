"""Builders of RequestCommands, for the simulator, the benchmark and the tests.

The gateway builds the same messages from its API; request ids of submits are derived from the
client id and the idempotency key (`smartcity.ids.request_id_for`), so a retried submit lands on
the request it created the first time.
"""

from __future__ import annotations

from typing import Any

from smartcity.codec import to_timestamp
from smartcity.ids import new_id, request_id_for
from smartcity.v1 import common_pb2
from smartcity.v1 import requests_pb2 as pb

CITIZEN = pb.ACTOR_KIND_CITIZEN
STAFF = pb.ACTOR_KIND_OPD_STAFF


def actor(kind: pb.ActorKind, actor_id: str, opd_code: str = "") -> pb.Actor:
    return pb.Actor(kind=kind, id=actor_id, opd_code=opd_code)


def submit_command(*, client_id: str, idempotency_key: str, category: str, description: str,
                   issued_at: float, latitude: float | None = None, longitude: float | None = None,
                   address: str = "", title: str = "", media_url: str = "",
                   encrypted_reporter: pb.EncryptedContact | None = None,
                   priority: pb.Priority = pb.PRIORITY_UNSPECIFIED,
                   requested_at: float | None = None, by: pb.Actor | None = None,
                   command_id: str | None = None, correlation_id: str | None = None) -> pb.RequestCommand:
    """A submit; the request id is derived from (client_id, idempotency_key) like the gateway does."""
    submit = pb.SubmitAction(idempotency_key=idempotency_key, category=category, title=title,
                             description=description, address=address, media_url=media_url,
                             priority=priority, requested_time=to_timestamp(requested_at or issued_at))
    if latitude is not None and longitude is not None:
        submit.location.CopyFrom(common_pb2.GeoPoint(latitude=latitude, longitude=longitude))
    if encrypted_reporter is not None:
        submit.encrypted_reporter.CopyFrom(encrypted_reporter)
    return pb.RequestCommand(
        command_id=command_id or new_id("cmd"), request_id=request_id_for(client_id, idempotency_key),
        correlation_id=correlation_id or new_id("corr"), actor=by or actor(CITIZEN, client_id),
        issued_time=to_timestamp(issued_at), client_id=client_id, submit=submit,
    )


def action_command(request_id: str, action: str, *, issued_at: float, by: pb.Actor, client_id: str,
                   expected_version: int = 0, command_id: str | None = None,
                   correlation_id: str | None = None, **fields: Any) -> pb.RequestCommand:
    """Any other command: `action` names the oneof field ("acknowledge", "assign", ...)."""
    command = pb.RequestCommand(
        command_id=command_id or new_id("cmd"), request_id=request_id,
        correlation_id=correlation_id or new_id("corr"), actor=by, issued_time=to_timestamp(issued_at),
        expected_version=expected_version, client_id=client_id,
    )
    payload = getattr(command, action)
    payload.SetInParent()
    for name, value in fields.items():
        setattr(payload, name, value)
    return command

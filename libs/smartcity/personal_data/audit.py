"""Accountability events (requests.audit.v1, key request_id): who read or erased contact data.

An event names the client, the request, the RPC and the time; never the data, nor the subject
id (a pseudonym of the person is still personal data).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from smartcity import topic_names
from smartcity.codec import to_timestamp
from smartcity.ids import new_id
from smartcity.v1 import requests_pb2

AUDIT_TOPIC = topic_names.REQUESTS_AUDIT


def contact_read(client_id: str, opd_code: str, request_id: str, method: str,
                 now: float | None = None) -> Any:
    """An API response carried the request's contact in clear."""
    return requests_pb2.AuditEvent(
        audit_id=new_id("aud"), action=requests_pb2.AUDIT_ACTION_CONTACT_READ,
        time=to_timestamp(time.time() if now is None else now), client_id=client_id,
        opd_code=opd_code, request_id=request_id, method=method,
    )


def contact_destroyed(action: requests_pb2.AuditAction, *, client_id: str, opd_code: str,
                      request_ids: Sequence[str], reason: str, method: str = "",
                      now: float | None = None) -> list[Any]:
    """One event per request whose contact became unreadable (each lists all of them); one
    event without a request for a data key no request used."""
    stamp = to_timestamp(time.time() if now is None else now)
    return [
        requests_pb2.AuditEvent(
            audit_id=new_id("aud"), action=action, time=stamp, client_id=client_id, opd_code=opd_code,
            request_id=request_id, method=method, request_ids=list(request_ids), reason=reason,
        )
        for request_id in (request_ids or [""])
    ]

"""SLA arithmetic over a request: which SLAs still run unflagged, which are overdue, the next due time.

What "running", "breached" and "overdue" mean is the shared request rules'
(`smartcity.request_rules`); this adds what the timer needs to schedule and flag breaches.
"""

from __future__ import annotations

from smartcity.request_rules import SLA_KINDS, sla_breached, sla_due, sla_running
from smartcity.v1 import requests_pb2 as pb


def pending_slas(request: pb.ServiceRequest) -> list[tuple[pb.SlaKind, float]]:
    """(kind, due) of the SLAs still running and not yet flagged, earliest due first."""
    pending = [(kind, sla_due(request, kind)) for kind in SLA_KINDS
               if sla_running(request, kind) and not sla_breached(request, kind)]
    return sorted(pending, key=lambda item: item[1])


def overdue_kinds(request: pb.ServiceRequest, as_of: float) -> list[pb.SlaKind]:
    """The running, unflagged SLAs whose due time lies before `as_of` (exactly at it is in time)."""
    return [kind for kind, due in pending_slas(request) if due < as_of]


def next_due(request: pb.ServiceRequest) -> float | None:
    """When the next breach of this request could happen (None: no SLA left to breach)."""
    pending = pending_slas(request)
    return pending[0][1] if pending else None

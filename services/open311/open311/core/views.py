"""The GeoReport v2 view of a platform request: the fields of GET /requests and POST answers.

GeoReport knows two statuses: open (submitted, acknowledged, assigned, in progress) and closed
(resolved, closed, rejected). Times are W3C date-times with the city's UTC offset (WIB,
+07:00). expected_datetime is the SLA's resolve due time; service_notice says which SLA
milestone comes next. agency_responsible is the routed OPD's name.

Reporter contact data never appears here: these views are public. The reporter is dropped
even if a gateway answer carried one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from open311.core.catalogue import Catalogue
from smartcity.codec import from_timestamp
from smartcity.v1 import requests_pb2 as pb

WIB_OFFSET_H = 7.0
OPEN_STATUSES = frozenset(
    {
        pb.REQUEST_STATUS_SUBMITTED,
        pb.REQUEST_STATUS_ACKNOWLEDGED,
        pb.REQUEST_STATUS_ASSIGNED,
        pb.REQUEST_STATUS_IN_PROGRESS,
    }
)


def open311_status(status: int) -> str:
    return "open" if status in OPEN_STATUSES else "closed"


def w3c_datetime(seconds: float, utc_offset_h: float = WIB_OFFSET_H) -> str:
    zone = timezone(timedelta(hours=utc_offset_h))
    return datetime.fromtimestamp(seconds, UTC).astimezone(zone).isoformat(timespec="seconds")


def _stamp(value: Any, utc_offset_h: float) -> str | None:
    seconds = from_timestamp(value)
    return w3c_datetime(seconds, utc_offset_h) if seconds > 0 else None


def service_notice(request: Any, catalogue: Catalogue, utc_offset_h: float = WIB_OFFSET_H) -> str:
    """What happens next, in the citizen's words: the SLA milestone still ahead, or a breach."""
    if request.status not in OPEN_STATUSES:
        return ""
    agency = catalogue.agency_name(request.opd_code)
    sla = request.sla
    if sla.acknowledge_breached or sla.resolve_breached:
        return f"{agency}: batas waktu layanan terlewati; ruang kendali memantau laporan ini"
    ack_due, resolve_due = _stamp(sla.acknowledge_due, utc_offset_h), _stamp(sla.resolve_due, utc_offset_h)
    if request.status == pb.REQUEST_STATUS_SUBMITTED and ack_due:
        return f"{agency} menanggapi paling lambat {ack_due}"
    if resolve_due:
        return f"{agency} menargetkan selesai paling lambat {resolve_due}"
    return f"Ditangani {agency}"


def to_open311(request: Any, catalogue: Catalogue, utc_offset_h: float = WIB_OFFSET_H) -> dict[str, Any]:
    """A ServiceRequest as a GeoReport v2 service request (a JSON-ready dict, public)."""
    service = catalogue.service(request.service_code)
    located = request.HasField("location")
    return {
        "service_request_id": request.request_id,
        "status": open311_status(request.status),
        "status_notes": request.history[-1].note if request.history else "",
        "service_name": service.name if service else request.service_code,
        "service_code": request.service_code,
        "description": request.description,
        "agency_responsible": catalogue.agency_name(request.opd_code),
        "service_notice": service_notice(request, catalogue, utc_offset_h),
        "requested_datetime": _stamp(request.requested_time, utc_offset_h),
        "updated_datetime": _stamp(request.updated_time, utc_offset_h),
        "expected_datetime": _stamp(request.sla.resolve_due, utc_offset_h),
        "address": request.address,
        "address_id": None,
        "zipcode": None,
        "lat": request.location.latitude if located else None,
        "long": request.location.longitude if located else None,
        "media_url": request.media_url or None,
    }


def created(request: Any, catalogue: Catalogue, utc_offset_h: float = WIB_OFFSET_H) -> dict[str, Any]:
    """The answer to a POST whose request is known."""
    return {
        "service_request_id": request.request_id,
        "service_notice": service_notice(request, catalogue, utc_offset_h),
        "account_id": None,
    }


def pending(token: str) -> dict[str, Any]:
    """The answer to a POST whose request id is not known yet: a token to ask with later."""
    return {"token": token}


def token_answer(request_id: str, token: str) -> dict[str, Any]:
    return {"service_request_id": request_id, "token": token}

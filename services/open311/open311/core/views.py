"""The GeoReport v2 view of a platform request: the fields of GET /requests and POST answers.

GeoReport knows two statuses: open (the platform's one meaning, smartcity.request_rules:
submitted, acknowledged, assigned, in progress) and closed (resolved, closed, rejected). Times
are W3C date-times with the city's UTC offset (WIB, +07:00). expected_datetime is the SLA's
resolve due time; service_notice says which SLA milestone comes next. agency_responsible is the
routed OPD's name.

Reporter contact data never appears here: these views are public. The reporter is dropped
even if a gateway answer carried one.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from open311.core.catalogue import Catalogue
from smartcity.request_rules import OPEN_STATUSES
from smartcity.v1 import requests_pb2 as pb

WIB_OFFSET_H = 7.0


def open311_status(status: int) -> str:
    return "open" if status in OPEN_STATUSES else "closed"


@lru_cache(maxsize=8)
def _zone(utc_offset_h: float) -> timezone:
    return timezone(timedelta(hours=utc_offset_h))


def w3c_datetime(seconds: float, utc_offset_h: float = WIB_OFFSET_H) -> str:
    return datetime.fromtimestamp(int(seconds), _zone(utc_offset_h)).isoformat()


def _stamp(value: Any, utc_offset_h: float) -> str | None:
    """A Timestamp as a W3C date-time to the second (None when unset)."""
    seconds = value.seconds
    return w3c_datetime(seconds, utc_offset_h) if seconds > 0 else None


def service_notice(request: Any, catalogue: Catalogue, utc_offset_h: float = WIB_OFFSET_H) -> str:
    """What happens next, in the citizen's words: the SLA milestone still ahead, or a breach."""
    sla = request.sla
    return _notice(
        request,
        catalogue.agency_name(request.opd_code),
        _stamp(sla.acknowledge_due, utc_offset_h),
        _stamp(sla.resolve_due, utc_offset_h),
    )


def _notice(request: Any, agency: str, ack_due: str | None, resolve_due: str | None) -> str:
    if request.status not in OPEN_STATUSES:
        return ""
    sla = request.sla
    if sla.acknowledge_breached or sla.resolve_breached:
        return f"{agency}: batas waktu layanan terlewati; ruang kendali memantau laporan ini"
    if request.status == pb.REQUEST_STATUS_SUBMITTED and ack_due:
        return f"{agency} menanggapi paling lambat {ack_due}"
    if resolve_due:
        return f"{agency} menargetkan selesai paling lambat {resolve_due}"
    return f"Ditangani {agency}"


def to_open311(request: Any, catalogue: Catalogue, utc_offset_h: float = WIB_OFFSET_H) -> dict[str, Any]:
    """A ServiceRequest as a GeoReport v2 service request (a JSON-ready dict, public)."""
    service = catalogue.service(request.service_code)
    agency = catalogue.agency_name(request.opd_code)
    sla, location, history = request.sla, request.location, request.history
    resolve_due = _stamp(sla.resolve_due, utc_offset_h)
    located = request.HasField("location")
    return {
        "service_request_id": request.request_id,
        "status": "open" if request.status in OPEN_STATUSES else "closed",
        "status_notes": history[-1].note if history else "",
        "service_name": service.name if service else request.service_code,
        "service_code": request.service_code,
        "description": request.description,
        "agency_responsible": agency,
        "service_notice": _notice(request, agency, _stamp(sla.acknowledge_due, utc_offset_h), resolve_due),
        "requested_datetime": _stamp(request.requested_time, utc_offset_h),
        "updated_datetime": _stamp(request.updated_time, utc_offset_h),
        "expected_datetime": resolve_due,
        "address": request.address,
        "address_id": None,
        "zipcode": None,
        "lat": location.latitude if located else None,
        "long": location.longitude if located else None,
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

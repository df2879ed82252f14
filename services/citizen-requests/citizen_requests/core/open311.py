"""Open311 GeoReport v2 view of a request (the fields of a `GET /requests` answer).

GeoReport v2 has two statuses, open and closed: resolved, closed and rejected requests are
closed. Times are ISO 8601 with the city's UTC offset. `address_string` is the name GeoReport
uses when a request is posted, `address` the one it answers with: both are filled. The
reporter's contact details are personal data and only included on request (for the routed OPD).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from smartcity.codec import from_timestamp
from smartcity.request_rules import OPEN_STATUSES
from smartcity.v1 import requests_pb2 as pb

WIB_OFFSET_H = 7.0

SERVICE_NAMES: dict[str, str] = {
    "permits": "Perizinan",
    "health_info": "Informasi Kesehatan",
    "emergency": "Kedaruratan",
    "fire": "Kebakaran",
    "roads": "Jalan Rusak",
    "waste": "Sampah",
    "street_lights": "Penerangan Jalan Umum",
    "wifi_cctv": "WiFi Publik dan CCTV",
    "other": "Lainnya",
}


def iso_datetime(seconds: float, utc_offset_h: float = WIB_OFFSET_H) -> str:
    zone = timezone(timedelta(hours=utc_offset_h))
    return datetime.fromtimestamp(seconds, UTC).astimezone(zone).isoformat(timespec="seconds")


def open311_status(status: int) -> str:
    return "open" if status in OPEN_STATUSES else "closed"


def _time_or_none(request: pb.ServiceRequest, name: str, utc_offset_h: float) -> str | None:
    if not request.HasField(name):
        return None
    return iso_datetime(from_timestamp(getattr(request, name)), utc_offset_h)


def to_open311(request: pb.ServiceRequest, *, include_reporter: bool = False,
               utc_offset_h: float = WIB_OFFSET_H) -> dict[str, Any]:
    """The request as an Open311 GeoReport v2 service request (JSON-ready dict)."""
    last_note = request.history[-1].note if request.history else ""
    result: dict[str, Any] = {
        "service_request_id": request.request_id,
        "status": open311_status(request.status),
        "status_notes": last_note,
        "service_name": SERVICE_NAMES.get(request.service_code, request.service_code),
        "service_code": request.service_code,
        "description": request.description,
        "agency_responsible": request.opd_code,
        "service_notice": "",
        "requested_datetime": _time_or_none(request, "requested_time", utc_offset_h),
        "updated_datetime": _time_or_none(request, "updated_time", utc_offset_h),
        "expected_datetime": (iso_datetime(from_timestamp(request.sla.resolve_due), utc_offset_h)
                              if request.sla.HasField("resolve_due") else None),
        "address": request.address,
        "address_string": request.address,
        "lat": request.location.latitude if request.HasField("location") else None,
        "long": request.location.longitude if request.HasField("location") else None,
        "media_url": request.media_url or None,
    }
    if include_reporter:
        first, _, last = request.reporter.name.partition(" ")
        result |= {"first_name": first, "last_name": last, "phone": request.reporter.phone,
                   "email": request.reporter.email}
    return result

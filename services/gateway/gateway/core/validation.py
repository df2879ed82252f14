"""Validation of API request messages: field presence, lengths, ranges, enum values. Pure.

Every check raises INVALID_ARGUMENT naming the field and the problem. Protobuf parsing accepts
many byte strings (unknown enum numbers, NaN coordinates, megabytes of text within the size
limit), so nothing here trusts a message just because it parsed.
"""

from __future__ import annotations

import math
import re
from typing import Any

from google.protobuf.descriptor import EnumDescriptor

from gateway.core.errors import invalid
from smartcity import request_rules
from smartcity.v1 import common_pb2, gateway_pb2, requests_pb2

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_PAGE_TOKEN = 512
MAX_ID = 128
# The request texts' limits and which of them are required are citizen-requests' rules too:
# both sides read them from smartcity.request_rules.
MAX_TITLE = request_rules.MAX_TITLE
MAX_DESCRIPTION = request_rules.MAX_DESCRIPTION
MAX_ADDRESS = request_rules.MAX_ADDRESS
MAX_URL = request_rules.MAX_MEDIA_URL
MAX_NOTE = request_rules.MAX_NOTE
MAX_NAME = 200
MAX_PHONE = 32
MAX_EMAIL = 254
MAX_OPD = 32
MAX_CATEGORY = 64
# Purbalingga regency is about 40 km across: 50 km from any point in it covers all of it.
MAX_RADIUS_METERS = 50_000.0
# google.protobuf.Duration's own range (duration.proto): about +-10,000 years, nanos < 1 s.
MAX_DURATION_SECONDS = 315_576_000_000
MAX_DURATION_NANOS = 999_999_999

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_PHONE = re.compile(r"^\+?[0-9 ()\-]{3,32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://\S+$")


def text(
    field: str, value: str, max_len: int, *, required: bool = False, min_len: int = 0, multiline: bool = False
) -> str:
    stripped = value.strip()
    if required and not stripped:
        raise invalid(field, "is required")
    if len(value) > max_len:
        raise invalid(field, f"is {len(value)} characters long; at most {max_len} allowed")
    if stripped and len(value) < min_len:
        raise invalid(field, f"is {len(value)} characters long; at least {min_len} required")
    # Which characters user text may hold is a shared request rule (see its docstring).
    problem = request_rules.text_problem(value, multiline)
    if problem:
        raise invalid(field, problem)
    return value


def identifier(field: str, value: str, *, required: bool = True) -> str:
    if not value:
        if required:
            raise invalid(field, "is required")
        return value
    if len(value) > MAX_ID:
        raise invalid(field, f"is {len(value)} characters long; at most {MAX_ID} allowed")
    if not _ID.match(value):
        raise invalid(field, "may only contain letters, digits and . _ : -")
    return value


def code(field: str, value: str, max_len: int) -> str:
    """An OPD code or a category: empty (= any) or a short word."""
    if value and (len(value) > max_len or not _CODE.match(value)):
        raise invalid(field, f"must be letters, digits, _ or - (at most {max_len} characters)")
    return value


def enum(field: str, value: int, descriptor: EnumDescriptor, *, allow_unspecified: bool = True) -> int:
    if value not in descriptor.values_by_number:
        raise invalid(field, f"unknown {descriptor.name} value {value}")
    if value == 0 and not allow_unspecified:
        raise invalid(field, f"is required (a {descriptor.name} other than UNSPECIFIED)")
    return value


def page_size(field: str, value: int) -> int:
    if value == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise invalid(field, f"must be 1..{MAX_PAGE_SIZE} (0 = {DEFAULT_PAGE_SIZE}), got {value}")
    return value


def page_token(field: str, value: str) -> str:
    if len(value) > MAX_PAGE_TOKEN:
        raise invalid(field, "is too long to be a page token of this API")
    return value


def geo_point(field: str, point: Any) -> None:
    lat, lon = point.latitude, point.longitude
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise invalid(f"{field}.latitude", f"must be a number in -90..90, got {lat}")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise invalid(f"{field}.longitude", f"must be a number in -180..180, got {lon}")


def duration(field: str, value: Any) -> float:
    """A google.protobuf.Duration as seconds, refused when it is outside what duration.proto allows."""
    if not -MAX_DURATION_SECONDS <= value.seconds <= MAX_DURATION_SECONDS:
        raise invalid(f"{field}.seconds", f"must be in -{MAX_DURATION_SECONDS}..{MAX_DURATION_SECONDS}")
    if not -MAX_DURATION_NANOS <= value.nanos <= MAX_DURATION_NANOS:
        raise invalid(
            f"{field}.nanos", f"must be in -{MAX_DURATION_NANOS}..{MAX_DURATION_NANOS}, got {value.nanos}"
        )
    if (value.seconds > 0 and value.nanos < 0) or (value.seconds < 0 and value.nanos > 0):
        raise invalid(
            field, f"seconds and nanos must have the same sign, got {value.seconds} s and {value.nanos} ns"
        )
    return float(value.seconds + value.nanos / 1e9)


# ---------------- devices and overview ----------------


def device_filter(field: str, flt: Any) -> None:
    identifier(f"{field}.site_id", flt.site_id, required=False)
    enum(f"{field}.health", flt.health, common_pb2.HealthState.DESCRIPTOR)
    radius = flt.radius_meters
    if not math.isfinite(radius) or radius < 0:
        raise invalid(f"{field}.radius_meters", f"must be a finite number >= 0, got {radius}")
    if radius > MAX_RADIUS_METERS:
        raise invalid(
            f"{field}.radius_meters",
            f"must be at most {MAX_RADIUS_METERS:g} m (the whole regency from any point in it), "
            f"got {radius:g}",
        )
    if radius > 0 and not flt.HasField("near"):
        raise invalid(f"{field}.near", "is required when radius_meters > 0")
    if flt.HasField("near"):
        geo_point(f"{field}.near", flt.near)


def list_devices(req: Any) -> int:
    """ListAccessPoints and ListCameras; returns the page size."""
    device_filter("filter", req.filter)
    page_token("page_token", req.page_token)
    return page_size("page_size", req.page_size)


def list_incidents(req: gateway_pb2.ListIncidentsRequest) -> int:
    identifier("camera_id", req.camera_id, required=False)
    identifier("site_id", req.site_id, required=False)
    page_token("page_token", req.page_token)
    return page_size("page_size", req.page_size)


def watch_devices(req: gateway_pb2.WatchDevicesRequest) -> None:
    enum("kind", req.kind, gateway_pb2.DeviceKind.DESCRIPTOR)
    identifier("site_id", req.site_id, required=False)


def list_site_stats(req: gateway_pb2.ListSiteStatsRequest) -> None:
    identifier("site_id", req.site_id, required=False)
    enum("window", req.window, common_pb2.StatsWindow.DESCRIPTOR)


def snapshot_interval(req: gateway_pb2.WatchCitySnapshotRequest, default_s: float, min_s: float) -> float:
    if not req.HasField("interval"):
        return default_s
    seconds = duration("interval", req.interval)
    if seconds == 0:
        return default_s
    if seconds < min_s or seconds > 3600:
        raise invalid("interval", f"must be between {min_s:g} s and 1 h, got {seconds:g} s")
    return seconds


# ---------------- requests ----------------


def submit(req: gateway_pb2.SubmitRequestRequest) -> None:
    text("idempotency_key", req.idempotency_key, 128, required=True, min_len=8)
    if any(c.isspace() for c in req.idempotency_key):
        raise invalid("idempotency_key", "must not contain whitespace")
    if not req.category:
        raise invalid("category", "is required (e.g. permits, health_info, emergency, roads)")
    code("category", req.category, MAX_CATEGORY)
    text("title", req.title, MAX_TITLE, required=request_rules.TITLE_REQUIRED)
    text(
        "description",
        req.description,
        MAX_DESCRIPTION,
        required=request_rules.DESCRIPTION_REQUIRED,
        multiline=True,
    )
    if req.HasField("location"):
        geo_point("location", req.location)
    text("address", req.address, MAX_ADDRESS, multiline=True)
    text("media_url", req.media_url, MAX_URL)
    if req.media_url and not _URL.match(req.media_url):
        raise invalid("media_url", "must be an http:// or https:// URL")
    reporter(req.reporter)
    enum("priority", req.priority, requests_pb2.Priority.DESCRIPTOR)


def reporter(rep: Any) -> None:
    text("reporter.name", rep.name, MAX_NAME)
    text("reporter.phone", rep.phone, MAX_PHONE)
    if rep.phone and not _PHONE.match(rep.phone):
        raise invalid("reporter.phone", "must be digits, spaces, ( ) - and an optional leading +")
    text("reporter.email", rep.email, MAX_EMAIL)
    if rep.email and not _EMAIL.match(rep.email):
        raise invalid("reporter.email", "is not an e-mail address")


def get_request(req: Any) -> None:
    """GetRequest, and the request_id of the other per-request calls."""
    identifier("request_id", req.request_id)


def list_requests(req: gateway_pb2.ListRequestsRequest) -> int:
    code("opd_code", req.opd_code, MAX_OPD)
    code("category", req.category, MAX_CATEGORY)
    enum("status", req.status, requests_pb2.RequestStatus.DESCRIPTOR)
    page_token("page_token", req.page_token)
    return page_size("page_size", req.page_size)


def action_name(action: int) -> str:
    """The lifecycle's name of a RequestAction (REQUEST_ACTION_REOPEN -> "reopen")."""
    return gateway_pb2.RequestAction.Name(action).removeprefix("REQUEST_ACTION_").lower()


def transition(req: gateway_pb2.TransitionRequestRequest) -> None:
    identifier("request_id", req.request_id)
    enum("action", req.action, gateway_pb2.RequestAction.DESCRIPTOR, allow_unspecified=False)
    action = gateway_pb2.RequestAction.Name(req.action)
    required = action_name(req.action) in request_rules.REASON_REQUIRED
    text("note", req.note, MAX_NOTE, multiline=True, required=required)
    text("assignee", req.assignee, MAX_ID)
    if req.action == gateway_pb2.REQUEST_ACTION_ASSIGN and not req.assignee.strip():
        raise invalid("assignee", f"is required for {action}")


def comment(req: gateway_pb2.CommentOnRequestRequest) -> None:
    identifier("request_id", req.request_id)
    text("text", req.text, MAX_NOTE, required=True, multiline=True)


def list_request_events(req: gateway_pb2.ListRequestEventsRequest) -> int:
    identifier("request_id", req.request_id)
    page_token("page_token", req.page_token)
    return page_size("page_size", req.page_size)


def list_request_stats(req: gateway_pb2.ListRequestStatsRequest) -> None:
    enum("scope", req.scope, requests_pb2.StatsScope.DESCRIPTOR)


def watch_requests(req: gateway_pb2.WatchRequestsRequest) -> None:
    code("opd_code", req.opd_code, MAX_OPD)
    code("category", req.category, MAX_CATEGORY)


def erase_contact_data(req: gateway_pb2.EraseContactDataRequest) -> None:
    target = req.WhichOneof("target")
    if target is None:
        raise invalid("target", "is required: a request_id, or the reporter's contact")
    if target == "request_id":
        identifier("request_id", req.request_id)
    else:
        reporter(req.reporter)
        if not (req.reporter.phone.strip() or req.reporter.email.strip() or req.reporter.name.strip()):
            raise invalid("reporter", "needs a phone, an e-mail address or a name")
    # The reason goes on the audit trail: say why, without personal data.
    text("reason", req.reason, MAX_NOTE, required=True, multiline=True)

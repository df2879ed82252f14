"""Validation of request messages, including property-based tests: any message, any bytes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core import validation
from gateway.core.errors import ApiError, ErrorKind
from smartcity.v1 import common_pb2, gateway_pb2, requests_pb2

# Numbers outside the enums: what a client built against another version of the contract sends.
UNKNOWN_HEALTH: Any = 7
UNKNOWN_ACTION: Any = 42
ACK = gateway_pb2.REQUEST_ACTION_ACKNOWLEDGE


def good_submit(**changes: Any) -> Any:
    req = gateway_pb2.SubmitRequestRequest(
        idempotency_key="key-0001",
        category="permits",
        title="Izin usaha",
        description="Mohon izin",
        location=common_pb2.GeoPoint(latitude=-7.388, longitude=109.363),
        address="Jl. Jend. Sudirman",
        media_url="https://example.id/p.jpg",
        reporter=requests_pb2.Reporter(name="Siti", phone="+62 812-3456", email="siti@example.id"),
    )
    for name, value in changes.items():
        if isinstance(value, common_pb2.GeoPoint | requests_pb2.Reporter):
            getattr(req, name).CopyFrom(value)
        else:
            setattr(req, name, value)
    return req


def field_error(call: Callable[[], object]) -> str:
    with pytest.raises(ApiError) as err:
        call()
    assert err.value.kind is ErrorKind.INVALID_ARGUMENT
    return err.value.message


def test_a_good_submit_passes() -> None:
    validation.submit(good_submit())


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"idempotency_key": ""}, "idempotency_key: is required"),
        ({"idempotency_key": "short"}, "idempotency_key: is 5 characters long; at least 8"),
        ({"idempotency_key": "k" * 129}, "idempotency_key: is 129 characters long; at most 128"),
        ({"idempotency_key": "has space 1"}, "idempotency_key: must not contain whitespace"),
        ({"category": ""}, "category: is required"),
        ({"category": "perm its"}, "category: must be"),
        ({"description": "   "}, "description: is required"),
        ({"title": "t" * 201}, "title: is 201 characters"),
        ({"title": "a\nb"}, "title: contains U+000A"),
        ({"description": "d" * 4001}, "description: is 4001"),
        ({"description": "nul\x00"}, "description: contains U+0000"),
        ({"location": common_pb2.GeoPoint(latitude=math.nan)}, "location.latitude"),
        ({"location": common_pb2.GeoPoint(latitude=0, longitude=181)}, "location.longitude"),
        ({"media_url": "ftp://x"}, "media_url: must be an http"),
        ({"reporter": requests_pb2.Reporter(email="not-an-email")}, "reporter.email"),
        ({"reporter": requests_pb2.Reporter(phone="call me")}, "reporter.phone"),
        ({"priority": 99}, "priority: unknown Priority value 99"),
    ],
)
def test_submit_problems_name_the_field(changes: dict[str, Any], field: str) -> None:
    assert field in field_error(lambda: validation.submit(good_submit(**changes)))


def test_the_title_is_optional_like_in_citizen_requests() -> None:
    # smartcity.request_rules decides (an Open311 post has no title); too long is still refused.
    validation.submit(good_submit(title=""))
    validation.submit(good_submit(title="   "))


def test_multiline_fields_accept_newlines_and_tabs() -> None:
    validation.submit(good_submit(description="line 1\n\tline 2", address="RT 01\nRW 02"))
    validation.submit(good_submit(description="paragraf 1\r\n\r\nparagraf 2\r\n"))
    validation.transition(gateway_pb2.TransitionRequestRequest(request_id="r-1", action=ACK, note="a\r\n\tb"))
    validation.comment(gateway_pb2.CommentOnRequestRequest(request_id="r-1", text="baris 1\nbaris 2"))


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"description": "bell\x07"}, "description: contains U+0007"),
        ({"description": "c1\x85"}, "description: contains U+0085"),
        ({"description": "lone\rreturn"}, "description: contains U+000D"),
        ({"description": "flip\u202egnp.exe"}, "description: contains U+202E"),
        ({"address": "x\u2067y"}, "address: contains U+2067"),
        ({"description": "x\uffff"}, "description: contains U+FFFF"),
        ({"title": "a\tb"}, "title: contains U+0009"),
        ({"reporter": requests_pb2.Reporter(name="a\u202db")}, "reporter.name: contains U+202D"),
    ],
)
def test_submit_texts_refuse_controls_bidi_overrides_and_noncharacters(
    changes: dict[str, Any], field: str
) -> None:
    assert field in field_error(lambda: validation.submit(good_submit(**changes)))


def test_a_comment_with_a_bidi_override_is_refused() -> None:
    req = gateway_pb2.CommentOnRequestRequest(request_id="r-1", text="ok\u202e")
    assert "text: contains U+202E" in field_error(lambda: validation.comment(req))


@pytest.mark.parametrize("size, expected", [(0, 100), (1, 1), (1000, 1000)])
def test_page_size_defaults_and_bounds(size: int, expected: int) -> None:
    assert validation.page_size("page_size", size) == expected


@pytest.mark.parametrize("size", [-1, 1001, 2**31 - 1])
def test_page_size_out_of_range(size: int) -> None:
    assert "page_size: must be 1..1000" in field_error(lambda: validation.page_size("page_size", size))


def test_device_filter_rules() -> None:
    req = gateway_pb2.ListAccessPointsRequest()
    req.filter.radius_meters = 100
    assert "filter.near: is required when radius_meters > 0" in field_error(
        lambda: validation.list_devices(req)
    )
    req.filter.radius_meters = -1
    assert "filter.radius_meters" in field_error(lambda: validation.list_devices(req))
    req.filter.radius_meters = math.inf
    assert "filter.radius_meters" in field_error(lambda: validation.list_devices(req))
    req.filter.radius_meters = 1e308
    assert "filter.radius_meters: must be at most 50000" in field_error(lambda: validation.list_devices(req))
    req.filter.radius_meters = 50_001
    assert "filter.radius_meters: must be at most 50000" in field_error(lambda: validation.list_devices(req))
    req.filter.radius_meters = 50_000
    req.filter.near.latitude = -7.38
    validation.list_devices(req)
    req.filter.radius_meters = 50
    req.filter.near.latitude = 91
    assert "filter.near.latitude" in field_error(lambda: validation.list_devices(req))
    req.filter.near.latitude = -7.38
    req.filter.health = UNKNOWN_HEALTH
    assert "filter.health: unknown HealthState" in field_error(lambda: validation.list_devices(req))
    req.filter.health = common_pb2.HEALTH_STATE_CRITICAL
    req.filter.site_id = "alun alun"
    assert "filter.site_id" in field_error(lambda: validation.list_devices(req))


@pytest.mark.parametrize(
    "req, field",
    [
        (gateway_pb2.TransitionRequestRequest(request_id="r-1"), "action: is required"),
        (
            gateway_pb2.TransitionRequestRequest(request_id="r-1", action=UNKNOWN_ACTION),
            "action: unknown RequestAction",
        ),
        (gateway_pb2.TransitionRequestRequest(action=ACK), "request_id: is required"),
        (gateway_pb2.TransitionRequestRequest(request_id="r/1", action=ACK), "request_id: may only contain"),
        (
            gateway_pb2.TransitionRequestRequest(request_id="r-1", action=gateway_pb2.REQUEST_ACTION_ASSIGN),
            "assignee: is required for REQUEST_ACTION_ASSIGN",
        ),
        (
            gateway_pb2.TransitionRequestRequest(request_id="r-1", action=gateway_pb2.REQUEST_ACTION_REJECT),
            "note: is required",
        ),
        (
            gateway_pb2.TransitionRequestRequest(request_id="r-1", action=ACK, note="n" * 2001),
            "note: is 2001",
        ),
    ],
)
def test_transition_problems(req: Any, field: str) -> None:
    assert field in field_error(lambda: validation.transition(req))


def test_snapshot_interval() -> None:
    req = gateway_pb2.WatchCitySnapshotRequest()
    assert validation.snapshot_interval(req, 2.0, 1.0) == 2.0
    req.interval.CopyFrom(Duration(seconds=5))
    assert validation.snapshot_interval(req, 2.0, 1.0) == 5.0
    req.interval.CopyFrom(Duration(nanos=500_000_000))
    assert "interval: must be between 1 s" in field_error(lambda: validation.snapshot_interval(req, 2.0, 1.0))
    req.interval.CopyFrom(Duration(seconds=-3))
    assert "interval" in field_error(lambda: validation.snapshot_interval(req, 2.0, 1.0))


@pytest.mark.parametrize(
    "duration, says",
    [
        (Duration(seconds=4, nanos=1_000_000_000), "interval.nanos: must be in -999999999..999999999"),
        (Duration(seconds=4, nanos=-1_000_000_000), "interval.nanos: must be in -999999999..999999999"),
        (Duration(seconds=0, nanos=2**31 - 1), "interval.nanos: must be in -999999999..999999999"),
        (Duration(seconds=5, nanos=-500_000_000), "interval: seconds and nanos must have the same sign"),
        (Duration(seconds=-5, nanos=500_000_000), "interval: seconds and nanos must have the same sign"),
        (Duration(seconds=315_576_000_001), "interval.seconds: must be in"),
    ],
)
def test_a_malformed_duration_is_invalid_argument(duration: Duration, says: str) -> None:
    req = gateway_pb2.WatchCitySnapshotRequest(interval=duration)
    assert says in field_error(lambda: validation.snapshot_interval(req, 2.0, 1.0))


def test_a_well_formed_duration_with_nanos_is_accepted() -> None:
    req = gateway_pb2.WatchCitySnapshotRequest(interval=Duration(seconds=1, nanos=999_999_999))
    assert validation.snapshot_interval(req, 2.0, 1.0) == pytest.approx(2.0)


# ---------------- property-based: nothing but INVALID_ARGUMENT ever comes out ----------------

texts = st.text(max_size=300) | st.sampled_from(["", "key-0001", "permits", "r-1", "a" * 5000])
floats = st.floats(allow_nan=True, allow_infinity=True)
ints32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)

submit_requests = st.builds(
    lambda key, cat, title, desc, lat, lon, url, email, phone, prio: gateway_pb2.SubmitRequestRequest(
        idempotency_key=key,
        category=cat,
        title=title,
        description=desc,
        location=common_pb2.GeoPoint(latitude=lat, longitude=lon),
        media_url=url,
        priority=prio,
        reporter=requests_pb2.Reporter(email=email, phone=phone),
    ),
    texts,
    texts,
    texts,
    texts,
    floats,
    floats,
    texts,
    texts,
    texts,
    ints32,
)

transition_requests = st.builds(
    lambda rid, action, note, assignee, version: gateway_pb2.TransitionRequestRequest(
        request_id=rid, action=action, note=note, assignee=assignee, expected_version=version
    ),
    texts,
    ints32,
    texts,
    texts,
    st.integers(min_value=0, max_value=2**64 - 1),
)

list_ap_requests = st.builds(
    lambda site, health, lat, lon, radius, size, token: gateway_pb2.ListAccessPointsRequest(
        filter=gateway_pb2.DeviceFilter(
            site_id=site,
            health=health,
            radius_meters=radius,
            near=common_pb2.GeoPoint(latitude=lat, longitude=lon),
        ),
        page_size=size,
        page_token=token,
    ),
    texts,
    ints32,
    floats,
    floats,
    floats,
    ints32,
    texts,
)


def only_invalid_argument(check: Callable[[], object]) -> bool:
    """True when the check passed, False when it raised INVALID_ARGUMENT; anything else fails."""
    try:
        check()
    except ApiError as err:
        assert err.kind is ErrorKind.INVALID_ARGUMENT
        # Names the field, in the message and as the BadRequest field violation the client gets.
        [violation] = err.violations
        assert violation.field and err.message == f"{violation.field}: {violation.description}"
        return False
    return True


@given(submit_requests)
def test_any_submit_is_accepted_or_invalid(req: Any) -> None:
    if only_invalid_argument(lambda: validation.submit(req)):
        # The title is optional (smartcity.request_rules); the description is not.
        assert 8 <= len(req.idempotency_key) <= 128 and req.description.strip()
        assert math.isfinite(req.location.latitude) and abs(req.location.latitude) <= 90
        assert math.isfinite(req.location.longitude) and abs(req.location.longitude) <= 180
        assert req.priority in requests_pb2.Priority.DESCRIPTOR.values_by_number


@given(transition_requests)
def test_any_transition_is_accepted_or_invalid(req: Any) -> None:
    if only_invalid_argument(lambda: validation.transition(req)):
        assert req.action in gateway_pb2.RequestAction.DESCRIPTOR.values_by_number and req.action != 0
        assert req.request_id and len(req.note) <= validation.MAX_NOTE


@given(list_ap_requests)
def test_any_device_listing_is_accepted_or_invalid(req: Any) -> None:
    if only_invalid_argument(lambda: validation.list_devices(req)):
        assert 0 <= req.page_size <= 1000 and math.isfinite(req.filter.radius_meters)


VALIDATORS: list[tuple[Any, Callable[[Any], object]]] = [
    (gateway_pb2.SubmitRequestRequest, validation.submit),
    (gateway_pb2.TransitionRequestRequest, validation.transition),
    (gateway_pb2.CommentOnRequestRequest, validation.comment),
    (gateway_pb2.ListRequestsRequest, validation.list_requests),
    (gateway_pb2.ListRequestEventsRequest, validation.list_request_events),
    (gateway_pb2.ListAccessPointsRequest, validation.list_devices),
    (gateway_pb2.ListCamerasRequest, validation.list_devices),
    (gateway_pb2.ListIncidentsRequest, validation.list_incidents),
    (gateway_pb2.WatchDevicesRequest, validation.watch_devices),
    (gateway_pb2.WatchRequestsRequest, validation.watch_requests),
    (gateway_pb2.ListSiteStatsRequest, validation.list_site_stats),
    (gateway_pb2.ListRequestStatsRequest, validation.list_request_stats),
]


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(st.sampled_from(VALIDATORS), st.binary(max_size=400))
def test_random_bytes_either_fail_to_parse_or_validate_cleanly(pair: Any, data: bytes) -> None:
    message_type, validate = pair
    try:
        message = message_type.FromString(data)
    except DecodeError:
        return
    only_invalid_argument(lambda: validate(message))

"""The API as plain Python: scopes, per-OPD visibility, writes via a fake bus, watch streams."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from gateway.core.api import Api
from gateway.core.auth import ADMIN, DEVICES_READ, REQUESTS_READ, REQUESTS_READ_ALL, REQUESTS_WRITE, Principal
from gateway.core.errors import ApiError, ErrorKind
from gateway_testing import CRITICAL, ap, camera, incident, service_request
from gateway_testing.in_memory import SIT, TRAILS, make_api, sealed_request
from smartcity.v1 import gateway_pb2, requests_pb2

RS = requests_pb2
OPD_SCOPES = frozenset({DEVICES_READ, REQUESTS_READ, REQUESTS_WRITE})
DPMPTSP = Principal("dpmptsp-app", "DPMPTSP", OPD_SCOPES)
BPBD = Principal("bpbd-app", "BPBD", OPD_SCOPES)
CENTER = Principal(
    "command-center", "", frozenset({DEVICES_READ, REQUESTS_READ_ALL, REQUESTS_WRITE}), "command_center"
)
PORTAL = Principal("citizen-portal", "", frozenset({REQUESTS_READ, REQUESTS_WRITE}), "citizen")
ADMIN_P = Principal("admin", "", frozenset({ADMIN}), "system")
NOBODY = Principal("nobody", "", frozenset())


def settled(value: Any) -> Any:
    """The value of a call, awaited on a loop of its own when the call is a coroutine."""
    if inspect.iscoroutine(value):
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(value)
        finally:
            loop.close()
    return value


def error_of(call: Callable[[], object]) -> ApiError:
    with pytest.raises(ApiError) as err:
        settled(call())
    return err.value


def seed_requests(api: Api) -> None:
    api.views.apply_request(sealed_request(api, "r-dpm", opd_code="DPMPTSP", submitted_by="citizen-portal"))
    api.views.apply_request(
        sealed_request(api, "r-bpbd", opd_code="BPBD", category="emergency", submitted_by="bpbd-app")
    )


UNARY_CALLS: list[tuple[str, Callable[[Api, Principal], object]]] = [
    ("GetAccessPoint", lambda a, p: a.get_access_point(p, gateway_pb2.GetAccessPointRequest(ap_id="x"))),
    ("ListAccessPoints", lambda a, p: a.list_access_points(p, gateway_pb2.ListAccessPointsRequest())),
    ("GetCamera", lambda a, p: a.get_camera(p, gateway_pb2.GetCameraRequest(camera_id="x"))),
    ("ListCameras", lambda a, p: a.list_cameras(p, gateway_pb2.ListCamerasRequest())),
    ("ListIncidents", lambda a, p: a.list_incidents(p, gateway_pb2.ListIncidentsRequest())),
    ("GetCitySnapshot", lambda a, p: a.get_city_snapshot(p, gateway_pb2.GetCitySnapshotRequest())),
    ("ListSiteStats", lambda a, p: a.list_site_stats(p, gateway_pb2.ListSiteStatsRequest())),
    ("GetRequest", lambda a, p: a.get_request(p, gateway_pb2.GetRequestRequest(request_id="x"))),
    ("ListRequests", lambda a, p: a.list_requests(p, gateway_pb2.ListRequestsRequest())),
    (
        "ListRequestEvents",
        lambda a, p: a.list_request_events(p, gateway_pb2.ListRequestEventsRequest(request_id="x")),
    ),
    ("ListRequestStats", lambda a, p: a.list_request_stats(p, gateway_pb2.ListRequestStatsRequest())),
]


@pytest.mark.parametrize("name, call", UNARY_CALLS)
def test_every_read_needs_its_scope(name: str, call: Callable[[Api, Principal], object]) -> None:
    api, _ = make_api()
    err = error_of(lambda: call(api, NOBODY))
    assert err.kind is ErrorKind.PERMISSION_DENIED and name in err.message and "needs scope" in err.message


async def test_writes_need_requests_write() -> None:
    api, _ = make_api()
    seed_requests(api)
    reader = Principal("reader", "DPMPTSP", frozenset({REQUESTS_READ}))
    calls = [
        api.submit_request(reader, gateway_pb2.SubmitRequestRequest(), None),
        api.transition_request(
            reader,
            gateway_pb2.TransitionRequestRequest(request_id="r-dpm", action=gateway_pb2.REQUEST_ACTION_START),
            None,
        ),
        api.comment_on_request(
            reader, gateway_pb2.CommentOnRequestRequest(request_id="r-dpm", text="x"), None
        ),
    ]
    for call in calls:
        with pytest.raises(ApiError) as err:
            await call
        assert err.value.kind is ErrorKind.PERMISSION_DENIED and "requests:write" in err.value.message


def test_devices_get_and_list() -> None:
    api, _ = make_api()
    api.views.apply_access_point(ap("ap-1"))
    api.views.apply_access_point(ap("ap-2", health=CRITICAL))
    assert (
        api.get_access_point(CENTER, gateway_pb2.GetAccessPointRequest(ap_id="ap-1")).access_point.ap_id
        == "ap-1"
    )
    assert (
        error_of(lambda: api.get_access_point(CENTER, gateway_pb2.GetAccessPointRequest(ap_id="ap-9"))).kind
        is ErrorKind.NOT_FOUND
    )
    req = gateway_pb2.ListAccessPointsRequest(page_size=1)
    first = api.list_access_points(CENTER, req)
    assert [a.ap_id for a in first.access_points] == ["ap-1"] and first.total_size == 2
    req.page_token = first.next_page_token
    second = api.list_access_points(CENTER, req)
    assert [a.ap_id for a in second.access_points] == ["ap-2"] and second.next_page_token == ""
    req.filter.health = CRITICAL  # a token of another filter
    assert error_of(lambda: api.list_access_points(CENTER, req)).kind is ErrorKind.INVALID_ARGUMENT


def test_opd_sees_its_requests_with_reporter_others_without() -> None:
    api, _ = make_api()
    seed_requests(api)

    def get(p: Principal, rid: str) -> Any:
        return settled(api.get_request(p, gateway_pb2.GetRequestRequest(request_id=rid))).request

    assert get(DPMPTSP, "r-dpm").reporter.phone
    assert get(BPBD, "r-bpbd").reporter.phone
    assert not get(CENTER, "r-dpm").HasField("reporter") and get(CENTER, "r-dpm").title
    assert not get(PORTAL, "r-dpm").HasField("reporter")  # its own submission, but not its OPD
    assert not get(ADMIN_P, "r-bpbd").HasField("reporter")
    err = error_of(lambda: get(DPMPTSP, "r-bpbd"))
    assert err.kind is ErrorKind.PERMISSION_DENIED and "BPBD" in err.message
    assert error_of(lambda: get(PORTAL, "r-bpbd")).kind is ErrorKind.PERMISSION_DENIED
    assert error_of(lambda: get(DPMPTSP, "r-missing")).kind is ErrorKind.NOT_FOUND
    # The view holds the envelope only; every reveal is on the audit trail, nothing else is.
    assert not api.views.requests["r-dpm"].HasField("reporter")
    assert api.views.requests["r-dpm"].encrypted_reporter.ciphertext
    trail = TRAILS[id(api)]
    assert [(e.client_id, e.request_id, e.method) for e in trail] == [
        ("dpmptsp-app", "r-dpm", "GetRequest"), ("bpbd-app", "r-bpbd", "GetRequest")]
    assert all(e.action == RS.AUDIT_ACTION_CONTACT_READ for e in trail)


def test_listing_shows_only_visible_requests() -> None:
    api, _ = make_api()
    seed_requests(api)

    def ids(p: Principal, **kw: Any) -> list[str]:
        listed = settled(api.list_requests(p, gateway_pb2.ListRequestsRequest(**kw)))
        return [r.request_id for r in listed.requests]

    assert ids(DPMPTSP) == ["r-dpm"]
    assert ids(BPBD) == ["r-bpbd"]
    assert sorted(ids(CENTER)) == ["r-bpbd", "r-dpm"]
    assert ids(CENTER, opd_code="BPBD") == ["r-bpbd"]
    assert ids(PORTAL) == ["r-dpm"]
    err = error_of(lambda: ids(DPMPTSP, opd_code="BPBD"))
    assert err.kind is ErrorKind.PERMISSION_DENIED and "requests:read:all" in err.message
    everything = settled(api.list_requests(CENTER, gateway_pb2.ListRequestsRequest())).requests
    assert all(not r.HasField("reporter") and r.contact_data == RS.CONTACT_DATA_STATE_AVAILABLE
               for r in everything)


async def test_submit_then_transitions_then_comment() -> None:
    api, _ = make_api()
    submit = gateway_pb2.SubmitRequestRequest(
        idempotency_key="idem-0001",
        category="permits",
        title="Izin",
        description="Mohon",
        address="Jl. Jend. Sudirman",  # citizen-requests needs a location or an address
        reporter=RS.Reporter(phone="0812345"),
    )
    first = await api.submit_request(PORTAL, submit, None)
    request_id = first.request.request_id
    assert not first.deduplicated and first.request.opd_code == "DPMPTSP"
    assert not first.request.HasField("reporter")  # the portal is not the routed OPD
    again = await api.submit_request(PORTAL, submit, None)
    assert again.deduplicated and again.request.request_id == request_id
    changed = gateway_pb2.SubmitRequestRequest()
    changed.CopyFrom(submit)
    changed.description = "Mohon (lain)"
    err = await _error(api.submit_request(PORTAL, changed, None))
    assert err.kind is ErrorKind.ALREADY_EXISTS and "idempotency key 'idem-0001'" in err.message
    assert "description" in err.message
    ack = gateway_pb2.TransitionRequestRequest(
        request_id=request_id, action=gateway_pb2.REQUEST_ACTION_ACKNOWLEDGE
    )
    err = await _error(api.transition_request(CENTER, ack, None))
    assert err.kind is ErrorKind.PERMISSION_DENIED and "only that OPD" in err.message
    done = await api.transition_request(DPMPTSP, ack, None)
    assert done.request.status == RS.REQUEST_STATUS_ACKNOWLEDGED and done.event.version == 2
    assert done.request.reporter.phone == "0812345"  # the routed OPD sees the reporter
    assert api.views.requests[request_id].version == 2  # read-your-writes: the view has it already
    err = await _error(api.transition_request(DPMPTSP, ack, None))
    assert err.kind is ErrorKind.FAILED_PRECONDITION and "cannot acknowledge" in err.message
    stale = gateway_pb2.TransitionRequestRequest(
        request_id=request_id, action=gateway_pb2.REQUEST_ACTION_ASSIGN, assignee="budi", expected_version=1
    )
    assert (await _error(api.transition_request(DPMPTSP, stale, None))).kind is ErrorKind.ABORTED
    commented = await api.comment_on_request(
        CENTER, gateway_pb2.CommentOnRequestRequest(request_id=request_id, text="cek lokasi"), None
    )
    assert commented.request.comment_count == 1 and not commented.request.HasField("reporter")
    events = (await api.list_request_events(
        DPMPTSP, gateway_pb2.ListRequestEventsRequest(request_id=request_id)
    )).events
    assert [e.type for e in events] == [
        RS.REQUEST_EVENT_TYPE_SUBMITTED,
        RS.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED,
        RS.REQUEST_EVENT_TYPE_COMMAND_REJECTED,  # the same key with another description
        RS.REQUEST_EVENT_TYPE_ACKNOWLEDGED,
        RS.REQUEST_EVENT_TYPE_COMMAND_REJECTED,
        RS.REQUEST_EVENT_TYPE_COMMAND_REJECTED,
        RS.REQUEST_EVENT_TYPE_COMMENTED,
    ]
    assert events[0].request.reporter.phone == "0812345"
    center_view = await api.list_request_events(
        CENTER, gateway_pb2.ListRequestEventsRequest(request_id=request_id))
    assert not any(e.request.HasField("reporter") for e in center_view.events)


async def test_unknown_category_is_invalid_argument_and_missing_request_not_found() -> None:
    api, _ = make_api()
    bad = gateway_pb2.SubmitRequestRequest(
        idempotency_key="idem-0002", category="parking", title="t", description="d"
    )
    err = await _error(api.submit_request(PORTAL, bad, None))
    assert err.kind is ErrorKind.INVALID_ARGUMENT and "parking" in err.message
    ack = gateway_pb2.TransitionRequestRequest(
        request_id="req-nope", action=gateway_pb2.REQUEST_ACTION_ACKNOWLEDGE
    )
    assert (await _error(api.transition_request(ADMIN_P, ack, None))).kind is ErrorKind.NOT_FOUND


async def test_the_callers_deadline_bounds_the_wait() -> None:
    api, _ = make_api(send_delay=0.5)
    submit = gateway_pb2.SubmitRequestRequest(
        idempotency_key="idem-0003", category="permits", title="t", description="d"
    )
    err = await _error(api.submit_request(PORTAL, submit, deadline_s=0.2))
    assert err.kind is ErrorKind.DEADLINE_EXCEEDED and "same idempotency key" in err.message


async def test_watch_requests_snapshot_then_live_changes_visible_to_the_caller() -> None:
    api, _ = make_api()
    seed_requests(api)
    stream = api.watch_requests(DPMPTSP, gateway_pb2.WatchRequestsRequest(send_snapshot=True))
    first = await anext(stream)
    assert first.request.request_id == "r-dpm" and first.request.reporter.phone
    assert (await anext(stream)).HasField("snapshot_end")
    api.request_hub.publish(service_request("r-bpbd-2", opd_code="BPBD"))  # not visible to DPMPTSP
    api.request_hub.publish(sealed_request(api, "r-dpm-2", opd_code="DPMPTSP"))
    nxt = await asyncio.wait_for(anext(stream), 1)
    assert nxt.request.request_id == "r-dpm-2" and nxt.request.reporter == SIT
    await stream.aclose()
    assert len(api.request_hub) == 0


async def test_watch_devices_filters_by_kind_and_site() -> None:
    api, _ = make_api()
    api.views.apply_access_point(ap("ap-1"))
    api.views.apply_camera(camera("cam-1"))
    api.views.apply_incident(incident("inc-1", "cam-1"))
    req = gateway_pb2.WatchDevicesRequest(send_snapshot=True, kind=gateway_pb2.DEVICE_KIND_CAMERA)
    stream = api.watch_devices(CENTER, req)
    kinds = [(await anext(stream)).WhichOneof("change") for _ in range(3)]
    assert kinds == ["camera", "incident", "snapshot_end"]
    api.device_hub.publish(ap("ap-2"))
    api.device_hub.publish(camera("cam-9", site_id="mpp"))
    assert (await asyncio.wait_for(anext(stream), 1)).camera.camera_id == "cam-9"
    await stream.aclose()


async def test_streams_per_client_are_limited_and_end_on_shutdown() -> None:
    api, _ = make_api()
    streams = [
        api.watch_devices(CENTER, gateway_pb2.WatchDevicesRequest(send_snapshot=True)) for _ in range(3)
    ]
    for stream in streams[:2]:
        assert (await anext(stream)).HasField("snapshot_end")
    err = await _error(anext(streams[2]))
    assert err.kind is ErrorKind.RESOURCE_EXHAUSTED and "watch streams" in err.message
    api.device_hub.close_all()
    assert (await _error(anext(streams[0]))).kind is ErrorKind.UNAVAILABLE


async def test_watch_city_snapshot_ticks_and_stops() -> None:
    api, _ = make_api()
    api.limits.snapshot_min_interval_s = 0.01
    req = gateway_pb2.WatchCitySnapshotRequest()
    req.interval.nanos = 20_000_000
    stream = api.watch_city_snapshot(CENTER, req)
    await anext(stream)
    api.views.apply_access_point(ap("ap-1"))
    assert (await asyncio.wait_for(anext(stream), 1)).snapshot.access_points_total == 1
    api.stopping.set()
    assert (await _error(anext(stream))).kind is ErrorKind.UNAVAILABLE


async def _error(awaitable: Any) -> ApiError:
    with pytest.raises(ApiError) as err:
        await awaitable
    return err.value


def test_city_snapshot_is_reused_only_while_the_views_are_unchanged() -> None:
    api, _ = make_api()
    now = [1000.0]
    api.clock = lambda: now[0]
    first = api.get_city_snapshot(CENTER, gateway_pb2.GetCitySnapshotRequest()).snapshot
    now[0] += 0.5
    assert api.get_city_snapshot(CENTER, gateway_pb2.GetCitySnapshotRequest()).snapshot.as_of == first.as_of
    api.views.apply_access_point(ap("ap-1"))  # a change: computed afresh
    changed = api.get_city_snapshot(CENTER, gateway_pb2.GetCitySnapshotRequest()).snapshot
    assert changed.access_points_total == 1 and changed.as_of.nanos == 500_000_000
    now[0] += 1.0  # older than the cache allows: computed afresh (overdue counts move with time)
    assert api.get_city_snapshot(CENTER, gateway_pb2.GetCitySnapshotRequest()).snapshot.as_of.seconds == 1001


async def test_an_unknown_request_is_looked_for_up_to_now_before_not_found() -> None:
    """Another replica took the submit a moment ago: this one reads on before it says NOT_FOUND."""
    api, _ = make_api()
    budgets: list[float] = []

    async def catch_up(timeout_s: float) -> None:
        budgets.append(timeout_s)
        seed_requests(api)  # what reading the topics up to now brings in

    api.catch_up = catch_up
    reply = await api.get_request(DPMPTSP, gateway_pb2.GetRequestRequest(request_id="r-dpm"), 1.5)
    assert reply.request.request_id == "r-dpm" and budgets == [1.5]  # within the caller's deadline
    await api.get_request(DPMPTSP, gateway_pb2.GetRequestRequest(request_id="r-dpm"), None)
    assert budgets == [1.5]  # a known request costs no read
    err = await _error(api.comment_on_request(
        DPMPTSP, gateway_pb2.CommentOnRequestRequest(request_id="r-none", text="x"), None))
    assert err.kind is ErrorKind.NOT_FOUND and budgets == [1.5, api.limits.catch_up_s]


DPO = Principal("dpo", "", frozenset({"data-protection"}), "command_center")


async def test_erasure_needs_its_own_scope_and_leaves_the_request() -> None:
    api, _ = make_api()
    seed_requests(api)
    erase = gateway_pb2.EraseContactDataRequest(request_id="r-dpm", reason="surat 12/2026")
    for who in (ADMIN_P, CENTER, DPMPTSP):  # admin does not imply data-protection
        assert (await _error(api.erase_contact_data(who, erase))).kind is ErrorKind.PERMISSION_DENIED
    assert (await _error(api.erase_contact_data(DPO, gateway_pb2.EraseContactDataRequest(request_id="r-dpm")))
            ).kind is ErrorKind.INVALID_ARGUMENT  # no reason
    done = await api.erase_contact_data(DPO, erase)
    # Both seeded requests have the same reporter: one subject, both erased.
    assert done.erased and sorted(done.request_ids) == ["r-bpbd", "r-dpm"]
    again = await api.erase_contact_data(DPO, erase)
    assert not again.erased and sorted(again.request_ids) == ["r-bpbd", "r-dpm"]
    shown = (await api.get_request(DPMPTSP, gateway_pb2.GetRequestRequest(request_id="r-dpm"))).request
    assert not shown.HasField("reporter") and shown.contact_data == RS.CONTACT_DATA_STATE_ERASED
    assert shown.title == "title of r-dpm"
    trail = [e for e in TRAILS[id(api)] if e.action == RS.AUDIT_ACTION_CONTACT_ERASED]
    assert sorted(e.request_id for e in trail) == ["r-bpbd", "r-dpm"]
    assert all(e.client_id == "dpo" and e.reason == "surat 12/2026" for e in trail)
    by_contact = gateway_pb2.EraseContactDataRequest(reporter=RS.Reporter(phone="0812 0000"), reason="x")
    assert not (await api.erase_contact_data(DPO, by_contact)).erased  # the same subject, already gone
    missing = gateway_pb2.EraseContactDataRequest(request_id="r-nope", reason="x")
    assert (await _error(api.erase_contact_data(DPO, missing))).kind is ErrorKind.NOT_FOUND


async def test_a_submit_is_sealed_and_a_rejected_one_keeps_no_contact() -> None:
    api, _ = make_api()
    sent: list[Any] = []
    original = api.bus._send

    async def spy(request_id: str, command: Any) -> None:
        sent.append(command)
        await original(request_id, command)

    api.bus._send = spy
    bad = gateway_pb2.SubmitRequestRequest(idempotency_key="idem-0009", category="parking", title="t",
                                           description="d", reporter=RS.Reporter(phone="0813 5555"))
    assert (await _error(api.submit_request(PORTAL, bad, None))).kind is ErrorKind.INVALID_ARGUMENT
    command = sent[-1]
    assert not command.submit.HasField("reporter") and command.submit.encrypted_reporter.ciphertext
    assert b"5555" not in command.SerializeToString()
    assert not api.contacts.vault.store.readable(command.submit.encrypted_reporter)  # discarded
    assert [e.action for e in TRAILS[id(api)]] == [RS.AUDIT_ACTION_CONTACT_DISCARDED]

"""The in-memory read model (pure): feeding, change detection, queries, the city snapshot."""

from __future__ import annotations

import random
import time
from pathlib import Path

from gateway.core.views import DeviceQuery, RequestQuery, Views, request_sort_key
from gateway_testing import (
    CRITICAL,
    OK,
    PROBLEM,
    FedHistory,
    ap,
    camera,
    incident,
    reason,
    request_stats,
    service_request,
    site_stats,
)
from smartcity import inventory
from smartcity.request_rules import is_overdue
from smartcity.v1 import common_pb2, requests_pb2

RS = requests_pb2


def test_device_changes_are_reported_only_when_health_or_reasons_change() -> None:
    views = Views()
    assert views.apply_access_point(ap("ap-1", clients=3)) is not None  # new device
    assert views.apply_access_point(ap("ap-1", clients=9)) is None  # only clients changed
    assert views.access_points["ap-1"].clients_now == 9  # ... but the view has the latest
    assert views.apply_access_point(ap("ap-1", health=PROBLEM, reasons=(reason("cpu"),))) is not None
    assert (
        views.apply_access_point(ap("ap-1", health=PROBLEM, reasons=(reason("cpu"), reason("memory"))))
        is not None
    )
    assert views.apply_camera(camera("cam-1")) is not None
    assert views.apply_camera(camera("cam-1", open_incident_id="inc-1")) is not None
    assert views.apply_camera(camera("cam-1", open_incident_id="inc-1")) is None


def test_incidents_open_and_resolve_and_replays_do_not_reopen() -> None:
    views = Views()
    opened = incident("inc-1", "cam-1")
    assert views.apply_incident(opened) is not None
    assert views.apply_incident(opened) is None  # redelivered
    assert [i.incident_id for i in views.open_incidents()] == ["inc-1"]
    assert views.apply_incident(incident("inc-1", "cam-1", resolved=True)) is not None
    assert views.apply_incident(opened) is None
    assert views.open_incidents() == []


def test_resolved_incidents_are_capped_oldest_first() -> None:
    views = Views(max_resolved_incidents=2)
    for n in range(4):
        views.apply_incident(incident(f"inc-{n}", "cam-1", resolved=True))
    views.apply_incident(incident("inc-open", "cam-1"))
    assert sorted(views.incidents) == ["inc-2", "inc-3", "inc-open"]


def test_open_requests_live_in_memory_every_request_and_trail_in_the_store(tmp_path: Path) -> None:
    views = Views()
    history = FedHistory(tmp_path, views)
    assert [r.version for r in history.feed("requests", service_request("r-1", version=2))] == [2]
    assert history.feed("requests", service_request("r-1", version=1)) == []  # stale
    assert views.open_requests["r-1"].version == 2
    event = requests_pb2.RequestEvent(
        event_id="e-1",
        request_id="r-1",
        type=RS.REQUEST_EVENT_TYPE_CLOSED,
        request=service_request("r-1", version=3, status=RS.REQUEST_STATUS_CLOSED),
    )
    assert [r.version for r in history.feed("events", event)] == [3]
    assert history.feed("events", event) == []  # redelivered event: not added twice
    assert views.open_requests == {}  # closed: only the store has it
    stored = history.get("r-1")
    assert stored is not None and stored.version == 3
    trail, more = history.trail("r-1", 0, 10)
    assert [e.event.event_id for e in trail] == ["e-1"] and not more


def test_tombstones_delete_entries() -> None:
    views = Views()
    views.place_request("r-1", service_request("r-1"))
    views.apply_site_stats("mpp:day", site_stats("mpp"))
    views.place_request("r-1", None)
    views.delete("site_stats", "mpp:day")
    views.place_request("never-there", None)
    assert views.open_requests == {} and views.site_stats == {}


def test_near_filter_keeps_devices_within_the_radius_nearest_first() -> None:
    views = Views()
    views.apply_access_point(ap("ap-far", lat=-7.3574, lon=109.3603))  # Owabong, ~3.5 km away
    views.apply_access_point(ap("ap-b", lat=-7.3886, lon=109.3639))  # ~33 m
    views.apply_access_point(ap("ap-a", lat=-7.3883, lon=109.3639))  # at the point
    query = DeviceQuery(near=common_pb2.GeoPoint(latitude=-7.3883, longitude=109.3639), radius_m=500)
    assert [s.ap_id for _, s in views.list_access_points(query)] == ["ap-a", "ap-b"]
    query.radius_m = 10_000
    assert [s.ap_id for _, s in views.list_access_points(query)] == ["ap-a", "ap-b", "ap-far"]
    assert [s.ap_id for _, s in views.list_access_points(DeviceQuery(health=OK, site_id="alun-alun"))] == [
        "ap-a",
        "ap-b",
        "ap-far",
    ]
    assert views.list_access_points(DeviceQuery(health=CRITICAL)) == []


def test_open_request_filters() -> None:
    now = time.time()
    views = Views()
    for request in (
        service_request("r-open", opd_code="BPBD", category="emergency", ack_due=now - 1),
        service_request("r-done", status=RS.REQUEST_STATUS_CLOSED, requested=now - 100),
        service_request("r-new", requested=now + 1),
    ):
        views.place_request(request.request_id, request)

    def ids(q: RequestQuery) -> list[str]:
        return [r.request_id for r in views.list_open_requests(q, now)]

    assert ids(RequestQuery()) == ["r-new", "r-open"]  # newest first; the closed one is not live
    assert ids(RequestQuery(open_only=True)) == ["r-new", "r-open"]
    assert ids(RequestQuery(overdue_only=True)) == ["r-open"]
    assert ids(RequestQuery(opd_code="DPMPTSP", status=RS.REQUEST_STATUS_SUBMITTED)) == ["r-new"]
    assert ids(RequestQuery(category="emergency")) == ["r-open"]


def test_overdue_needs_an_open_request_past_a_due_time_or_flagged() -> None:
    now = 1000.0
    assert is_overdue(service_request("r", ack_due=999), now)
    assert not is_overdue(service_request("r", ack_due=1001), now)
    acked = service_request("r", status=RS.REQUEST_STATUS_ACKNOWLEDGED, ack_due=999)
    assert not is_overdue(acked, now)  # acknowledged in time or late: the ack SLA no longer applies
    acked.sla.resolve_breached = True
    assert is_overdue(acked, now)
    closed = service_request("r", status=RS.REQUEST_STATUS_CLOSED, ack_due=1)
    assert not is_overdue(closed, now)


def test_city_snapshot_counts_everything() -> None:
    now = time.time()
    views = Views()
    views.apply_access_point(ap("ap-alun-alun-01", clients=10))
    views.apply_access_point(ap("ap-alun-alun-02", clients=5, health=PROBLEM))
    views.apply_access_point(
        ap("ap-mpp-01", site_id="mpp", clients=7, health=CRITICAL)
    )  # offline: not online
    views.apply_camera(camera("cam-alun-alun-1"))
    views.apply_camera(camera("cam-terminal-1", site_id="terminal", health=CRITICAL))
    views.apply_incident(incident("inc-1", "cam-terminal-1", site_id="terminal"))
    views.apply_incident(incident("inc-0", "cam-alun-alun-1", resolved=True))
    views.place_request("r-1", service_request("r-1", ack_due=now - 5))
    views.place_request("r-2", service_request("r-2"))
    views.place_request("r-3", service_request("r-3", status=RS.REQUEST_STATUS_RESOLVED))
    views.apply_request_stats("opd:DPMPTSP", request_stats(RS.STATS_SCOPE_OPD, "DPMPTSP", 2, 1))
    views.apply_request_stats("category:permits", request_stats(RS.STATS_SCOPE_CATEGORY, "permits", 2, 1))
    views.apply_site_stats("alun-alun:day", site_stats("alun-alun", unique_users=321))
    views.apply_site_stats("alun-alun:hour", site_stats("alun-alun", common_pb2.STATS_WINDOW_HOUR, 12))

    snap = views.city_snapshot(now)
    assert (
        snap.access_points_total,
        snap.access_points_ok,
        snap.access_points_problem,
        snap.access_points_critical,
    ) == (3, 1, 1, 1)
    assert snap.people_online == 15
    assert (snap.cameras_total, snap.cameras_ok, snap.cameras_critical, snap.open_incidents) == (2, 1, 1, 1)
    assert (snap.requests_open, snap.requests_overdue) == (2, 1)
    assert [s.key for s in snap.requests_by_opd] == ["DPMPTSP"]
    assert [s.key for s in snap.requests_by_category] == ["permits"]
    sites = {s.site_id: s for s in snap.sites}
    assert set(sites) == {s.site_id for s in inventory.SITES}
    alun = sites["alun-alun"]
    assert (
        alun.name == "Alun-Alun Purbalingga"
        and alun.location.latitude == inventory.site("alun-alun").latitude
    )
    assert (alun.access_points_total, alun.access_points_up, alun.clients_now, alun.unique_users_today) == (
        2,
        2,
        15,
        321,
    )
    assert (sites["mpp"].access_points_total, sites["mpp"].access_points_up) == (1, 0)
    assert (sites["terminal"].cameras_total, sites["terminal"].cameras_up) == (1, 0)
    assert snap.as_of.seconds == int(now)


def test_sites_outside_the_inventory_are_listed_by_id() -> None:
    views = Views()
    views.apply_access_point(ap("ap-x", site_id="kantor-desa"))
    summary = {s.site_id: s for s in views.site_summaries()}["kantor-desa"]
    assert summary.name == "kantor-desa" and summary.access_points_total == 1


def test_open_requests_are_indexed_and_every_change_bumps_the_generation() -> None:
    views = Views()
    start = views.generation
    views.place_request("r-1", service_request("r-1"))
    views.place_request("r-2", service_request("r-2"))
    assert set(views.open_requests) == {"r-1", "r-2"}
    views.place_request("r-1", service_request("r-1", version=2, status=RS.REQUEST_STATUS_CLOSED))
    views.place_request("r-2", None)
    assert views.open_requests == {} and views.generation == start + 4


def test_the_audit_trail_keeps_events_without_the_requests_history(tmp_path: Path) -> None:
    views = Views()
    history = FedHistory(tmp_path, views)
    request = service_request("r-1", version=2, reporter=False)
    request.encrypted_reporter.subject_id = "subject-1"
    request.history.add(version=1)
    request.history.add(version=2)
    event = requests_pb2.RequestEvent(event_id="e-2", request_id="r-1", version=2, request=request)
    history.feed("events", event)
    kept = history.trail("r-1", 0, 10)[0][0].event
    assert kept.version == 2 and kept.request.title == request.title and not kept.request.history
    assert kept.request.encrypted_reporter == request.encrypted_reporter  # back from the request
    assert len(views.open_requests["r-1"].history) == 2  # the request view keeps its history
    stored = history.get("r-1")
    assert stored is not None and len(stored.history) == 2
    assert len(event.request.history) == 2  # the caller's message is untouched


def test_request_listings_stay_in_order_through_arrivals_updates_reroutes_and_tombstones() -> None:
    """The kept index against the plain definition: every matching request, newest first."""
    rng = random.Random(7)
    views = Views()
    opds = ["PUPR", "DLH", "BPBD"]
    for _ in range(600):
        request_id = f"req-{rng.randrange(150):03d}"
        if rng.random() < 0.1:
            views.place_request(request_id, None)
            continue
        known = views.open_requests.get(request_id)
        request = requests_pb2.ServiceRequest(
            request_id=request_id,
            version=(known.version + 1) if known else 1,
            opd_code=rng.choice(opds),
            category="roads",
            status=rng.choice([requests_pb2.REQUEST_STATUS_SUBMITTED, requests_pb2.REQUEST_STATUS_CLOSED]),
        )
        # Same second for some, so ties are broken by id; arrival order is random.
        request.requested_time.FromSeconds(1_790_000_000 + rng.randrange(100))
        views.place_request(request_id, request)
    assert len(views.open_requests) > 30

    def expected(opd: str) -> list[str]:
        found = [r for r in views.open_requests.values() if not opd or r.opd_code == opd]
        return [r.request_id for r in sorted(found, key=request_sort_key)]

    for opd in ["", *opds, "NOBODY"]:
        listed = [r.request_id for r in views.list_open_requests(RequestQuery(opd_code=opd), time.time())]
        assert listed == expected(opd), opd

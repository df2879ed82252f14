"""Rendering for the command line (pure)."""

from __future__ import annotations

import time

from gateway_testing import CRITICAL, PROBLEM, ap, camera, incident, reason, service_request
from smartcity.codec import to_timestamp
from smartcity.v1 import gateway_pb2, requests_pb2
from smartcity_cli import render, top


def test_table_aligns_text_left_and_numbers_right() -> None:
    out = render.table(["NAME", "N"], [("a", 5), ("longer", 123)])
    assert out.splitlines() == ["NAME      N", "a         5", "longer  123"]
    assert render.table(["X"], []) == "(none)"


def test_ago_and_duration() -> None:
    now = 1_000_000.0
    assert render.ago(to_timestamp(now - 42), now) == "42s ago"
    assert render.ago(to_timestamp(now - 3700), now) == "1h01m ago"
    assert render.ago(to_timestamp(now + 90), now) == "in 1m30s"
    assert render.ago(to_timestamp(0), now) == "-"
    assert render.duration(2 * 86400 + 3 * 3600) == "2d03h"


def test_snapshot_and_requests_render() -> None:
    snap = gateway_pb2.CitySnapshot(
        access_points_total=10, access_points_critical=2, people_online=77, as_of=to_timestamp(time.time())
    )
    snap.sites.add(site_id="mpp", name="Mal Pelayanan Publik", access_points_total=3, access_points_up=2)
    text = render.snapshot(snap)
    assert "8/10 up" in text and "people online  77" in text and "Mal Pelayanan Publik" in text
    req = service_request("req-1", status=requests_pb2.REQUEST_STATUS_ACKNOWLEDGED)
    assert "ACKNOWLEDGED" in render.requests([req]) and "+62 812 0000" in render.request_detail(req)
    assert render.to_json(req).startswith("{") and '"request_id": "req-1"' in render.to_json(req)


def test_top_orders_devices_worst_first_and_counts_requests_per_opd() -> None:
    state = render.TopState()
    for status in (
        ap("ap-b", health=PROBLEM, reasons=(reason("cpu"),)),
        ap("ap-a"),
        ap("ap-c", health=CRITICAL),
    ):
        state.apply_device(gateway_pb2.WatchDevicesResponse(access_point=status))
    state.apply_device(gateway_pb2.WatchDevicesResponse(camera=camera("cam-1", health=CRITICAL)))
    state.apply_device(gateway_pb2.WatchDevicesResponse(incident=incident("inc-1", "cam-1")))
    state.apply_device(gateway_pb2.WatchDevicesResponse(incident=incident("inc-2", "cam-1")))
    state.apply_device(gateway_pb2.WatchDevicesResponse(incident=incident("inc-2", "cam-1", resolved=True)))
    late = service_request("r-1", opd_code="BPBD", ack_due=time.time() - 60)
    for req in (
        late,
        service_request("r-2", opd_code="BPBD"),
        service_request("r-3"),
        service_request("r-4", status=requests_pb2.REQUEST_STATUS_CLOSED),
    ):
        state.apply_request(gateway_pb2.WatchRequestsResponse(request=req))
    frame = top.frame(state)
    assert frame.index("ap-c") < frame.index("ap-b") and "ap-a " not in frame  # OK devices are not listed
    assert "ACCESS POINTS not OK (2 of 3)" in frame and "OPEN INCIDENTS (1)" in frame
    rows = frame.split("REQUESTS PER OPD")[1].split()
    assert rows[3:9] == ["BPBD", "2", "1", "DPMPTSP", "1", "0"]

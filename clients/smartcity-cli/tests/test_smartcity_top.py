"""`smartcity top`'s frame: fits the width it is given, colours by health on a terminal only."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from smartcity.codec import to_timestamp
from smartcity.v1 import camera_pb2, common_pb2, gateway_pb2, requests_pb2, wifi_pb2
from smartcity_cli import render, top

ANSI = re.compile("\x1b")
NOW = 1_780_000_000.0


def city() -> render.TopState:
    state = render.TopState()
    state.snapshot = gateway_pb2.CitySnapshot(
        access_points_total=120, access_points_problem=3, access_points_critical=2, people_online=4321,
        cameras_total=40, cameras_critical=1, open_incidents=1, requests_open=12, requests_overdue=3,
    )
    long_reason = common_pb2.HealthReason(
        check="heartbeat", severity=common_pb2.HEALTH_STATE_CRITICAL,
        detail="no heartbeat for 2 minutes from the controller on the second floor of the market hall",
    )
    for index, health in enumerate((common_pb2.HEALTH_STATE_CRITICAL, common_pb2.HEALTH_STATE_PROBLEM,
                                    common_pb2.HEALTH_STATE_OK)):
        ap = wifi_pb2.AccessPointStatus(
            ap_id=f"ap-pasar-segamas-lantai-{index}", site_id="pasar-segamas", health=health,
            clients_now=17, last_seen=to_timestamp(NOW - 5), reasons=[long_reason],
        )
        state.apply_device(gateway_pb2.WatchDevicesResponse(access_point=ap))
    cam = camera_pb2.CameraStatus(camera_id="cam-alun-alun-2", site_id="alun-alun",
                                  health=common_pb2.HEALTH_STATE_CRITICAL, fps=0.0, configured_fps=15)
    state.apply_device(gateway_pb2.WatchDevicesResponse(camera=cam))
    incident = camera_pb2.CameraIncident(
        incident_id="inc-1", camera_id="cam-alun-alun-2", site_id="alun-alun",
        severity=common_pb2.HEALTH_STATE_CRITICAL, cause="dark", phase=camera_pb2.INCIDENT_PHASE_OPENED,
        opened_time=to_timestamp(NOW - 90),
    )
    state.apply_device(gateway_pb2.WatchDevicesResponse(incident=incident))
    request = requests_pb2.ServiceRequest(request_id="r-1", opd_code="PUPR",
                                          status=requests_pb2.REQUEST_STATUS_SUBMITTED)
    state.apply_request(gateway_pb2.WatchRequestsResponse(request=request))
    return state


def rendered(width: int, terminal: bool) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=terminal,
                      color_system="standard" if terminal else None)
    console.print(top.view(city(), NOW))
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()


@pytest.mark.parametrize("width", [40, 60, 80, 132])
def test_a_frame_fits_the_width(width: int) -> None:
    frame = top.frame(city(), NOW, width=width)
    assert "ap-pasar-segamas-lantai-0" in frame or width < 80  # ids are cut only when narrow
    assert max(len(line) for line in frame.splitlines()) <= width


def test_piped_output_has_no_escape_codes() -> None:
    frame = top.frame(city(), NOW)
    assert not ANSI.search(frame)
    for panel in ("ACCESS POINTS not OK (2 of 3)", "CAMERAS not OK (1 of 1)", "OPEN INCIDENTS (1)",
                  "REQUESTS PER OPD"):
        assert panel in frame


def test_a_terminal_gets_rows_coloured_by_health() -> None:
    coloured = rendered(132, terminal=True)
    critical_line = next(line for line in coloured.splitlines() if "ap-pasar-segamas-lantai-0" in line)
    problem_line = next(line for line in coloured.splitlines() if "ap-pasar-segamas-lantai-1" in line)
    assert "\x1b[1;31m" in critical_line  # bold red
    assert "\x1b[33m" in problem_line  # yellow
    assert ANSI.sub("", coloured) != coloured
    assert not ANSI.search(rendered(132, terminal=False))


def test_the_frame_uses_the_clock_it_is_given() -> None:
    assert time.strftime("%Y-%m-%d %H:%M", time.localtime(NOW)) in top.frame(city(), NOW)

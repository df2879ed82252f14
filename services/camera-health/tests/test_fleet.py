"""The simulated cameras: normal heartbeats, every fault, targets, durations, the control endpoint."""

from __future__ import annotations

import urllib.error

import pytest

from camera_health.adapters.messages import HEARTBEATS, sample_from_heartbeat
from camera_health.config import Thresholds
from camera_health.core.checks import evaluate
from camera_health.sim.fleet import Fleet
from smartcity.inventory import cameras
from smartcity.simcontrol import ControlServer, send_fault
from smartcity.v1 import camera_pb2


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def beats(fleet: Fleet, elapsed: float = 10.0) -> dict[str, camera_pb2.CameraHeartbeat]:
    return {hb.camera_id: hb for hb in fleet.heartbeats(1_800_000_000.0, elapsed)}


def failing_checks(hb: camera_pb2.CameraHeartbeat) -> set[str]:
    sample = sample_from_heartbeat(HEARTBEATS.decode(hb.SerializeToString()))
    return {name for name, r in evaluate(sample, Thresholds()).items() if r.failing}


def test_the_city_cameras_in_inventory_order_send_valid_healthy_heartbeats() -> None:
    fleet = Fleet(cameras())
    out = beats(fleet)
    assert list(out)[:4] == [f"cam-alun-alun-{i}" for i in range(1, 5)]
    assert len(out) == len(cameras())
    for hb in out.values():
        assert failing_checks(hb) == set()
        assert hb.seq == 1 and hb.source == "agent" and hb.HasField("location")
    assert {hb.seq for hb in beats(fleet).values()} == {2}


@pytest.mark.parametrize(("fault", "extra", "checks"), [
    ("stream_down", {}, {"recording", "fps"}),
    ("fps_drop", {}, {"fps"}),
    ("fps_drop", {"fps": 21.0}, set()),  # 84% of 25: still fine
    ("packet_loss", {}, {"packet_loss"}),
    ("packet_loss", {"percent": 30}, {"packet_loss"}),
    ("tamper", {"flags": ["too_blurry", "scene_change"]}, {"tamper"}),
    ("not_recording", {}, {"recording"}),
])
def test_each_fault_shows_in_the_heartbeat(fault: str, extra: dict[str, object], checks: set[str]) -> None:
    fleet = Fleet(cameras())
    fleet.command({"fault": fault, "target": "cam-alun-alun-2", **extra})
    out = beats(fleet)
    assert failing_checks(out["cam-alun-alun-2"]) == checks
    assert failing_checks(out["cam-alun-alun-1"]) == set()


def test_offline_sends_nothing_and_the_seq_resumes_after_clear() -> None:
    fleet = Fleet(cameras())
    beats(fleet)
    fleet.command({"fault": "offline", "target": "terminal"})
    assert "cam-terminal-1" not in beats(fleet)
    fleet.command({"fault": "clear", "target": "cam-terminal-1"})
    assert beats(fleet)["cam-terminal-1"].seq == 2


def test_storage_fills_over_time_and_clear_purges_it() -> None:
    fleet = Fleet(cameras())
    before = beats(fleet)["cam-owabong-1"].storage_free_percent
    fleet.command({"fault": "storage_filling", "target": "owabong", "rate_percent_per_s": 2})
    after = beats(fleet, elapsed=10)["cam-owabong-1"].storage_free_percent
    assert after == pytest.approx(before - 20, abs=0.01)
    for _ in range(10):
        last = beats(fleet, elapsed=10)["cam-owabong-1"]
    assert last.storage_free_percent == 0 and failing_checks(last) == {"storage"}
    fleet.command({"fault": "clear", "target": "owabong"})
    assert beats(fleet)["cam-owabong-1"].storage_free_percent == before


def test_faults_with_a_duration_clear_themselves() -> None:
    clock = FakeClock()
    fleet = Fleet(cameras(), clock=clock)
    fleet.command({"fault": "not_recording", "target": "alun-alun", "duration_s": 30})
    assert len(fleet.active()) == 4
    clock.now = 30.0
    assert fleet.active() == []
    assert all(hb.recording for hb in beats(fleet).values())


@pytest.mark.parametrize("command", [{"fault": "meltdown"}, {"fault": "offline", "target": "cam-nowhere"},
                                     {"fault": "tamper", "flags": ["graffiti"]},
                                     {"fault": "fps_drop", "fps": "slow"}])
def test_bad_commands_are_refused(command: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Fleet(cameras()).command(command)


def test_the_control_endpoint_takes_faults_over_http() -> None:
    fleet = Fleet(cameras())
    server = ControlServer("127.0.0.1", 0, fleet.command, fleet.active).start()
    try:
        reply = send_fault(server.port, {"fault": "packet_loss", "target": "pasar-segamas", "percent": 9})
        assert reply == {"ok": True, "fault": "packet_loss", "cameras": ["cam-pasar-segamas-1"]}
        assert fleet.active()[0]["percent"] == 9
        with pytest.raises(urllib.error.HTTPError) as refused:
            send_fault(server.port, {"fault": "meltdown"})
        assert refused.value.code == 400
    finally:
        server.stop()

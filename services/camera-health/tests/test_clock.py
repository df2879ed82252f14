"""The silence clock: a camera's event time advanced by the wall time since it was last heard."""

from __future__ import annotations

from camera_health.core.clock import ReceiptClock


def test_now_is_last_seen_plus_wall_time_since_the_last_heartbeat_arrived() -> None:
    wall = [100.0]
    clock = ReceiptClock(lambda: wall[0])
    clock.heard("cam-1")
    wall[0] = 130.0
    assert clock.now_for("cam-1", last_seen=5000.0) == 5030.0
    clock.heard("cam-1")  # a replayed, old heartbeat arriving now keeps the camera "alive"
    assert clock.now_for("cam-1", last_seen=5010.0) == 5010.0


def test_an_unknown_camera_starts_counting_when_first_asked_about() -> None:
    wall = [10.0]
    clock = ReceiptClock(lambda: wall[0])
    assert clock.now_for("cam-2", last_seen=700.0) == 700.0
    wall[0] = 75.0
    assert clock.now_for("cam-2", last_seen=700.0) == 765.0
    clock.forget("cam-2")
    assert clock.now_for("cam-2", last_seen=700.0) == 700.0

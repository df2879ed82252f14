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


def test_a_tick_back_late_shows_a_stall_and_every_camera_counts_as_heard_then() -> None:
    wall = [100.0]
    clock = ReceiptClock(lambda: wall[0], stall_s=5.0)
    clock.heard("cam-1")
    quick = clock.stamp()
    wall[0] = 101.0
    assert clock.came_back(quick)  # back within the stall time: its silence holds
    late = clock.stamp()
    wall[0] = 125.0  # a broker restart: nothing received for 24 s, ticks queued meanwhile
    computed_in_the_stall = clock.stamp() | {"now": clock.now_for("cam-1", last_seen=5000.0)}
    assert computed_in_the_stall["now"] == 5025.0  # would pass a 20 s tolerance
    assert not clock.came_back(late)  # the stall: counted as heard now, a new epoch
    assert not clock.came_back(computed_in_the_stall)  # of the epoch before: does not hold
    assert clock.now_for("cam-1", last_seen=5000.0) == 5000.0
    wall[0] = 150.0
    assert clock.now_for("cam-1", last_seen=5000.0) == 5025.0  # silent since: silent again
    assert clock.came_back(clock.stamp())


def test_a_tick_of_another_process_does_not_hold_and_shows_no_stall() -> None:
    wall = [100.0]
    clock, other = ReceiptClock(lambda: wall[0]), ReceiptClock(lambda: -1e9)
    clock.heard("cam-1")
    wall[0] = 130.0
    assert not clock.came_back(other.stamp())
    assert not clock.came_back({"now": 1.0})  # a tick from before ticks were stamped
    assert clock.now_for("cam-1", last_seen=0.0) == 30.0

"""The shared health model: tolerances, recovery, silence, severity, availability."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.health import (
    DAY,
    HEARTBEAT_CHECK,
    HOUR,
    WEEK,
    Availability,
    CheckResult,
    CheckSpec,
    DeviceHealth,
    Health,
)

SPECS = {
    "cpu": CheckSpec("cpu", Health.PROBLEM, tolerance_s=300, recovery_s=60),
    "recording": CheckSpec("recording", Health.CRITICAL),
}
FAIL, PASS = CheckResult(True, "cpu 95% > 90%"), CheckResult(False)


def device() -> DeviceHealth:
    return DeviceHealth("ap-1", SPECS, heartbeat_tolerance_s=90)


def test_a_check_fires_only_once_its_condition_held_for_the_tolerance() -> None:
    d = device()
    assert d.observe(0, {"cpu": FAIL}) is None
    assert d.observe(299, {"cpu": FAIL}) is None
    change = d.observe(300, {"cpu": FAIL})
    assert change is not None and change.after == Health.PROBLEM and change.before == Health.OK
    assert [r.check for r in change.reasons] == ["cpu"] and change.reasons[0].since == 0


def test_an_interrupted_condition_restarts_its_tolerance() -> None:
    d = device()
    d.observe(0, {"cpu": FAIL})
    d.observe(200, {"cpu": PASS})
    assert d.observe(400, {"cpu": FAIL}) is None
    assert d.observe(699, {"cpu": FAIL}) is None
    assert d.observe(700, {"cpu": FAIL}) is not None


def test_recovery_needs_the_condition_clear_for_the_recovery_time() -> None:
    d = device()
    d.observe(0, {"cpu": FAIL})
    d.observe(300, {"cpu": FAIL})
    assert d.observe(310, {"cpu": PASS}) is None  # clear, but not for 60 s yet
    assert d.observe(320, {"cpu": FAIL}) is None  # flaps back: still PROBLEM, no new change
    assert d.observe(330, {"cpu": PASS}) is None
    change = d.observe(390, {"cpu": PASS})
    assert change is not None and change.after == Health.OK and change.reasons == ()


def test_worst_firing_check_wins() -> None:
    d = device()
    d.observe(0, {"cpu": FAIL})
    d.observe(300, {"cpu": FAIL})
    change = d.observe(301, {"cpu": FAIL, "recording": CheckResult(True, "not recording")})
    assert change is not None and change.after == Health.CRITICAL
    assert [r.check for r in change.reasons] == ["recording", "cpu"]


def test_silence_past_the_tolerance_is_critical_and_a_heartbeat_recovers() -> None:
    d = device()
    d.observe(100, {"cpu": PASS})
    assert d.check_silence(190) is None  # exactly at the tolerance: not yet
    change = d.check_silence(191)
    assert change is not None and change.after == Health.CRITICAL
    assert change.reasons[0].check == HEARTBEAT_CHECK and change.at == 190
    assert d.check_silence(500) is None  # already offline: no second change
    back = d.observe(501, {"cpu": PASS})
    assert back is not None and back.after == Health.OK


def test_a_silence_reads_the_same_whenever_it_was_noticed() -> None:
    # Noticed by a live timer (wall clock) soon or late, or by the next heartbeat: one reason.
    details = set()
    for now in (191, 250, 5000):
        d = device()
        d.observe(100, {"cpu": PASS})
        change = d.check_silence(now)
        assert change is not None and change.at == 190
        details.add(change.reasons[0].detail)
    assert details == {"no heartbeat for more than 90s"}


def test_a_device_never_heard_from_is_not_declared_offline() -> None:
    assert device().check_silence(10_000) is None


def test_unknown_check_is_an_error() -> None:
    with pytest.raises(KeyError, match="unknown check"):
        device().observe(0, {"fps": FAIL})


def test_state_round_trips_through_a_dict() -> None:
    d = device()
    d.observe(0, {"cpu": FAIL})
    d.observe(300, {"cpu": FAIL})
    copy = DeviceHealth.from_dict(d.to_dict(), SPECS, 90)
    assert copy.health == Health.PROBLEM and copy.reasons() == d.reasons()
    assert copy.observe(310, {"cpu": PASS}) == d.observe(310, {"cpu": PASS})


def test_availability_is_the_share_of_time_not_critical() -> None:
    a = Availability()
    a.record(0, Health.OK)
    a.record(600, Health.CRITICAL)
    a.record(900, Health.PROBLEM)  # PROBLEM counts as available
    assert a.ratio(HOUR, HOUR) == pytest.approx(1 - 300 / 3600)
    assert a.ratio(1800, HOUR) == pytest.approx(1 - 300 / 1800)  # observed only since first seen


def test_availability_windows_cut_old_downtime() -> None:
    a = Availability()
    a.record(0, Health.CRITICAL)
    a.record(HOUR, Health.OK)
    now = 3 * HOUR
    assert a.ratio(now, HOUR) == 1.0
    assert a.ratio(now, DAY) == pytest.approx(2 / 3)


def test_availability_while_still_down() -> None:
    a = Availability()
    a.record(0, Health.OK)
    a.record(1000, Health.CRITICAL)
    assert a.ratio(2000, HOUR) == pytest.approx(0.5)
    assert Availability.from_dict(a.to_dict()).ratio(2000, HOUR) == pytest.approx(0.5)


def test_availability_before_anything_is_seen_is_full() -> None:
    assert Availability().ratio(100, HOUR) == 1.0


def scanned_ratio(availability: Availability, now: float, window_s: float) -> float:
    """The ratio by scanning every change point (what `ratio` skips must add nothing)."""
    if availability.first_seen is None:
        return 1.0
    start = max(now - window_s, availability.first_seen)
    if now <= start:
        state = False
        for t, down in availability.changes:
            if t > now:
                break
            state = down
        return 0.0 if state else 1.0
    points = [(t, d) for t, d in availability.changes if t < now]
    down_s = 0.0
    for index, (t, was_down) in enumerate(points):
        end = points[index + 1][0] if index + 1 < len(points) else now
        lo, hi = max(t, start), min(end, now)
        if was_down and hi > lo:
            down_s += hi - lo
    return max(0.0, 1.0 - down_s / (now - start))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3 * 86400), st.booleans()), max_size=30),
       st.floats(-3600, 8 * 86400), st.sampled_from([3600.0, 86400.0, 7 * 86400.0, 0.0]))
def test_the_ratio_over_a_window_equals_a_scan_of_every_change(
        changes: list[tuple[float, bool]], now: float, window_s: float) -> None:
    """Few points: walked, to the last bit (none or one up point: the never-down shortcut)."""
    availability = Availability()
    for at, down in sorted(changes):
        availability.record(at, Health.CRITICAL if down else Health.OK)
    assert availability.ratio(now, window_s) == scanned_ratio(availability, now, window_s)


# Event times to the millisecond (heartbeats carry them to the microsecond; the running totals
# round at about 1e-10 s, so over a window of a millisecond or more a ratio is exact to 1e-7).


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32), st.integers(140, 400), st.integers(1, 3))
def test_a_flapping_devices_ratio_from_running_totals_equals_a_scan(
        seed: int, count: int, split: int) -> None:
    """Many points (a device flapping for nine days, spread over them so the week's trimming
    happens): whole segments come from the running totals, which are built at a first ratio and
    then kept up by later points and the trimming."""
    rng = random.Random(seed)  # times spread over the days (drawn ones would cluster near 0)
    availability = Availability()
    times = sorted({rng.randrange(9 * 86400 * 1000) / 1000 for _ in range(count)})
    points = [(at, index % 2 == 1) for index, at in enumerate(times)]
    asks = [(rng.randrange(10 * 86400 * 1000) / 1000, rng.choice([HOUR, DAY, WEEK, 0.0])) for _ in range(8)]
    cut = len(points) * split // 4  # points before the totals exist (35 or more), the rest after
    for at, down in points[:cut]:
        availability.record(at, Health.CRITICAL if down else Health.OK)
    availability.ratio(points[cut - 1][0], 7 * 86400.0)
    for at, down in points[cut:]:
        availability.record(at, Health.CRITICAL if down else Health.OK)
    for now, window_s in asks:
        expected = scanned_ratio(availability, now, window_s)
        assert availability.ratio(now, window_s) == pytest.approx(expected, rel=0, abs=1e-7)
    fresh = Availability.from_dict(availability.to_dict())  # totals built from the stored points
    assert [fresh.ratio(now, w) for now, w in asks] == pytest.approx(
        [availability.ratio(now, w) for now, w in asks], rel=0, abs=1e-7)

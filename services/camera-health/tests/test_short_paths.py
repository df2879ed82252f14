"""The monitor's two short ways hold equal to the long ones they replace (property tests):

- a quiet heartbeat (`CameraMonitor._apply_quiet`) leaves the state and the outputs exactly as
  the full path (`_apply`, with statuses from the signature) does;
- a heartbeat next in line taken quietly (`CameraMonitor.on_next_quiet_heartbeat`, tried first
  as the edge-batch path does) leaves the states and outputs as `on_heartbeat` the full way;
- a deferred availability (`defer_availability`, completed for each camera's newest status of
  a batch) equals the one computed when the status was made.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from camera_health.config import ThresholdBook, Thresholds
from camera_health.core.domain import CameraMonitor, CameraState, MonitorEffects
from camera_health.core.model import AGENT, PROBE, Sample, StatusView
from smartcity.ordering import Arrival

CAMERAS = ("cam-a", "cam-b", "cam-c")
BOOK = ThresholdBook(Thresholds().with_overrides(
    {"fps_tolerance_s": 20.0, "fps_recovery_s": 10.0, "packet_loss_tolerance_s": 15.0,
     "heartbeat_tolerance_s": 30.0, "incident_resolve_hold_s": 25.0}, "test"))


class LongWayMonitor(CameraMonitor):
    """The monitor without its quiet path: every heartbeat the full way."""

    def _apply_quiet(self, state: CameraState, s: Sample) -> bool:
        return False


# One step: a heartbeat of a camera, or a timer tick. Values mostly pass their checks (so quiet
# heartbeats are common), the rest sit on and around the thresholds.
def mostly(passing: Any, *others: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from([passing] * 6 + list(others))


heartbeat = st.fixed_dictionaries({
    "camera": st.sampled_from(CAMERAS),
    "seq_step": mostly(1, 2, 0, -1, 3),
    "dt": mostly(10.0, 5.0, 29.0, 30.0, 31.0, 45.0, -3.0),
    "source": mostly(AGENT, PROBE),
    "fps": mostly(25.0, 24.0, 20.0, 19.9, 12.0, math.nan),
    "configured_fps": mostly(25.0, 0.0),
    "packet_loss_percent": mostly(0.0, 0.5, 5.0, 5.1, 20.0),
    "storage_free_percent": mostly(60.0, 10.0, 9.9),
    "recording": mostly(True, False),
    "tamper_flags": mostly((), ("covered",)),
    "reachable": mostly(True, False),
})
tick = st.fixed_dictionaries({"tick": st.just(True), "camera": st.sampled_from(CAMERAS),
                              "ahead": st.sampled_from([0.0, 20.0, 31.0, 90.0]),
                              "refresh": st.booleans()})
steps = st.lists(st.one_of(heartbeat, heartbeat, heartbeat, tick), min_size=1, max_size=120)


class Feed:
    """Turns steps into samples and ticks, the same for every monitor it drives."""

    def __init__(self) -> None:
        self.seq = {(c, s): 0 for c in CAMERAS for s in (AGENT, PROBE)}
        self.at = dict.fromkeys(CAMERAS, 1_000_000.0)

    def sample(self, step: dict[str, Any]) -> Sample:
        camera, source = step["camera"], step["source"]
        self.seq[camera, source] = max(1, self.seq[camera, source] + step["seq_step"])
        self.at[camera] += step["dt"]
        return Sample(camera_id=camera, seq=self.seq[camera, source], at=self.at[camera], source=source,
                      site_id="site-1", fps=step["fps"], configured_fps=step["configured_fps"],
                      packet_loss_percent=step["packet_loss_percent"],
                      storage_free_percent=step["storage_free_percent"], recording=step["recording"],
                      tamper_flags=step["tamper_flags"], reachable=step["reachable"])


# How a driven monitor takes a heartbeat: the full way unless a test says otherwise.
Take = Callable[[CameraMonitor, CameraState, Sample], MonitorEffects]


def full_way(monitor: CameraMonitor, state: CameraState, sample: Sample) -> MonitorEffects:
    return monitor.on_heartbeat(state, sample)


def drive(monitor: CameraMonitor, plan: list[dict[str, Any]],
          take: Take = full_way) -> list[tuple[str, MonitorEffects]]:
    """Each step's camera and effects; the states end in `monitor.states` (set here)."""
    feed, states = Feed(), {c: monitor.new_state(c) for c in CAMERAS}
    out = []
    for step in plan:
        camera = step["camera"]
        state = states[camera]
        if step.get("tick"):
            now = (state.health.last_seen or feed.at[camera]) + step["ahead"]
            out.append((camera, monitor.on_tick(state, now, step["refresh"])))
        else:
            out.append((camera, take(monitor, state, feed.sample(step))))
    monitor.states = states  # type: ignore[attr-defined]
    return out


def dumped(state: CameraState) -> str:
    return json.dumps(CameraMonitor.dump(state), sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_a_quiet_heartbeat_changes_what_the_full_path_changes(plan: list[dict[str, Any]]) -> None:
    short, long = CameraMonitor(BOOK), LongWayMonitor(BOOK)
    short_out, long_out = drive(short, plan), drive(long, plan)
    assert short_out == long_out
    for camera in CAMERAS:
        assert dumped(short.states[camera]) == dumped(long.states[camera])  # type: ignore[attr-defined]


def test_the_quiet_path_is_taken_for_a_healthy_camera() -> None:
    """Not only equal: used (else the property above would hold trivially)."""
    monitor = CameraMonitor(BOOK)
    state = monitor.new_state("cam-a")
    beats = [Sample(camera_id="cam-a", seq=i, at=1000.0 + 10 * i, fps=25.0, configured_fps=25.0)
             for i in range(1, 4)]
    monitor.on_heartbeat(state, beats[0])  # the first one: the full path
    assert [monitor._apply_quiet(state, b) for b in beats[1:]] == [True, True]
    assert state.health.last_seen == beats[-1].at


def newest_per_batch(out: list[tuple[str, MonitorEffects]], cuts: list[int]) -> list[list[StatusView]]:
    """Each batch's newest status per camera (the batch boundaries at `cuts`)."""
    batches, start = [], 0
    for end in [*sorted(set(cuts)), len(out)]:
        newest: dict[str, StatusView] = {}
        for _, effects in out[start:end]:
            for status in effects.statuses:
                newest[status.camera_id] = status
        batches.append(list(newest.values()))
        start = max(start, end)
    return batches


@settings(max_examples=200, deadline=None)
@given(steps, st.lists(st.integers(min_value=0, max_value=120), max_size=8))
def test_a_deferred_availability_equals_the_one_computed_at_once(plan: list[dict[str, Any]],
                                                                cuts: list[int]) -> None:
    eager, deferred = CameraMonitor(BOOK), CameraMonitor(BOOK, defer_availability=True)
    eager_out, deferred_out = drive(eager, plan), drive(deferred, plan)
    # Replayed batch by batch, completing each batch's newest statuses at the batch's end.
    feed_states = {c: deferred.new_state(c) for c in CAMERAS}
    replayed = CameraMonitor(BOOK, defer_availability=True)
    feed, start, completed = Feed(), 0, []
    for end in [*sorted(set(cuts)), len(plan)]:
        newest: dict[str, StatusView] = {}
        for step in plan[start:end]:
            state = feed_states[step["camera"]]
            if step.get("tick"):
                now = (state.health.last_seen or feed.at[step["camera"]]) + step["ahead"]
                effects = replayed.on_tick(state, now, step["refresh"])
            else:
                effects = replayed.on_heartbeat(state, feed.sample(step))
            for status in effects.statuses:
                newest[status.camera_id] = status
        completed.append([CameraMonitor.completed(feed_states[c], s) for c, s in newest.items()])
        start = max(start, end)
    assert completed == newest_per_batch(eager_out, cuts)
    assert any(s.availability is None for _, e in deferred_out for s in e.statuses) or not any(
        e.statuses for _, e in deferred_out)


# --- on_next_quiet_heartbeat -------------------------------------------------------------------

class NextQuietFirst:
    """Takes a heartbeat as the edge-batch path does: the next-quiet way first, counted."""

    def __init__(self) -> None:
        self.short = 0

    def __call__(self, monitor: CameraMonitor, state: CameraState, sample: Sample) -> MonitorEffects:
        if monitor.on_next_quiet_heartbeat(state, sample):
            self.short += 1
            return MonitorEffects(Arrival.APPLIED, changed=True)
        return monitor.on_heartbeat(state, sample)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_the_next_quiet_way_changes_what_the_full_path_changes(plan: list[dict[str, Any]]) -> None:
    short, long = CameraMonitor(BOOK), LongWayMonitor(BOOK)
    short_out, long_out = drive(short, plan, NextQuietFirst()), drive(long, plan)
    assert short_out == long_out
    for camera in CAMERAS:
        assert dumped(short.states[camera]) == dumped(long.states[camera])  # type: ignore[attr-defined]


def test_the_next_quiet_way_is_taken_for_a_healthy_camera_in_sequence() -> None:
    """Not only equal: used (else the property above would hold trivially)."""
    plan = [{"camera": "cam-a", "seq_step": 1, "dt": 10.0, "source": AGENT, "fps": 25.0,
             "configured_fps": 25.0, "packet_loss_percent": 0.0, "storage_free_percent": 60.0,
             "recording": True, "tamper_flags": (), "reachable": True}] * 5
    take = NextQuietFirst()
    drive(CameraMonitor(BOOK), plan, take)
    assert take.short == 4  # all but the first (it makes the cursor and the agent checks)

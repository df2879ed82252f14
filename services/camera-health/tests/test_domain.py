"""The per-camera computation: tolerances at their edges, recovery, flapping, silence, incidents,
availability, and that duplicates, reordering and a save/load of the state change nothing."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera_health.config import ThresholdBook, Thresholds
from camera_health.core.domain import CameraMonitor, CameraState, replay
from camera_health.core.model import (
    OPENED,
    PROBE,
    RESOLVED,
    Availability3,
    IncidentEvent,
    Sample,
    StatusView,
    incident_id_for,
)
from smartcity.health import HOUR, Health

CAM = "cam-alun-alun-1"


def beat(seq: int, at: float, **fields: object) -> Sample:
    values: dict[str, object] = {"camera_id": CAM, "seq": seq, "at": at, "site_id": "alun-alun",
                                 "fps": 25.0, "configured_fps": 25.0, "storage_free_percent": 60.0,
                                 "recording": True}
    values.update(fields)
    return Sample(**values)  # type: ignore[arg-type]


def health_of(state: CameraState) -> Health:
    return state.health.health  # a call, so mypy does not narrow across mutations


def monitor(**overrides: float) -> CameraMonitor:
    return CameraMonitor(ThresholdBook(Thresholds().with_overrides(overrides, "test")))


def run(m: CameraMonitor, samples: list[Sample]) -> tuple[CameraState, list[IncidentEvent]]:
    result = replay(m, samples)
    return result.states[CAM], result.incidents


def timeline(start: float, stop: float, step: float, seq0: int = 1, **fields: object) -> list[Sample]:
    out, at, seq = [], start, seq0
    while at <= stop:
        out.append(beat(seq, at, **fields))
        at, seq = at + step, seq + 1
    return out


# --- tolerances at the edge -------------------------------------------------------------------

def test_low_fps_fires_exactly_when_it_held_for_its_tolerance() -> None:
    m = monitor(fps_tolerance_s=120)
    state, _ = run(m, [beat(1, 0), beat(2, 10, fps=10), beat(3, 129.9, fps=10)])
    assert health_of(state) == Health.OK  # held 119.9 s
    m.on_heartbeat(state, beat(4, 130, fps=10))  # held exactly 120 s
    assert health_of(state) == Health.PROBLEM
    assert [r.check for r in state.health.reasons()] == ["fps"]


def test_packet_loss_needs_its_tolerance_and_resets_when_it_clears_in_between() -> None:
    m = monitor(packet_loss_tolerance_s=120)
    samples = [beat(1, 0, packet_loss_percent=9), beat(2, 100, packet_loss_percent=1),
               beat(3, 110, packet_loss_percent=9), beat(4, 229, packet_loss_percent=9)]
    state, _ = run(m, samples)
    assert health_of(state) == Health.OK  # the clear sample at 100 restarted the clock
    m.on_heartbeat(state, beat(5, 230, packet_loss_percent=9))
    assert health_of(state) == Health.PROBLEM


@pytest.mark.parametrize(("fields", "health", "check"), [
    ({"recording": False}, Health.CRITICAL, "recording"),
    ({"storage_free_percent": 9.5}, Health.PROBLEM, "storage"),
    ({"tamper_flags": ("covered",)}, Health.PROBLEM, "tamper"),
])
def test_zero_tolerance_checks_fire_on_the_first_sample(fields: dict[str, object], health: Health,
                                                        check: str) -> None:
    state, incidents = run(monitor(), [beat(1, 0), beat(2, 10, **fields)])
    assert health_of(state) == health
    assert state.health.reasons()[0].check == check
    assert [(i.phase, i.cause, i.severity, i.opened_at) for i in incidents] == [(OPENED, check, health, 10)]


def test_worst_check_wins_and_is_the_incident_cause() -> None:
    state, incidents = run(monitor(), [beat(1, 0, tamper_flags=("too_dark",), recording=False)])
    assert health_of(state) == Health.CRITICAL
    assert [r.check for r in state.health.reasons()] == ["recording", "tamper"]
    assert incidents[0].cause == "recording"


def test_unreachable_probe_makes_the_camera_critical_stream_unreachable() -> None:
    m = monitor(incident_resolve_hold_s=0, stream_tolerance_s=60)
    probe = [Sample(CAM, 1, 0, source=PROBE, reachable=True),
             Sample(CAM, 2, 10, source=PROBE, reachable=False),
             Sample(CAM, 3, 40, source=PROBE, reachable=False),
             Sample(CAM, 4, 70, source=PROBE, reachable=False),
             Sample(CAM, 5, 100, source=PROBE, reachable=True)]
    result = replay(m, [beat(1, 0), *probe[:3]])
    state = result.states[CAM]
    assert health_of(state) == Health.OK  # unreachable for 30 s: within the tolerance
    m.on_heartbeat(state, probe[3])  # unreachable for 60 s
    assert health_of(state) == Health.CRITICAL
    assert state.health.reasons()[0].check == "stream"
    assert "unreachable" in state.health.reasons()[0].detail
    m.on_heartbeat(state, probe[4])
    assert health_of(state) == Health.OK


# --- recovery, flapping, incidents ------------------------------------------------------------

def test_recovery_time_keeps_a_check_firing_until_clear_long_enough() -> None:
    m = monitor(tamper_recovery_s=30)
    state, _ = run(m, [beat(1, 0, tamper_flags=("covered",)), beat(2, 10), beat(3, 39.9)])
    assert health_of(state) == Health.PROBLEM
    m.on_heartbeat(state, beat(4, 40))
    assert health_of(state) == Health.OK


def test_flapping_camera_makes_one_incident_not_a_storm() -> None:
    # Recording toggles every 10 s for 10 minutes, then the camera is fine for 5 minutes.
    m = monitor(recording_recovery_s=0, incident_resolve_hold_s=60)
    flapping = [beat(i + 1, i * 10.0, recording=i % 2 == 1) for i in range(60)]
    calm = timeline(600, 900, 10, seq0=61)
    _, incidents = run(m, flapping + calm)
    assert [i.phase for i in incidents] == [OPENED, RESOLVED]
    opened, resolved = incidents
    assert opened.opened_at == 0 and resolved.resolved_at == 590  # last toggle back to recording
    assert resolved.duration_s == 590


def test_recovery_time_alone_also_suppresses_the_flapping() -> None:
    m = monitor(recording_recovery_s=30, incident_resolve_hold_s=0)
    flapping = [beat(i + 1, i * 10.0, recording=i % 2 == 1) for i in range(60)]
    _, incidents = run(m, [*flapping, *timeline(600, 700, 10, seq0=61)])
    assert [i.phase for i in incidents] == [OPENED, RESOLVED]
    assert incidents[1].resolved_at == 620  # clear since 590, recovery 30 s


def test_incident_resolves_only_after_the_hold_at_the_moment_it_recovered() -> None:
    m = monitor(incident_resolve_hold_s=60, recording_recovery_s=0)
    samples = [beat(1, 0, recording=False), beat(2, 10), beat(3, 69.9)]
    state, incidents = run(m, samples)
    assert [i.phase for i in incidents] == [OPENED]
    assert state.incidents.open_id == incident_id_for(CAM, 0)
    out = m.on_heartbeat(state, beat(4, 70))  # OK for exactly the hold
    assert [(i.phase, i.resolved_at, i.duration_s) for i in out.incidents] == [(RESOLVED, 10, 10)]
    assert [st.open_incident_id for st in out.statuses] == [""]


def test_escalation_stays_in_one_incident_and_resolved_reports_the_worst() -> None:
    m = monitor(incident_resolve_hold_s=0, recording_recovery_s=0, tamper_recovery_s=0)
    samples = [beat(1, 0, tamper_flags=("covered",)), beat(2, 10, tamper_flags=("covered",), recording=False),
               beat(3, 20)]
    _, incidents = run(m, samples)
    assert [(i.phase, i.severity, i.cause) for i in incidents] == [
        (OPENED, Health.PROBLEM, "tamper"), (RESOLVED, Health.CRITICAL, "tamper")]


# --- silence ----------------------------------------------------------------------------------

def test_silence_seen_in_the_stream_itself_opens_and_resolves_at_event_times() -> None:
    m = monitor(heartbeat_tolerance_s=60, incident_resolve_hold_s=0)
    _, incidents = run(m, [beat(1, 0), beat(2, 10), beat(3, 70), beat(4, 200)])
    assert [(i.phase, i.cause, i.severity) for i in incidents] == [
        (OPENED, "heartbeat", Health.CRITICAL), (RESOLVED, "heartbeat", Health.CRITICAL)]
    assert incidents[0].opened_at == 130  # 70 + 60
    assert incidents[1].resolved_at == 200
    assert incidents[0].incident_id == incidents[1].incident_id == incident_id_for(CAM, 130)


def test_a_gap_exactly_at_the_tolerance_is_not_silence() -> None:
    _, incidents = run(monitor(heartbeat_tolerance_s=60), [beat(1, 0), beat(2, 60)])
    assert incidents == []


def test_the_timer_declares_silence_once_and_the_stream_agrees_with_it() -> None:
    m = monitor(heartbeat_tolerance_s=60, incident_resolve_hold_s=0)
    state, _ = run(m, [beat(1, 0)])
    assert not m.needs_tick(state, 60)
    assert m.needs_tick(state, 60.5)
    first = m.on_tick(state, 61, refresh=False)
    assert [i.phase for i in first.incidents] == [OPENED]
    assert [st.health for st in first.statuses] == [Health.CRITICAL]
    assert not m.needs_tick(state, 120)
    assert m.on_tick(state, 120, refresh=False).incidents == []  # no second incident
    back = m.on_heartbeat(state, beat(2, 150))
    assert [i.phase for i in back.incidents] == [RESOLVED]
    # Without the timer the same input gives the same incident (only the detail text, which says
    # how long the camera had been silent when that was noticed, differs).
    fresh = monitor(heartbeat_tolerance_s=60, incident_resolve_hold_s=0)
    _, incidents = run(fresh, [beat(1, 0), beat(2, 150)])
    assert [without_detail(i) for i in [*first.incidents, *back.incidents]] == [
        without_detail(i) for i in incidents]


def without_detail(event: IncidentEvent) -> IncidentEvent:
    return replace(event, reasons=tuple(replace(r, detail="") for r in event.reasons))


def test_tick_refresh_reports_availability_as_time_passes() -> None:
    m = monitor(heartbeat_tolerance_s=60)
    state, _ = run(m, [beat(1, 0), beat(2, 10)])
    out = m.on_tick(state, 40, refresh=True)
    assert [st.updated_at for st in out.statuses] == [40]
    assert out.incidents == [] and not out.changed


# --- availability -----------------------------------------------------------------------------

def shown(status: StatusView) -> Availability3:
    """The availability a status shows (this monitor computes it at once: never None)."""
    assert status.availability is not None
    return status.availability


def test_availability_is_the_share_of_time_not_critical_in_event_time() -> None:
    m = monitor(recording_recovery_s=0, incident_resolve_hold_s=0)
    # OK 0..600, not recording 600..1500 (15 min down), OK 1500..3600.
    samples = [*timeline(0, 590, 10), *timeline(600, 1490, 10, seq0=60, recording=False),
               *timeline(1500, 3600, 10, seq0=150)]
    result = replay(m, samples)
    state = result.states[CAM]
    status = m.status(state, 3600)
    assert shown(status).hour == pytest.approx(1 - 900 / 3600)
    assert shown(status).day == pytest.approx(1 - 900 / 3600)  # only an hour observed
    # Measured up to the last heartbeat: publishing later (wall clock) changes nothing.
    later = m.status(state, 3600 + HOUR)
    assert later.availability == status.availability and later.updated_at == 3600 + HOUR


def test_the_availability_of_a_silent_camera_is_the_same_whenever_the_timer_publishes_it() -> None:
    m = monitor(heartbeat_tolerance_s=60, incident_resolve_hold_s=0)
    state, _ = run(m, [beat(1, 0), beat(2, 10), beat(3, 200)])  # down 70..200 (seen in the data)
    soon, late = m.on_tick(state, 300, refresh=True), m.on_tick(state, 5000, refresh=True)
    assert soon.statuses[-1].health == late.statuses[-1].health == Health.CRITICAL
    assert soon.statuses[-1].availability == late.statuses[-1].availability
    assert shown(soon.statuses[-1]).hour == pytest.approx(1 - 130 / 200)


def test_silence_counts_as_down_from_the_tolerance_on() -> None:
    m = monitor(heartbeat_tolerance_s=60, incident_resolve_hold_s=0)
    state, _ = run(m, [beat(1, 0), beat(2, 1000)])  # down 60..1000
    assert shown(m.status(state, 1000)).hour == pytest.approx(1 - 940 / 1000)


# --- ordering and persistence -----------------------------------------------------------------

def scenario(seed: int) -> list[Sample]:
    rng = random.Random(seed)
    samples, at, seq = [], 0.0, 1
    for _ in range(150):
        at += rng.choice([5.0, 10.0, 10.0, 10.0, 90.0])
        samples.append(beat(seq, at, fps=rng.choice([25.0, 25.0, 10.0]),
                            recording=rng.random() > 0.1,
                            packet_loss_percent=rng.choice([0.0, 0.0, 8.0]),
                            tamper_flags=("covered",) if rng.random() < 0.05 else ()))
        seq += 1
    return samples


def disorder(samples: list[Sample], rng: random.Random) -> list[Sample]:
    """Duplicates some heartbeats and swaps neighbours (all within the reorder window)."""
    out, i = list(samples), 1  # the very first heartbeat sets where the seq starts
    while i < len(out) - 1:
        if rng.random() < 0.2 and out[i + 1].at - out[i].at < 15:
            out[i], out[i + 1] = out[i + 1], out[i]
            i += 1  # disjoint pairs: nothing travels further than one place
        i += 1
    for i in sorted(rng.sample(range(len(out)), 20), reverse=True):
        out.insert(i + rng.randint(0, 3), out[i])
    return out


def relaxed() -> CameraMonitor:
    return monitor(fps_tolerance_s=20, packet_loss_tolerance_s=20, incident_resolve_hold_s=30)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), shuffle_seed=st.integers(0, 10_000))
def test_duplicates_and_reordering_never_change_the_results(seed: int, shuffle_seed: int) -> None:
    samples = scenario(seed)
    clean = replay(relaxed(), samples)
    messy = replay(relaxed(), disorder(samples, random.Random(shuffle_seed)))
    assert messy.incidents == clean.incidents
    assert messy.statuses == clean.statuses
    assert CameraMonitor.dump(messy.states[CAM]) == CameraMonitor.dump(clean.states[CAM])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 149))
def test_saving_and_loading_the_state_midway_changes_nothing(seed: int, cut: int) -> None:
    samples = scenario(seed)
    m = relaxed()
    whole = replay(m, samples)
    first = replay(m, samples[:cut])
    saved = json.loads(json.dumps(CameraMonitor.dump(first.states[CAM])))
    state = m.load(CAM, saved)
    incidents = list(first.incidents)
    for sample in samples[cut:]:
        incidents.extend(m.on_heartbeat(state, sample).incidents)
    assert incidents == whole.incidents
    assert CameraMonitor.dump(state) == CameraMonitor.dump(whole.states[CAM])


def test_incident_ids_do_not_depend_on_processing_and_differ_per_opening() -> None:
    samples = scenario(7)
    a, b = replay(relaxed(), samples), replay(relaxed(), samples)
    assert [i.incident_id for i in a.incidents] == [i.incident_id for i in b.incidents]
    opened = [i.incident_id for i in a.incidents if i.phase == OPENED]
    assert len(opened) == len(set(opened)) > 0


def test_per_camera_overrides_apply_to_that_camera_only() -> None:
    book = ThresholdBook(Thresholds(), {"cam-b": Thresholds().with_overrides({"fps_tolerance_s": 0}, "t")})
    m = CameraMonitor(book)
    result = replay(m, [beat(1, 0, fps=5), beat(1, 0, fps=5)._replace(camera_id="cam-b")])
    assert health_of(result.states[CAM]) == Health.OK
    assert health_of(result.states["cam-b"]) == Health.PROBLEM

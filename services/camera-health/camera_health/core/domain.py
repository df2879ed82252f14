"""Camera health: the whole per-camera computation, in plain Python.

`CameraMonitor` applies heartbeat samples (and timer ticks) to a `CameraState`: it orders them
(`ordering`), evaluates the checks (`checks`), runs the shared health model
(`smartcity.health.DeviceHealth`), keeps availability from the health changes in event time
(`smartcity.health.Availability`) and opens/resolves incidents (`incidents`). It returns what to
publish; the Faust agent only moves bytes.

Silence is judged two ways, both stamped in event time at `last_seen + tolerance`:

- in the camera's own stream: a heartbeat arriving more than the tolerance after the previous
  one means the camera was silent in between (deterministic: replays give the same result);
- by the silence timer (`on_tick`) for a camera that is silent *now*, with "now" given by the
  caller (the service maps its wall clock onto the camera's event time, see `core/clock.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any

from camera_health.config import ThresholdBook, Thresholds
from camera_health.core.checks import AGENT_CHECKS, check_specs, evaluate
from camera_health.core.incidents import IncidentTracker
from camera_health.core.model import AGENT, Availability3, IncidentEvent, Sample, StatusView
from smartcity.health import (
    DAY,
    HEARTBEAT_CHECK,
    HOUR,
    WEEK,
    Availability,
    CheckSpec,
    DeviceHealth,
    Health,
    HealthChange,
)
from smartcity.ordering import Arrival, SeqCursor

TICK = "tick"
# The agent's checks of a camera's check states, in one call (KeyError before its first one).
_agent_checks_of = itemgetter(*AGENT_CHECKS)


def _quiet_agent_checks(checks: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The agent's checks of a camera with no check firing, or None when one fires or the agent
    has not been heard yet (its checks do not exist): the short way's shared precondition."""
    for check in checks.values():
        if check.firing:
            return None
    try:
        return _agent_checks_of(checks)  # type: ignore[no-any-return]
    except KeyError:
        return None


@dataclass
class CameraMeta:
    """Descriptive fields of the camera, from its latest heartbeats."""

    site_id: str = ""
    name: str = ""
    latitude: float | None = None
    longitude: float | None = None
    fps: float = 0.0
    configured_fps: float = 0.0
    recording: bool = False
    # Seq of the last applied heartbeat of the agent, and of the prober.
    agent_seq: int = 0
    probe_seq: int = 0
    # Kafka partition of the camera's heartbeats (the service uses it to route timer ticks).
    partition: int = -1


@dataclass
class CameraState:
    camera_id: str
    health: DeviceHealth
    availability: Availability
    incidents: IncidentTracker
    cursors: dict[str, SeqCursor[Sample]] = field(default_factory=dict)
    meta: CameraMeta = field(default_factory=CameraMeta)


@dataclass
class MonitorEffects:
    """What one heartbeat or tick did: how it arrived (an `Arrival`, or "tick") and what to
    publish."""

    arrival: str
    statuses: list[StatusView] = field(default_factory=list)
    incidents: list[IncidentEvent] = field(default_factory=list)
    changed: bool = False  # the state must be saved


Signature = tuple[Health, tuple[str, ...], str]


class QuietLane:
    """What `CameraMonitor.on_next_quiet_heartbeat` needs of one camera to take its next agent
    heartbeats, found once (`CameraMonitor.quiet_lane`) instead of per heartbeat: the camera's
    own conditions for the short way (health OK, nothing firing, no incident, the agent's
    cursor with nothing waiting), which quiet heartbeats never change, and its thresholds.

    A heartbeat then takes the short way when it is the agent's next seq, heard within the
    tolerance and passes the checks' conditions; taking it changes the state as
    `on_next_quiet_heartbeat` does. The edge-batch loop (adapters/streams.py) writes that out
    per heartbeat; a lane is dropped as soon as any other path touches its camera."""

    __slots__ = (
        "agent_checks",
        "armed",
        "cursor",
        "expected_fps",
        "fps_min_ratio",
        "health",
        "meta",
        "packet_loss_max",
        "partition",
        "state",
        "storage_min_free",
        "tolerance_s",
    )

    def __init__(self, state: CameraState, cursor: SeqCursor[Sample], agent_checks: tuple[Any, ...],
                 thresholds: Thresholds, partition: int) -> None:
        self.state = state
        self.health = state.health
        self.meta = state.meta
        self.cursor = cursor
        self.agent_checks = agent_checks
        self.tolerance_s = state.health.heartbeat_tolerance_s
        self.packet_loss_max = thresholds.packet_loss_max_percent
        self.storage_min_free = thresholds.storage_min_free_percent
        self.fps_min_ratio = thresholds.fps_min_ratio
        self.expected_fps = thresholds.expected_fps  # 0: the heartbeat's configured fps
        self.partition = partition
        # Whether a heartbeat was taken through this lane yet (the first resets the agent
        # checks' failing streaks: a quiet heartbeat passes them all).
        self.armed = False

    def arm(self) -> None:
        """Before the first heartbeat taken: what every quiet heartbeat does once and for all."""
        self.armed = True
        for check in self.agent_checks:
            check.failing_since = None


class CameraMonitor:
    def __init__(self, book: ThresholdBook | None = None, reorder_window_s: float = 15.0,
                 reorder_max_pending: int = 32, defer_availability: bool = False) -> None:
        self.book = book or ThresholdBook()
        # Statuses without their availability until `completed`: a batch publishes only each
        # camera's newest status, and the three windows cost more than the rest of a status.
        self.defer_availability = defer_availability
        self.reorder_window_s = reorder_window_s
        self.reorder_max_pending = reorder_max_pending
        self._specs: dict[str, dict[str, CheckSpec]] = {}

    # --- state ---------------------------------------------------------------------------

    def new_state(self, camera_id: str) -> CameraState:
        tolerance = self.book.for_camera(camera_id).heartbeat_tolerance_s
        return CameraState(camera_id, DeviceHealth(camera_id, self._specs_of(camera_id), tolerance),
                           Availability(), IncidentTracker(camera_id))

    def load(self, camera_id: str, data: Mapping[str, Any] | None) -> CameraState:
        if data is None:
            return self.new_state(camera_id)
        tolerance = self.book.for_camera(camera_id).heartbeat_tolerance_s
        return CameraState(
            camera_id,
            DeviceHealth.from_dict(data["h"], self._specs_of(camera_id), tolerance),
            Availability.from_dict(data["a"]),
            IncidentTracker.from_dict(camera_id, data.get("i")),
            {src: SeqCursor.from_dict(c, Sample.from_dict) for src, c in dict(data.get("c", {})).items()},
            CameraMeta(**data.get("m", {})),
        )

    @classmethod
    def dump(cls, state: CameraState) -> dict[str, Any]:
        return {**cls.dump_changing(state), "a": state.availability.to_dict()}

    @staticmethod
    def dump_changing(state: CameraState) -> dict[str, Any]:
        """`dump` but for the availability, which only changes with the health (a week of a
        flapping camera's changes is most of its record: a writer may keep it encoded)."""
        return {"h": state.health.to_dict(), "i": state.incidents.to_dict(),
                "m": dict(vars(state.meta)),  # flat: no asdict walk
                "c": {src: cursor.to_dict(Sample.to_dict) for src, cursor in state.cursors.items()}}

    # --- inputs --------------------------------------------------------------------------

    def on_heartbeat(self, state: CameraState, sample: Sample) -> MonitorEffects:
        cursor = state.cursors.get(sample.source)
        if cursor is None:
            cursor = state.cursors[sample.source] = SeqCursor()
        arrival, ready = cursor.accept(sample, self.reorder_window_s, self.reorder_max_pending)
        outcome = MonitorEffects(arrival, changed=arrival != Arrival.DUPLICATE)
        for item in ready:  # one status per applied sample that changed something, as in order
            if self._apply_quiet(state, item):
                continue  # changed nothing a status shows
            before, first = self._signature(state), state.health.last_seen is None
            self._apply(state, item, outcome.incidents)
            if first or self._signature(state) != before:
                outcome.statuses.append(self.status(state, state.health.last_seen or item.at))
        return outcome

    def on_next_quiet_heartbeat(self, state: CameraState, sample: Sample) -> bool:
        """`on_heartbeat` the short way for most heartbeats of an edge batch: one next in line
        (its source's seq + 1, nothing waiting) that `_apply_quiet` takes. True when so: then
        the state changed as `on_heartbeat` changes it, the arrival was APPLIED and there is
        nothing to publish. False, having changed nothing, for any other heartbeat (then
        `on_heartbeat` must take it). A property test holds the two equal."""
        cursor = state.cursors.get(sample.source)
        if (cursor is None or cursor.pending or cursor.last_seq is None or sample.seq != cursor.last_seq + 1
                or not self._apply_quiet(state, sample)):
            return False
        cursor.last_seq = sample.seq  # as SeqCursor.accept takes a next-in-line event
        newest = cursor.newest_at
        cursor.newest_at = sample.at if newest is None or sample.at > newest else newest
        return True

    def quiet_lane(self, state: CameraState, partition: int) -> QuietLane | None:
        """The camera's lane for the short way (`QuietLane`), or None when its own state rules
        the short way out (`_apply_quiet`'s and `on_next_quiet_heartbeat`'s conditions that do
        not depend on the heartbeat). A property test holds heartbeats taken through it equal
        to `on_heartbeat`."""
        cursor = state.cursors.get(AGENT)
        h = state.health
        if (cursor is None or cursor.pending or cursor.last_seq is None or h.last_seen is None
                or h.health is not Health.OK or state.incidents.current is not None):
            return None
        agent_checks = _quiet_agent_checks(h.checks)
        if agent_checks is None:
            return None
        return QuietLane(state, cursor, agent_checks, self.book.for_camera(state.camera_id), partition)

    def on_tick(self, state: CameraState, now: float, refresh: bool) -> MonitorEffects:
        """The silence timer: gives up overdue seq gaps, detects silence, refreshes the status."""
        before = self._signature(state)
        ready = [s for c in state.cursors.values() for s in c.release_until(now, self.reorder_window_s)]
        incidents: list[IncidentEvent] = []
        for item in sorted(ready, key=lambda s: (s.at, s.source, s.seq)):
            self._apply(state, item, incidents)
        self._check_silence(state, now, incidents)
        changed = bool(ready) or self._signature(state) != before
        outcome = MonitorEffects(TICK, incidents=incidents, changed=changed)
        if state.health.last_seen is not None and (refresh or changed):
            outcome.statuses.append(self.status(state, max(now, state.health.last_seen)))
        return outcome

    # --- views ---------------------------------------------------------------------------

    def status(self, state: CameraState, now: float) -> StatusView:
        """The status published at `now`: only `updated_at` and, once the timer declared a
        silence, health, reasons and health_since follow the clock. Availability is measured up
        to the last heartbeat (event time), so it is a function of the heartbeats alone."""
        h, m = state.health, state.meta
        return StatusView(
            camera_id=state.camera_id, site_id=m.site_id, name=m.name, latitude=m.latitude,
            longitude=m.longitude, health=h.health, reasons=h.reasons(), health_since=h.health_since,
            last_seen=h.last_seen or now, last_seq=m.agent_seq or m.probe_seq,
            # Deferred only where `last_seen` says what it is measured up to (not for 0.0).
            availability=(None if self.defer_availability and h.last_seen else availability_at(
                state.availability, h.last_seen if h.last_seen is not None else now)),
            fps=m.fps, configured_fps=m.configured_fps, recording=m.recording, updated_at=now,
            open_incident_id=state.incidents.open_id,
        )

    @staticmethod
    def completed(state: CameraState, status: StatusView) -> StatusView:
        """A deferred status with its availability: only for the camera's *newest* status.

        Exact: the change points change only with the health (or at a first heartbeat), and
        each such change makes a new status at once, so none changed since the newest status
        was made; and it is measured up to that status's own `last_seen`."""
        if status.availability is not None:
            return status
        return replace(status, availability=availability_at(state.availability, status.last_seen))

    def needs_tick(self, state: CameraState, now: float) -> bool:
        """Whether the timer should send a tick now: silence to declare or a gap to give up."""
        h = state.health
        firing = h.checks.get(HEARTBEAT_CHECK)
        silent = (h.last_seen is not None and now - h.last_seen > h.heartbeat_tolerance_s
                  and not (firing and firing.firing))
        overdue = any(s.at <= now - self.reorder_window_s
                      for c in state.cursors.values() for s in c.pending.values())
        return silent or overdue

    # --- internals -----------------------------------------------------------------------

    def _apply_quiet(self, state: CameraState, s: Sample) -> bool:
        """Applies, the short way, an agent heartbeat that passes every check of a camera that
        is OK, heard from within its tolerance, with nothing firing and no incident open: most
        heartbeats. `_apply` would only move `last_seen`, reset each check's failing streak and
        update the descriptive fields, so that is all this does (a property test holds the two
        equal). False, having changed nothing, for any other heartbeat."""
        h = state.health
        last = h.last_seen
        if (s.source != AGENT or last is None or h.health is not Health.OK
                or state.incidents.current is not None or s.at - last > h.heartbeat_tolerance_s):
            return False
        t = self.book.for_camera(state.camera_id)
        expected = t.expected_fps or s.configured_fps
        # Written as the checks' passing conditions (a NaN fails them all: the full path then).
        if not (s.recording and not s.tamper_flags and s.packet_loss_percent <= t.packet_loss_max_percent
                and s.storage_free_percent >= t.storage_min_free_percent
                and (expected <= 0 or s.fps >= t.fps_min_ratio * expected)):
            return False
        agent_checks = _quiet_agent_checks(h.checks)
        if agent_checks is None:
            return False
        for check in agent_checks:
            check.failing_since = None
        h.last_seen = max(last, s.at)
        self._update_meta(state, s)
        return True

    def _apply(self, state: CameraState, sample: Sample, out: list[IncidentEvent]) -> None:
        if state.health.last_seen is None:
            state.availability.record(sample.at, Health.OK)
        else:
            self._check_silence(state, sample.at, out)
        self._settle(state, sample.at, out)
        self._update_meta(state, sample)
        results = evaluate(sample, self.book.for_camera(state.camera_id))
        change = state.health.observe(sample.at, results)
        if change is not None:
            self._on_change(state, change, out)

    def _check_silence(self, state: CameraState, now: float, out: list[IncidentEvent]) -> None:
        change = state.health.check_silence(now)
        if change is not None:
            self._on_change(state, change, out)

    def _on_change(self, state: CameraState, change: HealthChange, out: list[IncidentEvent]) -> None:
        self._settle(state, change.at, out)  # an OK stretch ends here: long enough to resolve?
        state.availability.record(change.at, change.after)
        out.extend(state.incidents.on_change(change, state.meta.site_id))
        self._settle(state, change.at, out)  # resolves at once when the hold is 0

    def _settle(self, state: CameraState, at: float, out: list[IncidentEvent]) -> None:
        hold = self.book.for_camera(state.camera_id).incident_resolve_hold_s
        out.extend(state.incidents.settle(at, hold, state.meta.site_id))

    @staticmethod
    def _update_meta(state: CameraState, s: Sample) -> None:
        m = state.meta
        m.site_id, m.name = s.site_id or m.site_id, s.name or m.name
        if s.latitude is not None and s.longitude is not None:
            m.latitude, m.longitude = s.latitude, s.longitude
        if s.source == AGENT:
            m.fps, m.configured_fps, m.recording, m.agent_seq = s.fps, s.configured_fps, s.recording, s.seq
        else:
            m.probe_seq = s.seq

    @staticmethod
    def _signature(state: CameraState) -> Signature:
        checks = tuple(r.check for r in state.health.reasons())
        return state.health.health, checks, state.incidents.open_id

    def _specs_of(self, camera_id: str) -> dict[str, CheckSpec]:
        if camera_id not in self._specs:
            self._specs[camera_id] = check_specs(self.book.for_camera(camera_id))
        return self._specs[camera_id]


def availability_at(availability: Availability, as_of: float) -> Availability3:
    """The hour, day and week availability measured up to `as_of` (event time)."""
    return Availability3(availability.ratio(as_of, HOUR), availability.ratio(as_of, DAY),
                         availability.ratio(as_of, WEEK))


@dataclass
class ReplayResult:
    """Everything published for an input: statuses in order per camera, incidents in order."""

    statuses: dict[str, list[StatusView]] = field(default_factory=dict)
    incidents: list[IncidentEvent] = field(default_factory=list)
    states: dict[str, CameraState] = field(default_factory=dict)

    def last_status(self, camera_id: str) -> StatusView:
        return self.statuses[camera_id][-1]


def replay(monitor: CameraMonitor, samples: Iterable[Sample]) -> ReplayResult:
    """Runs heartbeats through the domain directly, in the given order (no timer ticks).

    What the service publishes for the same input when its silence timer does not fire: used
    to check the stream processor, and to audit a heartbeat log offline.
    """
    result = ReplayResult()
    for sample in samples:
        state = result.states.get(sample.camera_id) or monitor.new_state(sample.camera_id)
        result.states[sample.camera_id] = state
        outcome = monitor.on_heartbeat(state, sample)
        result.incidents.extend(outcome.incidents)
        result.statuses.setdefault(sample.camera_id, []).extend(outcome.statuses)
    return result

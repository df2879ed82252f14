"""Configuration of the camera-health service, from the environment.

Thresholds (every one overridable):

- defaults come from `CAMERA_<FIELD>` env vars, e.g. `CAMERA_HEARTBEAT_TOLERANCE_S=60`,
  `CAMERA_FPS_MIN_RATIO=0.8`, `CAMERA_PACKET_LOSS_TOLERANCE_S=120` (fields of `Thresholds`);
- per-camera overrides come from a JSON object `{"<camera_id>": {"<field>": value, ...}}` in the
  file named by `CAMERA_THRESHOLDS_FILE` and/or inline in `CAMERA_THRESHOLDS_JSON` (inline wins).

Thresholds are read at start: a change takes effect when the worker restarts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from smartcity.event_loop import DEFAULT_EVENT_LOOP, event_loop_from_env
from smartcity.settings import SettingsError, env_fields, env_float, env_str

ENV_PREFIX = "CAMERA_"


@dataclass(frozen=True)
class Thresholds:
    """The checks of one camera. Seconds are event time; percentages are 0..100."""

    # Heartbeat missing for longer than this -> CRITICAL (offline).
    heartbeat_tolerance_s: float = 60.0
    # Agent reports recording=false -> CRITICAL.
    recording_tolerance_s: float = 0.0
    recording_recovery_s: float = 0.0
    # RTSP prober could not get a DESCRIBE answer -> CRITICAL "stream unreachable". Not at the
    # first failed probe: a network blip must not open an incident (probes run every ~30 s).
    stream_tolerance_s: float = 60.0
    stream_recovery_s: float = 0.0
    # fps below this share of the configured fps -> PROBLEM.
    fps_min_ratio: float = 0.8
    fps_tolerance_s: float = 120.0
    fps_recovery_s: float = 60.0
    # Expected fps when set (> 0); otherwise the configured_fps each heartbeat carries.
    expected_fps: float = 0.0
    # Packet loss above this -> PROBLEM.
    packet_loss_max_percent: float = 5.0
    packet_loss_tolerance_s: float = 120.0
    packet_loss_recovery_s: float = 60.0
    # Free storage below this -> PROBLEM.
    storage_min_free_percent: float = 10.0
    storage_tolerance_s: float = 0.0
    storage_recovery_s: float = 60.0
    # Any tamper flag -> PROBLEM.
    tamper_tolerance_s: float = 0.0
    tamper_recovery_s: float = 30.0
    # An incident is resolved only once the camera stayed OK this long (stops incident storms
    # from a camera whose heartbeats come and go around the tolerance).
    incident_resolve_hold_s: float = 60.0

    @classmethod
    def from_env(cls) -> Thresholds:
        return cls(**env_fields(cls, ENV_PREFIX)).validated()

    def with_overrides(self, overrides: Mapping[str, Any], where: str) -> Thresholds:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise SettingsError(f"{where}: unknown threshold(s) {', '.join(unknown)}")
        try:
            values = {name: float(value) for name, value in overrides.items()}
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{where}: thresholds must be numbers ({exc})") from exc
        return replace(self, **values).validated()

    def validated(self) -> Thresholds:
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise SettingsError(f"threshold {f.name} must not be negative")
        if self.fps_min_ratio > 1:
            raise SettingsError("fps_min_ratio is a share of the configured fps (0..1)")
        return self


@dataclass(frozen=True)
class ThresholdBook:
    """Default thresholds plus per-camera overrides."""

    defaults: Thresholds = field(default_factory=Thresholds)
    per_camera: Mapping[str, Thresholds] = field(default_factory=dict)

    def for_camera(self, camera_id: str) -> Thresholds:
        return self.per_camera.get(camera_id, self.defaults)

    @classmethod
    def from_env(cls) -> ThresholdBook:
        defaults = Thresholds.from_env()
        overrides: dict[str, dict[str, Any]] = {}
        path = env_str("CAMERA_THRESHOLDS_FILE", "")
        if path:
            _merge(overrides, _parse_overrides(Path(path).read_text(), f"CAMERA_THRESHOLDS_FILE {path}"))
        inline = env_str("CAMERA_THRESHOLDS_JSON", "")
        if inline:
            _merge(overrides, _parse_overrides(inline, "CAMERA_THRESHOLDS_JSON"))
        return cls(defaults, {cam: defaults.with_overrides(values, f"thresholds of {cam}")
                              for cam, values in overrides.items()})


def _parse_overrides(text: str, where: str) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SettingsError(f'{where} must be an object {{"<camera_id>": {{"<threshold>": number}}}}')
    return data


def _merge(into: dict[str, dict[str, Any]], more: Mapping[str, Mapping[str, Any]]) -> None:
    for camera_id, values in more.items():
        into.setdefault(camera_id, {}).update(values)


@dataclass(frozen=True)
class ServiceConfig:
    """How the worker runs, beyond the thresholds.

    CAMERA_REORDER_WINDOW_S           how long (event time) a heartbeat that skipped a seq waits
                                      for the missing one before the gap is given up (default 15)
    CAMERA_REORDER_MAX_PENDING        at most this many heartbeats wait per camera (default 32)
    CAMERA_SILENCE_CHECK_INTERVAL_S   how often the silence timer runs (default 5)
    CAMERA_STATUS_INTERVAL_S          steady cadence of camera.status.v1 per camera (default 30)
    CAMERA_HEALTH_SESSION_TIMEOUT_S   Kafka group session timeout: how long a crashed worker
                                      holds its partitions (default 30)
    EVENT_LOOP                        uvloop or asyncio (default uvloop: see smartcity.event_loop)
    """

    thresholds: ThresholdBook = field(default_factory=ThresholdBook)
    reorder_window_s: float = 15.0
    reorder_max_pending: int = 32
    silence_check_interval_s: float = 5.0
    status_interval_s: float = 30.0
    session_timeout_s: float = 30.0
    event_loop: str = DEFAULT_EVENT_LOOP  # EVENT_LOOP, as every service names it

    @classmethod
    def from_env(cls) -> ServiceConfig:
        config = cls(thresholds=ThresholdBook.from_env(),
                     **env_fields(cls, ENV_PREFIX, skip={"session_timeout_s", "event_loop"}),
                     event_loop=event_loop_from_env(cls.event_loop),
                     # Named after the service like the other workers' group session timeouts.
                     session_timeout_s=env_float("CAMERA_HEALTH_SESSION_TIMEOUT_S", cls.session_timeout_s))
        if config.silence_check_interval_s <= 0 or config.status_interval_s <= 0:
            raise SettingsError("timer intervals must be positive")
        if config.reorder_window_s < 0 or config.reorder_max_pending < 1:
            raise SettingsError("CAMERA_REORDER_WINDOW_S >= 0 and CAMERA_REORDER_MAX_PENDING >= 1")
        if config.session_timeout_s < 6:
            raise SettingsError("CAMERA_HEALTH_SESSION_TIMEOUT_S below the broker minimum (6 s)")
        return config

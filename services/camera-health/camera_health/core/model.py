"""Value types of the camera domain: a heartbeat sample in, status views and incident events out.

Plain Python (no protobuf): `adapters/messages.py` converts to and from the wire types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from smartcity.health import Health, Reason

AGENT = "agent"
PROBE = "probe"
SOURCES = (AGENT, PROBE)


class Sample(NamedTuple):
    """One heartbeat of a camera, from its agent or from the RTSP prober. `at` is event time.

    A named tuple, not a dataclass: one is made per heartbeat, and a tuple costs a fraction of a
    frozen dataclass to build."""

    camera_id: str
    seq: int
    at: float
    source: str = AGENT
    site_id: str = ""
    name: str = ""
    latitude: float | None = None
    longitude: float | None = None
    fps: float = 0.0
    configured_fps: float = 0.0
    bitrate_kbps: int = 0
    configured_bitrate_kbps: int = 0
    dropped_frames: int = 0
    packet_loss_percent: float = 0.0
    storage_free_percent: float = 100.0
    recording: bool = True
    tamper_flags: tuple[str, ...] = ()
    reachable: bool = True
    probe_latency_ms: float = 0.0
    # Set by a prober that decodes the stream (edge/frames.py): its tamper flags are its own.
    frames_decoded: int = 0

    @property
    def event_time(self) -> float:
        return self.at

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        values = dict(data)
        values["tamper_flags"] = tuple(values.get("tamper_flags", ()))
        return cls(**values)


@dataclass(frozen=True)
class Availability3:
    """Share of time not CRITICAL over the last hour, day and week."""

    hour: float
    day: float
    week: float


@dataclass(frozen=True)
class StatusView:
    """What camera.status.v1 says about a camera at event time `updated_at`."""

    camera_id: str
    site_id: str
    name: str
    latitude: float | None
    longitude: float | None
    health: Health
    reasons: tuple[Reason, ...]
    health_since: float
    last_seen: float
    last_seq: int
    # None from a monitor that defers it (`CameraMonitor.completed` fills it in).
    availability: Availability3 | None
    fps: float
    configured_fps: float
    recording: bool
    updated_at: float
    open_incident_id: str


OPENED = "opened"
RESOLVED = "resolved"


@dataclass(frozen=True)
class IncidentEvent:
    """An incident opened or resolved. Resolved events carry the worst severity reached."""

    incident_id: str
    camera_id: str
    site_id: str
    phase: str
    severity: Health
    cause: str
    reasons: tuple[Reason, ...]
    opened_at: float
    resolved_at: float | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.resolved_at is None else self.resolved_at - self.opened_at


def incident_id_for(camera_id: str, opened_at: float) -> str:
    """Deterministic: a re-emission after a crash names the same incident."""
    return f"inc-{camera_id}-{round(opened_at * 1000)}"

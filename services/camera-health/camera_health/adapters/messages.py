"""Wire format: CameraHeartbeat in (validated), CameraStatus and CameraIncident out."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from google.protobuf.duration_pb2 import Duration

from camera_health.core.domain import CameraMeta, CameraMonitor, CameraState
from camera_health.core.model import AGENT, OPENED, SOURCES, IncidentEvent, Sample, StatusView
from smartcity.codec import ProtoCodec, from_timestamp, to_timestamp
from smartcity.health import Health, Reason
from smartcity.v1 import camera_pb2, common_pb2

TAMPER_NAMES = {
    camera_pb2.TAMPER_FLAG_SCENE_CHANGE: "scene_change",
    camera_pb2.TAMPER_FLAG_TOO_DARK: "too_dark",
    camera_pb2.TAMPER_FLAG_TOO_BLURRY: "too_blurry",
    camera_pb2.TAMPER_FLAG_COVERED: "covered",
    camera_pb2.TAMPER_FLAG_TOO_BRIGHT: "too_bright",
    camera_pb2.TAMPER_FLAG_FROZEN: "frozen",
}
TAMPER_FLAGS = {name: number for number, name in TAMPER_NAMES.items()}
_HEALTH = {Health.OK: common_pb2.HEALTH_STATE_OK, Health.PROBLEM: common_pb2.HEALTH_STATE_PROBLEM,
           Health.CRITICAL: common_pb2.HEALTH_STATE_CRITICAL}
_PHASES = {OPENED: camera_pb2.INCIDENT_PHASE_OPENED, "resolved": camera_pb2.INCIDENT_PHASE_RESOLVED}


def validate_heartbeat(hb: camera_pb2.CameraHeartbeat) -> None:
    """Raises ValueError for a heartbeat that parsed but cannot be used (goes to the DLQ)."""
    # Every heartbeat passes here: a good one in one expression (NaN and inf fail the
    # comparisons), the reason worked out below only for a bad one.
    if (hb.camera_id and hb.seq and hb.HasField("observed_time") and hb.source in SOURCES_OR_NONE
            and 0.0 <= hb.fps < math.inf and 0.0 <= hb.configured_fps < math.inf
            and 0.0 <= hb.packet_loss_percent <= 100.0 and 0.0 <= hb.storage_free_percent <= 100.0
            and 0.0 <= hb.probe_latency_ms < math.inf and all(f in TAMPER_NAMES for f in hb.tamper_flags)):
        return
    missing = [name for name, ok in (("camera_id", hb.camera_id), ("seq", hb.seq),
                                     ("observed_time", hb.HasField("observed_time"))) if not ok]
    if missing:
        raise ValueError("missing required field(s): " + ", ".join(missing))
    if hb.source not in ("", *SOURCES):
        raise ValueError(f"unknown source {hb.source!r} (expected agent or probe)")
    numbers = {"fps": hb.fps, "configured_fps": hb.configured_fps,
               "packet_loss_percent": hb.packet_loss_percent,
               "storage_free_percent": hb.storage_free_percent, "probe_latency_ms": hb.probe_latency_ms}
    for name, value in numbers.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}={value} is not a finite non-negative number")
    for name in ("packet_loss_percent", "storage_free_percent"):
        if getattr(hb, name) > 100:
            raise ValueError(f"{name}={getattr(hb, name)} is above 100")
    unknown = [f for f in hb.tamper_flags if f not in TAMPER_NAMES]
    if unknown:
        raise ValueError(f"unknown tamper flag(s) {unknown}")


SOURCES_OR_NONE = frozenset(("", *SOURCES))
HEARTBEATS = ProtoCodec(camera_pb2.CameraHeartbeat, validate_heartbeat)


def sample_from_heartbeat(hb: camera_pb2.CameraHeartbeat) -> Sample:
    located = hb.HasField("location")
    return Sample(
        camera_id=hb.camera_id, seq=hb.seq, at=from_timestamp(hb.observed_time),
        source=hb.source or AGENT, site_id=hb.site_id, name=hb.name,
        latitude=hb.location.latitude if located else None,
        longitude=hb.location.longitude if located else None,
        fps=hb.fps, configured_fps=hb.configured_fps, bitrate_kbps=hb.bitrate_kbps,
        configured_bitrate_kbps=hb.configured_bitrate_kbps, dropped_frames=hb.dropped_frames,
        packet_loss_percent=hb.packet_loss_percent, storage_free_percent=hb.storage_free_percent,
        recording=hb.recording,
        tamper_flags=tuple(TAMPER_NAMES[f] for f in hb.tamper_flags) if hb.tamper_flags else (),
        reachable=hb.reachable, probe_latency_ms=hb.probe_latency_ms, frames_decoded=hb.frames_decoded,
    )


def checked_sample(hb: camera_pb2.CameraHeartbeat) -> Sample | None:
    """`validate_heartbeat` then `sample_from_heartbeat` in one pass, each field read once (an
    edge batch's heartbeats all come here): the sample, or None when `validate_heartbeat` would
    raise (it then says why). A property test holds it equal to the two."""
    camera_id, seq, source = hb.camera_id, hb.seq, hb.source
    fps, configured_fps = hb.fps, hb.configured_fps
    packet_loss, storage_free, latency = hb.packet_loss_percent, hb.storage_free_percent, hb.probe_latency_ms
    flags = hb.tamper_flags
    if not (camera_id and seq and hb.HasField("observed_time") and source in SOURCES_OR_NONE
            and 0.0 <= fps < math.inf and 0.0 <= configured_fps < math.inf
            and 0.0 <= packet_loss <= 100.0 and 0.0 <= storage_free <= 100.0
            and 0.0 <= latency < math.inf and (not flags or all(f in TAMPER_NAMES for f in flags))):
        return None
    stamp = hb.observed_time
    latitude: float | None = None
    longitude: float | None = None
    if hb.HasField("location"):
        location = hb.location
        latitude, longitude = location.latitude, location.longitude
    # Positional, in Sample's field order (a keyword call costs more than the rest of this).
    return _SAMPLE((camera_id, seq, stamp.seconds + stamp.nanos / 1e9, source or AGENT, hb.site_id, hb.name,
                    latitude, longitude, fps, configured_fps, hb.bitrate_kbps, hb.configured_bitrate_kbps,
                    hb.dropped_frames, packet_loss, storage_free, hb.recording,
                    tuple(TAMPER_NAMES[f] for f in flags) if flags else (), hb.reachable, latency,
                    hb.frames_decoded))


_SAMPLE = Sample._make


def _reason(reason: Reason) -> common_pb2.HealthReason:
    return common_pb2.HealthReason(check=reason.check, severity=_HEALTH[reason.severity],
                                   detail=reason.detail, since=to_timestamp(reason.since))


def status_message(view: StatusView) -> camera_pb2.CameraStatus:
    if view.availability is None:
        raise ValueError(f"status of {view.camera_id} without its availability (CameraMonitor.completed)")
    message = camera_pb2.CameraStatus(
        camera_id=view.camera_id, site_id=view.site_id, name=view.name, health=_HEALTH[view.health],
        reasons=[_reason(r) for r in view.reasons], health_since=to_timestamp(view.health_since),
        last_seen=to_timestamp(view.last_seen), last_seq=view.last_seq,
        availability=common_pb2.Availability(last_hour_ratio=view.availability.hour,
                                             last_day_ratio=view.availability.day,
                                             last_week_ratio=view.availability.week),
        fps=view.fps, configured_fps=view.configured_fps, recording=view.recording,
        updated_time=to_timestamp(view.updated_at), open_incident_id=view.open_incident_id,
    )
    if view.latitude is not None and view.longitude is not None:
        message.location.CopyFrom(common_pb2.GeoPoint(latitude=view.latitude, longitude=view.longitude))
    return message


def incident_message(event: IncidentEvent) -> camera_pb2.CameraIncident:
    message = camera_pb2.CameraIncident(
        incident_id=event.incident_id, camera_id=event.camera_id, site_id=event.site_id,
        phase=_PHASES[event.phase], severity=_HEALTH[event.severity], cause=event.cause,
        reasons=[_reason(r) for r in event.reasons], opened_time=to_timestamp(event.opened_at),
    )
    if event.resolved_at is not None and event.duration_s is not None:
        message.resolved_time.CopyFrom(to_timestamp(event.resolved_at))
        duration = Duration()
        duration.FromNanoseconds(round(event.duration_s * 1e9))
        message.duration.CopyFrom(duration)
    return message


def encode_status(view: StatusView) -> bytes:
    return status_message(view).SerializeToString(deterministic=True)


def encode_incident(event: IncidentEvent) -> bytes:
    return incident_message(event).SerializeToString(deterministic=True)


class StateEncoder:
    """A camera's state as the table's bytes (JSON), its availability encoded again only when
    it changed: a state is written at every batch that touched the camera, its availability
    (up to a week of change points) only changes with the camera's health.

    A camera that only took quiet heartbeats since its last write (`encode(..., quiet=True)`)
    changed only in what a quiet heartbeat changes: its last_seen, its descriptive fields and
    its agent cursor's seq and newest time. Its record is then the previous one's text with
    those filled in again (a template kept per camera, made at its first quiet write): the same
    bytes as the full encoding (a property test holds the two equal), at a fraction of the cost."""

    def __init__(self) -> None:
        # camera_id -> (what the availability was, its JSON)
        self._availability: dict[str, tuple[tuple[Any, ...], str]] = {}
        # camera_id -> the text of its record around the holes (see `_template`)
        self._templates: dict[str, list[str]] = {}
        self._marker = uuid.uuid4().hex
        # (site_id, name) -> the start of a meta's JSON up to its latitude
        self._named: dict[tuple[str, str], str] = {}

    def encode(self, state: CameraState, quiet: bool = False) -> bytes:
        """The state's record. `quiet`: the camera changed only by quiet heartbeats (the
        `QuietLane` way) since its previous `encode` of this encoder."""
        availability = state.availability
        changes = availability.changes
        # Change points are only appended (and old ones trimmed in the same call): the count
        # and the newest one tell whether anything changed.
        version = (availability.first_seen, len(changes), changes[-1] if changes else None)
        cached = self._availability.get(state.camera_id)
        if cached is None or cached[0] != version:
            cached = self._availability[state.camera_id] = (version, json.dumps(availability.to_dict()))
        template = self._templates.get(state.camera_id) if quiet else None
        if template is not None:
            cursor = state.cursors[AGENT]
            rest = "".join((template[0], _number(state.health.last_seen), template[1],
                            self._meta(state.meta), template[2], _number(cursor.last_seq),
                            template[3], _number(cursor.newest_at), template[4]))
        else:
            changing = CameraMonitor.dump_changing(state)
            rest = json.dumps(changing)
            if quiet:
                self._templates[state.camera_id] = self._template(changing)
            else:
                self._templates.pop(state.camera_id, None)
        return f'{rest[:-1]}, "a": {cached[1]}}}'.encode()

    def _meta(self, m: CameraMeta) -> str:
        """`json.dumps(dict(vars(m)))`, written out (the fields in CameraMeta's order)."""
        named = self._named.get((m.site_id, m.name))
        if named is None:
            named = self._named[(m.site_id, m.name)] = (
                f'{{"site_id": {json.dumps(m.site_id)}, "name": {json.dumps(m.name)}, "latitude": ')
        recording = "true" if m.recording else "false"
        return (f'{named}{_number(m.latitude)}, "longitude": {_number(m.longitude)}, '
                f'"fps": {_number(m.fps)}, "configured_fps": {_number(m.configured_fps)}, '
                f'"recording": {recording}, '
                f'"agent_seq": {_number(m.agent_seq)}, "probe_seq": {_number(m.probe_seq)}, '
                f'"partition": {_number(m.partition)}}}')

    def _template(self, changing: dict[str, Any]) -> list[str]:
        """`dump_changing`'s JSON cut around what a quiet heartbeat changes, in text order:
        last_seen, the descriptive fields, the agent cursor's seq and newest time."""
        holes = [f"{self._marker}-{name}" for name in ("ls", "m", "seq", "at")]
        marked = {**changing, "h": {**changing["h"], "ls": holes[0]}, "m": holes[1],
                  "c": {**changing["c"], AGENT: {**changing["c"][AGENT], "seq": holes[2], "at": holes[3]}}}
        text = json.dumps(marked)
        pieces = []
        for hole in holes:
            before, _, text = text.partition(json.dumps(hole))
            pieces.append(before)
        return [*pieces, text]

    @staticmethod
    def decode(data: bytes | str | dict[str, Any]) -> dict[str, Any]:
        """A table value as `CameraMonitor.load` takes it."""
        return data if isinstance(data, dict) else json.loads(data)

    def forget(self) -> None:
        self._availability.clear()
        self._templates.clear()
        self._named.clear()


def _number(value: float | int | None) -> str:
    """A number as `json.dumps` writes it (a finite float is its repr)."""
    if (type(value) is float and math.isfinite(value)) or type(value) is int:
        return repr(value)
    return json.dumps(value)

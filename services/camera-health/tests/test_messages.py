"""Heartbeat validation (what goes to the DLQ) and the status / incident wire messages."""

from __future__ import annotations

import json
import math

import pytest

from camera_health.adapters.messages import (
    HEARTBEATS,
    StateEncoder,
    incident_message,
    sample_from_heartbeat,
    status_message,
)
from camera_health.core.domain import CameraMonitor
from camera_health.core.model import OPENED, RESOLVED, Availability3, IncidentEvent, Sample, StatusView
from smartcity.codec import DecodeError, from_timestamp, to_timestamp
from smartcity.health import Health, Reason
from smartcity.v1 import camera_pb2, common_pb2


def heartbeat(**fields: object) -> camera_pb2.CameraHeartbeat:
    values: dict[str, object] = {"camera_id": "cam-1", "seq": 3, "observed_time": to_timestamp(100.5),
                                 "fps": 25.0, "configured_fps": 25.0, "storage_free_percent": 50.0,
                                 "recording": True}
    values.update(fields)
    return camera_pb2.CameraHeartbeat(**values)  # type: ignore[arg-type]


def test_a_good_heartbeat_decodes_into_a_sample() -> None:
    hb = heartbeat(tamper_flags=[camera_pb2.TAMPER_FLAG_TOO_DARK], site_id="terminal",
                   location=common_pb2.GeoPoint(latitude=-7.4, longitude=109.3))
    sample = sample_from_heartbeat(HEARTBEATS.decode(hb.SerializeToString()))
    assert (sample.camera_id, sample.seq, sample.at, sample.source) == ("cam-1", 3, 100.5, "agent")
    assert sample.tamper_flags == ("too_dark",)
    assert (sample.latitude, sample.longitude) == (-7.4, 109.3)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"camera_id": ""}, "camera_id"),
    ({"seq": 0}, "seq"),
    ({"source": "robot"}, "unknown source"),
    ({"fps": math.nan}, "fps"),
    ({"packet_loss_percent": -1.0}, "packet_loss_percent"),
    ({"storage_free_percent": 101.0}, "above 100"),
    ({"tamper_flags": [9]}, "tamper"),
])
def test_unusable_heartbeats_are_refused_with_the_reason(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        HEARTBEATS.decode(heartbeat(**fields).SerializeToString())


def test_missing_observed_time_and_garbage_are_refused() -> None:
    hb = heartbeat()
    hb.ClearField("observed_time")
    with pytest.raises(DecodeError, match="observed_time"):
        HEARTBEATS.decode(hb.SerializeToString())
    with pytest.raises(DecodeError):
        HEARTBEATS.decode(b"\xff\xff\xff not protobuf")


def test_status_message_carries_the_view() -> None:
    reason = Reason("fps", Health.PROBLEM, "fps 10.0 < 80% of 25.0", 40.0)
    view = StatusView("cam-1", "alun-alun", "CCTV 1", -7.38, 109.36, Health.PROBLEM, (reason,), 160.0, 170.0,
                      17, Availability3(0.9, 0.95, 0.99), 10.0, 25.0, True, 170.0, "inc-cam-1-160000")
    msg = status_message(view)
    assert msg.health == common_pb2.HEALTH_STATE_PROBLEM
    assert [(r.check, r.severity, from_timestamp(r.since)) for r in msg.reasons] == [
        ("fps", common_pb2.HEALTH_STATE_PROBLEM, 40.0)]
    assert (msg.availability.last_hour_ratio, msg.availability.last_week_ratio) == (0.9, 0.99)
    assert (msg.location.latitude, msg.last_seq, msg.open_incident_id) == (-7.38, 17, "inc-cam-1-160000")
    assert from_timestamp(msg.updated_time) == 170.0


def test_incident_messages_opened_and_resolved_with_duration() -> None:
    reason = Reason("heartbeat", Health.CRITICAL, "no heartbeat", 10.0)
    common = ("inc-1", "cam-1", "alun-alun")
    opened = IncidentEvent(*common, OPENED, Health.CRITICAL, "heartbeat", (reason,), 70.0)
    resolved = IncidentEvent(*common, RESOLVED, Health.CRITICAL, "heartbeat", (reason,), 70.0, 200.25)
    first, last = incident_message(opened), incident_message(resolved)
    assert first.phase == camera_pb2.INCIDENT_PHASE_OPENED and not first.HasField("resolved_time")
    assert last.phase == camera_pb2.INCIDENT_PHASE_RESOLVED
    assert from_timestamp(last.resolved_time) == 200.25
    assert last.duration.ToNanoseconds() == 130_250_000_000


def test_the_state_encoder_writes_what_dump_says_and_re_encodes_a_changed_availability() -> None:
    monitor = CameraMonitor()
    encoder = StateEncoder()
    state = monitor.new_state("cam-1")
    written = []
    for seq, recording in enumerate([True, True, False, False, True, True], start=1):
        monitor.on_heartbeat(state, Sample("cam-1", seq, 100.0 + 30 * seq, recording=recording, fps=25.0,
                                           configured_fps=25.0))
        data = encoder.decode(encoder.encode(state))
        assert data == json.loads(json.dumps(monitor.dump(state)))  # the same record as before
        written.append(data["a"]["c"])
    assert written[0] != written[-1]  # the availability changed on the way, and was re-encoded
    reloaded = monitor.load("cam-1", encoder.decode(encoder.encode(state)))
    assert monitor.dump(reloaded) == monitor.dump(state)

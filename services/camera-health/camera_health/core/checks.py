"""The camera checks: what each heartbeat sample says is failing right now.

Agent heartbeats feed the camera's own checks (recording, fps, packet loss, storage, tamper);
probe heartbeats feed `stream` (did the RTSP server answer DESCRIBE, or send frames), and, from
a frame-sampling probe (edge/frames.py), `picture` (its tamper flags). Either kind counts as
"heard from" for the heartbeat (silence) check of the shared health model: a camera without an
agent is watched by the prober alone, and an unreachable stream is CRITICAL through `stream`.
Limits are exclusive: a value exactly at a threshold passes.
"""

from __future__ import annotations

from camera_health.config import Thresholds
from camera_health.core.model import PROBE, Sample
from smartcity.health import CheckResult, CheckSpec, Health

RECORDING = "recording"
STREAM = "stream"
FPS = "fps"
PACKET_LOSS = "packet_loss"
STORAGE = "storage"
TAMPER = "tamper"
# The tamper flags a frame-sampling probe raised from the decoded picture: a check of its own,
# so an agent's own (clean) report and the probe's verdict do not overwrite each other.
PICTURE = "picture"
AGENT_CHECKS = (RECORDING, FPS, PACKET_LOSS, STORAGE, TAMPER)


def check_specs(t: Thresholds) -> dict[str, CheckSpec]:
    specs = [
        CheckSpec(RECORDING, Health.CRITICAL, t.recording_tolerance_s, t.recording_recovery_s),
        CheckSpec(STREAM, Health.CRITICAL, t.stream_tolerance_s, t.stream_recovery_s),
        CheckSpec(FPS, Health.PROBLEM, t.fps_tolerance_s, t.fps_recovery_s),
        CheckSpec(PACKET_LOSS, Health.PROBLEM, t.packet_loss_tolerance_s, t.packet_loss_recovery_s),
        CheckSpec(STORAGE, Health.PROBLEM, t.storage_tolerance_s, t.storage_recovery_s),
        CheckSpec(TAMPER, Health.PROBLEM, t.tamper_tolerance_s, t.tamper_recovery_s),
        CheckSpec(PICTURE, Health.PROBLEM, t.tamper_tolerance_s, t.tamper_recovery_s),
    ]
    return {spec.name: spec for spec in specs}


def evaluate(sample: Sample, t: Thresholds) -> dict[str, CheckResult]:
    """Check verdicts of one sample (only the checks its source can speak for)."""
    if sample.source == PROBE:
        if sample.frames_decoded:  # a frame-sampling probe judged the picture itself
            return {STREAM: _stream(sample), PICTURE: _tamper(sample)}
        return {STREAM: _stream(sample)}
    return {
        RECORDING: _recording(sample),
        FPS: _fps(sample, t),
        PACKET_LOSS: _packet_loss(sample, t),
        STORAGE: _storage(sample, t),
        TAMPER: _tamper(sample),
    }


def _stream(s: Sample) -> CheckResult:
    return CheckResult(not s.reachable, "" if s.reachable else "stream unreachable (RTSP probe failed)")


def _recording(s: Sample) -> CheckResult:
    return CheckResult(not s.recording, "" if s.recording else "not recording")


def _fps(s: Sample, t: Thresholds) -> CheckResult:
    expected = t.expected_fps or s.configured_fps
    if expected <= 0:
        return CheckResult(False)  # nothing to compare with
    floor = t.fps_min_ratio * expected
    failing = s.fps < floor
    detail = f"fps {s.fps:.1f} < {t.fps_min_ratio:.0%} of {expected:.1f}" if failing else ""
    return CheckResult(failing, detail)


def _packet_loss(s: Sample, t: Thresholds) -> CheckResult:
    failing = s.packet_loss_percent > t.packet_loss_max_percent
    return CheckResult(failing, f"packet loss {s.packet_loss_percent:.1f}% > "
                                f"{t.packet_loss_max_percent:g}%" if failing else "")


def _storage(s: Sample, t: Thresholds) -> CheckResult:
    failing = s.storage_free_percent < t.storage_min_free_percent
    return CheckResult(failing, f"storage free {s.storage_free_percent:.1f}% < "
                                f"{t.storage_min_free_percent:g}%" if failing else "")


def _tamper(s: Sample) -> CheckResult:
    flags = sorted(set(s.tamper_flags))
    return CheckResult(bool(flags), "tamper: " + ", ".join(flags) if flags else "")

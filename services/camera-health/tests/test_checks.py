"""Each camera check, with values exactly at and just past its limit."""

from __future__ import annotations

import pytest

from camera_health.config import Thresholds
from camera_health.core.checks import (
    FPS,
    PACKET_LOSS,
    RECORDING,
    STORAGE,
    STREAM,
    TAMPER,
    check_specs,
    evaluate,
)
from camera_health.core.model import PROBE, Sample
from smartcity.health import Health

T = Thresholds()


def agent(**fields: object) -> Sample:
    values: dict[str, object] = {"camera_id": "cam-1", "seq": 1, "at": 0.0, "fps": 25.0,
                                 "configured_fps": 25.0, "packet_loss_percent": 0.0,
                                 "storage_free_percent": 50.0, "recording": True}
    values.update(fields)
    return Sample(**values)  # type: ignore[arg-type]


def failing(sample: Sample, check: str, thresholds: Thresholds = T) -> bool:
    return evaluate(sample, thresholds)[check].failing


def test_a_healthy_agent_sample_passes_every_check() -> None:
    results = evaluate(agent(), T)
    assert set(results) == {RECORDING, FPS, PACKET_LOSS, STORAGE, TAMPER}
    assert not any(r.failing for r in results.values())


@pytest.mark.parametrize(("fps", "fails"), [(20.0, False), (19.99, True), (0.0, True), (25.0, False)])
def test_fps_fails_below_80_percent_of_configured(fps: float, fails: bool) -> None:
    assert failing(agent(fps=fps), FPS) is fails


def test_fps_uses_the_per_camera_expected_fps_when_set() -> None:
    thresholds = T.with_overrides({"expected_fps": 30.0}, "test")
    assert failing(agent(fps=23.9, configured_fps=25.0), FPS, thresholds)
    assert not failing(agent(fps=24.0, configured_fps=25.0), FPS, thresholds)


def test_fps_without_any_configured_fps_cannot_fail() -> None:
    assert not failing(agent(fps=0.0, configured_fps=0.0), FPS)


@pytest.mark.parametrize(("loss", "fails"), [(5.0, False), (5.01, True), (0.0, False)])
def test_packet_loss_fails_above_5_percent(loss: float, fails: bool) -> None:
    assert failing(agent(packet_loss_percent=loss), PACKET_LOSS) is fails


@pytest.mark.parametrize(("free", "fails"), [(10.0, False), (9.99, True), (0.0, True)])
def test_storage_fails_below_10_percent_free(free: float, fails: bool) -> None:
    assert failing(agent(storage_free_percent=free), STORAGE) is fails


@pytest.mark.parametrize("flag", ["scene_change", "too_dark", "too_blurry", "covered"])
def test_any_tamper_flag_fails(flag: str) -> None:
    result = evaluate(agent(tamper_flags=(flag,)), T)[TAMPER]
    assert result.failing and flag in result.detail


def test_not_recording_fails_recording() -> None:
    assert failing(agent(recording=False), RECORDING)


def test_probe_samples_only_speak_for_the_stream() -> None:
    up = Sample("cam-1", 1, 0.0, source=PROBE, reachable=True, recording=False, fps=0.0)
    down = Sample("cam-1", 2, 0.0, source=PROBE, reachable=False)
    assert set(evaluate(up, T)) == {STREAM}
    assert not failing(up, STREAM)
    assert failing(down, STREAM)
    assert "unreachable" in evaluate(down, T)[STREAM].detail


def test_severities_and_tolerances_follow_the_thresholds() -> None:
    thresholds = T.with_overrides({"fps_tolerance_s": 7, "tamper_recovery_s": 9}, "test")
    specs = check_specs(thresholds)
    assert specs[RECORDING].severity == Health.CRITICAL
    assert specs[STREAM].severity == Health.CRITICAL
    assert {specs[c].severity for c in (FPS, PACKET_LOSS, STORAGE, TAMPER)} == {Health.PROBLEM}
    assert specs[FPS].tolerance_s == 7
    assert specs[TAMPER].recovery_s == 9

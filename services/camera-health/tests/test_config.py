"""Thresholds and timers from the environment: defaults, per-camera overrides, bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from camera_health.config import ServiceConfig, ThresholdBook, Thresholds
from smartcity.settings import SettingsError


def test_defaults_are_the_architecture_numbers() -> None:
    t = Thresholds()
    assert (t.heartbeat_tolerance_s, t.fps_min_ratio, t.fps_tolerance_s) == (60, 0.8, 120)
    assert (t.packet_loss_max_percent, t.packet_loss_tolerance_s, t.storage_min_free_percent) == (5, 120, 10)


def test_every_threshold_has_an_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMERA_HEARTBEAT_TOLERANCE_S", "3")
    monkeypatch.setenv("CAMERA_FPS_MIN_RATIO", "0.5")
    monkeypatch.setenv("CAMERA_INCIDENT_RESOLVE_HOLD_S", "0")
    t = ThresholdBook.from_env().for_camera("any")
    assert (t.heartbeat_tolerance_s, t.fps_min_ratio, t.incident_resolve_hold_s) == (3, 0.5, 0)


def test_per_camera_overrides_from_file_and_inline_json(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"cam-a": {"fps_min_ratio": 0.5, "fps_tolerance_s": 30},
                                "cam-b": {"storage_min_free_percent": 20}}))
    monkeypatch.setenv("CAMERA_THRESHOLDS_FILE", str(path))
    monkeypatch.setenv("CAMERA_THRESHOLDS_JSON", json.dumps({"cam-a": {"fps_tolerance_s": 10}}))
    monkeypatch.setenv("CAMERA_PACKET_LOSS_MAX_PERCENT", "7")
    book = ThresholdBook.from_env()
    a, b, other = book.for_camera("cam-a"), book.for_camera("cam-b"), book.for_camera("cam-c")
    assert (a.fps_min_ratio, a.fps_tolerance_s, a.packet_loss_max_percent) == (0.5, 10, 7)  # inline wins
    assert b.storage_min_free_percent == 20 and b.packet_loss_max_percent == 7
    assert other == book.defaults


@pytest.mark.parametrize("raw", ['{"cam-a": {"no_such": 1}}', '{"cam-a": {"fps_min_ratio": "x"}}',
                                 '["cam-a"]', "{not json", '{"cam-a": {"fps_tolerance_s": -1}}',
                                 '{"cam-a": {"fps_min_ratio": 1.5}}'])
def test_bad_overrides_are_refused_with_a_reason(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CAMERA_THRESHOLDS_JSON", raw)
    with pytest.raises(SettingsError):
        ThresholdBook.from_env()


def test_service_timers_come_from_env_and_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMERA_SILENCE_CHECK_INTERVAL_S", "0.5")
    monkeypatch.setenv("CAMERA_STATUS_INTERVAL_S", "2")
    monkeypatch.setenv("CAMERA_REORDER_WINDOW_S", "0")
    config = ServiceConfig.from_env()
    assert (config.silence_check_interval_s, config.status_interval_s, config.reorder_window_s) == (0.5, 2, 0)
    monkeypatch.setenv("CAMERA_STATUS_INTERVAL_S", "0")
    with pytest.raises(SettingsError):
        ServiceConfig.from_env()

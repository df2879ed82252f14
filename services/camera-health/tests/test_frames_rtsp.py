"""The frame prober against GStreamer's real RTSP server: normal, black, blurred, frozen, moved,
hanging streams, and Basic/Digest authentication (no Kafka: the samples and heartbeats only)."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from camera_health.core import image_checks as ic
from camera_health.edge.frames import (
    Camera,
    CameraState,
    FramesConfig,
    heartbeat,
    load_cameras,
    sample_stream,
)
from smartcity.edge_testing import RtspServer
from smartcity.v1 import camera_pb2

pytestmark = pytest.mark.skipif(not Path("/usr/bin/python3").exists()
                                or shutil.which("gst-launch-1.0") is None,
                                reason="GStreamer missing: scripts/install_edge_tools.sh installs it")

CONFIG = FramesConfig(targets_file="-", sample_s=1.5, analyse_every_s=0.3, open_timeout_s=5,
                      read_timeout_s=2)
MOUNTS = {"normal": "normal", "black": "black", "blurred": "blurred", "frozen": "frozen",
          "hang": "hang", "bright": "bright"}


@pytest.fixture(scope="module")
def rtsp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspServer]:
    server = RtspServer(tmp_path_factory.mktemp("rtsp"), MOUNTS).start()
    try:
        yield server
    finally:
        server.stop()


def camera(url: str, credentials: tuple[str, str] | None = None) -> Camera:
    return Camera("cam-test", "alun-alun", url, ic.PictureThresholds(reference_samples=1), 10.0, credentials)


def flags_of(message: camera_pb2.CameraHeartbeat) -> set[str]:
    return {camera_pb2.TamperFlag.Name(f) for f in message.tamper_flags}


def probe(cam: Camera, state: CameraState | None = None) -> camera_pb2.CameraHeartbeat:
    sample = sample_stream(cam, CONFIG)
    return heartbeat(cam, sample, state or CameraState(cam, ""), time.time())


def test_a_normal_stream_is_reachable_at_its_frame_rate_without_flags(rtsp: RtspServer) -> None:
    beat = probe(camera(rtsp.url("normal")))
    assert beat.reachable and beat.source == "probe"
    assert 7 <= beat.fps <= 13, beat
    assert beat.bitrate_kbps > 0 and beat.frames_decoded >= 10 and beat.decode_errors == 0
    assert flags_of(beat) == set()


@pytest.mark.parametrize("mount, expected", [
    ("black", {"TAMPER_FLAG_TOO_DARK", "TAMPER_FLAG_COVERED", "TAMPER_FLAG_FROZEN"}),
    ("bright", {"TAMPER_FLAG_TOO_BRIGHT", "TAMPER_FLAG_COVERED", "TAMPER_FLAG_FROZEN"}),
    ("blurred", {"TAMPER_FLAG_TOO_BLURRY"}),
    ("frozen", {"TAMPER_FLAG_FROZEN"}),
])
def test_tampered_pictures_raise_their_flags(rtsp: RtspServer, mount: str, expected: set[str]) -> None:
    beat = probe(camera(rtsp.url(mount)))
    assert beat.reachable
    assert flags_of(beat) == expected


def test_a_camera_turned_away_from_its_learned_view_is_a_scene_change(tmp_path: Path) -> None:
    server = RtspServer(tmp_path, {"moved": "moved"}).start()  # another scene 8 s after its start
    started = time.monotonic()
    try:
        cam = camera(server.url("moved"))
        state = CameraState(cam, "")
        first = probe(cam, state)
        assert time.monotonic() - started < 8, "the first sample came too late to see the old view"
        assert flags_of(first) == set() and state.reference.learned is not None
        time.sleep(max(0.0, 8.5 - (time.monotonic() - started)))
        assert "TAMPER_FLAG_SCENE_CHANGE" in flags_of(probe(cam, state))
    finally:
        server.stop()


def test_a_server_that_hangs_mid_stream_is_cut_off_by_the_read_timeout(rtsp: RtspServer) -> None:
    cam = camera(rtsp.url("hang"))  # its server stops sending after 3 s
    started = time.monotonic()
    sample = sample_stream(cam, FramesConfig(targets_file="-", sample_s=10, read_timeout_s=2))
    took = time.monotonic() - started
    assert sample.stalled and not sample.reachable
    assert sample.frames_decoded > 0
    assert took < 3 + 2 + 4, f"took {took:.1f}s"


def test_a_closed_port_is_unreachable_quickly() -> None:
    from smartcity.testing import free_port

    sample = sample_stream(camera(f"rtsp://127.0.0.1:{free_port()}/none"), CONFIG)
    assert not sample.reachable and sample.error


@pytest.mark.parametrize("method", ["basic", "digest"])
def test_credentials_from_a_file_open_a_protected_stream_and_are_never_logged(
        tmp_path: Path, method: str, caplog: pytest.LogCaptureFixture) -> None:
    server = RtspServer(tmp_path, {"cam": "normal"}, user="operator", password="p@ss:w0rd",
                        auth=method).start()
    try:
        (tmp_path / "cam.credentials").write_text("operator:p@ss:w0rd\n")
        (tmp_path / "wrong.credentials").write_text("operator:guess\n")
        (tmp_path / "cameras.yaml").write_text(
            "defaults: {site_id: alun-alun, configured_fps: 10}\ncameras:\n"
            f"  - {{camera_id: good, url: '{server.url('cam')}', credentials_file: cam.credentials}}\n"
            f"  - {{camera_id: wrong, url: '{server.url('cam')}', credentials_file: wrong.credentials}}\n"
            f"  - {{camera_id: none, url: '{server.url('cam')}'}}\n")
        good, wrong, anonymous = load_cameras(tmp_path / "cameras.yaml")
        assert "p@ss" not in repr(good)
        with caplog.at_level(logging.DEBUG):
            assert sample_stream(good, CONFIG).reachable
            refused = sample_stream(wrong, CONFIG)
            assert not refused.reachable and "guess" not in refused.error
            assert not sample_stream(anonymous, CONFIG).reachable
        assert "p@ss" not in caplog.text and "guess" not in caplog.text
    finally:
        server.stop()

"""Frame-sampling RTSP prober: the camera's health from its decoded picture.

    every CAMERA_FRAMES_INTERVAL_S, per camera (at most CAMERA_FRAMES_CONCURRENCY at once, each
    in a worker thread: decoding is CPU work):
      open rtsp:// (PyAV/FFmpeg, Basic or Digest auth, open and read timeouts)
      decode CAMERA_FRAMES_SAMPLE_S seconds of video: measured fps, bitrate, decode errors
      analyse one frame every CAMERA_FRAMES_ANALYSE_EVERY_S (core/image_checks: dark, bright,
      covered, blurry, frozen, scene change against the learned reference view)
      → CameraHeartbeat (source "probe", seq = the clock in ms) → camera.heartbeats.v1

A camera that cannot be opened, sends no frame, or stalls mid-sample (a server that keeps the
session open and stops sending: the read timeout ends it) is reported `reachable=False`, which
the service's `stream` check turns into CRITICAL. Credentials come from a file per camera
(`user:password`, e.g. a mounted Secret); they are put into the URL handed to FFmpeg only and
never logged: every message names the camera and the URL without them.

`python -m camera_health.edge.frames` (settings in `FramesConfig`, cameras in `load_cameras`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import av
import av.error
import numpy as np
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from camera_health.core import image_checks as ic
from smartcity.codec import to_timestamp
from smartcity.device_files import DeviceFile
from smartcity.edge_runtime import every, run_until_signalled
from smartcity.kafka import make_producer
from smartcity.observability import configure_logging, start_observability
from smartcity.settings import PlatformSettings, SettingsError, env_fields
from smartcity.topics import load_catalogue
from smartcity.v1 import camera_pb2

log = logging.getLogger("camera_health.edge.frames")

SERVICE_NAME = "camera-frames"
HEARTBEATS_TOPIC = "camera.heartbeats.v1"
DEFAULT_METRICS_PORT = 9123

SAMPLES = Counter("camera_frames_samples_total", "Stream samples by outcome (ok, unreachable, stalled)",
                  ["outcome"])
DECODED = Counter("camera_frames_decoded_total", "Frames decoded")
ANALYSED = Counter("camera_frames_analysed_total", "Frames run through the picture checks")
DECODE_ERRORS = Counter("camera_frames_decode_errors_total", "Packets the decoder refused")
CPU_SECONDS = Counter("camera_frames_cpu_seconds_total", "CPU time spent decoding and analysing")
FLAGS = Counter("camera_frames_tamper_flags_total", "Tamper flags raised by the picture checks", ["flag"])

_TAMPER = {ic.TOO_DARK: camera_pb2.TAMPER_FLAG_TOO_DARK, ic.TOO_BRIGHT: camera_pb2.TAMPER_FLAG_TOO_BRIGHT,
           ic.COVERED: camera_pb2.TAMPER_FLAG_COVERED, ic.TOO_BLURRY: camera_pb2.TAMPER_FLAG_TOO_BLURRY,
           ic.FROZEN: camera_pb2.TAMPER_FLAG_FROZEN, ic.SCENE_CHANGE: camera_pb2.TAMPER_FLAG_SCENE_CHANGE}


@dataclass(frozen=True)
class FramesConfig:
    """Settings of the frame prober, from the environment.

    CAMERA_FRAMES_TARGETS_FILE     YAML list of the cameras (required; see load_cameras)
    CAMERA_FRAMES_INTERVAL_S       seconds between samples of a camera (default 30)
    CAMERA_FRAMES_SAMPLE_S         seconds of video decoded per sample (default 2)
    CAMERA_FRAMES_ANALYSE_EVERY_S  stream seconds between analysed frames (default 0.5)
    CAMERA_FRAMES_OPEN_TIMEOUT_S   longest wait to open a stream (default 5)
    CAMERA_FRAMES_READ_TIMEOUT_S   longest wait for the next packet (default 3)
    CAMERA_FRAMES_CONCURRENCY      cameras sampled at once (default: the number of CPUs)
    CAMERA_FRAMES_TRANSPORT        RTSP transport, tcp or udp (default tcp)
    CAMERA_FRAMES_REFERENCE_DIR    where learned reference views are kept across restarts
                                   (default none: relearned after a restart)
    """

    targets_file: str = ""
    interval_s: float = 30.0
    sample_s: float = 2.0
    analyse_every_s: float = 0.5
    open_timeout_s: float = 5.0
    read_timeout_s: float = 3.0
    concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    transport: str = "tcp"
    reference_dir: str = ""

    @classmethod
    def from_env(cls) -> FramesConfig:
        config = cls(**env_fields(cls, "CAMERA_FRAMES_"))
        if not config.targets_file:
            raise SettingsError("CAMERA_FRAMES_TARGETS_FILE must name the YAML list of the cameras")
        if config.transport not in ("tcp", "udp"):
            raise SettingsError("CAMERA_FRAMES_TRANSPORT must be tcp or udp")
        if config.concurrency < 1 or config.sample_s <= 0 or config.interval_s <= 0:
            raise SettingsError("CAMERA_FRAMES_CONCURRENCY >= 1, CAMERA_FRAMES_SAMPLE_S > 0 and "
                                "CAMERA_FRAMES_INTERVAL_S > 0 are required")
        return config


@dataclass(frozen=True)
class Camera:
    camera_id: str
    site_id: str
    url: str
    thresholds: ic.PictureThresholds
    configured_fps: float = 0.0
    credentials: tuple[str, str] | None = field(default=None, repr=False)
    name: str = ""

    def open_url(self) -> str:
        """The URL handed to FFmpeg, credentials included (never log it)."""
        if self.credentials is None:
            return self.url
        parts = urlsplit(self.url)
        user, password = (quote(v, safe="") for v in self.credentials)
        netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))


def load_cameras(path: str | Path) -> list[Camera]:
    """The cameras of a targets file.

    ```yaml
    defaults: {configured_fps: 15, thresholds: {dark_luma: 35}}
    cameras:
      - camera_id: cam-alun-alun-01
        site_id: alun-alun
        url: rtsp://10.30.0.11:554/Streaming/Channels/102
        credentials_file: /etc/cameras/alun-alun-01    # one line: user:password
        thresholds: {blur_min_sharpness: 25}           # per camera, over the defaults
    ```
    Threshold names are those of core/image_checks.PictureThresholds.
    """
    cameras_file = DeviceFile.load("CAMERA_FRAMES_TARGETS_FILE", path)
    defaults = cameras_file.document.get("defaults") or {}
    cameras = []
    for entry in cameras_file.entries("cameras"):
        url = entry.required("url")
        if urlsplit(url).scheme != "rtsp" or urlsplit(url).username:
            raise SettingsError(f"{entry.where} url must be rtsp:// without credentials (credentials_file)")
        thresholds = _thresholds(entry.where, defaults.get("thresholds"), entry.fields.get("thresholds"))
        cameras.append(Camera(entry.required("camera_id"), entry.required("site_id"), url, thresholds,
                              float(entry.fields.get("configured_fps", 0.0)),
                              _credentials(cameras_file.secret(entry, "credentials", required=False),
                                           entry.where),
                              str(entry.fields.get("name", ""))))
    return cameras


def _thresholds(where: str, *layers: Any) -> ic.PictureThresholds:
    known = {f.name for f in fields(ic.PictureThresholds)}
    merged: dict[str, Any] = {}
    for layer in layers:
        merged |= dict(layer or {})
    unknown = sorted(set(merged) - known)
    if unknown:
        raise SettingsError(f"{where} thresholds: unknown {unknown}, known {sorted(known)}")
    return replace(ic.PictureThresholds(), **merged)


def _credentials(line: str, where: str) -> tuple[str, str] | None:
    if not line:
        return None
    user, sep, password = line.splitlines()[0].partition(":")
    if not sep or not user:
        raise SettingsError(f"{where} credentials_file: expected one line user:password")
    return user, password


@dataclass
class StreamSample:
    """What one sample of a stream measured (before the picture checks)."""

    frames_decoded: int = 0
    decode_errors: int = 0
    payload_bytes: int = 0
    first_frame_s: float = 0.0  # open → first decoded frame (wall clock)
    stream_s: float = 0.0  # first → last decoded frame (their timestamps)
    analysed: list[ic.Frame] = field(default_factory=list)
    cpu_s: float = 0.0
    error: str = ""
    stalled: bool = False

    @property
    def reachable(self) -> bool:
        return self.frames_decoded > 0 and not self.stalled and not self.error

    @property
    def fps(self) -> float:
        return (self.frames_decoded - 1) / self.stream_s if self.stream_s > 0 else 0.0

    @property
    def bitrate_kbps(self) -> int:
        return int(self.payload_bytes * 8 / self.stream_s / 1000) if self.stream_s > 0 else 0


def sample_stream(camera: Camera, config: FramesConfig) -> StreamSample:
    """Decodes `config.sample_s` seconds of the camera's stream (blocking: run it in a thread)."""
    sample = StreamSample()
    cpu_started, started = time.thread_time(), time.monotonic()
    try:
        container = av.open(camera.open_url(), options={"rtsp_transport": config.transport},
                            timeout=(config.open_timeout_s, config.read_timeout_s))
    except (av.error.FFmpegError, OSError) as exc:
        sample.error = _reason(exc, camera)
    else:
        try:
            _decode(container, sample, config, started)
        finally:
            container.close()
    sample.cpu_s = time.thread_time() - cpu_started
    return sample


def _decode(container: Any, sample: StreamSample, config: FramesConfig, started: float) -> None:
    """Decodes until `sample_s` of stream time (frame timestamps, not arrival: a server delivers
    its buffered frames in a burst), the stream's end, the read timeout, or the hard deadline."""
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1  # one core per camera: the CPU cost stays measurable
    first_time: float | None = None
    next_analysis = 0.0
    hard_deadline = started + config.open_timeout_s + config.sample_s + config.read_timeout_s
    try:
        for packet in container.demux(stream):
            sample.payload_bytes += packet.size
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                sample.decode_errors += 1
                continue
            for frame in frames:
                if frame.time is None:
                    continue  # no timestamp yet (stream start): not measurable
                if first_time is None:
                    first_time, sample.first_frame_s = frame.time, time.monotonic() - started
                sample.frames_decoded += 1
                sample.stream_s = frame.time - first_time
                if sample.stream_s >= next_analysis:
                    sample.analysed.append(frame.to_ndarray(format="gray"))
                    next_analysis = sample.stream_s + config.analyse_every_s
            if sample.stream_s >= config.sample_s:
                break
            if time.monotonic() > hard_deadline:
                sample.stalled = True
                break
        else:
            sample.stalled = True  # the stream ended before the sample did
    except (av.error.FFmpegError, OSError):
        sample.stalled = True  # the read timeout fired: the server stopped sending


def _reason(exc: BaseException, camera: Camera) -> str:
    """Why a stream could not be opened, without the URL FFmpeg was given (it holds credentials)."""
    text = getattr(exc, "strerror", None) or type(exc).__name__
    return str(text).replace(camera.open_url(), camera.url)


class CameraState:
    """What the prober keeps per camera: its seq and its learned reference view."""

    def __init__(self, camera: Camera, reference_dir: str) -> None:
        self.seq = 0
        self.path = Path(reference_dir) / f"{camera.camera_id}.npy" if reference_dir else None
        learned = np.load(self.path) if self.path is not None and self.path.exists() else None
        self.reference = ic.ReferenceView(camera.thresholds.reference_samples, learned)

    def learn(self, frame: ic.Frame, flags: list[str]) -> None:
        was_learned = self.reference.learned is not None
        self.reference.offer(frame, flags)
        if not was_learned and self.reference.learned is not None and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.save(self.path, self.reference.learned)


def heartbeat(camera: Camera, sample: StreamSample, state: CameraState,
              observed_at: float) -> camera_pb2.CameraHeartbeat:
    """The sample as a heartbeat; runs the picture checks and teaches the reference view."""
    state.seq = max(state.seq + 1, int(observed_at * 1000))
    message = camera_pb2.CameraHeartbeat(
        camera_id=camera.camera_id, site_id=camera.site_id, seq=state.seq, source="probe",
        observed_time=to_timestamp(observed_at), reachable=sample.reachable, name=camera.name,
        probe_latency_ms=round(sample.first_frame_s * 1000, 3), configured_fps=camera.configured_fps,
        fps=round(sample.fps, 3), bitrate_kbps=sample.bitrate_kbps, decode_errors=sample.decode_errors,
        frames_decoded=sample.frames_decoded)
    if not sample.reachable or not sample.analysed:
        return message
    flags, stats = ic.picture_flags(sample.analysed, camera.thresholds, state.reference.learned)
    state.learn(sample.analysed[-1], flags)
    message.tamper_flags.extend(_TAMPER[f] for f in flags)
    if stats is not None:
        message.mean_luma, message.sharpness = round(stats.mean_luma, 2), round(stats.sharpness, 2)
    return message


def _count(sample: StreamSample, message: camera_pb2.CameraHeartbeat) -> None:
    outcome = "ok" if sample.reachable else "stalled" if sample.stalled else "unreachable"
    SAMPLES.labels(outcome).inc()
    DECODED.inc(sample.frames_decoded)
    ANALYSED.inc(len(sample.analysed))
    DECODE_ERRORS.inc(sample.decode_errors)
    CPU_SECONDS.inc(sample.cpu_s)
    for flag in message.tamper_flags:
        FLAGS.labels(camera_pb2.TamperFlag.Name(flag)).inc()


class FrameProber:
    """Samples every camera each interval and produces the heartbeats (acks awaited)."""

    def __init__(self, config: FramesConfig, cameras: list[Camera], producer: AIOKafkaProducer,
                 topic: str) -> None:
        self.config, self.cameras, self.producer, self.topic = config, cameras, producer, topic
        self.states: Mapping[str, CameraState] = {c.camera_id: CameraState(c, config.reference_dir)
                                                  for c in cameras}
        self._slots = asyncio.Semaphore(config.concurrency)
        self.rounds = 0

    async def run(self, stop: asyncio.Event) -> None:
        await every(self.config.interval_s, stop, self.round)

    async def round(self) -> list[camera_pb2.CameraHeartbeat]:
        beats = await asyncio.gather(*(self._sample_and_send(c) for c in self.cameras))
        self.rounds += 1
        return list(beats)

    async def _sample_and_send(self, camera: Camera) -> camera_pb2.CameraHeartbeat:
        async with self._slots:
            sample = await asyncio.to_thread(sample_stream, camera, self.config)
        message = heartbeat(camera, sample, self.states[camera.camera_id], time.time())
        _count(sample, message)
        if not sample.reachable:
            reason = sample.error or ("stalled mid-stream" if sample.stalled else "sent no frame")
            log.info("camera %s (%s) unreachable: %s", camera.camera_id, camera.url, reason)
        try:
            future = await self.producer.send(self.topic, message.SerializeToString(deterministic=True),
                                              key=camera.camera_id.encode())
            await asyncio.wait_for(future, 30)
        except Exception as exc:
            log.warning("heartbeat of %s not acknowledged by Kafka: %s", camera.camera_id, type(exc).__name__)
        return message


async def serve(settings: PlatformSettings, config: FramesConfig, cameras: list[Camera],
                stop: asyncio.Event) -> None:
    topic = load_catalogue()[HEARTBEATS_TOPIC].full_name(settings.topic_prefix)
    producer = make_producer(settings)
    await producer.start()
    prober = FrameProber(config, cameras, producer, topic)
    observability = start_observability(settings, ready=lambda: prober.rounds > 0)
    log.info("sampling %d camera(s) every %gs (%gs each) -> %s", len(cameras), config.interval_s,
             config.sample_s, topic)
    try:
        await prober.run(stop)
    finally:
        await producer.stop()
        if observability is not None:
            observability.stop()


def main() -> None:
    settings = PlatformSettings.from_env(SERVICE_NAME, DEFAULT_METRICS_PORT)
    configure_logging(settings)
    config = FramesConfig.from_env()
    cameras = load_cameras(config.targets_file)
    logging.getLogger("libav").setLevel(logging.ERROR)  # FFmpeg's own lines may quote the URL

    run_until_signalled(lambda stop: serve(settings, config, cameras, stop))


if __name__ == "__main__":
    main()

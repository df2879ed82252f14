"""The simulated CCTV cameras of the city and the faults scenarios inject into them.

Plain Python (no Kafka): `sim/simulator.py` sends what `Fleet.heartbeats` returns and serves
`Fleet.command` / `Fleet.active` on the control endpoint (`smartcity.simcontrol`).

Faults (`{"fault": ..., "target": camera_id | site_id | "all", "duration_s": optional}`):

    offline          the camera sends nothing (its heartbeats stop; seq resumes where it was)
    stream_down      the agent reports no stream: fps 0, bitrate 0, not recording
    fps_drop         fps falls to "fps" (default 40% of the configured fps)
    packet_loss      packet loss rises to "percent" (default 12%)
    storage_filling  free storage falls by "rate_percent_per_s" (default 1) down to 0
    tamper           tamper flags "flags" (default ["covered"]; scene_change, too_dark,
                     too_blurry, covered)
    not_recording    the camera stops recording
    clear            removes the target's faults ("which": one fault name, default all)
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from camera_health.adapters.messages import TAMPER_FLAGS
from smartcity.codec import to_timestamp
from smartcity.inventory import CameraInfo
from smartcity.v1 import camera_pb2, common_pb2

FAULTS = ("offline", "stream_down", "fps_drop", "packet_loss", "storage_filling", "tamper", "not_recording")
CLEAR = "clear"
NORMAL_STORAGE_RANGE = (45.0, 80.0)


@dataclass
class Fault:
    name: str
    until: float | None
    params: dict[str, Any]


@dataclass
class SimCamera:
    info: CameraInfo
    storage_normal: float
    storage_free: float
    seq: int = 0
    dropped_frames: int = 0
    faults: dict[str, Fault] = field(default_factory=dict)

    def has(self, fault: str) -> bool:
        return fault in self.faults


class Fleet:
    def __init__(self, cameras: Sequence[CameraInfo], seed: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rng = random.Random(seed)
        self._clock = clock
        self._lock = threading.Lock()  # the control endpoint runs in its own thread
        self.cameras: dict[str, SimCamera] = {}
        for info in cameras:
            storage = round(self._rng.uniform(*NORMAL_STORAGE_RANGE), 1)
            self.cameras[info.camera_id] = SimCamera(info, storage, storage)

    # --- control endpoint ----------------------------------------------------------------

    def command(self, command: dict[str, Any]) -> dict[str, Any]:
        """Applies a fault command; raises ValueError for one it does not understand."""
        name = str(command.get("fault", ""))
        targets = self._targets(str(command.get("target", "all")))
        duration = command.get("duration_s")
        with self._lock:
            if name == CLEAR:
                which = command.get("which")
                for cam in targets:
                    self._clear(cam, None if which is None else str(which))
            elif name in FAULTS:
                until = None if duration is None else self._clock() + float(duration)
                params = {k: v for k, v in command.items() if k not in {"fault", "target", "duration_s"}}
                _check_params(name, params)
                for cam in targets:
                    cam.faults[name] = Fault(name, until, params)
            else:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join((*FAULTS, CLEAR))}")
        return {"ok": True, "fault": name, "cameras": [c.info.camera_id for c in targets]}

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            self._expire()
            return [{"camera_id": cam.info.camera_id, "fault": f.name, **f.params,
                     "remaining_s": None if f.until is None else round(f.until - self._clock(), 1)}
                    for cam in self.cameras.values() for f in cam.faults.values()]

    def _targets(self, target: str) -> list[SimCamera]:
        if target == "all":
            return list(self.cameras.values())
        found = [c for c in self.cameras.values() if target in (c.info.camera_id, c.info.site_id)]
        if not found:
            raise ValueError(f"no camera or site {target!r}; cameras: {', '.join(self.cameras)}")
        return found

    def _clear(self, cam: SimCamera, which: str | None) -> None:
        for name in [which] if which else list(cam.faults):
            cam.faults.pop(name, None)
            if name == "storage_filling":
                cam.storage_free = cam.storage_normal  # old footage purged

    def _expire(self) -> None:
        now = self._clock()
        for cam in self.cameras.values():
            for fault in [f for f in cam.faults.values() if f.until is not None and f.until <= now]:
                self._clear(cam, fault.name)

    def stream_up(self, camera_id: str) -> bool | None:
        """Whether the camera's RTSP stream answers (None: no such camera)."""
        with self._lock:
            self._expire()
            cam = self.cameras.get(camera_id)
            if cam is None:
                return None
            return not (cam.has("offline") or cam.has("stream_down"))

    # --- heartbeats ----------------------------------------------------------------------

    def heartbeats(self, observed_at: float, elapsed_s: float) -> list[camera_pb2.CameraHeartbeat]:
        """One heartbeat per camera that is not offline, observed at `observed_at` (epoch s)."""
        with self._lock:
            self._expire()
            return [self._heartbeat(cam, observed_at, elapsed_s)
                    for cam in self.cameras.values() if not cam.has("offline")]

    def _heartbeat(self, cam: SimCamera, observed_at: float, elapsed_s: float) -> camera_pb2.CameraHeartbeat:
        info, r = cam.info, self._readings(cam, elapsed_s)
        cam.seq += 1
        cam.dropped_frames += max(0, round((info.configured_fps - r.fps) * elapsed_s))
        return camera_pb2.CameraHeartbeat(
            camera_id=info.camera_id, site_id=info.site_id, seq=cam.seq,
            observed_time=to_timestamp(observed_at), fps=round(r.fps, 2), configured_fps=info.configured_fps,
            bitrate_kbps=round(r.bitrate), configured_bitrate_kbps=info.configured_bitrate_kbps,
            dropped_frames=cam.dropped_frames, packet_loss_percent=round(r.loss, 2),
            storage_free_percent=round(cam.storage_free, 2), recording=r.recording,
            tamper_flags=[TAMPER_FLAGS[f] for f in r.flags],
            location=common_pb2.GeoPoint(latitude=info.latitude, longitude=info.longitude),
            name=info.name, source="agent",
        )

    def _readings(self, cam: SimCamera, elapsed_s: float) -> Readings:
        """Normal noisy readings, then each active fault bends its own."""
        info, rng, faults = cam.info, self._rng, cam.faults
        r = Readings(fps=info.configured_fps * rng.uniform(0.96, 1.0),
                     bitrate=info.configured_bitrate_kbps * rng.uniform(0.9, 1.05),
                     loss=rng.uniform(0.0, 0.8))
        if "fps_drop" in faults:
            r.fps = float(faults["fps_drop"].params.get("fps", info.configured_fps * 0.4))
            r.bitrate *= r.fps / info.configured_fps
        if "packet_loss" in faults:
            r.loss = float(faults["packet_loss"].params.get("percent", 12.0))
        if "storage_filling" in faults:
            rate = float(faults["storage_filling"].params.get("rate_percent_per_s", 1.0))
            cam.storage_free = max(0.0, cam.storage_free - rate * elapsed_s)
        if "tamper" in faults:
            r.flags = _flags(faults["tamper"].params)
        if "not_recording" in faults:
            r.recording = False
        if "stream_down" in faults:
            r.fps, r.bitrate, r.recording = 0.0, 0.0, False
        return r


@dataclass
class Readings:
    fps: float
    bitrate: float
    loss: float
    recording: bool = True
    flags: list[str] = field(default_factory=list)


def _flags(params: dict[str, Any]) -> list[str]:
    flags = params.get("flags", params.get("flag", ["covered"]))
    return [flags] if isinstance(flags, str) else [str(f) for f in flags]


def _check_params(name: str, params: dict[str, Any]) -> None:
    if name == "tamper":
        unknown = [f for f in _flags(params) if f not in TAMPER_FLAGS]
        if unknown:
            raise ValueError(f"unknown tamper flag(s) {unknown}; known: {', '.join(TAMPER_FLAGS)}")
    for key in ("fps", "percent", "rate_percent_per_s"):
        if key in params and not isinstance(params[key], int | float):
            raise ValueError(f"{key} must be a number")

"""Benchmark: frames analysed per second per core, and CPU per camera at the default cadence.

    uv run python bench/bench_frames.py [--size 1280x720] [--fps 25] [--samples 6]

Starts GStreamer's gst-rtsp-server streaming a live H.264 camera-like picture (normal pattern,
SIZE at FPS), then runs the frame prober's sampling (`camera_health.edge.frames.sample_stream` and
the picture checks of `heartbeat`) S times with the default settings (2 s of video per sample,
one analysed frame every 0.5 s, one decoder thread) and reads the CPU time the sampling thread
used (decode + analysis). Figures:
  frames_decoded_per_cpu_s    decoded frames per second of one core
  frames_analysed_per_cpu_s   analysed frames (decoded + checked) per second of one core when
                              every decoded frame is analysed (a second pass, analyse_every 0)
  cpu_share_per_camera        CPU seconds per sample / the 30 s default interval: the share of
                              one core one camera costs at the default cadence
Ceiling, same run: the picture checks alone over already decoded frames in memory (no decode).
Stops by itself; stops the server.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from camera_health.core import image_checks as ic
from camera_health.edge.frames import (
    Camera,
    CameraState,
    FramesConfig,
    StreamSample,
    heartbeat,
    sample_stream,
)
from smartcity.edge_testing import RtspServer


def run_samples(camera: Camera, config: FramesConfig, n: int) -> list[tuple[StreamSample, float]]:
    """n samples, each with the CPU seconds of its sampling and of its checks."""
    state, out = CameraState(camera, ""), []
    for _ in range(n):
        sample = sample_stream(camera, config)
        started = time.thread_time()
        heartbeat(camera, sample, state, time.time())
        out.append((sample, sample.cpu_s + time.thread_time() - started))
    return out


def checks_only(groups: list[list[ic.Frame]], thresholds: ic.PictureThresholds,
                seconds: float = 3.0) -> float:
    """Frames per CPU second through the picture checks alone, over the same samples' frames
    (already decoded, in memory): the ceiling of decode + checks."""
    reference = ic.thumbnail(groups[0][0])
    done, started = 0, time.thread_time()
    while time.thread_time() - started < seconds:
        for frames in groups:
            ic.picture_flags(frames, thresholds, reference)
            done += len(frames)
    return done / (time.thread_time() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--samples", type=int, default=6)
    args = parser.parse_args()
    default = FramesConfig(targets_file="-")
    with tempfile.TemporaryDirectory() as workdir:
        server = RtspServer(Path(workdir), {"cam": "normal"}, size=args.size, fps=args.fps).start()
        try:
            camera = Camera("cam-bench", "bench", server.url("cam"), ic.PictureThresholds(), float(args.fps))
            sampling = run_samples(camera, default, args.samples)
            every = FramesConfig(targets_file="-", analyse_every_s=0.0)
            analysing = run_samples(camera, every, max(2, args.samples // 2))
        finally:
            server.stop()
    if not all(s.reachable for s, _ in sampling + analysing):
        print("the stream was not sampled: " + "; ".join(s.error or "stalled" for s, _ in sampling))
        return 1
    decoded = sum(s.frames_decoded for s, _ in sampling)
    cpu = sum(c for _, c in sampling)
    analysed_every = sum(len(s.analysed) for s, _ in analysing)
    cpu_every = sum(c for _, c in analysing)
    per_sample_cpu = cpu / len(sampling)
    groups = [s.analysed for s, _ in analysing]
    ceiling = checks_only(groups, ic.PictureThresholds())
    print(f"frames bench: {args.size} H.264 at {args.fps} fps from gst-rtsp-server, "
          f"{args.samples} samples of {default.sample_s:g}s "
          f"(one frame analysed every {default.analyse_every_s:g}s)")
    print(f"  default cadence: {decoded / len(sampling):.0f} frames decoded, "
          f"{sum(len(s.analysed) for s, _ in sampling) / len(sampling):.0f} analysed per sample, "
          f"{per_sample_cpu:.3f} CPU s per sample -> {per_sample_cpu / default.interval_s:.2%} of a core per "
          f"camera every {default.interval_s:g}s")
    print(f"  decode: {decoded / cpu:,.0f} frames per CPU second; decode + checks on every frame: "
          f"{analysed_every / cpu_every:,.0f} frames analysed per CPU second")
    print(f"  ceiling: the checks alone, frames already decoded: {ceiling:,.0f} frames per CPU second")
    print(json.dumps({"frames_analysed_per_cpu_s": round(analysed_every / cpu_every, 1),
                      "frames_decoded_per_cpu_s": round(decoded / cpu, 1),
                      "cpu_s_per_sample": round(per_sample_cpu, 4),
                      "cpu_share_per_camera": round(per_sample_cpu / default.interval_s, 5),
                      "checks_only_frames_per_cpu_s": round(ceiling, 1), "size": args.size, "fps": args.fps,
                      "frame_mean_luma": round(float(np.mean(groups[0][0])), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: heartbeats per second through one camera-health worker.

    uv run python bench/bench_camera_health.py [--heartbeats 20000] [--cameras 200] [--batch 200]
                                               [--py-spy FILE]

Writes N heartbeats (C cameras, mostly healthy, some failing so states change and incidents
open) to camera.heartbeats.v1 under a fresh topic prefix, then starts one worker from its real
entry point (`python -m camera_health`) and times it from its first processed heartbeat to its
last (read from its own /metrics, that counter alone: `smartcity_camera_events_processed_total`). Prints the
figures, stops the worker and deletes the prefix's topics. Stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from benchkit import (  # a sibling module (bench/ is on sys.path)
    SECURITY,
    Profiler,
    Record,
    bare_faust_figures,
    cpu_seconds,
    message_class,
    print_figures,
    produce_all,
    raw_rate,
    service_env,
)

from smartcity import topic_names
from smartcity.codec import to_timestamp
from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.testing import free_port
from smartcity.topics import delete_topics, ensure_topics
from smartcity.v1 import camera_pb2

ROOT = Path(__file__).resolve().parents[1]
PROTO = "smartcity.v1.camera_pb2:CameraHeartbeat"
BATCH_PROTO = "smartcity.v1.camera_pb2:CameraHeartbeatBatch"
# Heartbeats taken in (duplicate ones are re-reads after the worker's start-up rewind, not input).
PROCESSED = re.compile(
    r'^smartcity_camera_events_processed_total\{outcome="(?!duplicate)[^"]*"[^}]*\} ([0-9.e+]+)$', re.M)


def heartbeats(n: int, cameras: int, seed: int = 7) -> list[camera_pb2.CameraHeartbeat]:
    rng = random.Random(seed)
    start = time.time() - n // cameras * 10 - 60
    out = []
    for i in range(n):
        cam, seq = i % cameras, i // cameras + 1
        failing = cam % 10 == 0 and (seq // 20) % 2 == 1  # a tenth of the cameras flap now and then
        out.append(camera_pb2.CameraHeartbeat(
            camera_id=f"cam-bench-{cam}", site_id=f"site-{cam % 11}", seq=seq,
            observed_time=to_timestamp(start + seq * 10),
            fps=12.0 if failing else 25.0 * rng.uniform(0.96, 1),
            configured_fps=25.0, bitrate_kbps=4000, configured_bitrate_kbps=4096,
            packet_loss_percent=rng.uniform(0, 0.8), storage_free_percent=60.0,
            recording=not (failing and seq % 3 == 0), source="agent"))
    return out


def single_records(prefix: str, beats: list[camera_pb2.CameraHeartbeat]) -> list[Record]:
    """One heartbeat per message, keyed by camera."""
    topic = prefix + topic_names.CAMERA_HEARTBEATS
    return [(topic, hb.camera_id.encode(), hb.SerializeToString()) for hb in beats]


def batch_records(prefix: str, beats: list[camera_pb2.CameraHeartbeat], size: int) -> list[Record]:
    """Edge batches keyed by site, `size` heartbeats each, every site's in input order."""
    topic = prefix + topic_names.CAMERA_HEARTBEAT_BATCHES
    pending: dict[str, list[camera_pb2.CameraHeartbeat]] = {}
    out: list[Record] = []

    def close(site: str) -> None:
        batch = camera_pb2.CameraHeartbeatBatch(site_id=site, heartbeats=pending.pop(site))
        out.append((topic, site.encode(), batch.SerializeToString()))

    for hb in beats:
        pending.setdefault(hb.site_id, []).append(hb)
        if len(pending[hb.site_id]) >= size:
            close(hb.site_id)
    for site in list(pending):
        close(site)
    return out


# Edge-batch heartbeats applied where they were read, or forwarded to their camera's partition.
ROUTED = re.compile(r'^smartcity_camera_batch_heartbeats_total\{route="(\w+)"\} ([0-9.e+]+)$', re.M)


def metrics_text(port: int, *names: str) -> str:
    """The worker's /metrics, only the metrics `names` (the server's `name[]` filter): a poll
    then costs the worker one counter's exposition, not its few thousand per-camera series."""
    query = "&".join(f"name[]={name}" for name in names)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics?{query}", timeout=2) as reply:
            return str(reply.read().decode())
    except OSError:
        return ""


def processed(port: int) -> float:
    text = metrics_text(port, "smartcity_camera_events_processed_total")
    return sum(float(v) for v in PROCESSED.findall(text))


def routed(port: int) -> dict[str, float]:
    """The worker's edge-batch heartbeats by route (none from a worker that only forwards)."""
    return {route: float(count) for route, count in ROUTED.findall(
        metrics_text(port, "smartcity_camera_batch_heartbeats_total"))}


def measure(port: int, n: int, worker: subprocess.Popen[bytes],
            timeout_s: float) -> tuple[float, float, float, float]:
    """(count when timing started, that time, time when all n were processed, the worker's CPU
    seconds in between).

    Timing starts once 5% are done: start-up (group join, table recovery) is not throughput.
    """
    deadline = time.monotonic() + timeout_s
    first_count, first_at, first_cpu = 0.0, 0.0, 0.0
    while time.monotonic() < deadline and worker.poll() is None:
        count = processed(port)
        now = time.perf_counter()
        if count >= n * 0.05 and not first_at:
            first_count, first_at, first_cpu = count, now, cpu_seconds(worker.pid)
        if count >= n:
            return first_count, first_at, now, cpu_seconds(worker.pid) - first_cpu
        rate = (count - first_count) / (now - first_at) if first_at and now > first_at else 0.0
        time.sleep(poll_interval(n - count, rate))
    raise SystemExit(f"worker processed {processed(port):.0f} of {n} heartbeats before giving up")


def poll_interval(remaining: float, rate: float) -> float:
    """How long to wait before polling again: seldom while much is left and often (every 20 ms)
    near the end, where the timing is read. (A poll asks for one counter: the whole exposition,
    3 series a camera, cost the worker 5-11% of its CPU.)"""
    if rate <= 0:
        return 0.25
    return min(1.0, max(0.02, remaining / rate / 2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heartbeats", type=int, default=20_000)
    parser.add_argument("--cameras", type=int, default=200)
    parser.add_argument("--batch", type=int, default=0,
                        help="heartbeats per edge batch message (keyed by site); 0: one a message")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP))
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--py-spy", type=Path, default=None, metavar="FILE",
                        help="sample the worker with py-spy into FILE (collapsed stacks) and print a summary")
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    asyncio.run(ensure_topics(args.bootstrap, prefix, security=SECURITY))
    beats = heartbeats(args.heartbeats, args.cameras)
    records = batch_records(prefix, beats, args.batch) if args.batch else single_records(prefix, beats)
    topic, proto = records[0][0], BATCH_PROTO if args.batch else PROTO
    produce_s = asyncio.run(produce_all(args.bootstrap, records, linger_ms=10, max_batch_size=256 * 1024))
    raw = asyncio.run(raw_rate(args.bootstrap, {topic: message_class(proto).FromString}, len(records)))
    bare, bare_per_cpu = bare_faust_figures(args.bootstrap, [topic], len(records), [proto])
    port = free_port()
    env = service_env(args.bootstrap, prefix, metrics_port=port, LOG_LEVEL="WARNING",
                      CAMERA_HEALTH_SESSION_TIMEOUT_S="6")
    worker = subprocess.Popen([sys.executable, "-m", "camera_health"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    profiler = Profiler(worker.pid, args.py_spy) if args.py_spy else None
    try:
        first_count, first_at, done_at, cpu = measure(port, args.heartbeats, worker, args.timeout)
        routes = routed(port)
    finally:
        if profiler is not None:
            print(profiler.stop())
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        asyncio.run(delete_topics(args.bootstrap, prefix, security=SECURITY))
    rate = (args.heartbeats - first_count) / max(done_at - first_at, 1e-9)
    messages = rate * len(records) / args.heartbeats
    print(f"camera-health bench: {args.heartbeats} heartbeats in {len(records)} messages, "
          f"{args.cameras} cameras, prefix {prefix}")
    print(f"  produced in {produce_s:.2f}s ({len(records) / produce_s:,.0f} messages/s, acks=all)")
    print(f"  ceilings on the same topic: raw aiokafka + decode {raw:,.0f} msg/s, "
          f"bare Faust agent {bare:,.0f} msg/s")
    timed = args.heartbeats - first_count
    print(f"  one worker processed {timed:.0f} heartbeats in {done_at - first_at:.2f}s: "
          f"{rate:,.0f} heartbeats/s, {messages:,.0f} messages/s "
          f"({messages / bare:.0%} of bare Faust, {messages / raw:.1%} of raw)")
    if routes:
        shown = ", ".join(f"{route} {count:,.0f}" for route, count in sorted(routes.items()))
        print(f"  edge-batch heartbeats by route: {shown}")
    # On a shared machine the steadier comparison: work per CPU second, the worker's and Faust's.
    per_cpu = timed * len(records) / args.heartbeats / max(cpu, 1e-9)
    print(f"  worker CPU {cpu:.1f}s -> {timed / max(cpu, 1e-9):,.0f} heartbeats, {per_cpu:,.0f} messages per "
          f"CPU second ({per_cpu / bare_per_cpu:.0%} of bare Faust's {bare_per_cpu:,.0f})")
    print_figures({"bench": "camera_health" + (f"_batch{args.batch}" if args.batch else ""),
                   "readings_per_s": rate, "messages_per_s": messages,
                   "bare_faust_messages_per_s": bare, "raw_messages_per_s": raw,
                   "readings_per_cpu_s": timed / max(cpu, 1e-9), "messages_per_cpu_s": per_cpu,
                   "bare_faust_messages_per_cpu_s": bare_per_cpu})
    return 0


if __name__ == "__main__":
    sys.exit(main())

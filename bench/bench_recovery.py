"""Recovery of a stream worker killed with SIGKILL under load: how soon does its restart consume
again, and how soon has it caught up?

    uv run python bench/bench_recovery.py [--service wifi|camera] [--devices 10000] [--per-site 20]
                                          [--membership static|dynamic|both] [--py-spy FILE]

Feeds the service's edge batch topic at one reading per device per second (a steady, bounded
load: it stops with the run), starts one worker from its entry point, waits until it has caught
up (at most --timeout: a worker that does not sustain the load is killed anyway), SIGKILLs it
and starts it again at once. Measured from the restart:
  - consuming: the group's first commit past what the killed worker had committed;
  - caught up: the group's committed offsets reach the end offsets sampled 1 s earlier (with
    input flowing, the lag is never exactly 0: this is "less than a second of input behind"),
    on the input topic and on the service's internal re-key topic.
With `static` the worker is a static group member (KAFKA_GROUP_INSTANCE_ID, as the pods get
it): its restart takes its partitions back at once. With `dynamic` the broker first waits for
the killed member's session to expire. The restarted worker's start-up timeline (its
"startup: ..." log lines: imports, broker and topics, assignment, table recovery) says where the
time goes. Stops by itself; deletes its topics.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from benchkit import (  # a sibling module (bench/ is on sys.path)
    SECURITY,
    Profiler,
    partitions_of,
    print_figures,
    service_env,
)

from smartcity import topic_names
from smartcity.codec import to_timestamp
from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.topics import delete_topics, ensure_topics, load_catalogue
from smartcity.v1 import camera_pb2, wifi_pb2

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    module: str  # python -m <module>
    service: str  # its group id without the prefix
    topic: str  # the catalogue topic fed
    internal: str  # the internal re-key topic, "<group>-<suffix>"
    batch: Callable[[str, range, int, float], bytes]  # (site, its devices, seq, now) -> message
    env: dict[str, str]


def wifi_batch(site: str, devices: range, seq: int, now: float) -> bytes:
    readings = [wifi_pb2.ApTelemetry(ap_id=f"ap-{site}-{i}", site_id=site, seq=seq,
                                     observed_time=to_timestamp(now), uptime_seconds=seq, cpu_percent=20.0,
                                     memory_percent=40.0, clients=i % 9, rx_bytes=seq * 1000,
                                     tx_bytes=seq * 3000)
                for i in devices]
    return wifi_pb2.ApTelemetryBatch(site_id=site, readings=readings).SerializeToString()


def camera_batch(site: str, devices: range, seq: int, now: float) -> bytes:
    beats = [camera_pb2.CameraHeartbeat(camera_id=f"cam-{site}-{i}", site_id=site, seq=seq,
                                        observed_time=to_timestamp(now), fps=25.0, configured_fps=25.0,
                                        bitrate_kbps=4000, configured_bitrate_kbps=4096,
                                        storage_free_percent=60.0, recording=True, source="agent")
             for i in devices]
    return camera_pb2.CameraHeartbeatBatch(site_id=site, heartbeats=beats).SerializeToString()


TARGETS = {
    "wifi": Target("wifi_telemetry", "wifi-telemetry", topic_names.WIFI_AP_TELEMETRY_BATCHES, "by-site",
                   wifi_batch, {"WIFI_DATA_DIR": tempfile.gettempdir() + "/smartcity-bench"}),
    "camera": Target("camera_health", "camera-health", topic_names.CAMERA_HEARTBEAT_BATCHES, "by-camera",
                     camera_batch, {}),
}


async def feed(bootstrap: str, topic: str, target: Target, devices: int, stop: asyncio.Event, *,
               per_site: int) -> int:
    """One reading per device per second, as one batch per site, until `stop`; returns seconds fed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **SECURITY, acks="all", enable_idempotence=True,
                                linger_ms=5, max_batch_size=512 * 1024)
    await producer.start()
    seq = 0
    try:
        while not stop.is_set():
            seq += 1
            started, now = time.monotonic(), time.time()
            for first in range(0, devices, per_site):
                site, members = f"s{first // per_site}", range(first, min(devices, first + per_site))
                await producer.send(topic, target.batch(site, members, seq, now), key=site.encode())
            await producer.flush()
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    finally:
        await producer.stop()
    return seq


class Progress:
    """The group's committed offsets and the topics' end offsets, summed."""

    def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
        self.group, self.topics = group, topics
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **SECURITY)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **SECURITY, group_id=None)

    async def __aenter__(self) -> Progress:
        await self.admin.start()
        await self.consumer.start()
        self.partitions = await partitions_of(self.consumer, self.topics)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def committed(self) -> int:
        offsets = await self.admin.list_consumer_group_offsets(self.group)
        return sum(m.offset for tp, m in offsets.items() if tp.topic in self.topics and m.offset > 0)

    async def ends(self) -> int:
        return sum((await self.consumer.end_offsets(self.partitions)).values())

    async def behind(self, most: int = 12) -> dict[str, int]:
        """The partitions furthest behind their end offsets, with the records to go: says which
        partitions a worker that never caught up left behind (one stuck, or all slow)."""
        offsets = await self.admin.list_consumer_group_offsets(self.group)
        ends = await self.consumer.end_offsets(self.partitions)
        lag = {tp: end - (offsets[tp].offset if tp in offsets else 0) for tp, end in ends.items()}
        furthest = sorted(lag.items(), key=lambda item: item[1], reverse=True)[:most]
        return {f"{tp.topic}[{tp.partition}]": n for tp, n in furthest if n > 0}


def start(target: Target, bootstrap: str, prefix: str, instance: str | None,
          log: Path) -> subprocess.Popen[bytes]:
    env = service_env(bootstrap, prefix, LOG_FORMAT="text", PYTHONUNBUFFERED="1") | target.env
    if instance:
        env["KAFKA_GROUP_INSTANCE_ID"] = instance
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", target.module], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(worker: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


async def caught_up(progress: Progress, worker: subprocess.Popen[bytes], timeout_s: float) -> float | None:
    """Seconds until the committed offsets reach the end offsets of one second before; None
    when they did not within `timeout_s` (the worker does not sustain the load)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}")
        target = await progress.ends()
        await asyncio.sleep(1.0)
        if await progress.committed() >= target:
            return time.monotonic() - started
    return None


async def one_kill(args: argparse.Namespace, target: Target, static: bool) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    group = prefix + target.service
    topic = load_catalogue()[target.topic].full_name(prefix)
    log = Path(tempfile.mkdtemp(prefix="recovery-")) / "worker.log"
    instance = f"{target.service}-0" if static else None
    await ensure_topics(args.bootstrap, prefix, security=SECURITY)
    stop_feed = asyncio.Event()
    feeding = asyncio.create_task(feed(args.bootstrap, topic, target, args.devices, stop_feed,
                                        per_site=args.per_site))
    worker = start(target, args.bootstrap, prefix, instance, log)
    profiler = Profiler(worker.pid, args.py_spy) if args.py_spy else None
    try:
        await asyncio.sleep(2)  # the internal topic exists once the worker created it
        async with Progress(args.bootstrap, group, [topic, f"{group}-{target.internal}"]) as progress:
            warm = await caught_up(progress, worker, args.timeout)
            await asyncio.sleep(args.settle)
            if profiler is not None:
                print(profiler.stop())
                profiler = None
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            before = await progress.committed()
            log_offset = log.stat().st_size
            restarted = time.monotonic()
            worker = start(target, args.bootstrap, prefix, instance, log)
            while await progress.committed() <= before:
                if time.monotonic() - restarted > args.timeout:
                    raise SystemExit("the restarted worker never committed")
                await asyncio.sleep(0.1)
            consuming = time.monotonic() - restarted
            after_consuming = await caught_up(progress, worker, args.timeout)
            lag0 = None if after_consuming is None else consuming + after_consuming
            if lag0 is None:
                print(f"never caught up; partitions behind: {await progress.behind()}")
    finally:
        if profiler is not None:
            print(profiler.stop())
        stop_feed.set()
        await feeding
        stop(worker)
        await delete_topics(args.bootstrap, prefix, security=SECURITY)
    kind = "static" if static else "dynamic"
    print(f"{args.service} {args.devices} devices ({args.per_site} per batch), {kind} membership: "
          f"first caught up {_seconds(warm)}; after SIGKILL and restart consuming in {consuming:.1f}s, "
          f"caught up {_seconds(lag0)}")
    timeline = startup_timeline(log, log_offset)
    for step, at in timeline.items():
        print(f"  restarted worker: {step} at {at:.2f}s")
    return {f"{kind}_consuming_s": round(consuming, 2),
            f"{kind}_caught_up_s": None if lag0 is None else round(lag0, 2),
            f"{kind}_first_caught_up_s": None if warm is None else round(warm, 2),
            f"{kind}_startup_s": timeline}


def _seconds(value: float | None) -> str:
    return "never (within --timeout)" if value is None else f"after {value:.1f}s"


def startup_timeline(log: Path, offset: int) -> dict[str, float]:
    """The restarted worker's "startup: <step> at <s>s" lines (smartcity.streams.worker)."""
    with log.open("rb") as lines:
        lines.seek(offset)
        text = lines.read().decode(errors="replace")
    found = re.findall(r"startup: (.+?) at (\d+\.\d+)s", text)
    return {step: float(at) for step, at in found}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", choices=sorted(TARGETS), default="wifi")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--per-site", type=int, default=20, help="devices per site: readings per batch")
    parser.add_argument("--membership", choices=("static", "dynamic", "both"), default="both")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of steady state before the kill")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--py-spy", type=Path, default=None, metavar="FILE",
                        help="sample the first worker with py-spy into FILE until the kill; print a summary")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP))
    args = parser.parse_args()
    target = TARGETS[args.service]
    figures: dict[str, Any] = {"bench": f"recovery_{args.service}", "devices": args.devices,
                               "per_site": args.per_site}
    kinds = {"static": [True], "dynamic": [False], "both": [False, True]}[args.membership]
    for static in kinds:
        figures |= await one_kill(args, target, static)
    print_figures(figures)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

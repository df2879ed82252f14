"""Benchmark: the whole city on one box, at city scale, for a bounded time.

    flock /tmp/smartcity-bench.lock uv run --frozen python bench/bench_city.py \
        [--seconds 300] [--aps 10000] [--cameras 2000] [--requests-per-s 5]
        [--py-spy PROCESS [--py-spy-stacks FILE]]

On loopback, under a fresh topic prefix on the broker: every stream service and the gateway
from their entry points, fed by the three simulators (batch mode, one reading per device per
second), as `make up` starts them (deploy/local/city.py's process table and environment; own
ports, own data directories). The bench adds a few probe APs of its own at site "bench-probe":
a normal reading every second each and, every few seconds, one with CPU at 99% (the cpu check
has zero tolerance here, so that one reading makes the AP PROBLEM, and the next normal one makes
it OK again). It times each such change from the reading's observed time to the moment

    a WatchDevices stream (site bench-probe) shows it        "watch"
    a GetAccessPoint read (polled every 20 ms) shows it       "read"

    simulators ─► *.batches / requests.commands ─► wifi-telemetry, camera-health, citizen-requests
    bench probe ─► wifi.ap-telemetry-batches ─┘          │ status, stats, state topics
                                                         ▼
                         bench ◄─ WatchDevices / GetAccessPoint ─ gateway

Sampled every few seconds through the run: each consumer group's lag per topic it reads (a
stage; from committed offsets, so about one commit interval, 1 s, of input even when idle; the
gateway reads without a group: its delay is in the freshness), and at the end each process's
peak RSS (VmHWM) and CPU time, next to how busy the whole machine was. A stage whose lag keeps
growing means the box does not sustain the load: the bench says so. `--py-spy wifi-telemetry`
(any process of city.py's table) prints where that process's time went over the measured run.
Stops by itself, stops the processes, deletes its topics. Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from benchkit import SECURITY, Profiler, print_figures  # a sibling module (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from camera_health.sim.simulator import scaled_cameras  # noqa: E402
from citizen_requests.sim.behaviour import DAILY_VOLUME, rate_per_second  # noqa: E402
from citizen_requests.sim.simulator import WIB_OFFSET_S  # noqa: E402
from deploy.local import city  # noqa: E402
from smartcity import topic_names  # noqa: E402
from smartcity.codec import to_timestamp  # noqa: E402
from smartcity.inventory import access_points, cameras  # noqa: E402
from smartcity.settings import LOCAL_BOOTSTRAP  # noqa: E402
from smartcity.testing import ServiceProcess, free_port, ready  # noqa: E402
from smartcity.topics import delete_topics, ensure_topics, load_catalogue  # noqa: E402
from smartcity.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, wifi_pb2  # noqa: E402
from wifi_telemetry.sim.simulator import scaled_access_points  # noqa: E402

# The processes of deploy/local/city.py this bench runs: every stream service, the gateway and
# the simulators that feed them (the Open311 facade only calls the gateway: left out).
RUN = ("wifi-telemetry", "camera-health", "citizen-requests", "gateway",
       "wifi-simulator", "camera-simulator", "citizens-simulator")
STREAM_SERVICES = ("wifi-telemetry", "camera-health", "citizen-requests")
PROBE_SITE = "bench-probe"
PROBE_APS = 4
TOKEN = "dev-command-center"  # a development token of the gateway (reads every device)
OK = common_pb2.HEALTH_STATE_OK
PROBLEM = common_pb2.HEALTH_STATE_PROBLEM


@dataclass(frozen=True)
class Scale:
    aps: int
    cameras: int
    requests_per_s: float


def citizens_multiplier(requests_per_s: float, now: float) -> float:
    """SIM_RATE_MULTIPLIER that makes the citizens simulator submit `requests_per_s` this hour."""
    hour = time.gmtime(now + WIB_OFFSET_S).tm_hour
    return requests_per_s / sum(rate_per_second(c, hour, 1.0) for c in DAILY_VOLUME)


def city_env(bootstrap: str, prefix: str, scale: Scale, work: Path) -> dict[str, str]:
    """What every process of the run gets on top of city.py's own environment."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SMARTCITY_TOPIC_PREFIX": prefix,
        "LOG_FORMAT": "text", "LOG_LEVEL": "INFO",
        # The simulators: one reading per device per second, in batches, at the bench's scale.
        "WIFI_SIM_HEARTBEAT_S": "1", "WIFI_SIM_AP_COUNT": str(scale.aps), "WIFI_SIM_BATCHES": "true",
        # A light client load (a few clients per AP) keeps the simulator itself affordable.
        "WIFI_SIM_LOAD": "0.05", "WIFI_SIM_SEED": "1",
        "SIM_HEARTBEAT_INTERVAL_S": "1", "SIM_CAMERA_COUNT": str(scale.cameras), "SIM_BATCHES": "true",
        "SIM_RATE_MULTIPLIER": f"{citizens_multiplier(scale.requests_per_s, time.time()):.3f}",
        "SIM_SEED": "1",
        # Zero tolerance on the cpu check: one reading above the threshold is a health change.
        "WIFI_CPU_TOLERANCE_S": "0", "WIFI_CPU_RECOVERY_S": "0",
        "WIFI_DATA_DIR": str(work / "wifi"), "GATEWAY_STORE_PATH": str(work / "gateway.sqlite3"),
        "GATEWAY_RATE_LIMIT_RPS": "100000", "GATEWAY_RATE_LIMIT_BURST": "100000",
    }


@dataclass
class Running:
    process: city.Process
    proc: ServiceProcess

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_city(env: dict[str, str], logs: Path) -> tuple[list[Running], str]:
    """Starts the processes of RUN on free ports; (them, the gateway's address)."""
    gateway_address = f"127.0.0.1:{free_port()}"
    running = []
    for process in city.PROCESSES:
        if process.name not in RUN:
            continue
        extra = {"GATEWAY_ADDRESS": gateway_address} if process.name == "gateway" else {}
        mine = dataclasses.replace(process, env=process.env | env | extra,
                                   metrics_port=free_port() if process.metrics_port is not None else None,
                                   control_port=0 if process.control_port is not None else None)
        proc = ServiceProcess([sys.executable, "-m", mine.module], city.child_env(mine),
                              logs / f"{mine.name}.log").start()
        running.append(Running(mine, proc))
    return running, gateway_address


async def wait_ready(running: Sequence[Running], gateway_address: str, timeout_s: float) -> float:
    """Seconds until every service's /readyz answers and the gateway is SERVING."""
    started = time.monotonic()
    pending = {r.process.name for r in running if r.process.metrics_port is not None}
    while pending:
        for r in running:
            if not r.proc.running:
                raise SystemExit(f"{r.process.name} exited:\n{r.proc.log_tail()}")
            if r.process.name in pending and await asyncio.to_thread(ready, r.process.metrics_port or 0):
                pending.discard(r.process.name)
        if not pending and not await asyncio.to_thread(city.gateway_serving, gateway_address):
            pending.add("gateway")
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"not ready after {timeout_s:.0f}s: {sorted(pending)}")
        await asyncio.sleep(1.0)
    return time.monotonic() - started


# ---------------------------------------------------------------- the probe and its freshness


class Channel:
    """One way of seeing the gateway's view (the watch stream, reads): the health changes it
    still has to show per probe AP, as (seq of the reading that caused it, health, observed
    time), and the delays of those it showed. A status shows a change once its last_seq reached
    the causing reading's seq (several readings may come together in one status)."""

    def __init__(self) -> None:
        self.pending: dict[str, list[tuple[int, int, float]]] = {}
        self.delays_s: list[float] = []
        self.wrong = 0  # a status of exactly the causing reading with another health

    def expect(self, ap_id: str, seq: int, health: int, observed: float) -> None:
        self.pending.setdefault(ap_id, []).append((seq, health, observed))

    def show(self, ap_id: str, last_seq: int, health: int) -> None:
        waiting, now = self.pending.get(ap_id, []), time.time()
        while waiting and waiting[0][0] <= last_seq:
            seq, expected, observed = waiting.pop(0)
            self.delays_s.append(now - observed)
            self.wrong += seq == last_seq and health != expected

    def unseen(self) -> int:
        return sum(len(waiting) for waiting in self.pending.values())


@dataclass
class Freshness:
    """The health changes the probe caused and what each channel made of them."""

    watch: Channel = field(default_factory=Channel)
    read: Channel = field(default_factory=Channel)
    injected: int = 0

    def expect(self, ap_id: str, seq: int, health: int, observed: float) -> None:
        self.watch.expect(ap_id, seq, health, observed)
        self.read.expect(ap_id, seq, health, observed)
        self.injected += 1


def probe_reading(ap_id: str, seq0: int, tick: int, now: float, cpu: float) -> wifi_pb2.ApTelemetry:
    return wifi_pb2.ApTelemetry(ap_id=ap_id, site_id=PROBE_SITE, seq=seq0 + tick,
                                observed_time=to_timestamp(now), uptime_seconds=tick, cpu_percent=cpu,
                                memory_percent=40.0, clients=1,
                                rx_bytes=tick * 1000, tx_bytes=tick * 3000, name=ap_id)


async def probe(bootstrap: str, prefix: str, freshness: Freshness, stop: asyncio.Event,
                every_s: float) -> None:
    """A reading per probe AP per second; every `every_s` one AP's reading at 99% CPU, which
    the next normal one clears: each is a health change whose delay the watchers time."""
    topic = load_catalogue()[topic_names.WIFI_AP_TELEMETRY_BATCHES].full_name(prefix)
    aps = [f"ap-probe-{n}" for n in range(PROBE_APS)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **SECURITY, acks="all", enable_idempotence=True)
    await producer.start()
    hot: str | None = None
    # Consecutive per AP: the service holds a reading after a gap until the gap is filled.
    seq0, tick, next_spike = int(time.time() * 1000), 0, time.monotonic() + 5.0
    try:
        while not stop.is_set():
            now, tick = time.time(), tick + 1
            spike = aps[tick % PROBE_APS] if time.monotonic() >= next_spike else None
            readings = [probe_reading(ap, seq0, tick, now, 99.0 if ap == spike else 20.0) for ap in aps]
            await producer.send_and_wait(topic, wifi_pb2.ApTelemetryBatch(
                site_id=PROBE_SITE, readings=readings).SerializeToString(), key=PROBE_SITE.encode())
            if hot is not None:  # its reading of this second is normal again: back to OK
                freshness.expect(hot, seq0 + tick, OK, now)
            if spike is not None:
                freshness.expect(spike, seq0 + tick, PROBLEM, now)
                next_spike = time.monotonic() + every_s
            hot = spike
            await asyncio.sleep(max(0.0, 1.0 - (time.time() - now)))
    finally:
        await producer.stop()


async def watch(address: str, freshness: Freshness, stop: asyncio.Event) -> None:
    """WatchDevices on the probe site: each change of a probe AP's health, timed."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.DeviceServiceStub(channel)
        call = stub.WatchDevices(gateway_pb2.WatchDevicesRequest(
            kind=gateway_pb2.DEVICE_KIND_ACCESS_POINT, site_id=PROBE_SITE),
            metadata=[("authorization", f"Bearer {TOKEN}")])
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                reading = asyncio.ensure_future(call.read())
                done, _ = await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if reading not in done:
                    reading.cancel()
                    break
                message = reading.result()
                if message is grpc.aio.EOF:
                    raise SystemExit("the gateway ended the watch stream")
                if message.HasField("access_point"):
                    ap = message.access_point
                    freshness.watch.show(ap.ap_id, ap.last_seq, ap.health)
        finally:
            call.cancel()
            stopping.cancel()


async def read_poll(address: str, freshness: Freshness, stop: asyncio.Event, interval_s: float) -> None:
    """GetAccessPoint of every probe AP with a change not yet read, every `interval_s`."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.DeviceServiceStub(channel)
        metadata = [("authorization", f"Bearer {TOKEN}")]
        while not stop.is_set():
            for ap_id in [ap for ap, waiting in freshness.read.pending.items() if waiting]:
                try:
                    reply = await stub.GetAccessPoint(gateway_pb2.GetAccessPointRequest(ap_id=ap_id),
                                                      metadata=metadata, timeout=2)
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                    continue
                freshness.read.show(ap_id, reply.access_point.last_seq, reply.access_point.health)
            await asyncio.sleep(interval_s)


# ---------------------------------------------------------------- lag and processes


class LagSampler:
    """Each stream service's consumer lag per topic it commits (one stage each), sampled."""

    def __init__(self, bootstrap: str, prefix: str, interval_s: float) -> None:
        self.prefix, self.interval_s = prefix, interval_s
        self.groups = [prefix + service for service in STREAM_SERVICES]
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **SECURITY)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **SECURITY, group_id=None)
        self.samples: dict[str, list[int]] = {}
        self.ends_first: dict[str, tuple[float, int]] = {}
        self.ends_last: dict[str, tuple[float, int]] = {}

    async def __aenter__(self) -> LagSampler:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def sample(self) -> None:
        for group in self.groups:
            committed = await self.admin.list_consumer_group_offsets(group)
            if not committed:
                continue
            ends = await self.consumer.end_offsets(list(committed))
            now = time.monotonic()
            by_topic: dict[str, int] = {}
            end_by_topic: dict[str, int] = {}
            for tp, meta in committed.items():
                by_topic[tp.topic] = by_topic.get(tp.topic, 0) + max(0, ends[tp] - max(meta.offset, 0))
                end_by_topic[tp.topic] = end_by_topic.get(tp.topic, 0) + ends[tp]
            for topic, lag in by_topic.items():
                stage = f"{group.removeprefix(self.prefix)}:{topic.removeprefix(self.prefix)}"
                self.samples.setdefault(stage, []).append(lag)
                self.ends_first.setdefault(stage, (now, end_by_topic[topic]))
                self.ends_last[stage] = (now, end_by_topic[topic])

    def figures(self) -> dict[str, dict[str, Any]]:
        out = {}
        for stage, lags in self.samples.items():
            (t0, e0), (t1, e1) = self.ends_first[stage], self.ends_last[stage]
            rate = (e1 - e0) / (t1 - t0) if t1 > t0 else 0.0
            out[stage] = {
                "lag_p50": statistics.median(lags), "lag_max": max(lags), "lag_last": lags[-1],
                "in_messages_per_s": round(rate, 1),
                "lag_max_s": round(max(lags) / rate, 2) if rate > 0 else None,
                "lag_growth_per_s": round(lag_slope(lags, self.interval_s), 1),
                # Growing: a backlog that rises by more than 5% of the input (least squares over
                # the run) and ends above five seconds of input (a lag of a few batches that
                # comes and goes is no backlog).
                "growing": lag_slope(lags, self.interval_s) > 0.05 * rate and lags[-1] > 5 * rate,
            }
        return out


def lag_slope(lags: Sequence[int], interval_s: float) -> float:
    """Messages per second the lag grew by over the samples (least squares; 0 for one sample)."""
    if len(lags) < 2:
        return 0.0
    times = [n * interval_s for n in range(len(lags))]
    mean_t, mean_lag = statistics.fmean(times), statistics.fmean(lags)
    spread = sum((t - mean_t) ** 2 for t in times)
    return sum((t - mean_t) * (lag - mean_lag) for t, lag in zip(times, lags, strict=True)) / spread


def process_figures(running: Sequence[Running], seconds: float) -> dict[str, dict[str, float]]:
    """Peak RSS (VmHWM) and CPU (cores used over the run) of each process, still running."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for r in running:
        try:
            status = Path(f"/proc/{r.pid}/status").read_text().splitlines()
            stat = Path(f"/proc/{r.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        cpu_s = (int(stat[11]) + int(stat[12])) / tick  # utime + stime, since its start
        out[r.process.name] = {"peak_rss_mib": round(int(fields["VmHWM"].split()[0]) / 1024, 1),
                               "cpu_s": round(cpu_s, 1), "cores": round(cpu_s / seconds, 2)}
    return out


def profile(running: Sequence[Running], name: str | None, work: Path) -> Profiler | None:
    """py-spy on the process called `name` (as city.py names it) for the measured time."""
    if name is None:
        return None
    chosen = [r for r in running if r.process.name == name]
    if not chosen:
        names = ", ".join(r.process.name for r in running)
        raise SystemExit(f"--py-spy {name}: no such process (have {names})")
    return Profiler(chosen[0].pid, work / f"{name}.py-spy.txt")


def busy_cpu_s() -> float:
    """CPU seconds the whole machine spent busy since boot (every process: other work too)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


# ---------------------------------------------------------------- the run


async def run(args: argparse.Namespace) -> dict[str, Any]:
    scale = Scale(args.aps, args.cameras, args.requests_per_s)
    prefix = f"benchcity{uuid.uuid4().hex[:8]}."
    work = Path(tempfile.mkdtemp(prefix="bench-city-"))
    await ensure_topics(args.bootstrap, prefix, security=SECURITY)
    running: list[Running] = []
    try:
        running, gateway = start_city(city_env(args.bootstrap, prefix, scale, work), work)
        ready_s = await wait_ready(running, gateway, args.ready_timeout)
        print(f"city up in {ready_s:.1f}s: {len(running)} processes, {scale.aps} APs, "
              f"{scale.cameras} cameras, {scale.requests_per_s:g} requests/s (logs in {work})", flush=True)
        freshness, stop = Freshness(), asyncio.Event()
        tasks = [asyncio.create_task(probe(args.bootstrap, prefix, freshness, stop, args.probe_every)),
                 asyncio.create_task(watch(gateway, freshness, stop)),
                 asyncio.create_task(read_poll(gateway, freshness, stop, 0.02))]
        profiler = profile(running, args.py_spy, work)
        async with LagSampler(args.bootstrap, prefix, args.sample_every) as lags:
            started, busy_before = time.monotonic(), busy_cpu_s()
            while time.monotonic() - started < args.seconds:
                await asyncio.sleep(args.sample_every)
                for task in tasks:
                    if task.done():
                        task.result()  # a failed probe or watcher stops the run with its error
                for r in running:
                    if not r.proc.running:
                        raise SystemExit(f"{r.process.name} exited:\n{r.proc.log_tail()}")
                await lags.sample()
                print(f"  t={time.monotonic() - started:5.0f}s " + "  ".join(
                    f"{stage} {samples[-1]}" for stage, samples in lags.samples.items()), flush=True)
            stop.set()
            await asyncio.gather(*tasks)
            seconds = time.monotonic() - started
            box_busy = (busy_cpu_s() - busy_before) / seconds
            processes = process_figures(running, seconds + ready_s)
            stages = lags.figures()
            if profiler is not None:
                print(f"{args.py_spy}: {profiler.stop()}", flush=True)
                if args.py_spy_stacks is not None:  # the raw stacks, for a closer look
                    shutil.copyfile(profiler.output, args.py_spy_stacks)
    finally:
        for r in running:
            r.proc.stop()
        await delete_topics(args.bootstrap, prefix, security=SECURITY)
    shutil.rmtree(work, ignore_errors=True)
    return figures_of(scale, seconds, stages, freshness, processes) | {
        "box_cores": os.cpu_count(), "box_busy_cores": round(box_busy, 2),
        "city_cores": round(sum(p["cores"] for p in processes.values()), 2)}


def figures_of(scale: Scale, seconds: float, stages: dict[str, dict[str, Any]], freshness: Freshness,
               processes: dict[str, dict[str, float]]) -> dict[str, Any]:
    wifi_sites = len({ap.site_id for ap in scaled_access_points(access_points(), scale.aps)})
    camera_sites = len({c.site_id for c in scaled_cameras(cameras(), scale.cameras)})
    wifi_in = stages.get(f"wifi-telemetry:{topic_names.WIFI_AP_TELEMETRY_BATCHES}", {})
    camera_in = stages.get(f"camera-health:{topic_names.CAMERA_HEARTBEAT_BATCHES}", {})
    # One batch per site per second when the simulators keep up (the probe site adds one).
    wifi_rounds = max(0.0, wifi_in.get("in_messages_per_s", 0.0) - 1.0) / wifi_sites
    camera_rounds = camera_in.get("in_messages_per_s", 0.0) / camera_sites
    return {
        "bench": "city", "seconds": round(seconds), "aps": scale.aps, "cameras": scale.cameras,
        "requests_per_s_target": scale.requests_per_s,
        "readings_per_s": round(wifi_rounds * scale.aps + camera_rounds * scale.cameras),
        "readings_per_s_target": scale.aps + scale.cameras,
        "sustained": not any(s["growing"] for s in stages.values()),
        "stages": stages,
        "health_changes": freshness.injected,
        "watch_freshness_p50_ms": quantile(freshness.watch.delays_s, 0.5),
        "watch_freshness_p99_ms": quantile(freshness.watch.delays_s, 0.99),
        "watch_freshness_max_ms": quantile(freshness.watch.delays_s, 1.0),
        "watch_seen": len(freshness.watch.delays_s), "watch_unseen_at_end": freshness.watch.unseen(),
        "watch_wrong_health": freshness.watch.wrong,
        "read_freshness_p50_ms": quantile(freshness.read.delays_s, 0.5),
        "read_freshness_p99_ms": quantile(freshness.read.delays_s, 0.99),
        "read_seen": len(freshness.read.delays_s), "read_unseen_at_end": freshness.read.unseen(),
        "read_wrong_health": freshness.read.wrong,
        "processes": processes,
    }


def report(figures: dict[str, Any]) -> None:
    print(f"\n{figures['aps']} APs + {figures['cameras']} cameras for {figures['seconds']}s: "
          f"{figures['readings_per_s']} readings/s offered (target {figures['readings_per_s_target']}); "
          + ("every stage kept up" if figures["sustained"] else "NOT SUSTAINED: a stage's lag kept growing"))
    print(f"{'stage (group:topic)':<56} {'in msg/s':>9} {'lag p50':>8} {'lag max':>8} {'max s':>6} "
          f"{'lag +/s':>8}  growing")
    for stage, s in figures["stages"].items():
        print(f"{stage:<56} {s['in_messages_per_s']:>9} {s['lag_p50']:>8.0f} {s['lag_max']:>8} "
              f"{s['lag_max_s'] if s['lag_max_s'] is not None else '-':>6} {s['lag_growth_per_s']:>8}  "
              f"{s['growing']}")
    print(f"health changes injected {figures['health_changes']}: WatchDevices p50 "
          f"{figures['watch_freshness_p50_ms']} ms, p99 {figures['watch_freshness_p99_ms']} ms "
          f"({figures['watch_seen']} seen, {figures['watch_unseen_at_end']} not by the end); GetAccessPoint "
          f"p50 {figures['read_freshness_p50_ms']} ms, p99 {figures['read_freshness_p99_ms']} ms "
          f"({figures['read_seen']} seen, {figures['read_unseen_at_end']} not by the end)")
    print(f"{'process':<20} {'peak RSS MiB':>12} {'cores':>6}")
    for name, p in figures["processes"].items():
        print(f"{name:<20} {p['peak_rss_mib']:>12} {p['cores']:>6}")
    print(f"the city's processes used {figures['city_cores']} cores; the machine was busy "
          f"{figures['box_busy_cores']} of {figures['box_cores']} cores (the broker and other work included)")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300.0, help="measured time, after the city is up")
    parser.add_argument("--aps", type=int, default=10_000)
    parser.add_argument("--cameras", type=int, default=2_000)
    parser.add_argument("--requests-per-s", type=float, default=5.0)
    parser.add_argument("--probe-every", type=float, default=3.0, help="seconds between health changes")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between lag samples")
    parser.add_argument("--py-spy", metavar="PROCESS",
                        help="profile this process (e.g. wifi-telemetry) with py-spy")
    parser.add_argument("--py-spy-stacks", type=Path, default=None, metavar="FILE",
                        help="with --py-spy: keep its collapsed stacks in FILE")
    parser.add_argument("--ready-timeout", type=float, default=240.0)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP))
    args = parser.parse_args()
    figures = await run(args)
    report(figures)
    print_figures(figures)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""Throughput of one wifi-telemetry worker: N telemetry + session events, how fast are they done?

    uv run python bench/bench_wifi_telemetry.py [--events 50000] [--batch 200] [--py-spy FILE]
                                                [--events-file FILE]

Produces N events of the simulated city (all 21 APs, heartbeats 10 s apart in event time, client
sessions, a reboot and a CPU fault) to a fresh topic prefix, starts ONE worker from its entry
point (`python -m wifi_telemetry`), and waits until the worker's consumer group has committed
every input offset, both the raw topics and its internal by-site topic (each event passes both
stages). Stops by itself (timeout), stops the worker and deletes the topics of its prefix.
Needs the local broker (`make kafka-up`).

The rate counts every reading over the time from the worker's start of processing (its
"startup: tables recovered, processing" log line) to its last commit, and the worker's CPU
seconds over the same span. Counted from the first commit instead, a short run overstated it
(up to 1,000 messages are one batch, acknowledged and committed as a whole, so the first
commit came when most of the work was done); the last commit comes within a commit interval
(1 s) of the end, so this errs, if at all, on the low side.
Simulating the city costs more than processing it (about 0.3 ms an event): `--events-file`
keeps the simulated events in a file and reads them back next time, moved to end now.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
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
from smartcity.inventory import access_points
from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.topics import delete_topics, ensure_topics, load_catalogue
from smartcity.v1 import wifi_pb2
from wifi_telemetry.sim.scenario import Fault, simulated_events

ROOT = Path(__file__).resolve().parents[1]
INPUTS = (topic_names.WIFI_AP_TELEMETRY, topic_names.WIFI_CLIENT_SESSIONS)
BATCH_INPUTS = (topic_names.WIFI_AP_TELEMETRY_BATCHES, topic_names.WIFI_CLIENT_SESSION_BATCHES)
BATCH_PROTOS = ("smartcity.v1.wifi_pb2:ApTelemetryBatch", "smartcity.v1.wifi_pb2:ClientSessionBatch")
PROTOS = ("smartcity.v1.wifi_pb2:ApTelemetry", "smartcity.v1.wifi_pb2:ClientSession")
Events = list[wifi_pb2.ApTelemetry | wifi_pb2.ClientSession]
SLOW_PASS = re.compile(r"site statistics pass took ([0-9.]+) s: .*? \((\d+) at most for a site\)")
# The worker's log line once its tables are recovered and it processes (smartcity.streams.worker).
PROCESSING = b"startup: tables recovered, processing"


def make_events(count: int, path: Path | None = None) -> Events:
    """`count` events of the simulated city, ending now; kept in (and read back from) `path`."""
    if path is None or not path.exists():
        events = simulate(count)
        if path is not None:
            path.write_bytes(b"".join(_framed(e) for e in events))
        return events
    events = list(_unframed(path.read_bytes()))[:count]
    if len(events) < count:
        raise SystemExit(f"{path} holds {len(events)} events, fewer than {count}")
    shift = int(time.time() - max(_time_of(e).seconds for e in events))
    for event in events:
        _time_of(event).seconds += shift
    return events


def _time_of(event: wifi_pb2.ApTelemetry | wifi_pb2.ClientSession) -> Any:
    return event.observed_time if isinstance(event, wifi_pb2.ApTelemetry) else event.event_time


def _framed(event: wifi_pb2.ApTelemetry | wifi_pb2.ClientSession) -> bytes:
    body = event.SerializeToString()
    kind = b"t" if isinstance(event, wifi_pb2.ApTelemetry) else b"s"
    return kind + len(body).to_bytes(4, "big") + body


def _unframed(data: bytes) -> Iterator[wifi_pb2.ApTelemetry | wifi_pb2.ClientSession]:
    at = 0
    while at < len(data):
        kind, size = data[at:at + 1], int.from_bytes(data[at + 1:at + 5], "big")
        body = data[at + 5:at + 5 + size]
        at += 5 + size
        decode = wifi_pb2.ApTelemetry.FromString if kind == b"t" else wifi_pb2.ClientSession.FromString
        yield decode(body)


def simulate(count: int) -> Events:
    steps = count // 21 + 1  # about one heartbeat per AP per step, plus sessions
    events = simulated_events(access_points(), start=time.time() - steps * 10, steps=steps, interval_s=10,
                              seed=42, faults=[Fault(steps // 3, {"fault": "reboot", "target": "owabong"}),
                                               Fault(steps // 2, {"fault": "cpu_high", "target": "rsud"})])
    return events[:count]


def single_records(prefix: str, events: Events) -> list[Record]:
    """One reading per message, keyed by AP (as a single AP reports)."""
    catalogue = load_catalogue()

    def record(event: wifi_pb2.ApTelemetry | wifi_pb2.ClientSession) -> Record:
        name = INPUTS[0] if isinstance(event, wifi_pb2.ApTelemetry) else INPUTS[1]
        return catalogue[name].full_name(prefix), event.ap_id.encode(), event.SerializeToString()

    return [record(e) for e in events]


def batch_records(prefix: str, events: Events, size: int) -> list[Record]:
    """Edge batches keyed by site, as a site's controller sends them: per site, `size`
    heartbeats a message and, beside each, the sessions of the same interval. Cut by count on
    both topics, a session batch (sessions are fewer than heartbeats) spanned 2.6 times the
    event time of a heartbeat batch, so the two topics read at one message rate put the
    sessions ahead of the heartbeats in event time (the worker keeps every window between)."""
    catalogue = load_catalogue()
    telemetry, sessions = (catalogue[n].full_name(prefix) for n in BATCH_INPUTS)
    pending: dict[tuple[str, bool], list[Any]] = {}
    out: list[Record] = []

    def close(site: str, is_telemetry: bool) -> None:
        group = pending.pop((site, is_telemetry), None)
        if not group:
            return
        batch: Any = (wifi_pb2.ApTelemetryBatch(site_id=site, readings=group) if is_telemetry
                      else wifi_pb2.ClientSessionBatch(site_id=site, sessions=group))
        out.append((telemetry if is_telemetry else sessions, site.encode(), batch.SerializeToString()))

    for event in events:
        slot = (event.site_id, isinstance(event, wifi_pb2.ApTelemetry))
        pending.setdefault(slot, []).append(event)
        if slot[1] and len(pending[slot]) >= size:  # the interval ends: both of the site's batches go
            close(event.site_id, True)
            close(event.site_id, False)
    for site, is_telemetry in list(pending):
        close(site, is_telemetry)
    return out


async def progress(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group: str,
                   topics: list[str]) -> tuple[int, int]:
    """(committed, end) offsets summed over every partition of the group's input topics."""
    committed = await admin.list_consumer_group_offsets(group)
    partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
    ends = await consumer.end_offsets(partitions) if partitions else {}
    done = sum(meta.offset for tp, meta in committed.items() if tp.topic in topics and meta.offset > 0)
    return done, sum(ends.values())


async def wait_until_processed(bootstrap: str, prefix: str, topics: list[str], count: int, *,
                               worker: subprocess.Popen[bytes],
                               log_path: Path, timeout_s: float) -> tuple[float, float, float, int, int]:
    """Seconds from the worker's start to its start of processing (its log says when) and to
    having committed everything (`count` messages on `topics`, and all they became on the
    by-site topic), the CPU seconds the worker used in between, how many of the `count`
    messages were committed when it started processing, and how many by-site messages the
    worker made of them (single readings are re-keyed there, many to a message)."""
    group = f"{prefix}wifi-telemetry"
    by_site = f"{group}-by-site"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **SECURITY)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **SECURITY, group_id=None)
    await admin.start()
    await consumer.start()
    started = time.monotonic()
    first: float | None = None
    first_cpu = 0.0
    first_done = 0
    try:
        while time.monotonic() - started < timeout_s:
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with {worker.returncode}")
            await consumer._client.force_metadata_update()
            raw_done, raw_end = await progress(admin, consumer, group, topics)
            site_done, site_end = await progress(admin, consumer, group, [by_site])
            if first is None and processing(log_path):
                first, first_cpu = time.monotonic() - started, cpu_seconds(worker.pid)
                first_done = raw_done
            # Once the inputs are committed, all they became is on by-site (forwards are
            # acknowledged before their inputs are): its end offsets read after are final.
            if raw_end >= count and raw_done >= raw_end and site_done >= site_end:
                return (first or 0.0, time.monotonic() - started, cpu_seconds(worker.pid) - first_cpu,
                        first_done, site_end)
            await asyncio.sleep(0.25)
        raise SystemExit(f"not done after {timeout_s:.0f}s: raw {raw_done}/{raw_end}, "
                         f"by-site {site_done}/{site_end}")
    finally:
        await consumer.stop()
        await admin.close()


def stats_pass_figures(log_path: Path) -> dict[str, Any]:
    """The site statistics passes the worker's log names, printed: those that were slow or went
    over many windows of a site (a backlog of sessions read ahead of the heartbeats keeps every
    window between them)."""
    passes = [(float(m[1]), int(m[2])) for m in SLOW_PASS.finditer(log_path.read_text(errors="replace"))]
    if not passes:
        return {"slow_stats_passes": 0}
    slowest, widest = max(p[0] for p in passes), max(p[1] for p in passes)
    print(f"site statistics passes slow or over many windows: {len(passes)}, the slowest {slowest:.2f}s; "
          f"windows kept for one site at most {widest}")
    return {"slow_stats_passes": len(passes), "stats_pass_max_s": slowest, "stats_windows_max": widest}


def by_site_figures(readings: int, by_site: int) -> dict[str, Any]:
    """How many by-site messages the worker made (single readings are re-keyed there, many to
    a message: the fewer, the less the second stage costs per reading), printed."""
    if by_site:
        print(f"by-site messages: {by_site} ({readings / by_site:,.1f} readings a message)")
    return {"by_site_messages": by_site}


def processing(log_path: Path) -> bool:
    """Whether the worker's log says it is processing (tables recovered)."""
    return PROCESSING in log_path.read_bytes()


def start_worker(bootstrap: str, prefix: str, data_dir: str, log_path: Path) -> subprocess.Popen[bytes]:
    env = service_env(bootstrap, prefix, LOG_FORMAT="text", WIFI_DATA_DIR=data_dir, PYTHONUNBUFFERED="1")
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "wifi_telemetry"], env=env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=0,
                        help="readings per edge batch message (keyed by site); 0: one reading a message")
    parser.add_argument("--events-file", type=Path, default=None, metavar="FILE",
                        help="keep the simulated events in FILE and read them from there next time")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="FILE",
                        help="sample the worker with py-spy into FILE (collapsed stacks) and print a summary")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP))
    args = parser.parse_args()

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    data_dir = tempfile.mkdtemp(prefix="wifi-bench-")
    log_path = Path(data_dir) / "worker.log"
    events = make_events(args.events, args.events_file)
    sessions = sum(1 for e in events if isinstance(e, wifi_pb2.ClientSession))
    records = batch_records(prefix, events, args.batch) if args.batch else single_records(prefix, events)
    print(f"prefix {prefix}: {len(events)} events ({len(events) - sessions} telemetry, {sessions} sessions) "
          f"in {len(records)} messages")
    await ensure_topics(args.bootstrap, prefix, security=SECURITY)
    produced = time.monotonic()
    await produce_all(args.bootstrap, records, linger_ms=10, max_batch_size=256 * 1024)
    print(f"produced in {time.monotonic() - produced:.1f}s")
    names, protos = (BATCH_INPUTS, BATCH_PROTOS) if args.batch else (INPUTS, PROTOS)
    inputs = [load_catalogue()[name].full_name(prefix) for name in names]
    decoders = {t: message_class(p).FromString for t, p in zip(inputs, protos, strict=True)}
    raw = await raw_rate(args.bootstrap, decoders, len(records))
    bare, bare_per_cpu = bare_faust_figures(args.bootstrap, inputs, len(records), protos)
    print(f"ceilings on the same topics: raw aiokafka + decode {raw:,.0f} msg/s, "
          f"bare Faust agent {bare:,.0f} msg/s ({bare_per_cpu:,.0f} per CPU second)")

    worker = start_worker(args.bootstrap, prefix, data_dir, log_path)
    profiler = Profiler(worker.pid, args.py_spy) if args.py_spy else None
    try:
        first, total, cpu, first_done, by_site = await wait_until_processed(
            args.bootstrap, prefix, inputs, len(records), worker=worker, log_path=log_path,
            timeout_s=args.timeout)
    finally:
        if profiler is not None:
            print(profiler.stop())
        stop_worker(worker)
        await delete_topics(args.bootstrap, prefix, security=SECURITY)
    steady = total - first
    # Counted from the start of processing: whatever was committed by then (nothing, normally).
    after = 1.0 - first_done / len(records)
    print(f"worker start to processing: {first:.1f}s (startup, rebalance, topic creation, table recovery), "
          f"{first_done} of {len(records)} messages committed by then")
    print(f"worker start to all committed: {total:.1f}s -> {len(events) / total:,.0f} events/s end to end")
    rate = len(events) * after / steady if steady > 0 else None
    messages = len(records) * after / steady if steady > 0 else None
    if rate is not None and messages is not None:
        print(f"processing to all committed: {steady:.1f}s -> {rate:,.0f} readings/s, {messages:,.0f} "
              f"messages/s ({messages / bare:.0%} of bare Faust, {messages / raw:.1%} of raw)")
    # On a shared machine the steadier comparison: work per CPU second, the worker's and Faust's.
    per_cpu = len(records) * after / max(cpu, 1e-9)
    readings_per_cpu = len(events) * after / max(cpu, 1e-9)
    print(f"worker CPU {cpu:.1f}s -> {readings_per_cpu:,.0f} readings, {per_cpu:,.0f} messages "
          f"per CPU second ({per_cpu / bare_per_cpu:.0%} of bare Faust's {bare_per_cpu:,.0f})")
    passes = {**stats_pass_figures(log_path), **by_site_figures(len(events), by_site)}
    shutil.rmtree(data_dir, ignore_errors=True)
    print_figures({"bench": "wifi_telemetry" + (f"_batch{args.batch}" if args.batch else ""),
                   "readings_per_s": rate, "messages_per_s": messages,
                   "bare_faust_messages_per_s": bare, "raw_messages_per_s": raw,
                   "readings_per_cpu_s": readings_per_cpu, "messages_per_cpu_s": per_cpu,
                   "bare_faust_messages_per_cpu_s": bare_per_cpu, **passes})
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

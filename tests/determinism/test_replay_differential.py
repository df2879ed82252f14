"""Differential fault test: the same input log, processed cleanly and with crashes, must give the
same outputs, key by key.

One fixed, seeded input (AP telemetry and client sessions, camera heartbeats, request commands)
is generated once and produced, byte for byte and in the same per-partition order, under two
topic prefixes. Under the first, the three stream services process it undisturbed. Under the
second, each worker is SIGKILLed mid-stream (after it published its first outputs, with half of
the input still to come) and started again, and then, while the restarted workers work through
their backlog, the broker is restarted (stopped, down for a while, started on the same data).
Then every output topic is compared:

- compacted topics (statuses, site statistics, request states and statistics): the latest value
  of every key, protobuf for protobuf;
- stream topics (camera incidents, request events): the set of distinct events; a re-send after
  a crash repeats an event byte for byte (at-least-once), nothing else may differ.

The only fields left out are those the contract (protos/smartcity/v1/*.proto) marks as not a
function of the input (`contract_exclusions` reads the marks). The SLA timer of
citizen-requests is parked: the contract says its breaches are flagged as of the wall clock.

Both runs use a broker of their own (`smartcity.testing.ThrowawayKafka`, which keeps its data
across a restart): the shared one is never restarted. The test is not rerun on failure: a
difference that shows once is a difference.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CoordinatorLoadInProgressError as LoadingGroups
from aiokafka.errors import GroupCoordinatorNotAvailableError as NoCoordinator
from aiokafka.errors import NotCoordinatorError as NotCoordinator
from aiokafka.structs import TopicPartition
from google.protobuf.message import Message

from citizen_requests.sim.command_builders import CITIZEN, STAFF, action_command, actor, submit_command
from smartcity.codec import to_timestamp
from smartcity.inventory import access_points
from smartcity.testing import REPO_ROOT, ServiceProcess, ThrowawayKafka, consume_all, free_port
from smartcity.topics import delete_topics, ensure_topics, load_catalogue
from smartcity.v1 import camera_pb2, requests_pb2, wifi_pb2
from wifi_telemetry.adapters.state_codec import STATE_CODEC
from wifi_telemetry.sim.scenario import Fault, simulated_events

# Not rerun on failure (the suite reruns integration tests): a run that differs once is a finding.
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900), pytest.mark.flaky(reruns=0)]

SEED = 16
# Seconds a run stays at the end of its input before it counts as finished: longer than the
# camera heartbeat tolerance, so every camera's silence has been declared by then.
QUIET_S = 25.0
# How long the broker stays down in the fault run: longer than the workers' group sessions (6 s).
BROKER_DOWN_S = 8.0
# Time left after the last silence for the statistics that count it (published every 0.5 s).
STATS_AFTER_SILENCE_S = 3.0

# Output topic -> (message type, compacted: latest per key, else the set of events).
OUTPUTS: dict[str, tuple[type[Message], bool]] = {
    "wifi.ap-status.v1": (wifi_pb2.AccessPointStatus, True),
    "wifi.site-stats.v1": (wifi_pb2.SiteWifiStats, True),
    "camera.status.v1": (camera_pb2.CameraStatus, True),
    "camera.incidents.v1": (camera_pb2.CameraIncident, False),
    "requests.state.v1": (requests_pb2.ServiceRequest, True),
    "requests.events.v1": (requests_pb2.RequestEvent, False),
    "requests.stats.v1": (requests_pb2.RequestStats, True),
}
PROTOS = REPO_ROOT / "protos/smartcity/v1"


def contract_marks(mark: str) -> dict[str, list[str]]:
    """Per message, the fields whose comment in protos/smartcity/v1/*.proto starts with `mark`
    (for "Arrival order:", the sub-field it names)."""
    out: dict[str, list[str]] = {}
    message, comments = "", list[str]()
    for path in sorted(PROTOS.glob("*.proto")):
        for line in path.read_text().splitlines():
            text = line.strip()
            if match := re.match(r"message (\w+) \{", text):
                message, comments = match.group(1), []
            elif text.startswith("//"):
                comments.append(text[2:].strip())
            elif match := re.match(r"(?:repeated )?[\w.]+ (\w+) = \d+;", text):
                for comment in comments:
                    if comment.startswith(mark):
                        named = comment.split()[2] if mark == "Arrival order:" else match.group(1)
                        out.setdefault(message, []).append(named)
                comments = []
            else:
                comments = []
    return out


def contract_exclusions() -> dict[str, list[str]]:
    """Per message, the field paths the contract says are not a function of the input log.

    Read from the comments in protos/smartcity/v1/*.proto (see the note in common.proto): a
    field marked "Wall clock:" is left out, and so is the sub-field an "Arrival order:" names.
    "Wall clock while silent:" fields are compared: every device of the input has gone silent
    (by the clock) before a run counts as finished, in both runs alike. "Re-sent:" fields are
    compared on an event's first send (see `final_view`).
    """
    out = contract_marks("Wall clock:")
    for message, paths in contract_marks("Arrival order:").items():
        out.setdefault(message, []).extend(paths)
    return out


SERVICES: dict[str, tuple[str, dict[str, str]]] = {
    "wifi-telemetry": ("wifi_telemetry", {
        "WIFI_TICK_INTERVAL_S": "0.2", "WIFI_STATUS_INTERVAL_S": "3600", "WIFI_STATS_INTERVAL_S": "0.5",
        "WIFI_SITE_PARTITIONS": "6", "WIFI_SESSION_TIMEOUT_S": "6"}),
    "camera-health": ("camera_health", {
        "CAMERA_HEALTH_SESSION_TIMEOUT_S": "6", "CAMERA_SILENCE_CHECK_INTERVAL_S": "0.5",
        "CAMERA_STATUS_INTERVAL_S": "3600", "CAMERA_HEARTBEAT_TOLERANCE_S": "20",
        "CAMERA_FPS_TOLERANCE_S": "30", "CAMERA_FPS_RECOVERY_S": "20",
        "CAMERA_INCIDENT_RESOLVE_HOLD_S": "20"}),
    "citizen-requests": ("citizen_requests", {
        "REQUESTS_BROKER_SESSION_TIMEOUT_S": "6", "REQUESTS_SLA_CHECK_INTERVAL_S": "3600",
        "REQUESTS_SLA_SCALE": "100", "REQUESTS_STATS_FLUSH_S": "0.5",
        "REQUESTS_STATS_REFRESH_S": "3600"}),
}
# Periodic re-publishing is parked (3600 s) so that a finished run goes quiet.
# The output topic that shows a service at work (it is killed once that shows up).
FIRST_OUTPUT = {"wifi-telemetry": "wifi.ap-status.v1", "camera-health": "camera.status.v1",
                "citizen-requests": "requests.events.v1"}


# ---- the input log

@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes


def wifi_input(now: float) -> list[Record]:
    steps = 150  # 21 APs in 9 sites: ~3,150 heartbeats and their sessions, 25 minutes of data
    faults = [Fault(40, {"fault": "reboot", "target": "owabong"}),
              Fault(60, {"fault": "offline", "target": "ap-alun-alun-02", "duration_s": 200}),
              Fault(90, {"fault": "cpu_high", "target": "ap-rsud-02"})]
    events = simulated_events(access_points(), start=now - steps * 10 - 120, steps=steps, interval_s=10,
                              seed=SEED, faults=faults)
    out = []
    for event in events:
        telemetry = isinstance(event, wifi_pb2.ApTelemetry)
        name = "wifi.ap-telemetry.v1" if telemetry else "wifi.client-sessions.v1"
        out.append(Record(name, event.ap_id.encode(), event.SerializeToString()))
    rng = random.Random(SEED)
    return out + [out[rng.randrange(len(out))] for _ in range(len(out) // 20)]  # redeliveries


def camera_input(now: float, cameras: int = 6, beats: int = 120) -> list[Record]:
    """Heartbeats of the past 40 minutes with fps drops, silences, swaps and duplicates."""
    rng = random.Random(SEED)
    per_camera: list[list[camera_pb2.CameraHeartbeat]] = []
    for c in range(cameras):
        at, series = now - beats * 20 - 300, []
        for seq in range(1, beats + 1):
            at += 90 if rng.random() < 0.03 else 15
            slow = (seq // 30 + c) % 3 == 1
            series.append(camera_pb2.CameraHeartbeat(
                camera_id=f"cam-diff-{c}", site_id=("alun-alun", "pendopo")[c % 2], seq=seq,
                observed_time=to_timestamp(at), fps=8.0 if slow else 25.0, configured_fps=25.0,
                storage_free_percent=60.0, recording=True, source="agent"))
        for i in range(1, len(series) - 1, 11):
            series[i], series[i + 1] = series[i + 1], series[i]
        for i in sorted(rng.sample(range(len(series)), 8), reverse=True):
            series.insert(i + 2, series[i])
        per_camera.append(series)
    beats_out = [q[i] for i in range(max(map(len, per_camera))) for q in per_camera if i < len(q)]
    return [Record("camera.heartbeats.v1", hb.camera_id.encode(), hb.SerializeToString()) for hb in beats_out]


def requests_input(now: float, requests: int = 240) -> list[Record]:
    """Reports in clusters (same category, a few metres and minutes apart), each with a lifecycle."""
    rng = random.Random(SEED)
    categories = ["roads", "waste", "permits", "wifi_cctv", "health_info", "emergency"]
    lifecycles = [["acknowledge", "assign", "start", "resolve", "close"], ["acknowledge", "comment"],
                  ["acknowledge", "reject"], [], ["acknowledge", "assign", "start", "resolve", "reopen"]]
    payloads: dict[str, dict[str, Any]] = {
        "acknowledge": {"note": "diterima"}, "assign": {"assignee": "tim-lapangan"}, "start": {},
        "resolve": {"note": "selesai"}, "close": {}, "reject": {"reason": "bukan kewenangan"},
        "reopen": {"reason": "belum tuntas"}, "comment": {"text": "dalam proses"}}
    per_request: list[list[requests_pb2.RequestCommand]] = []
    start = now - 3000
    for i in range(requests):
        cluster = i // 6
        category = categories[cluster % len(categories)]
        lat = -7.3883 + 0.01 * (cluster % 12) + rng.uniform(-0.0003, 0.0003)
        lon = 109.3639 + 0.01 * (cluster // 12) + rng.uniform(-0.0003, 0.0003)
        at = start + cluster * 10 + rng.uniform(0, 120)
        sub = submit_command(client_id="diff-citizens", idempotency_key=f"d{i}", category=category,
                             description=f"Laporan {i}", issued_at=at, latitude=lat, longitude=lon,
                             by=actor(CITIZEN, f"warga-{i}"), command_id=f"cmd-{i}-submit",
                             correlation_id=f"corr-{i}-submit")
        commands = [sub]
        for j, step in enumerate(lifecycles[i % len(lifecycles)]):
            commands.append(action_command(sub.request_id, step, issued_at=at + 30 * (j + 1),
                                           by=actor(STAFF, "petugas", "DINKOMINFO"), client_id="diff-opd",
                                           command_id=f"cmd-{i}-{j}", correlation_id=f"corr-{i}-{j}",
                                           **payloads[step]))
        if i % 17 == 0:
            commands.insert(1, sub)  # a retried submit
        per_request.append(commands)
    ordered = [cmds[j] for j in range(max(map(len, per_request))) for cmds in per_request if j < len(cmds)]
    return [Record("requests.commands.v1", c.request_id.encode(), c.SerializeToString()) for c in ordered]


def halves(log: Sequence[Record]) -> tuple[list[Record], list[Record]]:
    """The first half of every topic's records, and the rest (each in its original order)."""
    counts: dict[str, int] = {}
    for record in log:
        counts[record.topic] = counts.get(record.topic, 0) + 1
    seen: dict[str, int] = {}
    first: list[Record] = []
    second: list[Record] = []
    for record in log:
        seen[record.topic] = seen.get(record.topic, 0) + 1
        (first if seen[record.topic] <= counts[record.topic] // 2 else second).append(record)
    return first, second


def input_log(now: float) -> list[Record]:
    return wifi_input(now) + camera_input(now) + requests_input(now)


# ---- running the services

def full_name(prefix: str, name: str) -> str:
    return load_catalogue()[name].full_name(prefix)


async def produce(producer: AIOKafkaProducer, prefix: str, records: Sequence[Record]) -> None:
    futures = [await producer.send(full_name(prefix, r.topic), key=r.key, value=r.value) for r in records]
    await asyncio.gather(*futures)


@dataclass
class Workers:
    """The services' workers of both runs, started from their real entry points against the
    test's own broker, each with its log in `logs`."""

    bootstrap: str
    logs: Path
    started: list[ServiceProcess] = field(default_factory=list)
    # Per prefix, counters of the workers that stopped (`tally`): what a run did on the way.
    counted: dict[str, dict[str, float]] = field(default_factory=dict)
    _ports: dict[int, int] = field(default_factory=dict)

    def start(self, prefix: str, service: str) -> ServiceProcess:
        module, env = SERVICES[service]
        port = free_port()
        full_env = os.environ | env | {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "SMARTCITY_TOPIC_PREFIX": prefix,
            "LOG_FORMAT": "text", "PYTHONUNBUFFERED": "1", "METRICS_PORT": str(port)}
        log_path = self.logs / f"{prefix.rstrip('.')}-{service}-{len(self.started)}.log"
        worker = ServiceProcess([sys.executable, "-m", module], full_env, log_path).start()
        self.started.append(worker)
        self._ports[id(worker)] = port
        return worker

    async def tally(self, prefix: str, running: Iterable[ServiceProcess]) -> None:
        """Adds the workers' counters of note (TALLIED) to the run's, before they stop or die."""
        counts = self.counted.setdefault(prefix, {})
        for worker in running:
            for name, value in (await asyncio.to_thread(scrape, self._ports[id(worker)])).items():
                counts[name] = counts.get(name, 0.0) + value

    def start_all(self, prefix: str) -> dict[str, ServiceProcess]:
        return {service: self.start(prefix, service) for service in SERVICES}

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    def dead(self, running: Iterable[ServiceProcess]) -> list[str]:
        """What a worker that exited by itself wrote last (none expected: a worker outlives a
        broker restart)."""
        return [f"{w.argv[-1]} exited with {w.wait(0)}:\n{w.log_tail(30)}" for w in running if not w.running]


@dataclass
class Outputs:
    """Every output topic of a prefix, followed from the beginning."""

    bootstrap: str
    prefix: str
    records: dict[str, list[tuple[bytes, bytes]]] = field(default_factory=dict)
    _consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Outputs:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                          auto_offset_reset="earliest", enable_auto_commit=False)
        await self._consumer.start()
        catalogue = load_catalogue()
        self._consumer.assign([TopicPartition(full_name(self.prefix, t), p) for t in OUTPUTS
                               for p in range(catalogue[t].partitions)])
        self.records = {t: [] for t in OUTPUTS}
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def poll(self, seconds: float) -> None:
        assert self._consumer is not None
        names = {full_name(self.prefix, t): t for t in OUTPUTS}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batch = await self._consumer.getmany(timeout_ms=200)
            for tp, items in batch.items():
                self.records[names[tp.topic]].extend((r.key, r.value) for r in items)

    async def wait_for(self, condition: Callable[[Outputs], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition(self):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await self.poll(0.5)


async def lagging(bootstrap: str, prefix: str) -> list[str]:
    """The partitions a service's group has not committed to their end (empty: caught up)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = {}
        for service in SERVICES:
            try:
                offsets = await admin.list_consumer_group_offsets(prefix + service)
            except (NoCoordinator, LoadingGroups, NotCoordinator) as exc:
                return [f"{service}: {exc}"]  # a fresh or restarted broker loading its groups
            if not offsets:
                return [f"{service}: nothing committed yet"]
            # Not the tables' changelogs, nor the timers' own ticks (camera-health probes its
            # pipeline with one every check: there is always one on its way).
            committed.update({tp: meta.offset for tp, meta in offsets.items()
                              if not tp.topic.endswith(("-changelog", "-ticks"))})
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(committed))  # fetches the metadata of those topics
        ends = await consumer.end_offsets(list(committed))
        return [f"{tp.topic}[{tp.partition}] at {offset} of {ends[tp]}"
                for tp, offset in sorted(committed.items()) if ends[tp] != offset]
    finally:
        await consumer.stop()


# The status topics whose devices all fall silent at the end of the input.
SILENCED: dict[str, type[Message]] = {"wifi.ap-status.v1": wifi_pb2.AccessPointStatus,
                                      "camera.status.v1": camera_pb2.CameraStatus}


def not_yet_silent(outputs: Outputs) -> list[str]:
    """The devices whose latest status does not yet declare their silence ("heartbeat").

    A worker that stalled (a broker restart, a group rejoining) counts every device as heard when
    it notices, so a silence may come up to a tolerance after the catch-up (camera-health's
    core/clock.py); a run is finished once every device of the input has been declared silent.
    """
    out = []
    for topic, message_type in SILENCED.items():
        latest = {key: value for key, value in outputs.records[topic]}
        for key, value in sorted(latest.items()):
            status = message_type.FromString(value)
            if not any(reason.check == "heartbeat" for reason in getattr(status, "reasons")):  # noqa: B009
                out.append(f"{topic} {key.decode()}")
    return out


async def settle(outputs: Outputs, timeout_s: float, workers: Workers,
                 running: Iterable[ServiceProcess]) -> None:
    """Until every group has been at the end of its input for QUIET_S (what follows then is the
    timers' doing: silences declared, statistics published) and every device's silence is out."""
    deadline = time.monotonic() + timeout_s
    caught_up_at: float | None = None
    behind: list[str] = []
    unsilenced: list[str] = ["(not read yet)"]
    running = list(running)
    while caught_up_at is None or time.monotonic() - caught_up_at < QUIET_S or unsilenced:
        await outputs.poll(2.0)
        assert not workers.dead(running), "\n".join(workers.dead(running))
        behind = await lagging(outputs.bootstrap, outputs.prefix)
        unsilenced = not_yet_silent(outputs)
        if behind:
            caught_up_at = None
        elif caught_up_at is None:
            caught_up_at = time.monotonic()
        assert time.monotonic() < deadline, (
            f"the services did not finish the input in time: behind: {behind}, not yet silent: {unsilenced}, "
            f"outputs: { {t: len(r) for t, r in outputs.records.items()} }\n"
            + "\n".join(f"{w.argv[-1]}, its log's end:\n{w.log_tail(60)}" for w in running))
    assert caught_up_at is not None
    print(f"{outputs.prefix}: finished {time.monotonic() - caught_up_at:.1f} s after the catch-up")
    await outputs.poll(STATS_AFTER_SILENCE_S)


# Counters that say what a run went through (printed, not compared): a seq gap given up in the
# fault run and not in the clean one means a worker was handed heartbeats out of order.
TALLIED = ("smartcity_wifi_seq_gaps_total", "smartcity_wifi_events_processed_total",
           "smartcity_camera_seq_gaps_total")


def scrape(port: int) -> dict[str, float]:
    """The TALLIED samples of a worker's /metrics (none when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith(TALLIED) and not name.startswith("#"):
            out[name] = out.get(name, 0.0) + float(value)
    return out


async def by_site_disorder(bootstrap: str, prefix: str) -> dict[str, int]:
    """Per AP, the heartbeats wifi-telemetry's by-site topic holds after a later one of the same
    AP: first copies out of seq order (re-sends of what came before are fine). Printed, so a
    difference in availability can be told apart: disorder here is the forwarding's doing, none
    here and seq gaps given up is the reading's."""
    topic = f"{prefix}wifi-telemetry-by-site"
    records = await consume_all(bootstrap, topic, settle_s=2.0, timeout_s=60.0)
    seen: dict[str, set[int]] = {}
    newest: dict[str, int] = {}
    late: dict[str, int] = {}
    for record in records:
        if dict(record.headers or ()).get("wifi.kind") != b"telemetry-batch":
            continue
        for reading in wifi_pb2.ApTelemetryBatch.FromString(record.value).readings:
            ap, seq = reading.ap_id, int(reading.seq)
            if seq in seen.setdefault(ap, set()):
                continue
            seen[ap].add(seq)
            if seq < newest.get(ap, seq):
                late[ap] = late.get(ap, 0) + 1
            newest[ap] = max(seq, newest.get(ap, seq))
    return late


async def ap_records(bootstrap: str, prefix: str, ap_ids: Iterable[str]) -> dict[str, Any]:
    """The last changelog record of each AP named (wifi-telemetry's state), to show where two
    runs' availabilities part: the health change points, in event time."""
    wanted = set(ap_ids)
    if not wanted:
        return {}
    records = await consume_all(bootstrap, f"{prefix}wifi-telemetry-state-changelog", settle_s=2.0)
    out: dict[str, Any] = {}
    for record in records:
        if record.key is None or record.value is None or not record.key.strip(b'"').startswith(b"site/"):
            continue
        # The APs live in their site's record (MessagePack, see state_codec), each as
        # AccessPointState.to_list.
        for ap, entry in STATE_CODEC.loads(record.value).get("ap", {}).items():
            if ap in wanted:
                out[ap] = {"av": entry[9], "seq": entry[6], "fs": entry[18]}
    return out


def published_on(topic: str, beyond: int = 0) -> Callable[[Outputs], bool]:
    return lambda outputs: len(outputs.records[topic]) >= beyond + 5


async def restart_broker(broker: ThrowawayKafka, down_s: float) -> None:
    """Stops the broker (SIGTERM: a controlled shutdown), leaves it down, starts it on its data."""
    await asyncio.to_thread(broker.stop)
    await asyncio.sleep(down_s)
    await asyncio.to_thread(broker.start)


# ---- comparing

def _without(message: Message, paths: Iterable[str]) -> Message:
    copy = type(message)()
    copy.CopyFrom(message)
    for path in paths:
        *parents, name = path.split(".")
        holder = copy
        for parent in parents:
            holder = getattr(holder, parent)
        holder.ClearField(name)
    return copy


def final_view(topic: str, records: Sequence[tuple[bytes, bytes]]) -> dict[str, Any]:
    message_type, compacted = OUTPUTS[topic]
    clock = contract_exclusions().get(message_type.DESCRIPTOR.name, [])
    if compacted:
        latest = {key: value for key, value in records}
        return {key.decode(): _without(message_type.FromString(value), clock)
                for key, value in latest.items() if value is not None}
    # An event is what is left of it without the excluded fields: two that differ only there
    # are the same event.
    resent = contract_marks("Re-sent:").get(message_type.DESCRIPTOR.name, [])
    if not resent:
        events = [_without(message_type.FromString(value), clock) for _, value in records]
        return {event.SerializeToString(deterministic=True).hex(): event for event in events}
    # Events with an id whose re-sends may differ in the fields marked "Re-sent:": each id's
    # first send is compared whole, every further send must equal it but for those fields.
    firsts: dict[str, Message] = {}
    out: dict[str, Any] = {}
    for _, value in records:
        event = _without(message_type.FromString(value), clock)
        event_id = str(getattr(event, "event_id"))  # noqa: B009  (any message with an event_id)
        first = firsts.setdefault(event_id, event)
        if _without(event, resent) != _without(first, resent):
            out[f"{event_id} re-sent otherwise"] = event
    return out | firsts


def compare(clean: Mapping[str, Sequence[tuple[bytes, bytes]]],
            faulty: Mapping[str, Sequence[tuple[bytes, bytes]]]) -> dict[str, list[str]]:
    """Per output topic, a line per key (or event) that differs between the two runs."""
    report: dict[str, list[str]] = {}
    for topic in OUTPUTS:
        a, b = final_view(topic, clean[topic]), final_view(topic, faulty[topic])
        lines = [f"{key}: only in the clean run" for key in sorted(a.keys() - b.keys())]
        lines += [f"{key}: only in the fault run" for key in sorted(b.keys() - a.keys())]
        lines += [f"{key}: {_diff(a[key], b[key])}" for key in sorted(a.keys() & b.keys())
                  if a[key] != b[key]]
        report[topic] = lines
    return report


def _diff(a: Message, b: Message) -> str:
    fields = sorted({f.name for f, _ in a.ListFields()} | {f.name for f, _ in b.ListFields()})
    return ", ".join(f"{name} {_short(getattr(a, name))} -> {_short(getattr(b, name))}"
                     for name in fields if getattr(a, name) != getattr(b, name))


def _short(value: Any) -> str:
    return " ".join(str(value).split())[:80]


def summary(report: Mapping[str, list[str]], views: Mapping[str, Sequence[tuple[bytes, bytes]]]) -> str:
    lines = []
    for topic, diffs in report.items():
        total = len(final_view(topic, views[topic]))
        lines.append(f"{topic}: {len(diffs)} of {total} differ")
        lines += [f"    {d}" for d in diffs[:8]]
    return "\n".join(lines)


def field_counts(report: Mapping[str, list[str]]) -> dict[str, int]:
    """How many keys differ in each field (topic.field -> keys)."""
    counts: dict[str, int] = {}
    for topic, diffs in report.items():
        for line in diffs:
            _, _, rest = line.partition(": ")
            for part in rest.split(", "):
                name = part.split(" ", 1)[0]
                if name and "->" in part:
                    counts[f"{topic}.{name}"] = counts.get(f"{topic}.{name}", 0) + 1
    return counts


# ---- the test

async def test_a_crash_of_every_worker_and_a_broker_restart_change_no_output(
        broker: ThrowawayKafka, prefix_pair: tuple[str, str], workers: Workers) -> None:
    clean_prefix, fault_prefix = prefix_pair
    bootstrap = broker.bootstrap
    log = input_log(time.time())
    # Every service's input is cut in its middle (the first half of each topic, then the rest),
    # and the rest again: the broker restarts between its two parts.
    first, second = halves(log)
    third, fourth = halves(second)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        # The clean run: everything in, the services undisturbed.
        await produce(producer, clean_prefix, first + second)
        clean_workers = workers.start_all(clean_prefix)
        async with Outputs(bootstrap, clean_prefix) as clean:
            await settle(clean, 300, workers, clean_workers.values())
        await workers.tally(clean_prefix, clean_workers.values())
        for worker in clean_workers.values():
            worker.stop()

        # The fault run: half in, each worker SIGKILLed once it published, a quarter more in,
        # the workers restarted, the broker restarted under them while they catch up, the rest in.
        await produce(producer, fault_prefix, first)
        killed = workers.start_all(fault_prefix)
        async with Outputs(bootstrap, fault_prefix) as faulty:
            for service, topic in FIRST_OUTPUT.items():
                await faulty.wait_for(published_on(topic), 90, f"{service} to publish")
            await faulty.poll(1.5)  # past a commit: the restart has state to recover and input to redo
            await workers.tally(fault_prefix, killed.values())
            for worker in killed.values():
                worker.kill()
            await produce(producer, fault_prefix, third)
            seen = {topic: len(faulty.records[topic]) for topic in FIRST_OUTPUT.values()}
            restarted = workers.start_all(fault_prefix)
            for service, topic in FIRST_OUTPUT.items():
                await faulty.wait_for(published_on(topic, seen[topic]), 120, f"{service} to publish again")
        await restart_broker(broker, BROKER_DOWN_S)
        await produce(producer, fault_prefix, fourth)
        async with Outputs(bootstrap, fault_prefix) as faulty:  # everything again, from the start
            await settle(faulty, 300, workers, restarted.values())
        await workers.tally(fault_prefix, restarted.values())
        disorder = await by_site_disorder(bootstrap, fault_prefix)
        for worker in restarted.values():
            worker.stop()  # before the fixture deletes their topics
    finally:
        await producer.stop()

    report = compare(clean.records, faulty.records)
    print(summary(report, clean.records))
    print("differing keys per field:", field_counts(report))
    for name in sorted(set(workers.counted[clean_prefix]) | set(workers.counted[fault_prefix])):
        print(f"{name}: clean {workers.counted[clean_prefix].get(name, 0):g}, "
              f"fault {workers.counted[fault_prefix].get(name, 0):g}")
    print("fault run, by-site heartbeats out of seq order per AP:", disorder)
    print("wifi heartbeat event times where the fault run's parts begin:",
          [min((wifi_pb2.ApTelemetry.FromString(r.value).observed_time.seconds for r in part
                if r.topic == "wifi.ap-telemetry.v1"), default=0) for part in (first, third, fourth)])
    parted = [line.split(":", 1)[0] for line in report["wifi.ap-status.v1"]]
    for name, prefix in (("clean", clean_prefix), ("fault", fault_prefix)):
        for ap, record in (await ap_records(bootstrap, prefix, parted)).items():
            print(f"{name} run, {ap}: {record}")
    assert not any(report.values()), summary(report, clean.records)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayKafka]:
    """The test's own broker: the fault run restarts it."""
    kafka = ThrowawayKafka(tmp_path_factory.mktemp("differential-kafka")).start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def workers(broker: ThrowawayKafka, prefix_pair: tuple[str, str], tmp_path: Path) -> Iterator[Workers]:
    """Stopped after the test, before `prefix_pair` deletes their topics."""
    started = Workers(broker.bootstrap, tmp_path)
    yield started
    started.stop_all()


@pytest_asyncio.fixture
async def prefix_pair(broker: ThrowawayKafka) -> AsyncIterator[tuple[str, str]]:
    """Two fresh topic prefixes (the clean and the fault run), deleted after the test."""
    prefixes = (f"d{time.time_ns() % 10**10:010d}c.", f"d{time.time_ns() % 10**10:010d}f.")
    for prefix in prefixes:
        await ensure_topics(broker.bootstrap, prefix)
    yield prefixes
    for prefix in prefixes:
        await delete_topics(broker.bootstrap, prefix)


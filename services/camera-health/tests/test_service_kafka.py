"""camera-health from its real entry point (`python -m camera_health`) against the real broker.

Each test has its own topic prefix; the service is only ever talked to through Kafka (and its
/readyz endpoint to know when it has joined its group).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from camera_health.adapters.messages import (
    HEARTBEATS,
    incident_message,
    sample_from_heartbeat,
    status_message,
)
from camera_health.config import ThresholdBook, Thresholds
from camera_health.core.domain import CameraMonitor, replay
from smartcity.codec import from_timestamp, to_timestamp
from smartcity.simcontrol import send_fault
from smartcity.testing import ServiceProcess, consume, consume_all, free_port
from smartcity.v1 import camera_pb2

pytestmark = pytest.mark.kafka

HEARTBEATS_TOPIC = "camera.heartbeats.v1"
BATCHES_TOPIC = "camera.heartbeat-batches.v1"
STATUS_TOPIC = "camera.status.v1"
INCIDENTS_TOPIC = "camera.incidents.v1"
OPENED, RESOLVED = camera_pb2.INCIDENT_PHASE_OPENED, camera_pb2.INCIDENT_PHASE_RESOLVED
CRITICAL = 3


def heartbeat(camera_id: str, seq: int, at: float, **fields: Any) -> camera_pb2.CameraHeartbeat:
    values: dict[str, Any] = {"camera_id": camera_id, "site_id": "alun-alun", "seq": seq,
                              "observed_time": to_timestamp(at), "fps": 25.0, "configured_fps": 25.0,
                              "storage_free_percent": 60.0, "recording": True, "source": "agent"}
    values.update(fields)
    return camera_pb2.CameraHeartbeat(**values)


async def send(producer: AIOKafkaProducer, topic: str, beats: Iterable[camera_pb2.CameraHeartbeat]) -> None:
    for hb in beats:
        await producer.send(topic, hb.SerializeToString(), key=hb.camera_id.encode())
    await producer.flush()


async def send_batches(producer: AIOKafkaProducer, topic: str, beats: list[camera_pb2.CameraHeartbeat],
                       size: int = 10) -> None:
    """The heartbeats as CameraHeartbeatBatch messages of `size` (one site: their order kept)."""
    for start in range(0, len(beats), size):
        batch = camera_pb2.CameraHeartbeatBatch(site_id="alun-alun", heartbeats=beats[start:start + size])
        await producer.send(topic, batch.SerializeToString(), key=b"alun-alun")
    await producer.flush()


def start_service(run_service: Callable[..., ServiceProcess], prefix: str,
                  **env: str) -> tuple[ServiceProcess, int]:
    port = free_port()
    defaults = {"METRICS_PORT": str(port), "CAMERA_HEALTH_SESSION_TIMEOUT_S": "6",
                "CAMERA_SILENCE_CHECK_INTERVAL_S": "0.5", "CAMERA_STATUS_INTERVAL_S": "3600"}
    return run_service("camera_health", prefix, **(defaults | env)), port


async def wait_ready(proc: ServiceProcess, port: int, timeout_s: float = 45.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.running, f"camera-health exited:\n{proc.log_tail()}"
        try:
            await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/readyz")
            return
        except OSError:
            pass
        await asyncio.sleep(0.3)
    raise AssertionError(f"camera-health not ready within {timeout_s}s:\n{proc.log_tail()}")


async def scrape_until(port: int, text: str, timeout_s: float = 15.0) -> str:
    """/metrics once it shows `text` (or as it is when time runs out: the caller asserts)."""
    deadline, body = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
        if text in body:
            break
        await asyncio.sleep(0.3)
    return body


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


def batch_routes(port: int) -> dict[str, float]:
    """The worker's edge-batch heartbeats by route (direct, forwarded), from its /metrics."""
    found = re.findall(r'^smartcity_camera_batch_heartbeats_total\{route="(\w+)"\} ([0-9.e+]+)$',
                       _get(f"http://127.0.0.1:{port}/metrics"), re.M)
    return {route: float(count) for route, count in found}


def incidents_of(records: list[Any]) -> list[camera_pb2.CameraIncident]:
    return [camera_pb2.CameraIncident.FromString(r.value) for r in records]


def last_statuses(records: list[Any]) -> dict[str, camera_pb2.CameraStatus]:
    """The latest status per camera (what the compacted topic keeps; per-key order is preserved)."""
    last: dict[str, camera_pb2.CameraStatus] = {}
    for record in records:
        status = camera_pb2.CameraStatus.FromString(record.value)
        last[status.camera_id] = status
    return last


# --- heartbeats in -> statuses and incidents out ------------------------------------------------

async def test_heartbeats_in_statuses_and_incidents_out(kafka_bootstrap: str, topic_prefix: str,
                                                        producer: AIOKafkaProducer, run_service: Any) -> None:
    proc, port = start_service(run_service, topic_prefix, CAMERA_INCIDENT_RESOLVE_HOLD_S="0")
    await wait_ready(proc, port)
    t0 = time.time() - 60
    beats = [heartbeat("cam-a", i + 1, t0 + i * 5, recording=i not in (3, 4)) for i in range(8)]
    covered = [camera_pb2.TAMPER_FLAG_COVERED]
    beats += [heartbeat("cam-b", 1, t0), heartbeat("cam-b", 2, t0 + 5, tamper_flags=covered)]
    await send(producer, topic_prefix + HEARTBEATS_TOPIC, beats)

    incidents = incidents_of(await consume(kafka_bootstrap, topic_prefix + INCIDENTS_TOPIC,
                                           until=lambda r: len(r) >= 3, timeout_s=30))
    by_camera = defaultdict(list)
    for incident in incidents:
        by_camera[incident.camera_id].append((incident.phase, incident.cause, incident.severity))
    assert by_camera["cam-a"] == [(OPENED, "recording", CRITICAL), (RESOLVED, "recording", CRITICAL)]
    assert by_camera["cam-b"] == [(OPENED, "tamper", 2)]
    resolved = next(i for i in incidents if i.phase == RESOLVED)
    assert resolved.duration.ToSeconds() == 10  # not recording from t0+15 to t0+25

    statuses = last_statuses(await consume_all(kafka_bootstrap, topic_prefix + STATUS_TOPIC, settle_s=1.5))
    a, b = statuses["cam-a"], statuses["cam-b"]
    assert (a.health, a.open_incident_id, a.recording) == (1, "", True)
    assert 0 < a.availability.last_hour_ratio < 1  # 10 s of 25 s observed were CRITICAL
    assert b.health == 2 and [r.check for r in b.reasons] == ["tamper"]
    assert b.open_incident_id == next(i.incident_id for i in incidents if i.camera_id == "cam-b")


# --- silence -------------------------------------------------------------------------------------

async def test_a_silent_camera_opens_exactly_one_incident_and_resolves_it_on_return(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer, run_service: Any) -> None:
    proc, port = start_service(run_service, topic_prefix, CAMERA_HEARTBEAT_TOLERANCE_S="3",
                               CAMERA_INCIDENT_RESOLVE_HOLD_S="0")
    await wait_ready(proc, port)
    topic, seq = topic_prefix + HEARTBEATS_TOPIC, 0

    async def beat_for(seconds: float) -> float:
        nonlocal seq
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seq += 1
            sent_at = time.time()
            await send(producer, topic, [heartbeat("cam-quiet", seq, sent_at)])
            await asyncio.sleep(0.3)
        return sent_at

    last_seen = await beat_for(2)
    # Now nothing: the silence timer alone must notice, once the 3 s tolerance has passed.
    opened = incidents_of(await consume(kafka_bootstrap, topic_prefix + INCIDENTS_TOPIC,
                                        until=lambda r: len(r) >= 1, timeout_s=20))
    assert [(i.phase, i.cause, i.severity) for i in opened] == [(OPENED, "heartbeat", CRITICAL)]
    assert from_timestamp(opened[0].opened_time) == pytest.approx(last_seen + 3, abs=1e-3)  # event time
    await asyncio.sleep(3)  # more timer rounds while still silent: still one incident
    # The camera is back (and keeps sending): the incident resolves, nothing else opens.
    returning = asyncio.create_task(beat_for(8))
    await consume(kafka_bootstrap, topic_prefix + INCIDENTS_TOPIC, until=lambda r: len(r) >= 2, timeout_s=20)
    incidents = incidents_of(await consume_all(kafka_bootstrap, topic_prefix + INCIDENTS_TOPIC, settle_s=2))
    await returning
    assert [(i.phase, i.incident_id) for i in incidents] == [(OPENED, opened[0].incident_id),
                                                             (RESOLVED, opened[0].incident_id)]
    assert incidents[1].duration.ToSeconds() >= 3
    status = last_statuses(await consume_all(kafka_bootstrap, topic_prefix + STATUS_TOPIC, settle_s=1))
    assert status["cam-quiet"].health == 1 and status["cam-quiet"].open_incident_id == ""


# --- crash and restart ---------------------------------------------------------------------------

CRASH_THRESHOLDS = {"CAMERA_FPS_TOLERANCE_S": "30", "CAMERA_FPS_RECOVERY_S": "20",
                    "CAMERA_PACKET_LOSS_TOLERANCE_S": "30", "CAMERA_INCIDENT_RESOLVE_HOLD_S": "20",
                    "CAMERA_HEARTBEAT_TOLERANCE_S": "60", "CAMERA_TAMPER_RECOVERY_S": "10"}


def crash_input(start: float, cameras: int = 4, beats: int = 150,
                seed: int = 11) -> list[camera_pb2.CameraHeartbeat]:
    """A past hour-ish of heartbeats with faults, silences, duplicates and swapped neighbours."""
    rng = random.Random(seed)
    out: list[camera_pb2.CameraHeartbeat] = []
    for c in range(cameras):
        at, series = start, []
        for seq in range(1, beats + 1):
            at += 120 if rng.random() < 0.02 else 10  # now and then a silence past the tolerance
            phase = (seq // 25 + c) % 4
            series.append(heartbeat(f"cam-crash-{c}", seq, at, fps=10.0 if phase == 1 else 25.0,
                                    recording=not (phase == 2 and seq % 7 == 0),
                                    packet_loss_percent=9.0 if phase == 3 else 0.5,
                                    tamper_flags=[camera_pb2.TAMPER_FLAG_TOO_DARK] if seq % 40 == 0 else []))
        for i in range(1, len(series) - 1, 9):
            series[i], series[i + 1] = series[i + 1], series[i]  # out of order, within the window
        for i in sorted(rng.sample(range(len(series)), 15), reverse=True):
            series.insert(i + 2, series[i])  # duplicates
        out.extend(series)
    return out


def interleave(beats: list[camera_pb2.CameraHeartbeat]) -> list[camera_pb2.CameraHeartbeat]:
    """Round-robin across cameras, each camera's own order untouched."""
    per_camera: dict[str, list[camera_pb2.CameraHeartbeat]] = defaultdict(list)
    for hb in beats:
        per_camera[hb.camera_id].append(hb)
    out, queues = [], [list(q) for q in per_camera.values()]
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


def expected_outputs(beats: list[camera_pb2.CameraHeartbeat]) -> tuple[list[camera_pb2.CameraIncident],
                                                                        dict[str, camera_pb2.CameraStatus]]:
    defaults = Thresholds().with_overrides({k.removeprefix("CAMERA_").lower(): float(v)
                                            for k, v in CRASH_THRESHOLDS.items()}, "test")
    result = replay(CameraMonitor(ThresholdBook(defaults)),
                    [sample_from_heartbeat(HEARTBEATS.decode(hb.SerializeToString())) for hb in beats])
    return ([incident_message(i) for i in result.incidents],
            {cam: status_message(views[-1]) for cam, views in result.statuses.items()})


@pytest.mark.parametrize("batched", [False, True], ids=["single-heartbeats", "edge-batches"])
async def test_killed_worker_restarts_to_the_same_results_as_the_domain_computes(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer, run_service: Any,
        batched: bool) -> None:
    # The silence timer is parked (its "now" is wall clock, not input): every result here must
    # follow from the input alone, which the domain code computes directly for comparison.
    env = CRASH_THRESHOLDS | {"CAMERA_SILENCE_CHECK_INTERVAL_S": "3600"}
    beats = interleave(crash_input(time.time() - 2 * 3600))
    expected_incidents, expected_status = expected_outputs(beats)
    assert len(expected_incidents) >= 8 and len(expected_status) == 4  # the input exercises something
    topic = topic_prefix + (BATCHES_TOPIC if batched else HEARTBEATS_TOPIC)
    feed = send_batches if batched else send

    first, port = start_service(run_service, topic_prefix, **env)
    await wait_ready(first, port)
    half = len(beats) // 2
    await feed(producer, topic, beats[:half])
    await consume(kafka_bootstrap, topic_prefix + INCIDENTS_TOPIC, until=lambda r: len(r) >= 2, timeout_s=30)
    first.kill()  # SIGKILL mid-stream: nothing flushed, committed or closed on the way out
    await feed(producer, topic, beats[half:])

    second, port = start_service(run_service, topic_prefix, **env)
    await wait_ready(second, port, timeout_s=50)
    want_last = {cam: s.SerializeToString() for cam, s in expected_status.items()}

    def caught_up(records: list[Any]) -> bool:
        last = {cam: s.SerializeToString() for cam, s in last_statuses(records).items()}
        return last == want_last

    statuses = await consume(kafka_bootstrap, topic_prefix + STATUS_TOPIC, until=caught_up, timeout_s=40)
    assert last_statuses(statuses) == expected_status, second.log_tail()
    if batched:  # past its barriers the restarted worker applies batches where it reads them
        await feed(producer, topic, beats[-10:])  # again: duplicates by seq, nothing to publish
        deadline = time.monotonic() + 20
        while (routed := await asyncio.to_thread(batch_routes, port)).get("direct", 0) == 0:
            assert time.monotonic() < deadline, routed
            await asyncio.sleep(0.2)
    incidents = incidents_of(await consume_all(kafka_bootstrap, topic_prefix + INCIDENTS_TOPIC, settle_s=2))
    # Re-emissions after the crash repeat incidents byte for byte; no other incident appears.
    distinct = list(dict.fromkeys(i.SerializeToString() for i in incidents))
    assert sorted(distinct) == sorted(i.SerializeToString() for i in expected_incidents)
    assert len({(i.incident_id, i.phase) for i in incidents}) == len(expected_incidents)


# --- dead letters ----------------------------------------------------------------------------------

async def test_malformed_heartbeats_go_to_the_dlq_and_good_ones_still_flow(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer, run_service: Any) -> None:
    proc, port = start_service(run_service, topic_prefix)
    await wait_ready(proc, port)
    topic = topic_prefix + HEARTBEATS_TOPIC
    now = time.time()
    await producer.send_and_wait(topic, b"\x0a\xff\xff\xff not a heartbeat", key=b"cam-bad")
    await producer.send_and_wait(topic, heartbeat("", 1, now).SerializeToString(), key=b"cam-bad")
    await producer.send_and_wait(topic, heartbeat("cam-x", 1, now).SerializeToString(), key=b"cam-y")
    await send(producer, topic, [heartbeat("cam-good", 1, now), heartbeat("cam-good", 2, now + 1)])

    letters = await consume(kafka_bootstrap, topic + ".dlq", until=lambda r: len(r) >= 3, timeout_s=30)
    assert len(letters) == 3
    # Different keys, different partitions: the dead letters may come in any order.
    by_value = {r.value: dict(r.headers) for r in letters}
    garbage = by_value[b"\x0a\xff\xff\xff not a heartbeat"]  # the original bytes, untouched
    assert "not a smartcity.v1.CameraHeartbeat" in garbage["dlq.error"].decode()
    no_id = by_value[heartbeat("", 1, now).SerializeToString()]
    assert no_id["dlq.error"].decode() == ("invalid smartcity.v1.CameraHeartbeat: "
                                           "missing required field(s): camera_id")
    wrong_key = by_value[heartbeat("cam-x", 1, now).SerializeToString()]
    assert wrong_key["dlq.error"].decode() == "key 'cam-y' does not match camera_id 'cam-x'"
    assert {h["dlq.source.topic"].decode() for h in by_value.values()} == {topic}
    statuses = await consume(kafka_bootstrap, topic_prefix + STATUS_TOPIC,
                             until=lambda r: "cam-good" in last_statuses(r), timeout_s=30)
    assert last_statuses(statuses)["cam-good"].health == 1
    assert set(last_statuses(statuses)) == {"cam-good"}
    metrics = await scrape_until(port, 'smartcity_camera_cameras{health="ok",site="alun-alun"} 1.0')
    assert 'smartcity_camera_cameras{health="ok",site="alun-alun"} 1.0' in metrics  # set by the timer
    assert 'smartcity_dead_letters_total{service="camera-health",topic="' + topic + '"} 3.0' in metrics


async def test_a_bad_heartbeat_of_a_batch_goes_to_the_dlq_alone_and_its_neighbours_flow(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer, run_service: Any) -> None:
    proc, port = start_service(run_service, topic_prefix)
    await wait_ready(proc, port)
    topic = topic_prefix + BATCHES_TOPIC
    now = time.time()
    beats = [heartbeat("cam-a", 1, now), heartbeat("", 1, now), heartbeat("cam-b", 1, now),
             heartbeat("cam-c", 1, now, site_id="pendopo"), heartbeat("cam-a", 2, now + 1)]
    await producer.send_and_wait(topic, b"\x0a\xff\xff\xff not a batch", key=b"alun-alun")
    batch = camera_pb2.CameraHeartbeatBatch(site_id="alun-alun", heartbeats=beats)
    await producer.send_and_wait(topic, batch.SerializeToString(), key=b"alun-alun")

    statuses = await consume(kafka_bootstrap, topic_prefix + STATUS_TOPIC,
                             until=lambda r: {"cam-a", "cam-b"} <= set(last_statuses(r)), timeout_s=30)
    assert set(last_statuses(statuses)) == {"cam-a", "cam-b"}
    letters = await consume(kafka_bootstrap, topic + ".dlq", until=lambda r: len(r) >= 3, timeout_s=30)
    headers = [dict(r.headers) for r in letters]
    assert letters[0].value == b"\x0a\xff\xff\xff not a batch" and "dlq.batch.index" not in headers[0]
    where = [(h["dlq.source.offset"], h["dlq.batch.index"]) for h in headers[1:]]
    assert where == [(b"1", b"1"), (b"1", b"3")]
    assert "missing required field(s): camera_id" in headers[1]["dlq.error"].decode()
    assert camera_pb2.CameraHeartbeat.FromString(letters[2].value) == beats[3]


# --- fed by the simulator --------------------------------------------------------------------------

async def test_the_simulator_feeds_the_service_and_faults_become_incidents(
        kafka_bootstrap: str, topic_prefix: str, run_service: Any) -> None:
    control = free_port()
    run_service("camera_health.sim.simulator", topic_prefix, SIM_HEARTBEAT_INTERVAL_S="0.5",
                SIM_CAMERA_COUNT="2", SIM_CONTROL_PORT=str(control))
    proc, port = start_service(run_service, topic_prefix, CAMERA_HEARTBEAT_TOLERANCE_S="2.5",
                               CAMERA_INCIDENT_RESOLVE_HOLD_S="0", CAMERA_TAMPER_RECOVERY_S="0")
    await wait_ready(proc, port)
    status_topic, incident_topic = topic_prefix + STATUS_TOPIC, topic_prefix + INCIDENTS_TOPIC
    both = {"cam-alun-alun-1", "cam-alun-alun-2"}
    first = await consume(kafka_bootstrap, status_topic, until=lambda r: set(last_statuses(r)) == both)
    assert {s.health for s in last_statuses(first).values()} == {1}

    await asyncio.to_thread(send_fault, control, {"fault": "tamper", "target": "cam-alun-alun-1"})
    await asyncio.to_thread(send_fault, control, {"fault": "offline", "target": "cam-alun-alun-2"})
    opened = incidents_of(await consume(kafka_bootstrap, incident_topic, until=lambda r: len(r) >= 2))
    assert {(i.camera_id, i.phase, i.cause) for i in opened} == {
        ("cam-alun-alun-1", OPENED, "tamper"), ("cam-alun-alun-2", OPENED, "heartbeat")}

    await asyncio.to_thread(send_fault, control, {"fault": "clear", "target": "alun-alun"})
    done = incidents_of(await consume(kafka_bootstrap, incident_topic, until=lambda r: len(r) >= 4))
    assert {(i.camera_id, i.phase) for i in done[2:]} == {("cam-alun-alun-1", RESOLVED),
                                                          ("cam-alun-alun-2", RESOLVED)}
    healthy = await consume(kafka_bootstrap, status_topic, timeout_s=15,
                            until=lambda r: {s.health for s in last_statuses(r).values()} == {1})
    assert {s.health for s in last_statuses(healthy).values()} == {1}

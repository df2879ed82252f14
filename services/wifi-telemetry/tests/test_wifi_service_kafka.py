"""wifi-telemetry against the real broker, run from its entry point, talked to only through Kafka."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from smartcity.codec import from_timestamp
from smartcity.health import Health
from smartcity.inventory import access_points
from smartcity.simcontrol import send_fault
from smartcity.testing import ServiceProcess, consume, free_port
from smartcity.topics import load_catalogue
from smartcity.v1 import common_pb2, wifi_pb2
from wifi_telemetry.config import HealthConfig, WifiConfig
from wifi_telemetry.core.published import SiteStats
from wifi_telemetry.edge.readings import telemetry_from_reading
from wifi_telemetry.sim.scenario import Event, Expected, Fault, expected, simulated_events

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

WINDOW_NAMES = {common_pb2.STATS_WINDOW_MINUTE: "minute", common_pb2.STATS_WINDOW_HOUR: "hour",
                common_pb2.STATS_WINDOW_DAY: "day"}
Records = list[ConsumerRecord[Any, Any]]


def topic(prefix: str, name: str) -> str:
    return load_catalogue()[name].full_name(prefix)


Raw = tuple[str, str, bytes]


async def produce(producer: AIOKafkaProducer, prefix: str, events: Sequence[Event | Raw]) -> None:
    """Sends contract events (keyed by ap_id) or raw (catalogue topic, key, bytes) in order."""
    futures = []
    for event in events:
        if isinstance(event, tuple):
            name, key, value = event
        else:
            is_telemetry = isinstance(event, wifi_pb2.ApTelemetry)
            name = "wifi.ap-telemetry.v1" if is_telemetry else "wifi.client-sessions.v1"
            key, value = event.ap_id, event.SerializeToString()
        futures.append(await producer.send(topic(prefix, name), value=value, key=key.encode()))
    await asyncio.gather(*futures)


def as_batches(events: Sequence[Event], size: int = 50) -> list[Raw]:
    """The events as edge batch messages (one site each, up to `size` readings), in input order:
    a run of one kind and one site goes into one batch, as a site's collector would send it."""
    out: list[Raw] = []
    run: list[Event] = []

    def close() -> None:
        if not run:
            return
        site = run[0].site_id
        if isinstance(run[0], wifi_pb2.ApTelemetry):
            batch: Any = wifi_pb2.ApTelemetryBatch(
                site_id=site, readings=[e for e in run if isinstance(e, wifi_pb2.ApTelemetry)])
            out.append(("wifi.ap-telemetry-batches.v1", site, batch.SerializeToString()))
        else:
            batch = wifi_pb2.ClientSessionBatch(
                site_id=site, sessions=[e for e in run if isinstance(e, wifi_pb2.ClientSession)])
            out.append(("wifi.client-session-batches.v1", site, batch.SerializeToString()))
        run.clear()

    for event in events:
        if run and (type(event) is not type(run[0]) or event.site_id != run[0].site_id or len(run) >= size):
            close()
        run.append(event)
    close()
    return out


def latest_statuses(records: Records) -> dict[str, wifi_pb2.AccessPointStatus]:
    return {r.key.decode(): wifi_pb2.AccessPointStatus.FromString(r.value) for r in records}


def latest_stats(records: Records) -> dict[str, wifi_pb2.SiteWifiStats]:
    return {r.key.decode(): wifi_pb2.SiteWifiStats.FromString(r.value) for r in records}


class Outputs:
    """Follows the service's output topics, keeping the newest message per key."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.status_topic = topic(prefix, "wifi.ap-status.v1")
        self.stats_topic = topic(prefix, "wifi.site-stats.v1")
        self.bootstrap = bootstrap
        self.statuses: dict[str, wifi_pb2.AccessPointStatus] = {}
        self.stats: dict[str, wifi_pb2.SiteWifiStats] = {}
        self.status_history: list[wifi_pb2.AccessPointStatus] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Outputs:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                          auto_offset_reset="earliest", enable_auto_commit=False)
        await self._consumer.start()
        self._consumer.assign([TopicPartition(t, p) for t in (self.status_topic, self.stats_topic)
                               for p in range(load_catalogue()["wifi.ap-status.v1"].partitions)])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def wait_for(self, condition: Callable[[Outputs], bool], timeout_s: float, what: str,
                       explain: Callable[[Outputs], object] = lambda o: "") -> None:
        assert self._consumer is not None
        deadline = time.monotonic() + timeout_s
        while not condition(self):
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {explain(self)}"
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if record.topic == self.status_topic:
                        status = wifi_pb2.AccessPointStatus.FromString(record.value)
                        self.statuses[record.key.decode()] = status
                        self.status_history.append(status)
                    else:
                        self.stats[record.key.decode()] = wifi_pb2.SiteWifiStats.FromString(record.value)


def service_env(**overrides: str) -> dict[str, str]:
    """Short cadences for tests; the Faust data directory out of the repository."""
    base = {"WIFI_DATA_DIR": tempfile.gettempdir() + "/smartcity-tests", "METRICS_PORT": "0",
            "WIFI_TICK_INTERVAL_S": "0.2", "WIFI_STATUS_INTERVAL_S": "1", "WIFI_STATS_INTERVAL_S": "0.5",
            "WIFI_SITE_PARTITIONS": "3", "WIFI_SESSION_TIMEOUT_S": "6"}
    return base | overrides


def assert_matches(outputs: Outputs, want: Expected) -> None:
    """The newest status of every AP and stats of every site window equal the direct computation."""
    assert set(outputs.statuses) == set(want.statuses)
    for ap_id, view in want.statuses.items():
        got = outputs.statuses[ap_id]
        assert (got.health, got.last_seq, got.clients_now, got.uptime_seconds) == (
            int(view.health), view.state.last_seq, view.clients, view.state.uptime_s), ap_id
        assert (got.rx_bps, got.tx_bps) == pytest.approx((view.rx_bps, view.tx_bps)), ap_id
        assert from_timestamp(got.health_since) == pytest.approx(view.health_since, abs=1e-6), ap_id
        assert [r.check for r in got.reasons] == [r.check for r in view.reasons], ap_id
    assert set(outputs.stats) == set(want.stats)
    for key, stats in want.stats.items():
        got_stats = outputs.stats[key]
        assert stats_tuple(got_stats) == stats_tuple(stats), key
        assert got_stats.availability_ratio == pytest.approx(stats.availability_ratio), key


def stats_tuple(stats: wifi_pb2.SiteWifiStats | SiteStats) -> tuple[Any, ...]:
    if isinstance(stats, SiteStats):
        return (stats.site_id, stats.window, stats.start, stats.unique_users, stats.sessions_started,
                stats.peak_clients, stats.clients_now, stats.rx_bytes, stats.tx_bytes,
                stats.access_points_total, stats.access_points_up)
    return (stats.site_id, WINDOW_NAMES[stats.window], int(from_timestamp(stats.window_start)),
            stats.unique_users, stats.sessions_started, stats.peak_clients, stats.clients_now,
            stats.rx_bytes, stats.tx_bytes, stats.access_points_total, stats.access_points_up)


def differences(outputs: Outputs, want: Expected) -> list[str]:
    """What still differs between the newest outputs and the expectation (empty when caught up)."""
    late = [f"{ap}: seq {outputs.statuses[ap].last_seq if ap in outputs.statuses else None} "
            f"!= {v.state.last_seq}" for ap, v in want.statuses.items()
            if ap not in outputs.statuses or outputs.statuses[ap].last_seq != v.state.last_seq]
    wrong = [f"{k}: {stats_tuple(outputs.stats[k]) if k in outputs.stats else None} != {stats_tuple(s)}"
             for k, s in want.stats.items()
             if k not in outputs.stats or stats_tuple(outputs.stats[k]) != stats_tuple(s)]
    return late + wrong


def caught_up_with(want: Expected) -> Callable[[Outputs], bool]:
    """True once every AP's newest status and every site window reflect all of the input."""
    return lambda outputs: not differences(outputs, want)


def shuffled_nearby(events: list[Event], seed: int) -> list[Event]:
    """Redelivers some events and swaps neighbours: the disorder a real network causes."""
    rng = random.Random(seed)
    out = list(events)
    for i in range(len(out) - 1):
        if rng.random() < 0.15:
            out[i], out[i + 1] = out[i + 1], out[i]
    return out + [out[rng.randrange(len(out))] for _ in range(len(out) // 10)]


async def test_simulated_city_in_expected_statuses_and_site_stats_out(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: Callable[..., ServiceProcess]) -> None:
    aps = [ap for ap in access_points() if ap.site_id in ("alun-alun", "pendopo", "mpp")]
    steps = 40
    start = time.time() - steps * 10
    faults = [Fault(5, {"fault": "cpu_high", "target": "ap-pendopo-02"}),      # PROBLEM after 60 s
              Fault(12, {"fault": "reboot", "target": "ap-mpp-01"}),          # counter reset
              Fault(20, {"fault": "offline", "target": "ap-alun-alun-03", "duration_s": 150})]
    events = simulated_events(aps, start=start, steps=steps, interval_s=10, seed=7, faults=faults)
    env = service_env(WIFI_CPU_TOLERANCE_S="60")
    want = expected(WifiConfig(health=HealthConfig(cpu_tolerance_s=60)), events)
    # The scenario does what it says: a PROBLEM, a reboot and an outage seen in the data.
    assert want.statuses["ap-pendopo-02"].health == Health.PROBLEM
    assert want.statuses["ap-mpp-01"].state.reboots == 1
    assert want.statuses["ap-alun-alun-03"].availability_ratios()[0] < 1

    await produce(producer, topic_prefix, shuffled_nearby(events, seed=7))
    run_service("wifi_telemetry", topic_prefix, **env)
    async with Outputs(kafka_bootstrap, topic_prefix) as outputs:
        await outputs.wait_for(caught_up_with(want), 60, "the statuses and site stats of the input",
                               explain=lambda o: differences(o, want)[:10])
    assert_matches(outputs, want)
    cpu = outputs.statuses["ap-pendopo-02"]
    assert cpu.health == common_pb2.HEALTH_STATE_PROBLEM and cpu.reasons[0].check == "cpu"


async def _send_fault_when_up(port: int, command: dict[str, Any], timeout_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await asyncio.to_thread(send_fault, port, command)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def test_an_ap_that_stops_reporting_goes_critical_then_recovers(
        kafka_bootstrap: str, topic_prefix: str, run_service: Callable[..., ServiceProcess]) -> None:
    port = free_port()
    run_service("wifi_telemetry", topic_prefix, **service_env(WIFI_HEARTBEAT_TOLERANCE_S="2"))
    run_service("wifi_telemetry.sim.simulator", topic_prefix, WIFI_SIM_SITES="pendopo",
                WIFI_SIM_HEARTBEAT_S="0.5", SIM_CONTROL_PORT=str(port), WIFI_SIM_SEED="5")

    def health_of(ap_id: str, health: int) -> Callable[[Outputs], bool]:
        return lambda o: ap_id in o.statuses and o.statuses[ap_id].health == health

    async with Outputs(kafka_bootstrap, topic_prefix) as outputs:
        await outputs.wait_for(lambda o: all(health_of(f"ap-pendopo-0{i}", common_pb2.HEALTH_STATE_OK)(o)
                                             for i in (1, 2)), 40, "both Pendopo APs OK")
        offline = {"fault": "offline", "target": "ap-pendopo-01", "duration_s": 6}
        reply = await _send_fault_when_up(port, offline)
        assert reply["targets"] == ["ap-pendopo-01"]
        await outputs.wait_for(health_of("ap-pendopo-01", common_pb2.HEALTH_STATE_CRITICAL), 15,
                               "ap-pendopo-01 CRITICAL")
        down = outputs.statuses["ap-pendopo-01"]
        assert [r.check for r in down.reasons] == ["heartbeat"] and down.clients_now == 0
        # CRITICAL from the moment the tolerance ran out after the last heartbeat, not later.
        since, seen = from_timestamp(down.health_since), from_timestamp(down.last_seen)
        assert since == pytest.approx(seen + 2, abs=1e-3)
        assert outputs.statuses["ap-pendopo-02"].health == common_pb2.HEALTH_STATE_OK
        await outputs.wait_for(health_of("ap-pendopo-01", common_pb2.HEALTH_STATE_OK), 20,
                               "ap-pendopo-01 back to OK")
        back = outputs.statuses["ap-pendopo-01"]
        assert back.last_seq > down.last_seq and back.availability.last_hour_ratio < 1
        assert not back.reasons


@pytest.mark.parametrize("batched", [False, True], ids=["single-readings", "edge-batches"])
async def test_a_killed_worker_restarts_and_ends_with_what_the_input_says(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: Callable[..., ServiceProcess], batched: bool) -> None:
    steps = 300  # 21 APs: about 6,300 heartbeats and 1,000 sessions
    events = simulated_events(access_points(), start=time.time() - steps * 10, steps=steps, interval_s=10,
                              seed=11, faults=[Fault(100, {"fault": "reboot", "target": "owabong"}),
                                               Fault(150, {"fault": "cpu_high", "target": "ap-rsud-02"})])
    env = service_env(WIFI_ALLOWED_LATENESS_S="86400", WIFI_SITE_PARTITIONS="6")
    want = expected(WifiConfig(allowed_lateness_s=86400), events)
    # Batches: nothing lost, nothing counted twice either when a crash cuts through a batch.
    await produce(producer, topic_prefix, as_batches(events, size=20) if batched else events)

    worker = run_service("wifi_telemetry", topic_prefix, **env)
    async with Outputs(kafka_bootstrap, topic_prefix) as outputs:
        await outputs.wait_for(lambda o: len(o.statuses) >= 5, 40, "the first statuses")
        await asyncio.sleep(1.5)  # past a commit: the restart has state to recover and input to redo
        worker.kill()
        assert not caught_up_with(want)(outputs), "the worker finished before it could be killed"
        restarted = run_service("wifi_telemetry", topic_prefix, **env)
        await outputs.wait_for(caught_up_with(want), 60, "the restarted worker to finish the input",
                               explain=lambda o: differences(o, want)[:10])
        assert restarted.running
    assert_matches(outputs, want)


async def test_malformed_input_goes_to_the_dlq_with_a_reason_and_the_rest_is_processed(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: Callable[..., ServiceProcess]) -> None:
    now = time.time()
    mac = "a4:5e:60:12:34:56"

    def beat(seq: int, **extra: Any) -> wifi_pb2.ApTelemetry:
        return telemetry_from_reading({"ap_id": "ap-mpp-01", "site_id": "mpp", "seq": seq,
                                       "observed_time": now - 30 + seq, "clients": seq, **extra})

    def session(client: str, sid: str) -> wifi_pb2.ClientSession:
        return wifi_pb2.ClientSession(ap_id="ap-mpp-01", site_id="mpp", client_hash=client, session_id=sid,
                                      kind=wifi_pb2.SESSION_EVENT_KIND_CONNECT,
                                      event_time=beat(1).observed_time)

    good_hash = "ab" * 32
    await produce(producer, topic_prefix, [
        beat(1),
        ("wifi.ap-telemetry.v1", "ap-mpp-01", b"\x0a\xff\xff not protobuf"),
        beat(2, cpu_percent=140.0),
        session(mac, "s-raw"),
        session(good_hash, "s-good"),
        beat(3), beat(4), beat(5), beat(6),
    ])
    # Seq 2 is lost to the DLQ: seq 3 waits for it the reorder window (2 s of event time here).
    run_service("wifi_telemetry", topic_prefix, **service_env(WIFI_REORDER_WINDOW_S="2"))
    async with Outputs(kafka_bootstrap, topic_prefix) as outputs:
        await outputs.wait_for(lambda o: "ap-mpp-01" in o.statuses and o.statuses["ap-mpp-01"].last_seq == 6
                               and "mpp:hour" in o.stats and o.stats["mpp:hour"].unique_users == 1,
                               40, "the good events after the bad ones")
    assert outputs.statuses["ap-mpp-01"].clients_now == 6

    telemetry_dlq = await consume(kafka_bootstrap, topic(topic_prefix, "wifi.ap-telemetry.v1") + ".dlq",
                                  until=lambda r: len(r) >= 2, timeout_s=15)
    errors = [dict(r.headers)["dlq.error"].decode() for r in telemetry_dlq]
    assert len(errors) == 2 and "not a smartcity.v1.ApTelemetry" in errors[0] and "cpu_percent" in errors[1]
    assert telemetry_dlq[0].value == b"\x0a\xff\xff not protobuf"
    source = dict(telemetry_dlq[0].headers)["dlq.source.topic"].decode()
    assert source == topic(topic_prefix, "wifi.ap-telemetry.v1")
    sessions_dlq = await consume(kafka_bootstrap, topic(topic_prefix, "wifi.client-sessions.v1") + ".dlq",
                                 until=lambda r: len(r) >= 1, timeout_s=15)
    assert len(sessions_dlq) == 1
    assert "raw MAC" in dict(sessions_dlq[0].headers)["dlq.error"].decode()
    assert mac.encode() not in sessions_dlq[0].value
    assert wifi_pb2.ClientSession.FromString(sessions_dlq[0].value).session_id == "s-raw"


# 6 partitions like the batch topics: the batches are read directly by the processing agent; 3:
# they are checked and re-keyed through the by-site topic first.
@pytest.mark.parametrize("site_partitions", ["6", "3"], ids=["read-directly", "re-keyed"])
async def test_a_bad_reading_of_a_batch_goes_to_the_dlq_alone_and_its_neighbours_are_processed(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: Callable[..., ServiceProcess], site_partitions: str) -> None:
    now = time.time()
    mac = "a4:5e:60:12:34:56"

    def beat(seq: int, **extra: Any) -> wifi_pb2.ApTelemetry:
        return telemetry_from_reading({"ap_id": "ap-mpp-01", "site_id": "mpp", "seq": seq,
                                       "observed_time": now - 30 + seq, "clients": seq, **extra})

    def session(client: str, sid: str) -> wifi_pb2.ClientSession:
        return wifi_pb2.ClientSession(ap_id="ap-mpp-01", site_id="mpp", client_hash=client, session_id=sid,
                                      kind=wifi_pb2.SESSION_EVENT_KIND_CONNECT,
                                      event_time=beat(1).observed_time)

    readings = [beat(1), beat(2, cpu_percent=140.0), beat(3), beat(4)]
    other_site = telemetry_from_reading({"ap_id": "ap-rsud-01", "site_id": "rsud", "seq": 1,
                                         "observed_time": now - 20})
    telemetry = wifi_pb2.ApTelemetryBatch(site_id="mpp", readings=[*readings, other_site, beat(5), beat(6)])
    sessions = wifi_pb2.ClientSessionBatch(site_id="mpp", sessions=[session(mac, "s-raw"),
                                                                    session("ab" * 32, "s-good")])
    await produce(producer, topic_prefix, [
        ("wifi.ap-telemetry-batches.v1", "mpp", b"\x0a\xff\xff not protobuf"),
        ("wifi.ap-telemetry-batches.v1", "mpp", telemetry.SerializeToString()),
        ("wifi.client-session-batches.v1", "mpp", sessions.SerializeToString()),
    ])
    run_service("wifi_telemetry", topic_prefix, **service_env(WIFI_REORDER_WINDOW_S="2",
                                                               WIFI_SITE_PARTITIONS=site_partitions))
    async with Outputs(kafka_bootstrap, topic_prefix) as outputs:
        await outputs.wait_for(lambda o: "ap-mpp-01" in o.statuses and o.statuses["ap-mpp-01"].last_seq == 6
                               and "mpp:hour" in o.stats and o.stats["mpp:hour"].unique_users == 1,
                               40, "the good readings of the batches")
    assert outputs.statuses["ap-mpp-01"].clients_now == 6
    assert "ap-rsud-01" not in outputs.statuses

    batches_topic = topic(topic_prefix, "wifi.ap-telemetry-batches.v1")
    letters = await consume(kafka_bootstrap, batches_topic + ".dlq", until=lambda r: len(r) >= 3,
                            timeout_s=15)
    headers = [dict(r.headers) for r in letters]
    assert letters[0].value == b"\x0a\xff\xff not protobuf" and "dlq.batch.index" not in headers[0]
    # The bad readings alone, each with the offset of its batch (the second message) and its index.
    where = [(h["dlq.source.offset"], h["dlq.batch.index"]) for h in headers[1:]]
    assert where == [(b"1", b"1"), (b"1", b"4")]
    assert "cpu_percent" in headers[1]["dlq.error"].decode() and b"rsud" in headers[2]["dlq.error"]
    assert wifi_pb2.ApTelemetry.FromString(letters[1].value) == readings[1]
    assert wifi_pb2.ApTelemetry.FromString(letters[2].value) == other_site
    session_letters = await consume(kafka_bootstrap, topic(topic_prefix, "wifi.client-session-batches.v1")
                                    + ".dlq", until=lambda r: len(r) >= 1, timeout_s=15)
    assert len(session_letters) == 1 and dict(session_letters[0].headers)["dlq.batch.index"] == b"0"
    assert mac.encode() not in session_letters[0].value
    assert wifi_pb2.ClientSession.FromString(session_letters[0].value).session_id == "s-raw"

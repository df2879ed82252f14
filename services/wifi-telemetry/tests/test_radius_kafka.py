"""The RADIUS accounting collector as a process, fed by Debian's radclient, into real Kafka."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smartcity.edge_testing import free_udp_port, http_text, radclient, send_udp, wait_http_ok
from smartcity.testing import ServiceProcess, ThrowawayKafka, consume, free_port
from smartcity.topics import delete_topics, ensure_topics
from smartcity.v1 import wifi_pb2
from wifi_telemetry.core.privacy import ClientHasher
from wifi_telemetry.edge import radius_protocol as rp

pytestmark = [pytest.mark.kafka,
              pytest.mark.skipif(shutil.which("radclient") is None,
                                 reason="radclient missing: scripts/install_edge_tools.sh installs it")]

SECRET = "s3cret-nas"
SALT = "test-salt-radius"
MAC = "A4-5E-60-12-34-56"
NAS = "mikrotik-alun-alun"


def nas_file(tmp_path: Path) -> Path:
    (tmp_path / "alun.secret").write_text(SECRET + "\n")
    path = tmp_path / "nas.yaml"
    path.write_text(f"nas:\n  - nas_identifier: {NAS}\n    secret_file: alun.secret\n"
                    "    ap_id: ap-alun-alun-01\n    site_id: alun-alun\n"
                    "access_points:\n  'AA-BB-CC-00-00-02': {ap_id: ap-alun-alun-02}\n")
    return path


def accounting(status: str, session: str = "8100001a", **extra: str | int) -> dict[str, str | int]:
    return {"Acct-Status-Type": status, "Acct-Session-Id": session, "NAS-Identifier": NAS,
            "Calling-Station-Id": MAC, "Called-Station-Id": "AA-BB-CC-00-00-02:@wifi.pbg", **extra}


class Collector:
    def __init__(self, proc: ServiceProcess, port: int, metrics_port: int) -> None:
        self.proc, self.port, self.metrics_port = proc, port, metrics_port

    def metric(self, outcome: str) -> float:
        text = http_text(f"http://127.0.0.1:{self.metrics_port}/metrics")
        match = re.search(rf'^wifi_radius_packets_total\{{outcome="{outcome}"\}} (\S+)$', text, re.M)
        return float(match.group(1)) if match else 0.0


@pytest.fixture
def start_collector(run_service: Callable[..., ServiceProcess], tmp_path: Path) -> Callable[..., Collector]:
    def start(prefix: str, **env: str) -> Collector:
        port, metrics_port = free_udp_port(), free_port()
        proc = run_service("wifi_telemetry.edge.radius", prefix, WIFI_RADIUS_PORT=str(port),
                           WIFI_RADIUS_NAS_FILE=str(nas_file(tmp_path)), WIFI_CLIENT_HASH_SALT=SALT,
                           METRICS_PORT=str(metrics_port), WIFI_RADIUS_PRODUCE_TIMEOUT_S="3", **env)
        assert wait_http_ok(f"http://127.0.0.1:{metrics_port}/readyz", 60), proc.log_tail()
        return Collector(proc, port, metrics_port)

    return start


def sessions(records: list) -> list[wifi_pb2.ClientSession]:  # type: ignore[type-arg]
    return [wifi_pb2.ClientSession.FromString(r.value) for r in records]


async def test_radclient_start_interim_stop_become_hashed_sessions(
        kafka_bootstrap: str, topic_prefix: str, start_collector: Callable[..., Collector]) -> None:
    collector = start_collector(topic_prefix)
    for status, extra in (("Start", {}),
                          ("Interim-Update", {"Acct-Session-Time": 60, "Acct-Input-Octets": 1000,
                                              "Acct-Output-Octets": 5000}),
                          ("Stop", {"Acct-Session-Time": 120, "Acct-Input-Octets": 7,
                                    "Acct-Input-Gigawords": 1, "Acct-Output-Octets": 9000,
                                    "Acct-Terminate-Cause": "User-Request"})):
        sent = await asyncio.to_thread(radclient, collector.port, SECRET, accounting(status, **extra))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "Accounting-Response" in sent.stdout
    topic = f"{topic_prefix}wifi.client-sessions.v1"
    records = await consume(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 3, timeout_s=20)
    events = sessions(records)
    assert [e.kind for e in events] == [wifi_pb2.SESSION_EVENT_KIND_CONNECT,
                                        wifi_pb2.SESSION_EVENT_KIND_INTERIM_UPDATE,
                                        wifi_pb2.SESSION_EVENT_KIND_DISCONNECT]
    assert {(e.ap_id, e.site_id) for e in events} == {("ap-alun-alun-02", "alun-alun")}
    assert {e.client_hash for e in events} == {ClientHasher(SALT).hash(MAC)}
    stop = events[2]
    assert (stop.rx_bytes, stop.tx_bytes, stop.session_time_seconds) == (2**32 + 7, 9000, 120)
    assert len({e.event_id for e in events}) == 3
    for record in records:
        assert b"a4-5e-60" not in record.value.lower() and b"a4:5e:60" not in record.value.lower()
    assert "a4-5e-60" not in collector.proc.log_tail(200).lower()


async def test_wrong_secret_unknown_nas_and_garbage_are_dropped_and_counted(
        kafka_bootstrap: str, topic_prefix: str, start_collector: Callable[..., Collector]) -> None:
    collector = start_collector(topic_prefix)
    wrong = await asyncio.to_thread(radclient, collector.port, "not-the-secret", accounting("Start"),
                                    attempts=1, timeout_s=1)
    assert "Sent Accounting-Request" in wrong.stdout and "No reply" in wrong.stdout
    unknown = await asyncio.to_thread(radclient, collector.port, SECRET,
                                      accounting("Start", **{"NAS-Identifier": "rogue-nas"}), attempts=1,
                                      timeout_s=1)
    assert "Sent Accounting-Request" in unknown.stdout and "No reply" in unknown.stdout
    assert send_udp(collector.port, b"\x04\x01garbage", wait_reply_s=1) is None
    assert send_udp(collector.port, b"\x04\x01\x00\x30" + bytes(30), wait_reply_s=1) is None
    # Still serving, and nothing of the refused ones reached Kafka.
    good = await asyncio.to_thread(radclient, collector.port, SECRET, accounting("Start", session="good-1"))
    assert good.returncode == 0, good.stdout
    records = await consume(kafka_bootstrap, f"{topic_prefix}wifi.client-sessions.v1",
                            until=lambda rs: len(rs) >= 1, timeout_s=15)
    assert [e.session_id for e in sessions(records)] == ["good-1"]
    assert collector.metric("bad_authenticator") == 1
    assert collector.metric("unknown_nas") == 1
    assert collector.metric("too_short") + collector.metric("bad_length") == 2
    log = collector.proc.log_tail(200).lower()
    assert "a4-5e-60" not in log and "a4:5e:60" not in log


async def test_a_message_authenticator_from_radclient_is_verified(
        kafka_bootstrap: str, topic_prefix: str, start_collector: Callable[..., Collector]) -> None:
    collector = start_collector(topic_prefix)
    # radclient fills in the RFC 2869 Message-Authenticator (HMAC-MD5) when asked for one.
    request = accounting("Start", session="ma-1", **{"Message-Authenticator": "0x00"})
    signed = await asyncio.to_thread(radclient, collector.port, SECRET, request)
    assert signed.returncode == 0, signed.stdout
    assert "Message-Authenticator" in signed.stdout
    records = await consume(kafka_bootstrap, f"{topic_prefix}wifi.client-sessions.v1",
                            until=lambda rs: len(rs) >= 1, timeout_s=15)
    assert [e.session_id for e in sessions(records)] == ["ma-1"]
    assert collector.metric("bad_message_authenticator") == 0


async def test_an_authentic_request_without_a_session_is_dead_lettered_without_the_mac(
        kafka_bootstrap: str, topic_prefix: str, start_collector: Callable[..., Collector]) -> None:
    collector = start_collector(topic_prefix)
    request = accounting("Start")
    del request["Acct-Session-Id"]
    answered = await asyncio.to_thread(radclient, collector.port, SECRET, request)
    assert answered.returncode == 0, answered.stdout  # kept, so the NAS may stop resending it
    letters = await consume(kafka_bootstrap, f"{topic_prefix}wifi.client-sessions.v1.dlq",
                            until=lambda rs: len(rs) >= 1, timeout_s=15)
    assert len(letters) == 1
    letter = letters[0]
    headers = dict(letter.headers)
    assert b"Acct-Session-Id" in headers["dlq.error"]
    # The client-sessions dead-letter path keeps nothing it cannot parse as a session: the
    # packet (MAC pseudonymised by the collector, other attributes as the NAS sent them) is
    # withheld, and the headers say why and where it came from.
    assert letter.value is None and headers["dlq.payload"] == b"withheld"
    assert all(b"a4-5e-60" not in value.lower() for value in headers.values())
    assert collector.metric("unusable") == 1


async def test_a_retransmission_is_answered_without_a_second_event(
        kafka_bootstrap: str, topic_prefix: str, start_collector: Callable[..., Collector]) -> None:
    collector = start_collector(topic_prefix)
    attributes = [(rp.ACCT_STATUS_TYPE, (1).to_bytes(4, "big")), (rp.ACCT_SESSION_ID, b"retx-1"),
                  (rp.NAS_IDENTIFIER, NAS.encode()), (rp.CALLING_STATION_ID, MAC.encode())]
    packet = rp.sign_accounting_request(17, attributes, SECRET.encode())
    first = send_udp(collector.port, packet, wait_reply_s=5)
    again = send_udp(collector.port, packet, wait_reply_s=5)
    resigned = send_udp(collector.port, rp.sign_accounting_request(18, attributes, SECRET.encode()), 5)
    assert first is not None and first == again and first[0] == rp.CODE_ACCOUNTING_RESPONSE
    assert resigned is not None and resigned[1] == 18
    await asyncio.sleep(1)
    records = await consume(kafka_bootstrap, f"{topic_prefix}wifi.client-sessions.v1",
                            until=lambda rs: len(rs) >= 2, timeout_s=4)
    assert [e.session_id for e in sessions(records)] == ["retx-1"]
    assert collector.metric("retransmit_answered") == 1 and collector.metric("duplicate_event") == 1


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayKafka]:
    broker = ThrowawayKafka(tmp_path_factory.mktemp("radius-kafka")).start()
    try:
        yield broker
    finally:
        broker.stop()


async def test_a_nas_retransmits_through_a_broker_outage_and_nothing_is_lost(
        own_broker: ThrowawayKafka, start_collector: Callable[..., Collector], tmp_path: Path) -> None:
    prefix = "radius-outage."
    await ensure_topics(own_broker.bootstrap, prefix)
    try:
        collector = start_collector(prefix, KAFKA_BOOTSTRAP_SERVERS=own_broker.bootstrap)
        before = await asyncio.to_thread(radclient, collector.port, SECRET,
                                         accounting("Start", session="o-1"))
        assert before.returncode == 0, before.stdout
        own_broker.stop()
        unanswered = await asyncio.to_thread(radclient, collector.port, SECRET,
                                             accounting("Start", session="o-2"), attempts=1, timeout_s=4)
        assert "No reply" in unanswered.stdout, "answered while the broker was down"
        # A NAS that keeps retransmitting (every 3 s, 20 times) while the broker comes back.
        request = tmp_path / "o-3.txt"
        request.write_text(f'Acct-Status-Type = Start, Acct-Session-Id = "o-3", NAS-Identifier = "{NAS}", '
                           f'Calling-Station-Id = "{MAC}"\n')
        retrying = subprocess.Popen(  # noqa: ASYNC220 (it runs on while the test waits)
            ["radclient", "-x", "-r", "20", "-t", "3", "-f", str(request), f"127.0.0.1:{collector.port}",
             "acct", SECRET], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        await asyncio.sleep(4)
        assert retrying.poll() is None, "answered while the broker was down"
        started = time.monotonic()
        await asyncio.to_thread(own_broker.start)
        output, _ = await asyncio.to_thread(retrying.communicate, timeout=90)
        assert retrying.returncode == 0, output
        assert "Accounting-Response" in output
        records = await consume(own_broker.bootstrap, f"{prefix}wifi.client-sessions.v1",
                                until=lambda rs: {"o-1", "o-3"} <= {e.session_id for e in sessions(rs)},
                                timeout_s=30)
        by_session = {e.session_id: e.event_id for e in sessions(records)}
        assert {"o-1", "o-3"} <= set(by_session), f"{by_session} after {time.monotonic() - started:.0f}s"
        # Every copy of a record carries one event id: downstream counts it once.
        o3 = [e for e in sessions(records) if e.session_id == "o-3"]
        assert len({e.event_id for e in o3}) == 1
    finally:
        await delete_topics(own_broker.bootstrap, prefix)

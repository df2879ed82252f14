"""Citizens' contact data end to end (docs/personal-data.md), on a broker of this module's own.

The broker is private (tiny segments, an eager log cleaner: settings the shared one must not
have), so its segment files can be read after compaction. The real citizen-requests and gateway
processes run against it. The contact strings below must appear nowhere in plain text: not on
any topic, not in any segment file, log or /metrics page; once erased, nothing can decrypt them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from gateway_testing import GatewayProcess, Stubs, auth, make_starter, rpc_error, write_tokens
from smartcity.personal_data.keyring import Keyring, load_keyring
from smartcity.personal_data.keystore import DataKeyStore
from smartcity.personal_data.keytopic import DataKeyTopic
from smartcity.personal_data.local import add_kek, write_local_secrets
from smartcity.personal_data.subjects import SubjectHasher
from smartcity.settings import PlatformSettings
from smartcity.testing import ServiceProcess, ThrowawayKafka, consume_all, free_port, ready
from smartcity.topics import ensure_topics, load_catalogue
from smartcity.v1 import gateway_pb2, requests_pb2

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]
A = gateway_pb2
RS = requests_pb2

WULAN = RS.Reporter(name="Wulan Sekar Kinasih", phone="+62 857 2468 1357", email="wulan.kinasih@contoh.id")
# Every spelling of her contact that could leak: as typed, normalised, in parts.
NEEDLES = [b"Wulan", b"Kinasih", b"2468 1357", b"85724681357", b"24681357", b"wulan.kinasih", b"contoh.id"]
REJECTED = RS.Reporter(name="Gagal Terkirim", phone="0813 5791 3579")
CLOSED = RS.Reporter(name="Tutup Lama", email="tutup.lama@contoh.id")
NEEDLES += [b"Gagal Terkirim", b"57913579", b"Tutup Lama", b"tutup.lama"]
RETENTION_S = 8.0
# The data-key topic as the catalogue has it, but minutes become seconds.
FAST_COMPACTION = {"segment.ms": "1500", "max.compaction.lag.ms": "1500", "delete.retention.ms": "1000",
                   "min.cleanable.dirty.ratio": "0.01", "file.delete.delay.ms": "500"}


@dataclass
class City:
    broker: ThrowawayKafka
    prefix: str
    secrets: dict[str, str]
    logs: Path
    started: list[ServiceProcess]
    tokens: Path
    worker_metrics_port: int
    gateway: GatewayProcess | None = None

    def gateway_env(self, **extra: str) -> dict[str, str]:
        return self.secrets | {"PERSONAL_DATA_SWEEP_INTERVAL_S": "1",
                               "PERSONAL_DATA_RETENTION_DAYS": str(RETENTION_S / 86400)} | extra

    def start_gateway(self, **extra: str) -> GatewayProcess:
        return make_starter(self.broker.bootstrap, self.logs, self.started)(
            self.prefix, self.tokens, **self.gateway_env(**extra))

    @property
    def gw(self) -> GatewayProcess:
        assert self.gateway is not None
        return self.gateway

    async def restart_gateway(self) -> None:
        self.gw.proc.stop()
        self.gateway = self.start_gateway()
        await self.gateway.wait_serving(60)

    def topic(self, name: str) -> str:
        return load_catalogue()[name].full_name(self.prefix)

    def hasher(self) -> SubjectHasher:
        return SubjectHasher(Path(self.secrets["PERSONAL_DATA_SUBJECT_SALT_FILE"]).read_bytes().strip())

    def keyring(self) -> Keyring:
        return load_keyring(Path(self.secrets["PERSONAL_DATA_KEYRING"]),
                            self.secrets["PERSONAL_DATA_ACTIVE_KEK"], variable="K", active_variable="A")


def _metrics(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return bytes(reply.read())


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayKafka]:
    kafka = ThrowawayKafka(tmp_path_factory.mktemp("pd-kafka"), **{
        "log.cleaner.backoff.ms": "300", "log.retention.check.interval.ms": "1000",
        "log.segment.delete.delay.ms": "500", "log.cleaner.dedupe.buffer.size": "4194304",
    }).start()
    try:
        yield kafka
    finally:
        kafka.stop()


async def _speed_up_compaction(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, spec.full_name(prefix),
                                    configs=spec.config | FAST_COMPACTION)
                     for spec in load_catalogue().topics if spec.kind == "compacted"]
        await admin.alter_configs(resources)  # the whole config of each: catalogue + fast
    finally:
        await admin.close()


@pytest_asyncio.fixture(scope="module")
async def city(broker: ThrowawayKafka, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[City]:
    logs = tmp_path_factory.mktemp("pd-logs")
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(broker.bootstrap, prefix)
    await _speed_up_compaction(broker.bootstrap, prefix)
    port = free_port()
    env = os.environ | {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "SMARTCITY_TOPIC_PREFIX": prefix,
                        "LOG_FORMAT": "text", "PYTHONUNBUFFERED": "1", "METRICS_PORT": str(port),
                        "REQUESTS_BROKER_SESSION_TIMEOUT_S": "6"}
    started: list[ServiceProcess] = []
    worker = ServiceProcess([sys.executable, "-m", "citizen_requests"], env,
                            logs / "citizen-requests.log").start()
    started.append(worker)
    secrets = write_local_secrets(tmp_path_factory.mktemp("pd-secrets"), kek_id="k1")
    state = City(broker, prefix, secrets, logs, started, write_tokens(logs / "tokens.yaml"), port)
    try:
        state.gateway = state.start_gateway()
        await state.gateway.wait_serving(60)
        deadline = time.monotonic() + 90
        while not await asyncio.to_thread(ready, port):
            assert worker.running and time.monotonic() < deadline, worker.log_tail()
            await asyncio.sleep(0.5)
        yield state
    finally:
        for proc in reversed(started):
            proc.stop()


def submit(category: str, reporter: Any, key: str = "") -> Any:
    return A.SubmitRequestRequest(idempotency_key=key or f"key-{uuid.uuid4().hex}", category=category,
                                  title="Izin usaha", description="Mohon cek status NIB",
                                  address="Jl. Ahmad Yani", reporter=reporter)


async def get(stubs: Stubs, request_id: str, token: str) -> Any:
    return (await stubs.requests.GetRequest(A.GetRequestRequest(request_id=request_id),
                                            metadata=auth(token))).request


async def audit_events(city: City, until: Any, timeout_s: float = 20.0) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        records = await consume_all(city.broker.bootstrap, city.topic("requests.audit.v1"), settle_s=0.5)
        events = [RS.AuditEvent.FromString(r.value) for r in records]
        if until(events) or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.5)


async def live_keys(city: City) -> dict[bytes, Any]:
    """The data-key topic as a reader from the beginning sees it now (tombstones applied)."""
    latest: dict[bytes, Any] = {}
    for record in await consume_all(city.broker.bootstrap, city.topic("requests.data-keys.v1"), settle_s=0.5):
        latest[record.key] = record.value
    return {k: v for k, v in latest.items() if v is not None}


def assert_no_plaintext(where: str, data: bytes) -> None:
    found = [n.decode() for n in NEEDLES if n in data]
    assert not found, f"{where} holds contact data in plain text: {found}"


async def test_contact_data_is_encrypted_shown_to_the_routed_opd_only_and_erased_for_good(city: City) -> None:
    async with city.gw.channel() as channel:
        stubs = Stubs(channel)
        rid, second = await _submit_and_read(city, stubs)
        await _reject_a_submit(city, stubs)
        subject = city.hasher().subject_id(WULAN)
        assert subject is not None
        wrapped = [RS.DataKeyRecord.FromString(v).wrapped_key for k, v in (await live_keys(city)).items()
                   if k.startswith(subject.encode())]
        assert len(wrapped) == 1
        assert wrapped[0] in city.broker.segment_bytes(city.topic("requests.data-keys.v1"))  # on disk now
        await _erase(city, stubs, rid, second)

    # The wrapped key leaves the broker's disks (tiny segments here: seconds, not the hour).
    data_keys_topic = city.topic("requests.data-keys.v1")
    deadline = time.monotonic() + 60
    while any(w in city.broker.segment_bytes(data_keys_topic) for w in wrapped):
        assert time.monotonic() < deadline, "the destroyed data key is still in the segment files"
        await asyncio.sleep(0.5)
    await _nothing_decrypts(city, {rid, second})

    # A restarted gateway rebuilds its views from the topics: still erased, request still there.
    await city.restart_gateway()
    async with city.gw.channel() as channel:
        rebuilt = await get(Stubs(channel), rid, "t-dpmptsp")
        assert rebuilt.contact_data == RS.CONTACT_DATA_STATE_ERASED and not rebuilt.HasField("reporter")
        assert rebuilt.status == RS.REQUEST_STATUS_ACKNOWLEDGED
    await _scan_everything(city, must_see=[rid.encode(), second.encode()])


async def _submit_and_read(city: City, stubs: Stubs) -> tuple[str, str]:
    """Two requests of one citizen (the same phone, spelled two ways), read by whom may and
    whom may not; the reads on the audit topic and in the metric."""
    first = (await stubs.requests.SubmitRequest(submit("permits", WULAN), metadata=auth("t-portal"),
                                                timeout=30)).request
    rid = first.request_id
    assert not first.HasField("reporter") and first.contact_data == RS.CONTACT_DATA_STATE_AVAILABLE
    same_phone = RS.Reporter(name="W. S. Kinasih", phone="0857-2468-1357")
    second = (await stubs.requests.SubmitRequest(submit("permits", same_phone), metadata=auth("t-portal"),
                                                 timeout=30)).request.request_id
    seen = await get(stubs, rid, "t-dpmptsp")
    assert seen.reporter == WULAN and seen.contact_data == RS.CONTACT_DATA_STATE_AVAILABLE
    assert not seen.HasField("encrypted_reporter")
    other = await get(stubs, rid, "t-cc")
    assert not other.HasField("reporter") and other.contact_data == RS.CONTACT_DATA_STATE_AVAILABLE
    listed = await stubs.requests.ListRequests(A.ListRequestsRequest(opd_code="DPMPTSP"),
                                               metadata=auth("t-dpmptsp"))
    assert {r.request_id: r for r in listed.requests}[second].reporter == same_phone
    reads = await audit_events(city, lambda evs: sum(e.action == RS.AUDIT_ACTION_CONTACT_READ
                                                     for e in evs) >= 3)
    assert {(e.client_id, e.request_id, e.method) for e in reads
            if e.action == RS.AUDIT_ACTION_CONTACT_READ} >= {
        ("dpmptsp-app", rid, "GetRequest"), ("dpmptsp-app", rid, "ListRequests"),
        ("dpmptsp-app", second, "ListRequests")}
    assert not any(e.client_id in {"command-center", "citizen-portal"} for e in reads)
    metrics = (await asyncio.to_thread(_metrics, city.gw.metrics_port)).decode()
    assert 'smartcity_gateway_contact_reads_total{client="dpmptsp-app",method="GetRequest"} 1.0' in metrics
    return rid, second


async def _reject_a_submit(city: City, stubs: Stubs) -> None:
    """A rejected submit keeps no contact data past its rejection."""
    call = stubs.requests.SubmitRequest(submit("parking", REJECTED), metadata=auth("t-portal"), timeout=30)
    assert (await rpc_error(call)).code() == grpc.StatusCode.INVALID_ARGUMENT
    subject = city.hasher().subject_id(REJECTED)
    assert subject is not None
    assert not any(k.startswith(subject.encode()) for k in await live_keys(city))


async def _erase(city: City, stubs: Stubs, rid: str, second: str) -> None:
    """Erasure: the data-protection scope only, not every admin token; the requests live on."""
    erase = A.EraseContactDataRequest(request_id=rid, reason="surat permohonan 12/2026")
    denied = await rpc_error(stubs.protection.EraseContactData(erase, metadata=auth("t-admin")))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    erased = await stubs.protection.EraseContactData(erase, metadata=auth("t-dpo"), timeout=30)
    assert erased.erased and sorted(erased.request_ids) == sorted([rid, second])
    assert not (await stubs.protection.EraseContactData(erase, metadata=auth("t-dpo"), timeout=30)).erased
    for request_id in (rid, second):
        after = await get(stubs, request_id, "t-dpmptsp")
        assert not after.HasField("reporter") and after.contact_data == RS.CONTACT_DATA_STATE_ERASED
        assert after.category == "permits" and after.status == RS.REQUEST_STATUS_SUBMITTED
    ack = await stubs.requests.TransitionRequest(
        A.TransitionRequestRequest(request_id=rid, action=A.REQUEST_ACTION_ACKNOWLEDGE, note="diterima"),
        metadata=auth("t-dpmptsp"), timeout=30)
    assert ack.request.status == RS.REQUEST_STATUS_ACKNOWLEDGED
    assert ack.request.contact_data == RS.CONTACT_DATA_STATE_ERASED
    trail = await audit_events(city, lambda evs: any(e.action == RS.AUDIT_ACTION_CONTACT_ERASED for e in evs))
    erasures = [e for e in trail if e.action == RS.AUDIT_ACTION_CONTACT_ERASED]
    assert {e.request_id for e in erasures} == {rid, second}
    assert all(e.client_id == "dpo" and e.reason == "surat permohonan 12/2026" for e in erasures)


async def _nothing_decrypts(city: City, request_ids: set[str]) -> None:
    """Every envelope of the requests, tried with the KEK and the whole key topic: none opens."""
    requests: list[Any] = []
    for name in ("requests.state.v1", "requests.events.v1"):
        for record in await consume_all(city.broker.bootstrap, city.topic(name), settle_s=0.5):
            if record.value and record.key and record.key.decode() in request_ids:
                requests.append(RS.ServiceRequest.FromString(record.value) if name == "requests.state.v1"
                                else RS.RequestEvent.FromString(record.value).request)
    envelopes = [(r.request_id, r.encrypted_reporter) for r in requests if r.HasField("encrypted_reporter")]
    assert len(envelopes) >= 4 and all(e.ciphertext for _, e in envelopes)
    reader = DataKeyTopic(PlatformSettings("pd-test", kafka_bootstrap=city.broker.bootstrap,
                                           topic_prefix=city.prefix), DataKeyStore(city.keyring()))
    await reader.start(timeout_s=30)
    try:
        assert all(reader.store.open(envelope, rid) is None for rid, envelope in envelopes)
    finally:
        await reader.stop()


async def test_finished_requests_lose_their_contact_after_the_retention_period(city: City) -> None:
    async with city.gw.channel() as channel:
        stubs = Stubs(channel)
        rid = (await stubs.requests.SubmitRequest(submit("permits", CLOSED), metadata=auth("t-portal"),
                                                  timeout=30)).request.request_id
        assert (await get(stubs, rid, "t-dpmptsp")).reporter == CLOSED
        for action in (A.REQUEST_ACTION_ACKNOWLEDGE, A.REQUEST_ACTION_REJECT):
            await stubs.requests.TransitionRequest(
                A.TransitionRequestRequest(request_id=rid, action=action, note="bukan kewenangan"),
                metadata=auth("t-dpmptsp"), timeout=30)
        deadline = time.monotonic() + RETENTION_S + 20
        while (await get(stubs, rid, "t-dpmptsp")).contact_data != RS.CONTACT_DATA_STATE_ERASED:
            assert time.monotonic() < deadline, "the finished request's contact was not erased"
            await asyncio.sleep(0.5)
        trail = await audit_events(city, lambda evs: any(e.action == RS.AUDIT_ACTION_CONTACT_EXPIRED
                                                         and e.request_id == rid for e in evs))
        assert any(e.action == RS.AUDIT_ACTION_CONTACT_EXPIRED and e.request_id == rid for e in trail)
    await _scan_everything(city, must_see=[rid.encode()])


async def _scan_everything(city: City, must_see: Sequence[bytes] = ()) -> None:
    """Every topic's raw bytes, every file of the broker, every log, every /metrics page; what
    `must_see` names must be found on the topics and on disk (the scan reads the right bytes)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=city.broker.bootstrap)
    await admin.start()
    try:
        topics = sorted(await admin.list_topics())
    finally:
        await admin.close()
    assert city.topic("requests.events.v1") in topics
    assert any(t.startswith(city.prefix + "citizen-requests") for t in topics), topics  # the changelogs
    on_topics = bytearray()
    for topic in topics:
        for record in await consume_all(city.broker.bootstrap, topic, settle_s=0.3):
            raw = (record.key or b"") + (record.value or b"") + b"".join(v for _, v in record.headers or [])
            assert_no_plaintext(f"topic {topic}", raw)
            on_topics += raw
    on_disk = bytearray()
    for path in sorted(city.broker.data_dir.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            assert_no_plaintext(f"broker file {path.name}", data)
            on_disk += data
    assert all(needle in on_topics and needle in on_disk for needle in must_see)
    logs = sorted(city.logs.glob("*.log"))
    assert len(logs) >= 2
    for log in logs:
        assert_no_plaintext(f"log {log.name}", log.read_bytes())
    assert_no_plaintext("gateway /metrics", await asyncio.to_thread(_metrics, city.gw.metrics_port))
    worker_metrics = await asyncio.to_thread(_metrics, city.worker_metrics_port)
    assert_no_plaintext("citizen-requests /metrics", worker_metrics)


async def test_key_rotation_keeps_old_data_readable_and_a_bad_keyring_stops_the_gateway(
        city: City, tmp_path: Path) -> None:
    reporter = RS.Reporter(name="Rotasi Kunci", phone="0812 1212 3434")
    async with city.gw.channel() as channel:
        call = Stubs(channel).requests.SubmitRequest(submit("permits", reporter), metadata=auth("t-portal"),
                                                     timeout=30)
        rid = (await call).request.request_id
    city.gw.proc.stop()
    # A new KEK becomes active; the old one stays in the keyring to read what it wrapped.
    keyring = Path(city.secrets["PERSONAL_DATA_KEYRING"])
    add_kek(keyring, "k2")
    city.secrets["PERSONAL_DATA_ACTIVE_KEK"] = "k2"
    city.gateway = city.start_gateway()
    await city.gw.wait_serving(60)
    async with city.gw.channel() as channel:
        stubs = Stubs(channel)
        assert (await get(stubs, rid, "t-dpmptsp")).reporter == reporter
        newer = RS.Reporter(name="Kunci Baru", phone="0812 5656 7878")
        await stubs.requests.SubmitRequest(submit("permits", newer), metadata=auth("t-portal"), timeout=30)
    subject = city.hasher().subject_id(newer)
    assert subject is not None
    records = [RS.DataKeyRecord.FromString(v) for k, v in (await live_keys(city)).items()
               if k.startswith(subject.encode())]
    assert [r.kek_id for r in records] == ["k2"]

    # A keyring whose k1 is another key, one without k1, none at all: the gateway does not start.
    wrong = tmp_path / "wrong"
    add_kek(wrong, "k1")
    (wrong / "k2.key").write_text((keyring / "k2.key").read_text())
    lacking = tmp_path / "lacking"
    lacking.mkdir()
    (lacking / "k2.key").write_text((keyring / "k2.key").read_text())
    cases = [
        ({"PERSONAL_DATA_KEYRING": str(wrong)}, "KEK 'k1' in the keyring is not the key"),
        ({"PERSONAL_DATA_KEYRING": str(lacking)}, "KEK 'k1' is missing from the keyring"),
        ({"PERSONAL_DATA_KEYRING": ""}, "PERSONAL_DATA_KEYRING is not set"),
        ({"PERSONAL_DATA_KEYRING": str(tmp_path / "nowhere")}, "no such file or directory"),
    ]
    for env, message in cases:
        bad = city.start_gateway(**env)
        assert bad.proc.wait(60) not in (None, 0), f"the gateway started with {env}"
        assert message in bad.proc.log_tail(80), bad.proc.log_tail(80)
    await _scan_everything(city)

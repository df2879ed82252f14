"""Against a second, secured broker (SCRAM-SHA-512 over plain TCP and over TLS; see
smartcity.testing.SecuredKafka): the platform's own clients (producer, consumer group,
admin/ensure_topics) and a Faust service connect with the credentials the KAFKA_SECURITY_*
settings give them, and a wrong password fails fast and says why instead of hanging.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from smartcity.codec import ProtoCodec, to_timestamp
from smartcity.kafka import (
    KafkaAuthenticationError,
    client_security,
    make_consumer,
    make_producer,
    wait_for_broker,
)
from smartcity.settings import PlatformSettings
from smartcity.testing import SecuredKafka, ServiceProcess, consume
from smartcity.topics import delete_topics, ensure_topics, load_catalogue
from smartcity.v1 import wifi_pb2

pytestmark = pytest.mark.kafka
APP = "tests.foundation.roundtrip_app"


def settings_for(broker: SecuredKafka, protocol: str, prefix: str,
                 password: str | None = None) -> PlatformSettings:
    return PlatformSettings(service_name="secured", kafka_bootstrap=broker.bootstrap(protocol),
                            topic_prefix=prefix, kafka_security=broker.security(protocol, password))


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
async def test_producer_consumer_group_and_admin_with_scram(secured_kafka: SecuredKafka,
                                                            protocol: str) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}."
    settings = settings_for(secured_kafka, protocol, prefix)
    security = client_security(settings)
    created = await ensure_topics(settings.kafka_bootstrap, prefix, security=security)
    assert len(created) == len(load_catalogue().all_topics())
    topic = load_catalogue()["wifi.ap-telemetry.v1"].full_name(prefix)
    producer = make_producer(settings)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, f"v{n}".encode(), key=b"ap-1")
    finally:
        await producer.stop()
    consumer = make_consumer(settings, topic, group_id=settings.group_id)
    await consumer.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + 20
        while len(got) < 3 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got += [r.value or b"" for records in batch.values() for r in records]
        await consumer.commit()  # the group coordinator accepts the authenticated member
    finally:
        await consumer.stop()
    assert got == [b"v0", b"v1", b"v2"]
    assert await delete_topics(settings.kafka_bootstrap, prefix, security=security)


async def test_wrong_password_fails_fast_and_says_why(secured_kafka: SecuredKafka) -> None:
    started = time.monotonic()
    for protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        wrong = settings_for(secured_kafka, protocol, "x.", password="not-the-password")
        with pytest.raises(KafkaAuthenticationError, match="refused the connection as 'svc-test'") as refused:
            await wait_for_broker(wrong, timeout_s=30)
        assert "not-the-password" not in str(refused.value)
        with pytest.raises(KafkaConnectionError):  # the admin client gives up, no retry loop
            await asyncio.wait_for(
                ensure_topics(wrong.kafka_bootstrap, "x.", security=client_security(wrong)), 15)
    # No credentials at all (a plaintext client on the SASL port) does not get in either.
    anonymous = AIOKafkaProducer(bootstrap_servers=secured_kafka.sasl_bootstrap, request_timeout_ms=3000)
    with pytest.raises((KafkaConnectionError, asyncio.TimeoutError)):
        await asyncio.wait_for(anonymous.start(), 15)
    await anonymous.stop()
    assert time.monotonic() - started < 30


async def test_right_password_passes_wait_for_broker(secured_kafka: SecuredKafka) -> None:
    await wait_for_broker(settings_for(secured_kafka, "SASL_SSL", "x."), timeout_s=10)


def _worker(broker: SecuredKafka, prefix: str, tmp_path: Path, **env: str) -> ServiceProcess:
    full_env = os.environ | broker.env("SASL_SSL") | {
        "SMARTCITY_TOPIC_PREFIX": prefix, "LOG_FORMAT": "text", "PYTHONUNBUFFERED": "1"} | env
    return ServiceProcess([sys.executable, "-m", APP], full_env, tmp_path / f"worker-{len(env)}.log").start()


async def test_faust_service_runs_on_sasl_ssl_and_refuses_a_wrong_password(
        secured_kafka: SecuredKafka, tmp_path: Path) -> None:
    prefix = f"f{uuid.uuid4().hex[:8]}."
    settings = settings_for(secured_kafka, "SASL_SSL", prefix)
    security = client_security(settings)
    await ensure_topics(settings.kafka_bootstrap, prefix, security=security)
    # The service reads its whole configuration from the environment, password from a file.
    worker = _worker(secured_kafka, prefix, tmp_path)
    try:
        codec = ProtoCodec(wifi_pb2.ApTelemetry)
        producer = make_producer(replace(settings, service_name="feeder"))
        await producer.start()
        try:
            for seq in (1, 2):
                msg = wifi_pb2.ApTelemetry(ap_id="ap-s", seq=seq, cpu_percent=5.0)
                msg.observed_time.CopyFrom(to_timestamp(1_790_000_000 + seq))
                await producer.send_and_wait(f"{prefix}wifi.ap-telemetry.v1", codec.encode(msg),
                                             key=b"ap-s")
        finally:
            await producer.stop()
        records = await consume(settings.kafka_bootstrap, f"{prefix}roundtrip.counts",
                                until=lambda r: len(r) >= 2, timeout_s=45, security=security)
        assert [r.value for r in records] == [b"ap-s=1", b"ap-s=2"], worker.log_tail()
    finally:
        worker.stop()
    # The same service with a wrong password stops at once with the reason, not in a retry loop.
    password_file = tmp_path / "wrong-password"
    password_file.write_text("not-the-password")
    refused = _worker(secured_kafka, prefix, tmp_path, KAFKA_SASL_PASSWORD_FILE=str(password_file))
    # Bounded: stop() kills it after the timeout if it were still retrying.
    await asyncio.to_thread(refused.wait, 30)
    code = refused.stop()
    log = refused.log_tail(60)
    assert code not in (None, 0), log
    assert "KafkaAuthenticationError" in log and "refused the connection as 'svc-test'" in log, log
    assert "not-the-password" not in log
    await delete_topics(settings.kafka_bootstrap, prefix, security=security)

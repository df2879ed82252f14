"""Against the real broker: the shared Faust wiring (tests/foundation/roundtrip_app.py).

A table round-trips events and recovers from its changelog after a restart; a malformed
message lands in the DLQ with its reason while the good ones after it are processed; the trace
context a producer sends is continued by the processor.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry.sdk.trace import TracerProvider

from smartcity.codec import ProtoCodec, to_timestamp
from smartcity.testing import ServiceProcess, consume, consume_all
from smartcity.tracing import extract_context, inject_headers
from smartcity.v1 import wifi_pb2

pytestmark = pytest.mark.kafka
APP = "tests.foundation.roundtrip_app"
CODEC = ProtoCodec(wifi_pb2.ApTelemetry)


def telemetry(ap_id: str, seq: int) -> bytes:
    msg = wifi_pb2.ApTelemetry(ap_id=ap_id, seq=seq, cpu_percent=10.0)
    msg.observed_time.CopyFrom(to_timestamp(1_790_000_000 + seq))
    return CODEC.encode(msg)


async def send(producer: AIOKafkaProducer, prefix: str, ap_id: str, value: bytes,
               headers: list[tuple[str, bytes]] | None = None) -> None:
    await producer.send_and_wait(f"{prefix}wifi.ap-telemetry.v1", value, key=ap_id.encode(), headers=headers)


async def counts(bootstrap: str, prefix: str, expected: int) -> list[bytes]:
    records = await consume(bootstrap, f"{prefix}roundtrip.counts", until=lambda r: len(r) >= expected,
                            timeout_s=45)
    return [r.value for r in records]


async def test_table_recovers_from_changelog_after_restart(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: Callable[..., ServiceProcess]) -> None:
    worker = run_service(APP, topic_prefix)
    for seq in range(1, 4):
        await send(producer, topic_prefix, "ap-a", telemetry("ap-a", seq))
    first = await counts(kafka_bootstrap, topic_prefix, 3)
    assert first == [b"ap-a=1", b"ap-a=2", b"ap-a=3"], worker.log_tail()
    assert worker.stop() is not None
    restarted = run_service(APP, topic_prefix)
    for seq in range(4, 6):
        await send(producer, topic_prefix, "ap-a", telemetry("ap-a", seq))
    values = await counts(kafka_bootstrap, topic_prefix, 5)
    # The count goes on from 3: the table came back from its changelog, not from zero.
    assert values[3:] == [b"ap-a=4", b"ap-a=5"], restarted.log_tail()


async def test_records_delivered_while_recovery_seeks_are_counted_exactly_once(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: Callable[..., ServiceProcess]) -> None:
    # A restart with a table to recover: Faust's fetcher runs (it read the changelog) when the
    # recovery resumes the stream partitions and seeks them, here 2 s slower than usual
    # (tests/foundation/slow_seek.py), and each event takes 0.2 s. So when flow control then
    # resumes and clears the stream queue, part of the waiting records were counted and the
    # rest sat in the queue. Faust's own consumer (ROUNDTRIP_SCHEME=plain-slowseek) loses those
    # (for good on a partition never committed), and counts twice what the seek delivers again.
    env = {"ROUNDTRIP_SCHEME": "smartcity-slowseek", "ROUNDTRIP_EVENT_DELAY_S": "0.2"}
    topic = f"{topic_prefix}wifi.ap-telemetry.v1"
    worker = run_service(APP, topic_prefix, **env)
    await producer.send_and_wait(topic, telemetry("ap-x", 1), key=b"ap-x", partition=0)
    assert await counts(kafka_bootstrap, topic_prefix, 1) == [b"ap-x=1"], worker.log_tail()
    assert worker.stop() is not None  # partition 0 committed, the others never
    n = 12
    for seq in range(1, n + 1):
        await producer.send_and_wait(topic, telemetry("ap-w", seq), key=b"ap-w", partition=1)
        await producer.send_and_wait(topic, telemetry("ap-x", seq + 1), key=b"ap-x", partition=0)
    restarted = run_service(APP, topic_prefix, **env)
    await counts(kafka_bootstrap, topic_prefix, 2 * n + 1)
    values = [r.value for r in await consume_all(kafka_bootstrap, f"{topic_prefix}roundtrip.counts",
                                                 settle_s=3.0, timeout_s=60)]
    assert [v for v in values if v.startswith(b"ap-w=")] == [f"ap-w={i}".encode() for i in range(1, n + 1)], \
        restarted.log_tail()
    assert [v for v in values if v.startswith(b"ap-x=")] == [f"ap-x={i}".encode() for i in range(1, n + 2)], \
        restarted.log_tail()


async def test_malformed_message_goes_to_dlq_and_processing_continues(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: Callable[..., ServiceProcess]) -> None:
    worker = run_service(APP, topic_prefix)
    await send(producer, topic_prefix, "ap-b", telemetry("ap-b", 1))
    await send(producer, topic_prefix, "ap-b", b"\xff\xfe not protobuf")
    await send(producer, topic_prefix, "ap-b", wifi_pb2.ApTelemetry(seq=9).SerializeToString())  # no ap_id
    await send(producer, topic_prefix, "ap-b", telemetry("ap-b", 2))
    assert await counts(kafka_bootstrap, topic_prefix, 2) == [b"ap-b=1", b"ap-b=2"], worker.log_tail()
    letters = await consume(kafka_bootstrap, f"{topic_prefix}wifi.ap-telemetry.v1.dlq",
                            until=lambda r: len(r) >= 2)
    assert [r.value for r in letters] == [b"\xff\xfe not protobuf",
                                          wifi_pb2.ApTelemetry(seq=9).SerializeToString()]
    errors = [dict(r.headers)["dlq.error"].decode() for r in letters]
    assert "not a smartcity.v1.ApTelemetry" in errors[0]
    assert "missing required field(s): ap_id" in errors[1]
    assert dict(letters[0].headers)["dlq.source.topic"] == f"{topic_prefix}wifi.ap-telemetry.v1".encode()


async def test_trace_context_is_continued_across_kafka(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: Callable[..., ServiceProcess]) -> None:
    run_service(APP, topic_prefix)
    tracer = TracerProvider().get_tracer("test-producer")
    with tracer.start_as_current_span("submit") as span:
        headers = inject_headers()
    await send(producer, topic_prefix, "ap-c", telemetry("ap-c", 1), headers)
    records = await consume(kafka_bootstrap, f"{topic_prefix}roundtrip.counts", until=lambda r: len(r) >= 1,
                            timeout_s=45)
    assert records, "the processor produced nothing"
    from opentelemetry import trace

    child = trace.get_current_span(extract_context(records[0].headers)).get_span_context()
    parent = span.get_span_context()
    assert child.trace_id == parent.trace_id  # same trace...
    assert child.span_id != parent.span_id  # ...continued by a span of the processor

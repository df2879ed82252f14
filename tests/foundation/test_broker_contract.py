"""Against the real broker: every event type through the shared codec, and the client features
the platform relies on (idempotent acks=all producer, consumer groups, topic configs)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.structs import TopicPartition
from google.protobuf import symbol_database
from google.protobuf.message import Message

from smartcity.codec import ProtoCodec, to_timestamp
from smartcity.kafka import make_consumer, make_producer
from smartcity.settings import PlatformSettings
from smartcity.testing import consume, consume_all
from smartcity.topics import (
    InternalTopic,
    TopicLayoutError,
    delete_topics,
    ensure_internal_topics,
    ensure_topics,
    load_catalogue,
)
from smartcity.v1 import camera_pb2, requests_pb2, wifi_pb2  # noqa: F401  (registers types)

pytestmark = pytest.mark.kafka


def sample(type_name: str) -> Message:
    """A non-trivial instance of a catalogue value type: every scalar field set."""
    cls = symbol_database.Default().GetSymbol(type_name)
    message: Message = cls()
    for field in message.DESCRIPTOR.fields:
        if field.containing_oneof is not None or getattr(field, "is_repeated", False):
            continue
        if field.message_type is not None:
            if field.message_type.full_name == "google.protobuf.Timestamp":
                getattr(message, field.name).CopyFrom(to_timestamp(1_790_000_000.5))
            continue
        kind = field.cpp_type
        if field.enum_type is not None:
            setattr(message, field.name, field.enum_type.values[-1].number)
        elif field.type == field.TYPE_BYTES:
            setattr(message, field.name, f"{field.name}-\u00e9".encode())
        elif kind == field.CPPTYPE_STRING:
            setattr(message, field.name, f"{field.name}-\u00e9")
        elif kind == field.CPPTYPE_BOOL:
            setattr(message, field.name, True)
        elif kind in (field.CPPTYPE_FLOAT, field.CPPTYPE_DOUBLE):
            setattr(message, field.name, 12.5)
        else:
            setattr(message, field.name, 7)
    return message


async def test_every_event_type_round_trips_through_the_codec(kafka_bootstrap: str, topic_prefix: str,
                                                               producer: AIOKafkaProducer) -> None:
    catalogue = load_catalogue()
    sent: dict[str, Message] = {}
    for spec in catalogue.topics:
        message = sample(spec.value)
        codec = ProtoCodec(type(message))
        topic = spec.full_name(topic_prefix)
        await producer.send_and_wait(topic, codec.encode(message), key=b"id-1")
        sent[spec.name] = message
    for spec in catalogue.topics:
        records = await consume(kafka_bootstrap, spec.full_name(topic_prefix), until=lambda r: len(r) >= 1)
        assert len(records) == 1, spec.name
        decoded = ProtoCodec(type(sent[spec.name])).decode(records[0].value)
        assert decoded == sent[spec.name] and records[0].key == b"id-1"


async def test_idempotent_producer_and_consumer_group_commit(kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = PlatformSettings(service_name="compat", kafka_bootstrap=kafka_bootstrap,
                                topic_prefix=topic_prefix)
    topic = load_catalogue()["requests.commands.v1"].full_name(topic_prefix)
    producer = make_producer(settings)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=b"same-key")
    finally:
        await producer.stop()
    group = f"{topic_prefix}compat-group"
    consumer = make_consumer(settings, topic, group_id=group)
    await consumer.start()
    try:
        seen: list[bytes] = []
        partitions: set[TopicPartition] = set()
        while len(seen) < 10:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "consumer group got nothing within 5 s"
            seen += [r.value for part in batch.values() for r in part]
            partitions |= set(batch)
        await consumer.commit()
        assert len(partitions) == 1
        assert await consumer.committed(partitions.pop()) == 10
    finally:
        await consumer.stop()
    assert seen == [f"v{i}".encode() for i in range(10)]  # one key: one partition, in order
    # A new member of the same group resumes after the commit: nothing is read twice.
    again = make_consumer(settings, topic, group_id=group)
    await again.start()
    try:
        assert await again.getmany(timeout_ms=3000) == {}
    finally:
        await again.stop()


async def _topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        return {e[0]: e[1] for e in configs[0].resources[0][4]}
    finally:
        await admin.close()


async def test_topics_are_created_with_catalogue_configs_idempotently(kafka_bootstrap: str) -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}."
    try:
        first = await ensure_topics(kafka_bootstrap, prefix)
        assert len(first) == len(load_catalogue().all_topics())
        assert await ensure_topics(kafka_bootstrap, prefix) == []  # second run changes nothing
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            spec = load_catalogue()["requests.events.v1"]
            described = await admin.describe_topics([spec.full_name(prefix)])
            assert len(described[0]["partitions"]) == spec.partitions
        finally:
            await admin.close()
        entries = await _topic_configs(kafka_bootstrap, spec.full_name(prefix))
        for key, value in spec.config.items():
            assert entries[key] == value, key
    finally:
        await delete_topics(kafka_bootstrap, prefix)


async def test_internal_topics_exist_and_are_visible_before_a_worker_joins(kafka_bootstrap: str,
                                                                          topic_prefix: str) -> None:
    ticks = InternalTopic(f"{topic_prefix}svc-ticks", 6,
                          {"cleanup.policy": "delete", "retention.ms": "3600000"})
    changelog = InternalTopic(f"{topic_prefix}svc-state-changelog", 3, {"cleanup.policy": "compact"})

    created = await ensure_internal_topics(kafka_bootstrap, [ticks, changelog])

    assert created == [f"created {ticks.name} (6 partitions)", f"created {changelog.name} (3 partitions)"]
    # What a worker starting now sees in its very first metadata: both, complete.
    client = AIOKafkaClient(bootstrap_servers=kafka_bootstrap)
    await client.bootstrap()
    try:
        metadata = await client.fetch_all_metadata()
        assert metadata.partitions_for_topic(ticks.name) == set(range(6))
        assert metadata.partitions_for_topic(changelog.name) == set(range(3))
    finally:
        await client.close()
    assert (await _topic_configs(kafka_bootstrap, changelog.name))["cleanup.policy"] == "compact"
    assert (await _topic_configs(kafka_bootstrap, ticks.name))["retention.ms"] == "3600000"
    assert await ensure_internal_topics(kafka_bootstrap, [ticks, changelog]) == []


async def test_an_internal_topic_with_another_partition_count_is_refused_at_once(
        kafka_bootstrap: str, topic_prefix: str) -> None:
    changelog = InternalTopic(f"{topic_prefix}svc-state-changelog", 6, {"cleanup.policy": "compact"})
    await ensure_internal_topics(kafka_bootstrap, [changelog])

    with pytest.raises(TopicLayoutError, match=r"has 6 partitions, the service needs 4"):
        await ensure_internal_topics(kafka_bootstrap, [replace(changelog, partitions=4)], timeout_s=30)


async def test_read_committed_consumer_sees_a_committed_transaction(kafka_bootstrap: str,
                                                                    topic_prefix: str) -> None:
    topic = load_catalogue()["camera.incidents.v1"].full_name(topic_prefix)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic_prefix}tx")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"in-tx", key=b"k")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted", key=b"k")
        await producer.abort_transaction()
    finally:
        await producer.stop()
    committed = await consume_all(kafka_bootstrap, topic, isolation_level="read_committed")
    everything = await consume_all(kafka_bootstrap, topic)
    assert [r.value for r in committed] == [b"in-tx"]
    assert [r.value for r in everything] == [b"in-tx", b"aborted"]

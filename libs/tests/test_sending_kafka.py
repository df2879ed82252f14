"""Records sent past `Topic.send` on the real broker: a TableWriter's changelog records carry the
bytes Faust itself would have written (so a recovery decodes them), on the partition the writer
was given, deletes as tombstones; and a dead letter arrives whole with its headers."""

from __future__ import annotations

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.serializers import codecs

from smartcity.dlq import SourceRecord
from smartcity.settings import PlatformSettings
from smartcity.streams import create_app, faust_dead_letter_publisher
from smartcity.streams.batches import TableWriter
from smartcity.testing import consume_all

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]
AP = {"seq": 7, "cpu": [1.5, 2.0], "name": "Alun-alun"}


async def created(bootstrap: str, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 4, 1) for name in names])
    finally:
        await admin.close()


def app_with_table(kafka_bootstrap: str, topic_prefix: str) -> tuple[faust.App, faust.Table]:
    app = create_app(PlatformSettings("sending", kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix))
    table = app.Table("state", partitions=4, schema=faust.Schema(key_type=str, key_serializer="json",
                                                                 value_serializer="json"))
    return app, table


async def test_table_writer_records_are_faust_s_own_bytes_on_the_given_partitions(
        kafka_bootstrap: str, topic_prefix: str) -> None:
    app, table = app_with_table(kafka_bootstrap, topic_prefix)
    changelog = table.changelog_topic.get_topic_name()
    await created(kafka_bootstrap, changelog)
    writer = TableWriter(table)
    await app.producer.start()
    try:
        writer.partition = 3
        writer["ap:1"] = AP
        writer["gone"] = {"seq": 1}
        writer.partition = 1
        writer["site:a"] = {"aps": ["ap:1"]}
        assert await writer.flush() == 3
        writer.partition = 3
        del writer["gone"]
        await writer.flush()
        await app.producer.flush()
    finally:
        await app.producer.stop()

    records = await consume_all(kafka_bootstrap, changelog)
    by_key: dict[bytes, list[tuple[int, bytes | None]]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append((r.partition, r.value))
    # Keys and values as Faust's JSON serialiser writes them (what a recovery decodes).
    assert by_key[codecs.dumps("json", "ap:1")] == [(3, codecs.dumps("json", AP))]
    assert by_key[b'"site:a"'] == [(1, b'{"aps":["ap:1"]}')]
    assert by_key[b'"gone"'] == [(3, b'{"seq":1}'), (3, None)]  # the delete: a tombstone
    assert codecs.loads("json", by_key[b'"ap:1"'][0][1]) == AP
    assert table.data["ap:1"]["seq"] == 7 and "gone" not in table.data


async def test_a_dead_letter_arrives_whole_with_its_headers(kafka_bootstrap: str, topic_prefix: str) -> None:
    app, _ = app_with_table(kafka_bootstrap, topic_prefix)
    dlq = f"{topic_prefix}sending.dlq"  # the dead-letter twin of "<prefix>sending"
    await created(kafka_bootstrap, dlq)
    await app.producer.start()
    try:
        source = SourceRecord(topic=f"{topic_prefix}sending", partition=2, offset=41, key=b"k",
                              value=b"\x00bad", headers=[("traceparent", b"00-1-2-01")])
        await faust_dead_letter_publisher(app, "sending").publish(source, "not a heartbeat")
    finally:
        await app.producer.stop()
    [record] = await consume_all(kafka_bootstrap, dlq)
    assert (record.key, record.value) == (b"k", b"\x00bad")
    headers = list(record.headers)
    assert ("dlq.error", b"not a heartbeat") in headers and ("dlq.source.offset", b"41") in headers
    assert ("traceparent", b"00-1-2-01") in headers

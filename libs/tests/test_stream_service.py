"""The stream-service skeleton without a broker: what a service declares is what its worker owns,
and decode-or-dead-letter routes a bad record to the dead-letter topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from smartcity import topic_names
from smartcity.codec import ProtoCodec
from smartcity.dlq import DeadLetter, DeadLetterPublisher
from smartcity.settings import PlatformSettings
from smartcity.streams import StreamService, decode_or_dead_letter, internal_topics_of
from smartcity.v1 import camera_pb2

SETTINGS = PlatformSettings(service_name="svc", kafka_bootstrap="127.0.0.1:1", topic_prefix="p.")
HEARTBEATS: ProtoCodec[camera_pb2.CameraHeartbeat] = ProtoCodec(camera_pb2.CameraHeartbeat)


class Example(StreamService):
    def __init__(self) -> None:
        super().__init__(SETTINGS)
        self.heartbeats = self.catalogue_topic(topic_names.CAMERA_HEARTBEATS)
        self.ticks = self.internal_topic("ticks", 6, merged=True, deleting=True, retention=60.0)
        self.source = self.merged_channel(self.heartbeats.get_topic_name(), self.ticks.get_topic_name())
        self.table = self.app.Table("state", partitions=6)
        self.agent(self.source, self.process, "example-process")
        self.timer(1.0, self.watch, "example-watch")

    async def process(self, stream: faust.StreamT) -> None:
        async for _ in stream:
            pass

    async def watch(self) -> None:
        return None


def test_a_service_owns_what_it_declares() -> None:
    service = Example()
    assert service.heartbeats.get_topic_name() == "p.camera.heartbeats.v1"
    assert service.ticks.get_topic_name() == f"{SETTINGS.group_id}-ticks"
    assert set(service.source.topics) == {"p.camera.heartbeats.v1", f"{SETTINGS.group_id}-ticks"}
    assert [a.name for a in service.app.agents.values()] == ["example-process"]
    owned = {t.name for t in internal_topics_of(service.app, service.extra_internal_topics)}
    # The ticks are read among a catalogue topic: only `merged` makes the worker create them.
    assert owned == {f"{SETTINGS.group_id}-state-changelog", f"{SETTINGS.group_id}-ticks"}


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    headers: Any


@dataclass
class _Event:
    key: bytes | None
    value: bytes | None
    message: _Message


async def test_decode_or_dead_letter_decodes_validates_and_dead_letters() -> None:
    sent: list[DeadLetter] = []

    async def send(letter: DeadLetter) -> None:
        sent.append(letter)

    publisher = DeadLetterPublisher("svc", send)
    good = camera_pb2.CameraHeartbeat(camera_id="cam-1", seq=3).SerializeToString()

    def same_key(key: str, hb: camera_pb2.CameraHeartbeat) -> str | None:
        return None if key == hb.camera_id else f"key {key!r} is not {hb.camera_id!r}"

    ok = await decode_or_dead_letter(_Event(b"cam-1", good, _Message("p.camera.heartbeats.v1", 0, 7, None)),
                                     HEARTBEATS, publisher, "svc", same_key)
    assert ok is not None and ok.key == "cam-1" and ok.value.seq == 3 and ok.record.offset == 7
    wrong_key = _Event(b"cam-2", good, _Message("p.camera.heartbeats.v1", 0, 8, {"h": b"1"}))
    assert await decode_or_dead_letter(wrong_key, HEARTBEATS, publisher, "svc", same_key) is None
    garbage = _Event(b"cam-1", b"\xff\xff", _Message("p.camera.heartbeats.v1", 1, 9, [("h", None)]))
    assert await decode_or_dead_letter(garbage, HEARTBEATS, publisher, "svc") is None
    assert [letter.topic for letter in sent] == ["p.camera.heartbeats.v1.dlq"] * 2
    assert sent[0].value == good and "is not 'cam-1'" in dict(sent[0].headers)["dlq.error"].decode()
    assert sent[1].value == b"\xff\xff"

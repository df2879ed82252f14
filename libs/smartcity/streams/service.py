"""The stream-service skeleton: one way for every Faust service to declare itself.

    class MyService(StreamService):
        def __init__(self, settings, config):
            super().__init__(settings, broker_session_timeout=...)   # 1. the app
            self.heartbeats = self.catalogue_topic(Topics.X)          # 2. topics, up front
            self.ticks = self.internal_topic("ticks", partitions=12)
            self.state = self.app.Table("state", partitions=12)       # 3. tables
            self.agent(self.heartbeats, self.process, "my-process")  # 4. small agents
            self.timer(5.0, self.watch, "my-watch")                   # 5. timers

        async def process(self, stream):
            async for item in self.decoded(stream, CODEC):           # decode-or-dead-letter
                ...

    MyService(settings, config).serve()                               # __main__

    ┌───────────── StreamService ────────────────────────────────────────────────┐
    │ app (create_app)   dlq publisher   topics / tables / agents / timers       │
    │ decoded()/decode(): record ─► Decoded | <topic>.dlq                        │
    │ ready(): assigned and recovered (a service may add its own condition)      │
    │ serve(): internal topics ─► /metrics, /healthz, /readyz ─► Faust worker    │
    └────────────────────────────────────────────────────────────────────────────┘

Everything a message costs on its way in (decoding, the dead-letter check, the consumed
counter) happens in `smartcity.streams.dead_letters`, once for every service; events taken in
batches, batch messages and per-key-per-batch table writes in `smartcity.streams.batches`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import faust
from google.protobuf.message import Message

from smartcity.codec import ProtoCodec
from smartcity.settings import PlatformSettings
from smartcity.streams.app import create_app, internal_topic, raw_topic
from smartcity.streams.batches import DecodedBatch, ItemCheck, decode_batch_or_dead_letter
from smartcity.streams.dead_letters import (
    Accepted,
    Decoded,
    Validator,
    decode_all_or_dead_letter,
    decode_all_quickly,
    decode_or_dead_letter,
    decoded,
    faust_dead_letter_publisher,
)
from smartcity.streams.metrics import observe_latency
from smartcity.streams.readiness import assigned_and_recovered
from smartcity.streams.worker import serve

M = TypeVar("M", bound=Message)
B = TypeVar("B", bound=Message)
I = TypeVar("I", bound=Message)  # noqa: E741  (an item of a batch)
Agent = Callable[[faust.StreamT], Awaitable[None]]
Timer = Callable[[], Awaitable[None]]


class StreamService:
    """A Faust app with its dead-letter publisher, and the helpers to declare the rest."""

    def __init__(self, settings: PlatformSettings, **app_options: Any) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.app = create_app(settings, **app_options)
        self.dlq = faust_dead_letter_publisher(self.app, self.service)
        # Internal topics an agent reads among catalogue topics (Faust cannot tell them apart).
        self.extra_internal_topics: list[faust.TopicT] = []

    # -- declaring ------------------------------------------------------------------------

    def catalogue_topic(self, name: str) -> faust.TopicT:
        """A catalogue topic under the settings' prefix (raw bytes, catalogue partitions)."""
        return raw_topic(self.app, name, self.settings.topic_prefix)

    def internal_topic(self, suffix: str, partitions: int, *, merged: bool = False,
                       **options: Any) -> faust.TopicT:
        """`<group id>-<suffix>`, owned by this app; `merged` when an agent reads it together
        with catalogue topics (then `serve` still creates it first)."""
        topic = internal_topic(self.app, self.internal_topic_name(suffix), partitions, **options)
        if merged:
            self.extra_internal_topics.append(topic)
        return topic

    def internal_topic_name(self, suffix: str) -> str:
        return f"{self.settings.group_id}-{suffix}"

    def merged_channel(self, *full_names: str) -> faust.TopicT:
        """One channel over several topics (raw bytes), for an agent that must see their events
        in one order per partition (a stream and the ticks of its timer)."""
        return self.app.topic(*full_names, key_type=bytes, value_type=bytes, key_serializer="raw",
                              value_serializer="raw")

    def agent(self, channel: faust.ChannelT, handler: Agent, name: str) -> None:
        self.app.agent(channel, name=name)(handler)

    def timer(self, interval_s: float, handler: Timer, name: str) -> None:
        self.app.timer(interval_s, name=name)(handler)

    # -- the per-message path ---------------------------------------------------------------

    def decoded(self, stream: faust.StreamT, codec: ProtoCodec[M],
                validate: Validator[M] | None = None) -> AsyncIterator[Decoded[M]]:
        """The stream's messages decoded (and validated); the rest go to the dead-letter topic."""
        return decoded(stream, codec, self.dlq, self.service, validate)

    async def decode(self, event: Any, codec: ProtoCodec[M],
                     validate: Validator[M] | None = None) -> Decoded[M] | None:
        """One event decoded, or None once dead-lettered (for a stream that mixes topics)."""
        return await decode_or_dead_letter(event, codec, self.dlq, self.service, validate)

    async def decode_all(self, events: Sequence[Any], codec: ProtoCodec[M],
                         validate: Validator[M] | None = None) -> list[Decoded[M]]:
        """Events taken as a batch, decoded (counted once per batch); the rest dead-lettered."""
        return await decode_all_or_dead_letter(events, codec, self.dlq, self.service, validate)

    async def decode_quickly(self, events: Sequence[Any], message_type: type[M], quick: Callable[[M], bool],
                             codec: ProtoCodec[M]) -> list[Accepted[M]]:
        """`decode_all` for the hot path: a value `quick` passes is taken as parsed (see
        `decode_all_quickly`); any other goes through `codec` (validated or dead-lettered)."""
        return await decode_all_quickly(events, message_type, quick, codec, publisher=self.dlq,
                                        service=self.service)

    async def decode_batch(self, event: Any, codec: ProtoCodec[B], items_of: Callable[[B], Sequence[I]],
                           item_codec: ProtoCodec[I], *, check: ItemCheck[B, I] | None = None,
                           redact: Callable[[I], I] | None = None) -> DecodedBatch[B, I] | None:
        """A batch message with its good readings; each bad one dead-lettered alone."""
        return await decode_batch_or_dead_letter(event, codec, items_of, item_codec, publisher=self.dlq,
                                                 service=self.service, check=check, redact=redact)

    def observe_latency(self, topic: str, event_time_s: float) -> None:
        observe_latency(self.service, topic, event_time_s)

    # -- life -------------------------------------------------------------------------------

    def ready(self) -> bool:
        """Readiness, judged on the event loop: assigned and recovered, unless overridden."""
        return assigned_and_recovered(self.app)

    def serve(self) -> None:
        """Runs the service until SIGTERM/SIGINT (see `smartcity.streams.worker.serve`)."""
        serve(self.app, self.settings, extra_internal_topics=self.extra_internal_topics,
              ready=self.ready)

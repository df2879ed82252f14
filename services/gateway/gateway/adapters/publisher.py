"""Publishes RequestCommands to requests.commands.v1 (key request_id), with trace context."""

from __future__ import annotations

from typing import Any

from aiokafka.errors import KafkaError

from gateway.core.errors import ApiError, ErrorKind
from smartcity.codec import ProtoCodec
from smartcity.kafka import make_producer
from smartcity.settings import PlatformSettings
from smartcity.topics import load_catalogue
from smartcity.tracing import producer_span
from smartcity.v1 import requests_pb2

# A caller waits on every command: it goes out at once instead of lingering for company
# (the platform's producers wait 5 ms to fill batches).
COMMAND_LINGER_MS = 0


class CommandPublisher:
    def __init__(self, settings: PlatformSettings) -> None:
        self._topic = load_catalogue()["requests.commands.v1"].full_name(settings.topic_prefix)
        self._producer = make_producer(settings, linger_ms=COMMAND_LINGER_MS)
        self._codec = ProtoCodec(requests_pb2.RequestCommand)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, request_id: str, command: Any) -> None:
        """Sends and waits for the broker's ack (acks=all), in a producer span whose context goes
        in the headers."""
        try:
            with producer_span(self._topic, request_id) as headers:
                await self._producer.send_and_wait(
                    self._topic,
                    key=request_id.encode(),
                    value=self._codec.encode(command),
                    headers=headers,
                )
        except KafkaError as exc:
            raise ApiError(
                ErrorKind.UNAVAILABLE,
                f"the command could not be handed to Kafka ({type(exc).__name__}); retry (a submit with the "
                "same idempotency key)",
            ) from exc

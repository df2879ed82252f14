"""The audit trail on Kafka: AuditEvents to requests.audit.v1 (key request_id), acks=all.

A caller awaits `record` before it answers: contact data goes out only once its reading is on
the trail; when Kafka cannot take the events the caller gets AuditUnavailable and shows nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError
from prometheus_client import Counter

from smartcity.codec import ProtoCodec
from smartcity.kafka import make_producer
from smartcity.personal_data.audit import AUDIT_TOPIC
from smartcity.settings import PlatformSettings
from smartcity.topics import load_catalogue
from smartcity.v1 import requests_pb2

AUDIT_EVENTS = Counter(
    "smartcity_personal_data_audit_events_total",
    "Accountability events written to requests.audit.v1, by action (contact_read, contact_erased, ...)",
    ["service", "action"],
)
CODEC = ProtoCodec(requests_pb2.AuditEvent)


class AuditUnavailable(RuntimeError):
    """The audit topic did not take the events: what they record must not happen unrecorded."""


def action_label(event: Any) -> str:
    return requests_pb2.AuditAction.Name(event.action).removeprefix("AUDIT_ACTION_").lower()


class AuditLog:
    def __init__(self, settings: PlatformSettings) -> None:
        self._service = settings.service_name
        self.topic = load_catalogue()[AUDIT_TOPIC].full_name(settings.topic_prefix)
        self._producer = make_producer(settings, client_id=f"{settings.service_name}-audit")

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def record(self, events: Sequence[Any]) -> None:
        """Writes the events and waits for the broker's acks."""
        if not events:
            return
        try:
            futures = [await self._producer.send(self.topic, key=e.request_id.encode() or None,
                                                 value=CODEC.encode(e)) for e in events]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise AuditUnavailable(f"the audit topic did not take {len(events)} event(s) "
                                   f"({type(exc).__name__})") from exc
        for event in events:
            AUDIT_EVENTS.labels(self._service, action_label(event)).inc()

"""aiokafka producers and consumers configured the platform's way.

Producers are idempotent with acks=all (ARCHITECTURE.md, Guarantees); consumers commit only
after processing (at-least-once). Every service gets its clients here instead of wiring its own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from smartcity.settings import PlatformSettings


def producer_config(settings: PlatformSettings) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": settings.service_name,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "compression_type": None,
    }


def make_producer(settings: PlatformSettings, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent, acks=all producer (not yet started)."""
    return AIOKafkaProducer(**(producer_config(settings) | overrides))


def make_consumer(settings: PlatformSettings, *topics: str, group_id: str | None = None,
                  **overrides: Any) -> AIOKafkaConsumer:
    """A consumer of catalogue topics (full names) with manual commits (not yet started)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": settings.service_name,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }
    return AIOKafkaConsumer(*topics, **(config | overrides))


async def wait_for_broker(bootstrap: str, timeout_s: float = 60.0) -> None:
    """Waits until the cluster answers a metadata request, or raises TimeoutError."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        probe = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await probe.start()
            return
        except (KafkaConnectionError, KafkaError, OSError) as exc:
            last_error = exc
            await asyncio.sleep(0.5)
        finally:
            await probe.stop()
    raise TimeoutError(f"Kafka at {bootstrap} did not answer within {timeout_s:.0f}s: {last_error}")

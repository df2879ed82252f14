"""What the benchmarks share: the broker's security from the environment, and feeding topics
as fast as an idempotent producer allows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from smartcity.kafka import client_security
from smartcity.settings import KafkaSecurity

# The broker's security from KAFKA_SECURITY_* like the services (plaintext when unset).
SECURITY = client_security(KafkaSecurity.from_env())

Record = tuple[str, bytes, bytes]  # (topic, key, value)


async def produce_all(bootstrap: str, records: Iterable[Record], *, linger_ms: int = 5,
                      max_batch_size: int = 16384) -> float:
    """Sends every record with acks=all and idempotence, waits for every ack; returns seconds."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **SECURITY, acks="all", enable_idempotence=True,
                                linger_ms=linger_ms, max_batch_size=max_batch_size)
    await producer.start()
    started = time.perf_counter()
    try:
        pending = [await producer.send(topic, value, key=key) for topic, key, value in records]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started

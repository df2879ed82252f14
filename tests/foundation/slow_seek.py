"""Test transports that widen faust-streaming's post-recovery window (tests/foundation).

Faust's recovery resumes the stream partitions, then seeks them to their committed offsets,
then resumes flow control (clearing the stream queues). Here the seek takes `SEEK_DELAY_S`
longer, as a slow broker round trip would, so the fetcher reliably delivers records into the
queues before they are cleared. `smartcity-slowseek://` is the platform's consumer (with its
rewind); `plain-slowseek://` is Faust's own, to show what the rewind prevents.
"""

from __future__ import annotations

import asyncio
import os

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer

from smartcity.streams import IdempotentTransport, RewindingConsumer

SEEK_DELAY_S = float(os.environ.get("ROUNDTRIP_SEEK_DELAY_S", "2.0"))


class SlowSeekConsumer(RewindingConsumer):
    async def perform_seek(self) -> None:
        await asyncio.sleep(SEEK_DELAY_S)
        await super().perform_seek()


class PlainSlowSeekConsumer(FaustConsumer):  # type: ignore[misc]
    async def perform_seek(self) -> None:
        await asyncio.sleep(SEEK_DELAY_S)
        await super().perform_seek()


class SlowSeekTransport(IdempotentTransport):
    Consumer = SlowSeekConsumer


class PlainSlowSeekTransport(IdempotentTransport):
    Consumer = PlainSlowSeekConsumer


TRANSPORTS.aliases["smartcity-slowseek"] = "tests.foundation.slow_seek:SlowSeekTransport"
TRANSPORTS.aliases["plain-slowseek"] = "tests.foundation.slow_seek:PlainSlowSeekTransport"

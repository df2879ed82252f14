"""The gateway's API in memory: its views, command bus and hubs, commands decided by the real
request ledger (through `FakeRequestsService.decide`) without Kafka."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.core.api import Api, ApiLimits
from gateway.core.command_bus import CommandBus
from gateway.core.fanout import Hub
from gateway.core.views import Views
from gateway_testing.fake_requests import FakeRequestsService


def make_api(send_delay: float = 0.0, max_streams_per_client: int = 2) -> tuple[Api, FakeRequestsService]:
    """A ready Api whose commands are answered `send_delay` seconds after they are sent."""
    fake = FakeRequestsService("unused", "unused")
    views = Views()

    async def send(request_id: str, command: Any) -> None:
        events, _ = fake.decide(command)

        def deliver() -> None:
            for event in events:
                views.apply_event(event)
                bus.on_event(event)

        asyncio.get_running_loop().call_later(send_delay, deliver)

    bus = CommandBus(send)
    api = Api(
        views,
        bus,
        Hub(capacity=10),
        Hub(capacity=10),
        ApiLimits(command_timeout_s=1.0, max_streams_per_client=max_streams_per_client),
    )
    api.ready = True
    return api, fake

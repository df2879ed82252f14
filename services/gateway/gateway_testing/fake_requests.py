"""A stand-in citizen-requests service for the gateway's tests: the real request ledger on Kafka.

`FakeRequestsService` reads requests.commands.v1 for real and answers on requests.state.v1 and
requests.events.v1 with what citizen-requests' own ledger (`citizen_requests.core.ledger.Ledger`:
its lifecycle, transition table, SLAs, submit rules, idempotency) makes of each command, so the
gateway is tested against the service's rules rather than a copy of them. What it leaves out is
Faust: no tables, no timer (no SLA breach is flagged by the clock), one process.

Two test categories join the packaged routing: commands for "blackhole" are never answered,
those for "slow" are answered after `slow_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from citizen_requests.config import DEFAULT_CONFIG_PATH, parse_config
from citizen_requests.core.ledger import Ledger
from gateway_testing.messages import topic
from smartcity.topics import load_catalogue
from smartcity.v1 import requests_pb2

# category -> what the fake does with its commands
BLACKHOLE, SLOW = "blackhole", "slow"


def fake_ledger() -> Ledger:
    """A ledger with the packaged routing and SLAs of citizen-requests, plus the test categories."""
    with DEFAULT_CONFIG_PATH.open() as handle:
        raw = yaml.safe_load(handle)
    waste = raw["categories"]["waste"]
    raw["categories"].update({BLACKHOLE: dict(waste), SLOW: dict(waste)})
    return Ledger(parse_config(raw))


class FakeRequestsService:
    def __init__(self, bootstrap: str, prefix: str, slow_s: float = 2.0) -> None:
        self._bootstrap, self._prefix, self.slow_s = bootstrap, prefix, slow_s
        self.ledger = fake_ledger()
        self.commands: list[tuple[Any, list[tuple[str, bytes]]]] = []
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def requests(self) -> dict[str, Any]:
        """The requests as the ledger holds them now, by id."""
        return self.ledger.requests()

    def decide(self, command: Any) -> tuple[list[Any], Any]:
        """Applies a command to the ledger: (its events, in order; the new state or None)."""
        processed = self.ledger.command(command)
        return processed.events, processed.state

    async def start(self) -> FakeRequestsService:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True, linger_ms=0
        )
        await self._consumer.start()
        await self._producer.start()
        commands = topic(self._prefix, "requests.commands.v1")
        parts = [
            TopicPartition(commands, p) for p in range(load_catalogue()["requests.commands.v1"].partitions)
        ]
        self._consumer.assign(parts)
        await self._consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the position now: commands sent from here on are all seen
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        for task in [self._task, *self._background]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._consumer.stop()
        await self._producer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    command = requests_pb2.RequestCommand.FromString(record.value)
                    self.commands.append((command, list(record.headers or [])))
                    await self._handle(command)

    def _category_of(self, command: Any) -> str:
        if command.WhichOneof("action") == "submit":
            return str(command.submit.category)
        record = self.ledger.records.get(command.request_id)
        return str(record.request.category) if record is not None and record.request is not None else ""

    async def _handle(self, command: Any) -> None:
        category = self._category_of(command)
        if category == BLACKHOLE:
            return
        if category == SLOW:
            task = asyncio.create_task(self._answer_later(command))
            self._background.add(task)
            return
        await self._answer(command)

    async def _answer_later(self, command: Any) -> None:
        await asyncio.sleep(self.slow_s)
        await self._answer(command)

    async def _answer(self, command: Any) -> None:
        events, state = self.decide(command)
        key = command.request_id.encode()
        if state is not None:
            await self._producer.send_and_wait(
                topic(self._prefix, "requests.state.v1"), key=key, value=state.SerializeToString()
            )
        for event in events:
            await self._producer.send_and_wait(
                topic(self._prefix, "requests.events.v1"), key=key, value=event.SerializeToString()
            )

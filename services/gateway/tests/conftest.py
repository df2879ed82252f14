"""Fixtures of the gateway tests: test tokens, the gateway as a child process, gRPC channels.

The gateway always runs from its real entry point (`python -m gateway`) against the real
broker under the test's topic prefix; tests talk to it over gRPC and to the views via Kafka.
Helpers (token file, process handle, stubs) live in gateway_testing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gateway_testing import FakeRequestsService, GatewayProcess, Stubs, make_starter, write_tokens
from smartcity.testing import ServiceProcess
from smartcity.topics import ensure_topics


@pytest.fixture
def start_gateway(kafka_bootstrap: str, tmp_path: Path) -> Any:
    """Starts gateways for one test (stopped after it)."""
    started: list[ServiceProcess] = []
    yield make_starter(kafka_bootstrap, tmp_path, started)
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def module_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway")


@pytest.fixture(scope="module")
def tokens_file(module_logs: Path) -> Path:
    return write_tokens(module_logs / "tokens.yaml")


@pytest_asyncio.fixture(scope="module")
async def module_prefix(kafka_bootstrap: str) -> str:
    """A topic prefix shared by the tests of one module (every catalogue topic created)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix)
    return prefix


@pytest.fixture(scope="module")
def module_starter(kafka_bootstrap: str, module_logs: Path) -> Any:
    """Starts gateways for a whole module (stopped after it)."""
    started: list[ServiceProcess] = []
    yield make_starter(kafka_bootstrap, module_logs, started)
    for proc in started:
        proc.stop()


@pytest_asyncio.fixture(scope="module")
async def fake(kafka_bootstrap: str, module_prefix: str) -> AsyncIterator[FakeRequestsService]:
    """A stand-in citizen-requests service on the module's topics (modules that need it ask)."""
    service = await FakeRequestsService(kafka_bootstrap, module_prefix).start()
    yield service
    await service.stop()


@pytest_asyncio.fixture
async def stubs(gw: GatewayProcess) -> AsyncIterator[Stubs]:
    """Stubs of every service on a channel to the module's gateway (each module defines `gw`)."""
    async with gw.channel() as channel:
        yield Stubs(channel)

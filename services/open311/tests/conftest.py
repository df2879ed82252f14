"""Fixtures of the Open311 tests: the real platform (broker, citizen-requests, gateway) and the
facade, each from its real entry point as a child process (helpers in open311_testing).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession

from gateway_testing import GatewayProcess, make_starter
from open311_testing import FacadeStarter, facade_starter, http_ok, write_tokens
from smartcity.testing import ServiceProcess, free_port
from smartcity.topics import ensure_topics


@pytest.fixture(scope="module")
def module_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("open311")


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
def start_gateway(kafka_bootstrap: str, module_logs: Path) -> Iterator[Any]:
    started: list[ServiceProcess] = []
    yield make_starter(kafka_bootstrap, module_logs, started)
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def start_facade(module_logs: Path) -> Iterator[FacadeStarter]:
    started: list[ServiceProcess] = []
    yield facade_starter(module_logs, started)
    for proc in started:
        proc.stop()


@pytest_asyncio.fixture(scope="module")
async def citizen_requests(
    kafka_bootstrap: str, module_prefix: str, module_logs: Path
) -> AsyncIterator[None]:
    """The real citizen-requests service on the module's topics, until it is ready."""
    port = free_port()
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SMARTCITY_TOPIC_PREFIX": module_prefix,
        "LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
        "METRICS_PORT": str(port),
        "REQUESTS_BROKER_SESSION_TIMEOUT_S": "6",
    }
    worker = ServiceProcess(
        [sys.executable, "-m", "citizen_requests"], env, module_logs / "citizen-requests.log"
    ).start()
    try:
        deadline = time.monotonic() + 90
        while not await asyncio.to_thread(http_ok, f"http://127.0.0.1:{port}/readyz"):
            assert worker.running and time.monotonic() < deadline, worker.log_tail()
            await asyncio.sleep(0.5)
        yield
    finally:
        worker.stop()


@pytest_asyncio.fixture(scope="module")
async def gw(start_gateway: Any, module_prefix: str, tokens_file: Path) -> GatewayProcess:
    process: GatewayProcess = start_gateway(module_prefix, tokens_file)
    await process.wait_serving()
    return process


@pytest_asyncio.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session

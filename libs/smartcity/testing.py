"""Pytest plugin of the platform's integration tests (registered by the root conftest.py).

Fixtures give every test the real local broker and its own topic prefix, so tests never see
each other's messages and can run against one broker. Helpers produce and consume for real and
run a service from its real entry point as a child process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import IO, Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.topics import delete_topics, ensure_topics

REPO_ROOT = Path(__file__).resolve().parents[2]
Headers = list[tuple[str, bytes]]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reachable(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker of the test session: KAFKA_BOOTSTRAP_SERVERS, else the local one (started)."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP)
    if not _reachable(bootstrap):
        if bootstrap != LOCAL_BOOTSTRAP:
            pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} is not reachable")
        subprocess.run(["bash", str(REPO_ROOT / "deploy/local/kafka.sh"), "up"], check=True)
    return bootstrap


@pytest_asyncio.fixture
async def topic_prefix(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A fresh prefix with every catalogue topic created under it; deleted after the test.

    Deleting keeps a long test session from piling thousands of partitions on one broker.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix)
    yield prefix
    await delete_topics(kafka_bootstrap, prefix)


@pytest_asyncio.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    prod = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await prod.start()
    try:
        yield prod
    finally:
        await prod.stop()


async def consume(bootstrap: str, topic: str, *, until: Callable[[list[ConsumerRecord[Any, Any]]], bool],
                  timeout_s: float = 30.0, isolation_level: str = "read_uncommitted",
                  ) -> list[ConsumerRecord[Any, Any]]:
    """Reads `topic` from the beginning (no group) until `until(records)` holds or time runs out.

    Returns what was read either way; the caller asserts on it, so a timeout is a clear failure.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None,
                                isolation_level=isolation_level)
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        partitions: set[int] = set()
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await asyncio.sleep(0.2)
        if not partitions:
            return records  # the topic never appeared: the caller's assertion will say so
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        while not until(records) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def consume_all(bootstrap: str, topic: str, settle_s: float = 2.0, timeout_s: float = 30.0,
                      isolation_level: str = "read_uncommitted") -> list[ConsumerRecord[Any, Any]]:
    """Everything on a topic: reads until nothing new arrived for `settle_s`."""
    state = {"count": -1, "since": time.monotonic()}

    def settled(records: list[ConsumerRecord[Any, Any]]) -> bool:
        if len(records) != state["count"]:
            state["count"], state["since"] = len(records), time.monotonic()
        return time.monotonic() - state["since"] >= settle_s

    return await consume(bootstrap, topic, until=settled, timeout_s=timeout_s,
                         isolation_level=isolation_level)


class ServiceProcess:
    """A service started from its real entry point as a child process, logs to a file."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ServiceProcess:
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                      cwd=REPO_ROOT, start_new_session=True)
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, nothing flushed or committed on the way out."""
        if self._proc is not None and self.running:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        if self._proc is None:
            return None
        if self.running:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
        return self._proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def run_service(kafka_bootstrap: str, topic_prefix: str,
                tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Starts `python -m <module>` with the test's broker, prefix and extra env; stops them after.

    Depends on `topic_prefix` so that its processes stop before the prefix's topics go.
    """
    started: list[ServiceProcess] = []

    def start(module: str, prefix: str, *args: str, **env: str) -> ServiceProcess:
        full_env = os.environ | {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "SMARTCITY_TOPIC_PREFIX": prefix,
            "LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        } | env
        name = module.replace(".", "_")
        proc = ServiceProcess([sys.executable, "-m", module, *args], full_env,
                              tmp_path / f"{name}-{len(started)}.log").start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()

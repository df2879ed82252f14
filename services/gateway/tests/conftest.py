"""Fixtures of the gateway tests: test tokens, the gateway as a child process, gRPC channels.

The gateway always runs from its real entry point (`python -m gateway`) against the real
broker under the test's topic prefix; tests talk to it over gRPC and to the views via Kafka.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from smartcity.testing import ServiceProcess, free_port
from smartcity.topics import ensure_topics

# Test tokens: token -> (client_id, opd_code, scopes, extra)
TEST_TOKENS: dict[str, tuple[str, str, list[str], dict[str, Any]]] = {
    "t-dpmptsp": ("dpmptsp-app", "DPMPTSP", ["devices:read", "requests:read", "requests:write"], {}),
    "t-bpbd": ("bpbd-app", "BPBD", ["devices:read", "requests:read", "requests:write"], {}),
    "t-dlh": ("dlh-app", "DLH", ["requests:read", "requests:write"], {}),
    "t-cc": (
        "command-center",
        "",
        ["devices:read", "requests:read", "requests:read:all", "requests:write"],
        {"actor_kind": "command_center"},
    ),
    "t-portal": ("citizen-portal", "", ["requests:read", "requests:write"], {"actor_kind": "citizen"}),
    "t-devices": ("devices-dashboard", "", ["devices:read"], {}),
    "t-admin": ("admin", "", ["admin"], {"actor_kind": "system"}),
    "t-none": ("nobody", "", [], {}),
    "t-slow": ("slow-client", "", ["devices:read"], {"rate_limit_rps": 0.5, "rate_limit_burst": 3}),
}


def auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def write_tokens(path: Path) -> Path:
    tokens = {}
    for token, (client_id, opd, scopes, extra) in TEST_TOKENS.items():
        tokens[hashlib.sha256(token.encode()).hexdigest()] = {
            "client_id": client_id,
            "opd_code": opd,
            "scopes": scopes,
            **extra,
        }
    path.write_text(yaml.safe_dump({"tokens": tokens}))
    return path


@dataclass
class GatewayProcess:
    proc: ServiceProcess
    address: str
    metrics_port: int

    def channel(self, **options: Any) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.address, **options)

    async def wait_serving(self, timeout_s: float = 40.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if not self.proc.running:
                    raise AssertionError(f"gateway exited:\n{self.proc.log_tail()}")
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"gateway not SERVING within {timeout_s}s:\n{self.proc.log_tail()}")


GatewayStarter = Callable[..., GatewayProcess]


def make_starter(bootstrap: str, logs: Path, started: list[ServiceProcess]) -> GatewayStarter:
    def start(
        prefix: str, tokens_file: Path | None = None, port: int | None = None, **env: str
    ) -> GatewayProcess:
        port = port or free_port()
        metrics_port = free_port()
        full_env = (
            os.environ
            | {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "SMARTCITY_TOPIC_PREFIX": prefix,
                "LOG_FORMAT": "text",
                "PYTHONUNBUFFERED": "1",
                "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
                "METRICS_PORT": str(metrics_port),
                "GATEWAY_SHUTDOWN_GRACE_S": "5",
            }
            | ({"GATEWAY_TOKENS_FILE": str(tokens_file)} if tokens_file else {})
            | env
        )
        proc = ServiceProcess(
            [sys.executable, "-m", "gateway"],
            full_env,
            logs / f"gateway-{len(started)}-{uuid.uuid4().hex[:6]}.log",
        ).start()
        started.append(proc)
        return GatewayProcess(proc, f"127.0.0.1:{port}", metrics_port)

    return start


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

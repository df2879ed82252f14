"""The gateway as a child process for tests and the benchmark: test tokens and their file, the
process handle (start, health, signals), gRPC stubs and small waiting helpers."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.core.auth import hash_token
from smartcity.personal_data.local import write_local_secrets
from smartcity.testing import ServiceProcess, free_port
from smartcity.v1 import gateway_pb2_grpc


async def eventually(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Polls `check` until it holds (True) or the time is up (False)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval_s)


# Test tokens: token -> (client_id, opd_code, scopes, extra)
TEST_TOKENS: dict[str, tuple[str, str, list[str], dict[str, Any]]] = {
    "t-dpmptsp": ("dpmptsp-app", "DPMPTSP", ["devices:read", "requests:read", "requests:write"], {}),
    "t-bpbd": ("bpbd-app", "BPBD", ["devices:read", "requests:read", "requests:write"], {}),
    "t-dlh": ("dlh-app", "DLH", ["requests:read", "requests:write"], {}),
    "t-cc": (
        "command-center",
        "COMMAND_CENTER",
        ["devices:read", "requests:read", "requests:read:all", "requests:write"],
        {"actor_kind": "command_center"},
    ),
    "t-portal": ("citizen-portal", "", ["requests:read", "requests:write"], {"actor_kind": "citizen"}),
    "t-devices": ("devices-dashboard", "", ["devices:read"], {}),
    "t-admin": ("admin", "", ["admin"], {"actor_kind": "system"}),
    "t-dpo": ("dpo", "", ["data-protection"], {"actor_kind": "command_center"}),
    "t-none": ("nobody", "", [], {}),
    "t-slow": ("slow-client", "", ["devices:read"], {"rate_limit_rps": 0.5, "rate_limit_burst": 3}),
}


def auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def write_tokens(path: Path) -> Path:
    tokens = {}
    for token, (client_id, opd, scopes, extra) in TEST_TOKENS.items():
        tokens[hash_token(token)] = {
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
    # The certificate to trust when the gateway serves TLS.
    tls_ca: bytes | None = None

    def channel(self, **options: Any) -> grpc.aio.Channel:
        if self.tls_ca is None:
            return grpc.aio.insecure_channel(self.address, **options)
        target = self.address.replace("127.0.0.1", "localhost")
        return grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(self.tls_ca), **options)

    def signal(self, signum: int) -> None:
        """Sends a signal without waiting (the test's event loop keeps running meanwhile)."""
        assert self.proc._proc is not None
        os.killpg(self.proc._proc.pid, signum)

    async def wait_exit(self, timeout_s: float = 30.0) -> None:
        assert await eventually(lambda: not self.proc.running, timeout_s), "the gateway did not exit"

    async def wait_serving(self, timeout_s: float = 40.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with self.channel() as channel:
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
            # The KEK keyring and subject salt, made once per log folder (so restarts read
            # what earlier gateways wrote).
            | write_local_secrets(logs / "personal-data")
            | ({"GATEWAY_TOKENS_FILE": str(tokens_file)} if tokens_file else {})
            | env
        )
        proc = ServiceProcess(
            [sys.executable, "-m", "gateway"],
            full_env,
            logs / f"gateway-{len(started)}-{uuid.uuid4().hex[:6]}.log",
        ).start()
        started.append(proc)
        cert = full_env.get("GATEWAY_TLS_CERT_FILE")
        ca = Path(cert).read_bytes() if cert else None
        return GatewayProcess(proc, f"127.0.0.1:{port}", metrics_port, ca)

    return start


class Stubs:
    """The gateway's services on one channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.devices = gateway_pb2_grpc.DeviceServiceStub(channel)
        self.overview = gateway_pb2_grpc.OverviewServiceStub(channel)
        self.requests = gateway_pb2_grpc.RequestServiceStub(channel)
        self.protection = gateway_pb2_grpc.DataProtectionServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    """The error a call ends with (fails the test if it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err
    raise AssertionError("the call succeeded; an error was expected")

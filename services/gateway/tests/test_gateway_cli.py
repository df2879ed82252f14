"""The `smartcity` command (a subprocess) against the gateway's gRPC server in this process.

No Kafka: the server is the service's own (`grpc_server`) over the in-memory API, so what is
tested is the CLI's side of the wire: the watch notice, TLS with the system's CAs, and `top`
when its output is piped.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1._async import HealthServicer

from gateway.adapters.server import grpc_server
from gateway.core.auth import TokenStore
from gateway_testing import ap, write_tokens
from gateway_testing.in_memory import in_memory_config, make_api

pytestmark = pytest.mark.timeout(120)


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


class Served:
    def __init__(self, plain: str, tls: str, cert: Path) -> None:
        self.plain, self.tls, self.cert = plain, tls, cert


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async for item in _serve(tmp_path):
        yield item


async def _serve(tmp_path: Path, **settings: Any) -> AsyncIterator[Served]:
    config = in_memory_config(**settings)
    api, _ = make_api(max_streams_per_client=10)  # top opens three streams
    api.views.apply_access_point(ap("ap-alun-alun-01", health=3))
    tokens = TokenStore.load(write_tokens(tmp_path / "tokens.yaml"))
    server = grpc_server(config, tokens, api, HealthServicer())
    cert, key = await asyncio.to_thread(_certificate, tmp_path)
    plain = server.add_insecure_port("127.0.0.1:0")
    tls = server.add_secure_port(
        "127.0.0.1:0", grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    )
    await server.start()
    try:
        yield Served(f"127.0.0.1:{plain}", f"127.0.0.1:{tls}", cert)
    finally:
        api.stopping.set()
        await server.stop(0)


async def smartcity(*args: str, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smartcity_cli", *args,
        env=os.environ | {"SMARTCITY_TOKEN": "t-cc"} | env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_watch_says_it_is_watching_on_stderr(served: Served) -> None:
    code, out, err = await smartcity(
        "--address", served.plain, "watch", "snapshot", "--interval", "1", "--count", "1"
    )
    assert code == 0, err
    assert f"watching snapshot on {served.plain}… (Ctrl-C to stop)" in err
    assert "watching" not in out and out.strip()


async def test_tls_with_the_system_cas(served: Served) -> None:
    """SSL_CERT_FILE is where OpenSSL, hence "the system", finds its CAs; grpcio's own bundle
    does not know the gateway's certificate, so only --tls-system-ca reads it from there."""
    trust = {"SSL_CERT_FILE": str(served.cert)}
    code, out, err = await smartcity("--address", served.tls, "--tls-system-ca", "snapshot", **trust)
    assert code == 0, err
    assert "ap" in out.lower()
    code, _, err = await smartcity("--address", served.tls, "--timeout", "3", "snapshot", **trust)
    assert code == 1 and f"could not reach the gateway at {served.tls}" in err  # plaintext to a TLS port
    code, _, err = await smartcity(
        "--address", served.tls, "--timeout", "3", "snapshot", SMARTCITY_TLS_SYSTEM_CA="1", **trust
    )
    assert code == 0, err


async def test_top_once_piped_has_no_escape_codes_and_fits_columns(served: Served) -> None:
    code, out, err = await smartcity("--address", served.plain, "top", "--once", COLUMNS="60")
    assert code == 0, err
    assert not re.search("\x1b", out)
    assert "ACCESS POINTS not OK (1 of 1)" in out and "ap-alun-alun-01" in out
    assert max(len(line) for line in out.splitlines()) <= 60


async def test_watch_re_subscribes_when_the_gateway_closes_an_old_connection(tmp_path: Path) -> None:
    """max_connection_age ends every stream now and then (so watchers spread over new replicas):
    the CLI re-subscribes instead of failing."""
    async for served in _serve(tmp_path, max_connection_age_s=1.0, max_connection_age_grace_s=0.5):
        code, out, err = await smartcity(
            "--address", served.plain, "watch", "snapshot", "--interval", "1", "--duration", "6"
        )
        assert code == 0, err
        assert "re-subscribing" in err
        assert out.count("city snapshot") >= 4  # snapshots kept coming across the reconnections

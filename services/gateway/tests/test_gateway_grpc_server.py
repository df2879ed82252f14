"""The gateway's gRPC server in this process, without Kafka: what gRPC itself carries.

The servicers, the interceptor and the server options are the service's own (`grpc_server`);
the API behind them is the in-memory one of test_gateway_api. Covered here: the rich status of
INVALID_ARGUMENT (google.rpc.BadRequest in grpc-status-details-bin), authorization metadata as
gRPC delivers it, and the connection age that moves long watch streams to new replicas.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from grpc_health.v1._async import HealthServicer
from grpc_status import rpc_status

from gateway.adapters.server import grpc_server
from gateway.core.auth import TokenStore
from gateway_testing import FakeRequestsService, auth, write_tokens
from gateway_testing.in_memory import in_memory_config, make_api
from smartcity.v1 import gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.timeout(60)


@dataclasses.dataclass
class Served:
    channel: grpc.aio.Channel
    fake: FakeRequestsService


async def _serve(tmp_path: Any, **settings: Any) -> AsyncIterator[Served]:
    config = in_memory_config(**settings)
    config.check()
    api, fake = make_api()
    tokens = TokenStore.load(write_tokens(tmp_path / "tokens.yaml"))
    server = grpc_server(config, tokens, api, HealthServicer())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Served(channel, fake)
    finally:
        api.stopping.set()
        await server.stop(0)


@pytest_asyncio.fixture
async def served(tmp_path: Any) -> AsyncIterator[Served]:
    async for item in _serve(tmp_path):
        yield item


def bad_request_of(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)
    assert status is not None, "no grpc-status-details-bin trailer"
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and status.message == err.details()
    [detail] = status.details
    bad = error_details_pb2.BadRequest()
    assert detail.Unpack(bad)
    return [(v.field, v.description) for v in bad.field_violations]


async def test_invalid_argument_carries_bad_request_field_violations(served: Served) -> None:
    devices = gateway_pb2_grpc.DeviceServiceStub(served.channel)
    req = gateway_pb2.ListAccessPointsRequest()
    req.filter.radius_meters = 1e308
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await devices.ListAccessPoints(req, metadata=auth("t-cc"))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = bad_request_of(err.value)
    assert field == "filter.radius_meters" and "at most 50000 m" in description


async def test_a_submit_problem_names_its_field_in_the_details(served: Served) -> None:
    requests = gateway_pb2_grpc.RequestServiceStub(served.channel)
    req = gateway_pb2.SubmitRequestRequest(
        idempotency_key="grpc-0001", category="permits", description="flip\u202etxt", address="Jl. A"
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await requests.SubmitRequest(req, metadata=auth("t-portal"))
    [(field, description)] = bad_request_of(err.value)
    assert field == "description" and "U+202E" in description


async def test_other_errors_carry_no_bad_request(served: Served) -> None:
    devices = gateway_pb2_grpc.DeviceServiceStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await devices.GetAccessPoint(gateway_pb2.GetAccessPointRequest(ap_id="nope"), metadata=auth("t-cc"))
    assert err.value.code() is grpc.StatusCode.NOT_FOUND and rpc_status.from_call(err.value) is None


@pytest.mark.parametrize(
    "metadata, says",
    [
        ([("authorization", "Bearer t-cc"), ("authorization", "Bearer t-admin")], "2 authorization headers"),
        ([("authorization", "Bearer  t-cc")], "exactly one space"),
        ([("authorization", "Bearer t-cc ")], "leading or trailing whitespace"),
    ],
)
async def test_authorization_metadata_over_grpc(
    served: Served, metadata: list[tuple[str, str]], says: str
) -> None:
    devices = gateway_pb2_grpc.DeviceServiceStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await devices.ListAccessPoints(gateway_pb2.ListAccessPointsRequest(), metadata=metadata)
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED and says in (err.value.details() or "")
    any_case = [("authorization", "bEaReR t-cc")]
    ok = await devices.ListAccessPoints(gateway_pb2.ListAccessPointsRequest(), metadata=any_case)
    assert ok.total_size == 0


async def test_an_old_connection_is_closed_so_watchers_reconnect_elsewhere(tmp_path: Any) -> None:
    """After max_connection_age (+ grace) a watch stream ends with UNAVAILABLE; a client that
    re-subscribes gets a new connection, i.e. the load balancer may pick a new replica."""
    async for served in _serve(tmp_path, max_connection_age_s=1.0, max_connection_age_grace_s=1.0):
        overview = gateway_pb2_grpc.OverviewServiceStub(served.channel)
        started = time.monotonic()
        stream = overview.WatchCitySnapshot(gateway_pb2.WatchCitySnapshotRequest(), metadata=auth("t-cc"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async with asyncio.timeout(15):
                async for _ in stream:
                    pass
        lasted = time.monotonic() - started
        assert err.value.code() is grpc.StatusCode.UNAVAILABLE, err.value
        assert lasted >= 1.0  # not before the connection's age
        again = overview.WatchCitySnapshot(gateway_pb2.WatchCitySnapshotRequest(), metadata=auth("t-cc"))
        first = await again.read()
        assert first.snapshot.HasField("as_of")
        again.cancel()


def test_keepalive_and_connection_age_are_server_options() -> None:
    config = in_memory_config()
    options = dict(config.grpc_options())
    assert options["grpc.max_connection_age_ms"] == 300_000
    assert options["grpc.max_connection_age_grace_ms"] == 30_000
    assert options["grpc.keepalive_time_ms"] == 60_000 and options["grpc.keepalive_timeout_ms"] == 20_000

"""Fuzzed and invalid requests against a running gateway: it answers with a status and keeps serving."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_testing import GatewayProcess, auth
from smartcity.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, requests_pb2

pytestmark = pytest.mark.kafka
MAX_RECEIVE = 16 * 1024
# What a well-behaved server may answer to nonsense; never UNKNOWN or INTERNAL.
ACCEPTABLE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.FAILED_PRECONDITION,
}
SERVICES = [
    gateway_pb2.DESCRIPTOR.services_by_name[n] for n in ("DeviceService", "OverviewService", "RequestService")
]
METHODS = [(f"/{s.full_name}/{m.name}", m.server_streaming) for s in SERVICES for m in s.methods]


@pytest_asyncio.fixture(scope="module")
async def gw(module_prefix: str, module_starter: Any, tokens_file: Any) -> GatewayProcess:
    # No requests service answers here: valid writes end in DEADLINE_EXCEEDED after 0.3 s.
    process: GatewayProcess = module_starter(
        module_prefix,
        tokens_file,
        GATEWAY_COMMAND_TIMEOUT_S="0.3",
        GATEWAY_RATE_LIMIT_RPS="100000",
        GATEWAY_RATE_LIMIT_BURST="100000",
        GATEWAY_MAX_RECEIVE_BYTES=str(MAX_RECEIVE),
    )
    await process.wait_serving()
    return process


@pytest.fixture(scope="module")
def channel(gw: GatewayProcess) -> Iterator[grpc.Channel]:
    """A blocking channel: these tests need no event loop of their own."""
    with grpc.insecure_channel(gw.address) as ch:
        yield ch


def code_of(call: Any) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as err:
        return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def raw_call(channel: grpc.Channel, method: str, streaming: bool, data: bytes) -> grpc.StatusCode:
    """Sends bytes as the request of `method` (no serializer: the bytes go as they are)."""
    if not streaming:
        return code_of(lambda: channel.unary_unary(method)(data, metadata=auth("t-admin"), timeout=5))
    stream = channel.unary_stream(method)(data, metadata=auth("t-admin"), timeout=5)
    code = code_of(lambda: next(stream))
    stream.cancel()
    return code


def assert_serving(gw: GatewayProcess, channel: grpc.Channel) -> None:
    assert gw.proc.running, gw.proc.log_tail()
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    snapshot = gateway_pb2_grpc.OverviewServiceStub(channel).GetCitySnapshot(
        gateway_pb2.GetCitySnapshotRequest(), metadata=auth("t-admin"), timeout=5
    )
    assert snapshot.snapshot.HasField("as_of")


def test_random_bytes_to_every_method(gw: GatewayProcess, channel: grpc.Channel) -> None:
    rng = random.Random(20240607)
    codes: dict[grpc.StatusCode, int] = {}
    for method, streaming in METHODS:
        for _ in range(25):
            data = rng.randbytes(rng.randint(1, 300))
            code = raw_call(channel, method, streaming, data)
            codes[code] = codes.get(code, 0) + 1
            assert code in ACCEPTABLE, (method, data, code)
    assert codes.get(grpc.StatusCode.INVALID_ARGUMENT, 0) > len(METHODS)  # most garbage does not parse
    assert_serving(gw, channel)


def test_garbage_needs_a_token_first(gw: GatewayProcess, channel: grpc.Channel) -> None:
    code = code_of(lambda: channel.unary_unary(METHODS[0][0])(b"\xff\xff\xff", timeout=5))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_oversized_requests_are_refused(gw: GatewayProcess, channel: grpc.Channel) -> None:
    stub = gateway_pb2_grpc.RequestServiceStub(channel)
    huge = gateway_pb2.SubmitRequestRequest(
        idempotency_key="key-huge-1", category="permits", title="t", description="d" * (MAX_RECEIVE + 1)
    )
    code = code_of(lambda: stub.SubmitRequest(huge, metadata=auth("t-admin"), timeout=5))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    long_title = gateway_pb2.SubmitRequestRequest(
        idempotency_key="key-long-1", category="permits", title="t" * 5000, description="d"
    )
    try:
        stub.SubmitRequest(long_title, metadata=auth("t-admin"), timeout=5)
        raise AssertionError("a 5000-character title was accepted")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "title" in (err.details() or "")
    assert_serving(gw, channel)


def test_unknown_methods_are_unimplemented(channel: grpc.Channel) -> None:
    code = code_of(
        lambda: channel.unary_unary("/smartcity.v1.DeviceService/DeleteEverything")(
            b"", metadata=auth("t-admin"), timeout=5
        )
    )
    assert code == grpc.StatusCode.UNIMPLEMENTED


texts = st.text(max_size=200) | st.sampled_from(["", "key-00000001", "permits", "req-1", "x" * 3000])
floats = st.floats(allow_nan=True, allow_infinity=True)
any_int = st.integers(min_value=-(2**31), max_value=2**31 - 1)
messages = st.one_of(
    st.builds(
        lambda key, cat, title, lat, lon, prio, email: (
            "RequestService",
            "SubmitRequest",
            gateway_pb2.SubmitRequestRequest(
                idempotency_key=key,
                category=cat,
                title=title,
                description=title,
                location=common_pb2.GeoPoint(latitude=lat, longitude=lon),
                priority=prio,
                reporter=requests_pb2.Reporter(email=email),
            ),
        ),
        texts,
        texts,
        texts,
        floats,
        floats,
        any_int,
        texts,
    ),
    st.builds(
        lambda rid, action, note, version: (
            "RequestService",
            "TransitionRequest",
            gateway_pb2.TransitionRequestRequest(
                request_id=rid, action=action, note=note, expected_version=version
            ),
        ),
        texts,
        any_int,
        texts,
        st.integers(0, 2**64 - 1),
    ),
    st.builds(
        lambda opd, cat, status, size, token: (
            "RequestService",
            "ListRequests",
            gateway_pb2.ListRequestsRequest(
                opd_code=opd, category=cat, status=status, page_size=size, page_token=token
            ),
        ),
        texts,
        texts,
        any_int,
        any_int,
        texts,
    ),
    st.builds(
        lambda site, health, lat, lon, radius, size: (
            "DeviceService",
            "ListAccessPoints",
            gateway_pb2.ListAccessPointsRequest(
                filter=gateway_pb2.DeviceFilter(
                    site_id=site,
                    health=health,
                    radius_meters=radius,
                    near=common_pb2.GeoPoint(latitude=lat, longitude=lon),
                ),
                page_size=size,
            ),
        ),
        texts,
        any_int,
        floats,
        floats,
        floats,
        any_int,
    ),
    st.builds(
        lambda rid, size, token: (
            "RequestService",
            "ListRequestEvents",
            gateway_pb2.ListRequestEventsRequest(request_id=rid, page_size=size, page_token=token),
        ),
        texts,
        any_int,
        texts,
    ),
    st.builds(
        lambda site, window: (
            "OverviewService",
            "ListSiteStats",
            gateway_pb2.ListSiteStatsRequest(site_id=site, window=window),
        ),
        texts,
        any_int,
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(messages)
def test_generated_messages_get_a_proper_status(gw: GatewayProcess, channel: grpc.Channel, case: Any) -> None:
    service, method, message = case
    stub = getattr(gateway_pb2_grpc, f"{service}Stub")(channel)
    code = code_of(lambda: getattr(stub, method)(message, metadata=auth("t-admin"), timeout=5))
    assert code in ACCEPTABLE, (method, message, code)
    if method == "ListAccessPoints" and code == grpc.StatusCode.OK:
        assert math.isfinite(message.filter.radius_meters)


def test_still_serving_after_the_fuzzing(gw: GatewayProcess, channel: grpc.Channel) -> None:
    assert_serving(gw, channel)
    assert "Traceback" not in gw.proc.log_tail(400)

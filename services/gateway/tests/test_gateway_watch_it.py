"""Watch streams against a running gateway: changes arrive fast, slow subscribers are dropped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from gateway_testing import (
    CRITICAL,
    OK,
    PROBLEM,
    RS,
    GatewayProcess,
    Stubs,
    ap,
    auth,
    produce,
    reason,
    rpc_error,
    seal_as_the_gateway,
    service_request,
    topic,
)
from smartcity.v1 import gateway_pb2

pytestmark = pytest.mark.kafka
QUEUE = 20


@pytest_asyncio.fixture(scope="module")
async def gw(module_prefix: str, module_starter: Any, tokens_file: Any) -> GatewayProcess:
    process: GatewayProcess = module_starter(
        module_prefix, tokens_file, GATEWAY_WATCH_QUEUE_SIZE=str(QUEUE), GATEWAY_MAX_STREAMS_PER_CLIENT="4"
    )
    await process.wait_serving()
    return process


async def until_snapshot_end(call: Any) -> list[Any]:
    before: list[Any] = []
    while True:
        reply = await asyncio.wait_for(call.read(), timeout=20)
        assert reply is not grpc.aio.EOF, "stream ended before its snapshot end"
        if reply.WhichOneof("change") == "snapshot_end":
            return before
        before.append(reply)


async def test_device_health_change_reaches_a_watcher_within_a_second(
    stubs: Stubs, producer: AIOKafkaProducer, module_prefix: str
) -> None:
    await produce(producer, module_prefix, "wifi.ap-status.v1", "ap-w-1", ap("ap-w-1", site_id="mpp"))
    call = stubs.devices.WatchDevices(
        gateway_pb2.WatchDevicesRequest(send_snapshot=True, site_id="mpp"), metadata=auth("t-cc")
    )
    await until_snapshot_end(call)
    delays = []
    for health in (CRITICAL, OK, PROBLEM):
        status = ap(
            "ap-w-1", site_id="mpp", health=health, reasons=(reason("cpu", health),) if health != OK else ()
        )
        start = time.perf_counter()
        await produce(producer, module_prefix, "wifi.ap-status.v1", "ap-w-1", status)
        reply = await asyncio.wait_for(call.read(), timeout=10)
        delays.append(time.perf_counter() - start)
        assert reply.access_point.ap_id == "ap-w-1" and reply.access_point.health == health
    call.cancel()
    assert max(delays) < 1.0, f"watch delays {delays}"


async def test_new_request_reaches_its_opd_within_a_second_and_no_one_else(
    stubs: Stubs, producer: AIOKafkaProducer, module_prefix: str, kafka_bootstrap: str, module_logs: Path
) -> None:
    reporter = RS.Reporter(name="Siti", phone="+62 812 0000")
    routed = service_request("r-w-dpm", reporter=False)
    routed.encrypted_reporter.CopyFrom(
        await seal_as_the_gateway(kafka_bootstrap, module_prefix, module_logs, reporter, "r-w-dpm"))
    await asyncio.sleep(1.0)  # the gateway's key follower takes the new data key
    dpm = stubs.requests.WatchRequests(
        gateway_pb2.WatchRequestsRequest(send_snapshot=True), metadata=auth("t-dpmptsp")
    )
    bpbd = stubs.requests.WatchRequests(
        gateway_pb2.WatchRequestsRequest(send_snapshot=True), metadata=auth("t-bpbd")
    )
    await until_snapshot_end(dpm)
    await until_snapshot_end(bpbd)
    await produce(
        producer, module_prefix, "requests.state.v1", "r-w-bpbd", service_request("r-w-bpbd", opd_code="BPBD")
    )
    start = time.perf_counter()
    await produce(producer, module_prefix, "requests.state.v1", "r-w-dpm", routed)
    reply = await asyncio.wait_for(dpm.read(), timeout=10)
    delay = time.perf_counter() - start
    assert reply.request.request_id == "r-w-dpm" and reply.request.reporter == reporter  # its own OPD
    assert delay < 1.0
    assert (await asyncio.wait_for(bpbd.read(), timeout=10)).request.request_id == "r-w-bpbd"
    cc = stubs.requests.WatchRequests(
        gateway_pb2.WatchRequestsRequest(send_snapshot=True), metadata=auth("t-cc")
    )
    snapshot = {r.request.request_id: r.request for r in await until_snapshot_end(cc)}
    assert {"r-w-dpm", "r-w-bpbd"} <= set(snapshot) and not snapshot["r-w-dpm"].HasField("reporter")
    for call in (dpm, bpbd, cc):
        call.cancel()


async def test_watching_another_opd_needs_read_all(stubs: Stubs) -> None:
    call = stubs.requests.WatchRequests(
        gateway_pb2.WatchRequestsRequest(opd_code="BPBD"), metadata=auth("t-dpmptsp")
    )
    err = await rpc_error(call.read())
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "requests:read:all" in (err.details() or "")
    call = stubs.requests.WatchRequests(gateway_pb2.WatchRequestsRequest(), metadata=auth("t-devices"))
    err = await rpc_error(call.read())
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "requests:read" in (err.details() or "")


async def test_a_stalled_subscriber_is_dropped_and_others_keep_receiving(
    gw: GatewayProcess, producer: AIOKafkaProducer, module_prefix: str
) -> None:
    flood = 1500
    big = tuple(reason(f"check-{i}", PROBLEM, "x" * 4000) for i in range(2))  # ~8 kB per change
    async with gw.channel() as stalled_channel, gw.channel() as live_channel:
        stalled = Stubs(stalled_channel).devices.WatchDevices(
            gateway_pb2.WatchDevicesRequest(send_snapshot=True), metadata=auth("t-cc")
        )
        live = Stubs(live_channel).devices.WatchDevices(
            gateway_pb2.WatchDevicesRequest(send_snapshot=True, site_id="pendopo"), metadata=auth("t-cc")
        )
        await until_snapshot_end(stalled)
        await until_snapshot_end(live)
        # The stalled subscriber stops reading; a flood of changes goes out to every watcher of all sites.
        name = topic(module_prefix, "wifi.ap-status.v1")
        for n in range(flood):
            health = CRITICAL if (n // 10) % 2 else PROBLEM  # every AP flips at each visit: a change
            status = ap(f"ap-flood-{n % 10}", site_id="flood", health=health, reasons=big)
            await producer.send(name, key=status.ap_id.encode(), value=status.SerializeToString())
        await producer.flush()
        await produce(producer, module_prefix, "wifi.ap-status.v1", "ap-p-1", ap("ap-p-1", site_id="pendopo"))
        reply = await asyncio.wait_for(live.read(), timeout=20)
        assert reply.access_point.ap_id == "ap-p-1"  # the live watcher was not held up
        received = 0
        with pytest.raises(grpc.aio.AioRpcError) as err:
            while True:
                await asyncio.wait_for(stalled.read(), timeout=20)
                received += 1
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "resubscribe" in (err.value.details() or "") and received < flood
        live.cancel()


async def test_watch_streams_per_client_are_limited(gw: GatewayProcess) -> None:
    async with gw.channel() as channel:
        stubs = Stubs(channel)
        calls = []
        for _ in range(5):  # one after the other: each call starts as soon as it is made
            calls.append(
                stubs.overview.WatchCitySnapshot(
                    gateway_pb2.WatchCitySnapshotRequest(), metadata=auth("t-devices")
                )
            )
            if len(calls) < 5:
                await calls[-1].read()
        err = await rpc_error(calls[4].read())
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "4 watch streams" in (err.details() or "")
        calls[0].cancel()
        # The server frees the slot once it notices the cancellation.
        again = None
        deadline = time.monotonic() + 10
        while again is None and time.monotonic() < deadline:
            call = stubs.overview.WatchCitySnapshot(
                gateway_pb2.WatchCitySnapshotRequest(), metadata=auth("t-devices")
            )
            try:
                await call.read()
                again = call
            except grpc.aio.AioRpcError as retry:
                assert retry.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                await asyncio.sleep(0.1)
        assert again is not None, "the cancelled stream's slot was never freed"
        for call in [*calls, again]:
            call.cancel()

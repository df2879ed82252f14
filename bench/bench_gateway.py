"""Benchmark: unary-call throughput and latency of the gateway next to a bare grpcio server.

    uv run python bench/bench_gateway.py [--calls 2000] [--concurrency 8]

Starts, on loopback, the gateway from its entry point (views rebuilt from Kafka data seeded for
a realistic city: every AP and camera of the inventory, incidents, site stats and some hundred
citizen requests) and a bare grpc.aio server whose servicer returns a fixed
GetCitySnapshotResponse (the very snapshot the gateway serves, so both send the same bytes).
Drives each with a bounded number of unary calls from a few concurrent client tasks, prints
calls per second and p50/p99 latency, then stops both. The difference is what authentication,
rate limiting, metrics, tracing, validation and the snapshot computation cost.
Needs the local Kafka broker (make kafka-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaProducer
from benchkit import SECURITY  # a sibling module (bench/ is on sys.path)

from gateway_testing import (
    CRITICAL,
    OK,
    GatewayProcess,
    ap,
    auth,
    camera,
    incident,
    make_starter,
    produce,
    service_request,
    site_stats,
    write_tokens,
)
from smartcity import inventory
from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.testing import ServiceProcess, free_port
from smartcity.topics import ensure_topics
from smartcity.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP)
OPDS = ["DPMPTSP", "DINKES", "BPBD", "PUPR", "DLH", "DINKOMINFO"]


async def seed(prefix: str, requests: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, **SECURITY, acks="all", linger_ms=5)
    await producer.start()
    try:
        for n, info in enumerate(inventory.access_points()):
            status = ap(
                info.ap_id,
                site_id=info.site_id,
                health=CRITICAL if n % 9 == 0 else OK,
                clients=n % 40,
                lat=info.latitude,
                lon=info.longitude,
            )
            await produce(producer, prefix, "wifi.ap-status.v1", info.ap_id, status)
        for n, cam in enumerate(inventory.cameras()):
            status = camera(
                cam.camera_id,
                site_id=cam.site_id,
                health=CRITICAL if n == 0 else OK,
                lat=cam.latitude,
                lon=cam.longitude,
            )
            await produce(producer, prefix, "camera.status.v1", cam.camera_id, status)
            await produce(
                producer,
                prefix,
                "camera.incidents.v1",
                cam.camera_id,
                incident(f"inc-{n}", cam.camera_id, site_id=cam.site_id, resolved=n > 0),
            )
        for site in inventory.SITES:
            for window in (common_pb2.STATS_WINDOW_HOUR, common_pb2.STATS_WINDOW_DAY):
                await produce(
                    producer,
                    prefix,
                    "wifi.site-stats.v1",
                    f"{site.site_id}:{window}",
                    site_stats(site.site_id, window, unique_users=100),
                )
        for n in range(requests):
            rid = f"req-bench-{n:05d}"
            await produce(
                producer,
                prefix,
                "requests.state.v1",
                rid,
                service_request(rid, opd_code=OPDS[n % len(OPDS)], requested=time.time() - n * 60),
            )
    finally:
        await producer.stop()


# ---------------- the bare server (run as a child process: python bench_gateway.py --bare PORT FILE) ----


class FixedOverview(gateway_pb2_grpc.OverviewServiceServicer):  # type: ignore[misc]
    def __init__(self, reply: Any) -> None:
        self._reply = reply

    async def GetCitySnapshot(self, request: Any, context: Any) -> Any:
        return self._reply


async def serve_bare(port: int, reply_bytes: bytes) -> None:
    reply = gateway_pb2.GetCitySnapshotResponse.FromString(reply_bytes)
    server = grpc.aio.server()
    gateway_pb2_grpc.add_OverviewServiceServicer_to_server(FixedOverview(reply), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


# ---------------- the load ----------------

Call = Callable[[Any], Awaitable[Any]]


async def drive(
    name: str, make_call: Callable[[grpc.aio.Channel], Call], address: str, calls: int, concurrency: int
) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(address) as channel:
        call = make_call(channel)
        for _ in range(min(200, calls)):  # warm-up: connection, caches, JIT-less but lazy paths
            await call(None)
        latencies: list[float] = []
        remaining = calls

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                await call(None)
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "name": name,
        "calls": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def snapshot_call(token: str | None) -> Callable[[grpc.aio.Channel], Call]:
    def make(channel: grpc.aio.Channel) -> Call:
        stub = gateway_pb2_grpc.OverviewServiceStub(channel)
        metadata = auth(token) if token else None
        return lambda _: stub.GetCitySnapshot(
            gateway_pb2.GetCitySnapshotRequest(), metadata=metadata, timeout=10
        )

    return make


def get_ap_call(channel: grpc.aio.Channel) -> Call:
    stub = gateway_pb2_grpc.DeviceServiceStub(channel)
    req = gateway_pb2.GetAccessPointRequest(ap_id=inventory.access_points()[0].ap_id)
    return lambda _: stub.GetAccessPoint(req, metadata=auth("t-admin"), timeout=10)


def list_requests_call(channel: grpc.aio.Channel) -> Call:
    stub = gateway_pb2_grpc.RequestServiceStub(channel)
    req = gateway_pb2.ListRequestsRequest(opd_code="BPBD", page_size=20)
    return lambda _: stub.ListRequests(req, metadata=auth("t-cc"), timeout=10)


async def wait_ready(address: str, proc: ServiceProcess, timeout_s: float) -> None:
    """Until the server at `address` accepts connections (a loaded machine starts it slowly)."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout_s)
        except TimeoutError:
            raise RuntimeError(f"no server on {address} after {timeout_s} s:\n{proc.log_tail()}") from None


async def main(calls: int, concurrency: int, requests: int) -> None:
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="bench-gateway-"))
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await ensure_topics(BOOTSTRAP, prefix, security=SECURITY)
    await seed(prefix, requests)
    started: list[ServiceProcess] = []
    gateway: GatewayProcess = make_starter(BOOTSTRAP, workdir, started)(
        prefix,
        write_tokens(workdir / "tokens.yaml"),
        GATEWAY_RATE_LIMIT_RPS="1000000",
        GATEWAY_RATE_LIMIT_BURST="1000000",
        LOG_LEVEL="WARNING",
    )
    bare_port = free_port()
    try:
        began = time.perf_counter()
        await gateway.wait_serving()
        print(
            f"gateway serving {time.perf_counter() - began:.2f} s after start "
            f"(views rebuilt from {requests} requests, {len(inventory.access_points())} APs, "
            f"{len(inventory.cameras())} cameras)"
        )
        async with grpc.aio.insecure_channel(gateway.address) as channel:
            reply = await gateway_pb2_grpc.OverviewServiceStub(channel).GetCitySnapshot(
                gateway_pb2.GetCitySnapshotRequest(), metadata=auth("t-cc")
            )
        await asyncio.to_thread((workdir / "reply.bin").write_bytes, reply.SerializeToString())
        bare = ServiceProcess(
            [sys.executable, __file__, "--bare", str(bare_port), str(workdir / "reply.bin")],
            dict(os.environ),
            workdir / "bare.log",
        ).start()
        started.append(bare)
        await wait_ready(f"127.0.0.1:{bare_port}", bare, timeout_s=60)
        results = [
            await drive(
                "bare grpcio: fixed GetCitySnapshot",
                snapshot_call(None),
                f"127.0.0.1:{bare_port}",
                calls,
                concurrency,
            ),
            await drive(
                "gateway: GetCitySnapshot", snapshot_call("t-cc"), gateway.address, calls, concurrency
            ),
            await drive("gateway: GetAccessPoint", get_ap_call, gateway.address, calls, concurrency),
            await drive(
                "gateway: ListRequests (20 of ~100)", list_requests_call, gateway.address, calls, concurrency
            ),
        ]
    finally:
        for proc in started:
            proc.stop()
    print(
        f"\n{calls} unary calls per row, {concurrency} concurrent client tasks, one channel, loopback; "
        f"snapshot reply {len(reply.SerializeToString())} bytes\n"
    )
    print(f"{'':40} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for row in results:
        print(f"{row['name']:40} {row['rps']:9.0f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f}")
    figures = {row["name"]: {k: round(row[k], 2) for k in ("rps", "p50_ms", "p99_ms")} for row in results}
    print(json.dumps({"calls": calls, "concurrency": concurrency, "rows": figures}))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--bare":
        asyncio.run(serve_bare(int(sys.argv[2]), Path(sys.argv[3]).read_bytes()))
        sys.exit(0)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300, help="citizen requests seeded into the views")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.concurrency, args.requests))

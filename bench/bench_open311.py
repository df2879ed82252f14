"""Benchmark: the Open311 facade next to the gateway it calls, in the same run.

    flock /tmp/smartcity-bench.lock uv run --frozen python bench/bench_open311.py \
        [--list-calls 200] [--submit-calls 300] [--concurrency 8] [--seeded 1200]

Starts on loopback, from their entry points: the real citizen-requests service, the gateway
(its views rebuilt from `--seeded` requests written to requests.state.v1, all of the last
days) and the facade. Then, with a bounded number of calls from a few concurrent client
tasks each:
  - the gateway's ListRequests (page_size 1000, the facade's read token) and the facade's
    GET /requests.json (GeoReport's default: 1,000 results), with its listing cache off (every
    call pages through the gateway) and on (OPEN311_LIST_CACHE_S=1, the default), and
  - the gateway's SubmitRequest and the facade's POST /requests.json (a new request each time,
    through the real citizen-requests service),
and prints requests/s, p50 and p99 for each. The gateway's rows are the ceiling the facade
works under: the difference is the facade (HTTP, form and query rules, the GeoReport view,
JSON). The last line is one JSON object of the figures. Needs the local Kafka broker.
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
from itertools import count
from pathlib import Path
from typing import Any

import grpc
from aiohttp import ClientSession, TCPConnector
from aiokafka import AIOKafkaProducer
from benchkit import SECURITY, service_env  # a sibling module (bench/ is on sys.path)

from gateway_testing import GatewayProcess, auth, make_starter, produce, service_request
from open311_testing import facade_starter, http_ok, write_tokens
from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.testing import ServiceProcess, free_port
from smartcity.topics import delete_topics, ensure_topics
from smartcity.v1 import gateway_pb2, gateway_pb2_grpc

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP)
CATEGORIES = {"roads": "PUPR", "waste": "DLH", "permits": "DPMPTSP", "health_info": "DINKES"}
UNLIMITED = {"OPEN311_RATE_LIMIT_RPS": "1000000", "OPEN311_RATE_LIMIT_BURST": "1000000"}
Call = Callable[[], Awaitable[None]]


async def seed(prefix: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, **SECURITY, acks="all", linger_ms=5)
    await producer.start()
    now = time.time()
    try:
        for i in range(n):
            category = list(CATEGORIES)[i % len(CATEGORIES)]
            request = service_request(
                f"req-bench{i:015d}",
                category=category,
                opd_code=CATEGORIES[category],
                requested=now - 60 - i * 30,
                submitted_by="citizen-app",
            )
            await produce(producer, prefix, "requests.state.v1", request.request_id, request)
    finally:
        await producer.stop()


async def drive(name: str, call: Call, calls: int, concurrency: int, warmup: int = 20) -> dict[str, Any]:
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    row = {
        "name": name,
        "calls": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
    }
    print(f"{name:48} {row['rps']:9.1f} {row['p50_ms']:9.2f} {row['p99_ms']:9.2f}", flush=True)
    return row


def gateway_calls(channel: grpc.aio.Channel, seeded: int) -> tuple[Call, Call]:
    stub = gateway_pb2_grpc.RequestServiceStub(channel)
    listing = gateway_pb2.ListRequestsRequest(page_size=1000)
    numbers = count()

    async def list_page() -> None:
        reply = await stub.ListRequests(listing, metadata=auth("t-read"), timeout=30)
        assert len(reply.requests) == min(1000, seeded), len(reply.requests)

    async def submit() -> None:
        n = next(numbers)
        await stub.SubmitRequest(
            gateway_pb2.SubmitRequestRequest(
                idempotency_key=f"bench-gw-{uuid.uuid4().hex}",
                category="roads",
                title=f"Jalan berlubang {n}",
                description=f"Jalan berlubang nomor {n}",
                address="Jl. Jend. Sudirman",
            ),
            metadata=auth("t-app"),
            timeout=30,
        )

    return list_page, submit


def facade_calls(http: ClientSession, url: str) -> tuple[Call, Call]:
    numbers = count()

    async def list_json() -> None:
        async with http.get(f"{url}/requests.json") as reply:
            body = await reply.read()
            assert reply.status == 200 and body.count(b'"service_request_id"') == 1000, reply.status

    async def post_json() -> None:
        n = next(numbers)
        form = {
            "api_key": "t-app",
            "service_code": "roads",
            "address_string": "Jl. Jend. Sudirman",
            "attribute[damage]": "pothole",
            "description": f"Jalan berlubang {uuid.uuid4().hex} {n}",
        }
        async with http.post(f"{url}/requests.json", data=form) as reply:
            body = await reply.read()
            assert reply.status == 200 and b"service_request_id" in body, body

    return list_json, post_json


async def main(list_calls: int, submit_calls: int, concurrency: int, seeded: int) -> dict[str, Any]:
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="bench-open311-"))
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await ensure_topics(BOOTSTRAP, prefix, security=SECURITY)
    await seed(prefix, seeded)
    started: list[ServiceProcess] = []
    metrics_port = free_port()
    env = service_env(BOOTSTRAP, prefix, metrics_port=metrics_port, LOG_LEVEL="WARNING", LOG_FORMAT="text")
    started.append(
        ServiceProcess(
            [sys.executable, "-m", "citizen_requests"], env, workdir / "citizen-requests.log"
        ).start()
    )
    gateway: GatewayProcess = make_starter(BOOTSTRAP, workdir, started)(
        prefix,
        write_tokens(workdir / "tokens.yaml"),
        GATEWAY_RATE_LIMIT_RPS="1000000",
        GATEWAY_RATE_LIMIT_BURST="1000000",
        LOG_LEVEL="WARNING",
    )
    start_facade = facade_starter(workdir, started)
    facade = start_facade(gateway.address, LOG_LEVEL="WARNING", OPEN311_LIST_CACHE_S="0", **UNLIMITED)
    cached = start_facade(gateway.address, LOG_LEVEL="WARNING", **UNLIMITED)
    try:
        await gateway.wait_serving(120)
        await facade.wait_ready(120)
        await cached.wait_ready(120)
        deadline = time.monotonic() + 120
        while not await asyncio.to_thread(http_ok, f"http://127.0.0.1:{metrics_port}/readyz"):
            assert time.monotonic() < deadline, "citizen-requests not ready"
            await asyncio.sleep(0.5)
        print(
            f"platform up: {seeded} requests seeded; {list_calls} listings and {submit_calls} submits per "
            f"row, {concurrency} concurrent client tasks, loopback\n"
        )
        print(f"{'':48} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9}", flush=True)
        async with (
            grpc.aio.insecure_channel(
                gateway.address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
            ) as channel,
            ClientSession(connector=TCPConnector(limit=concurrency)) as http,
        ):
            gw_list, gw_submit = gateway_calls(channel, seeded)
            o311_list, o311_post = facade_calls(http, facade.url)
            cached_list, _ = facade_calls(http, cached.url)
            rows = [
                await drive("gateway ListRequests (1000 per page)", gw_list, list_calls, concurrency),
                await drive("open311 GET /requests.json (1000 results)", o311_list, list_calls, concurrency),
                await drive(
                    "open311 GET /requests.json, cached 1 s", cached_list, list_calls * 5, concurrency
                ),
                await drive("gateway SubmitRequest", gw_submit, submit_calls, concurrency),
                await drive("open311 POST /requests.json", o311_post, submit_calls, concurrency),
            ]
    finally:
        for proc in reversed(started):
            proc.stop()
        await delete_topics(BOOTSTRAP, prefix, security=SECURITY)
    keys = ("gateway_list", "open311_list", "open311_list_cached", "gateway_submit", "open311_post")
    figures: dict[str, Any] = {"seeded": seeded, "concurrency": concurrency}
    for key, row in zip(keys, rows, strict=True):
        figures |= {f"{key}_rps": round(row["rps"], 1), f"{key}_p99_ms": round(row["p99_ms"], 1)}
    figures["open311_list_vs_gateway"] = round(rows[1]["rps"] / rows[0]["rps"], 2)
    figures["open311_post_vs_gateway"] = round(rows[4]["rps"] / rows[3]["rps"], 2)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--list-calls", type=int, default=200)
    parser.add_argument("--submit-calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seeded", type=int, default=1200, help="requests in the gateway's views (>= 1000)")
    args = parser.parse_args()
    if args.seeded < 1000:
        parser.error("--seeded must be at least 1000: GET /requests.json answers 1,000 results")
    result = asyncio.run(main(args.list_calls, args.submit_calls, args.concurrency, args.seeded))
    print(json.dumps(result))

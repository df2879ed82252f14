"""Benchmark: the latency of the gateway's SubmitRequest under an open-loop load, next to its ceilings.

    flock /tmp/smartcity-bench.lock uv run --frozen python bench/bench_gateway_submit.py \
        [--rate 200] [--seconds 30] [--ceiling-seconds 10] [--no-reporter] [--profile DIR]

Starts on loopback, from their entry points, the real citizen-requests worker and the gateway
(fresh topics under their own prefix). A client then starts SubmitRequests at a fixed rate
(open loop: a call starts on schedule whether or not earlier ones have returned, and its
latency counts from its scheduled start, so a stall shows in every call it delays), as the
citizen portal, each a new request with a reporter (sealed by the gateway: a new subject, so a
new data key each time) unless --no-reporter. After a short warm-up it runs for a bounded time
and prints p50, p99 and max latency, and where it goes, hop by hop (see HOPS: into the gateway,
sealing and sending, the worker, back to the client), from the records' timestamps read back
from the topics: each hop's p50 and p99, and what the slowest 1% of submits spent in each.

The same run measures the ceilings, at the same rate with the same driver:
  - a bare grpc.aio server answering SubmitRequest with a fixed reply (the RPC alone);
  - one Kafka hop: an acks=all producer to a consumer reading the topic (a submit takes two,
    the command to the worker and its outcome back, plus the data key when it seals one).
The last line is one JSON object of the figures. Stops by itself and deletes its topics.
With --profile, py-spy samples the gateway and the worker during the measured part (collapsed
stacks in DIR/gateway.txt and DIR/citizen-requests.txt).
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
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic
from benchkit import (  # a sibling module (bench/ is on sys.path)
    SECURITY,
    Profiler,
    cpu_seconds,
    partitions_of,
    service_env,
)

from gateway_testing import auth, make_starter, write_tokens
from open311_testing import http_ok
from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.testing import ServiceProcess, consume_all, free_port
from smartcity.topics import admin_client, delete_topics, ensure_topics, load_catalogue
from smartcity.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, requests_pb2

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP)
CENTER = (-7.38830, 109.36390)  # Alun-Alun
Call = Callable[[], Awaitable[Any]]


# ---- the open-loop driver

async def open_loop(call: Call, rate: float, seconds: float, warmup_s: float = 2.0,
                    calls_seen: list[tuple[float, float, Any]] | None = None) -> dict[str, Any]:
    """Starts `call` every 1/rate s for warmup + seconds; latencies (ms) of the measured part,
    each from the call's scheduled start. Every call is awaited before returning (bounded).
    `calls_seen` gets (scheduled start, end, what the call returned) of each measured call, the
    times in epoch seconds."""
    latencies: list[float] = []
    failures: list[str] = []
    interval = 1.0 / rate
    total = int((warmup_s + seconds) * rate)
    warm = int(warmup_s * rate)
    loop = asyncio.get_running_loop()
    began = loop.time() + 0.05
    to_epoch = time.time() - loop.time()

    async def one(index: int, due: float) -> None:
        try:
            returned = await call()
        except Exception as exc:  # counted, and the first few shown: a benchmark keeps going
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        if index >= warm:
            ended = loop.time()
            latencies.append((ended - due) * 1000.0)
            if calls_seen is not None:
                calls_seen.append((due + to_epoch, ended + to_epoch, returned))

    tasks = []
    for index in range(total):
        due = began + index * interval
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    return summary(latencies, failures, total - warm, seconds)


def summary(latencies: list[float], failures: list[str], calls: int, seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    if not ordered:
        return {"calls": calls, "ok": 0, "failed": len(failures), "errors": failures[:3]}
    return {
        "calls": calls,
        "ok": len(ordered),
        "failed": len(failures),
        "errors": failures[:3],
        "rate": calls / seconds,
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": ordered[-1],
    }


def show(name: str, row: dict[str, Any]) -> None:
    if not row.get("ok"):
        print(f"{name:44} no call succeeded: {row.get('errors')}", flush=True)
        return
    print(f"{name:44} {row['ok']:>6} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['max_ms']:>8.1f}"
          + (f"   {row['failed']} failed, e.g. {row['errors'][0]}" if row["failed"] else ""), flush=True)
    cpu = [f"{key.removesuffix('_cpu_ms_per_call')} {value:.2f}" for key, value in row.items()
           if key.endswith("_cpu_ms_per_call")]
    if cpu:
        print(f"{'':44} CPU ms per call: {', '.join(cpu)}", flush=True)


# ---- the gateway's SubmitRequest

def submit_call(stub: gateway_pb2_grpc.RequestServiceStub, with_reporter: bool) -> Call:
    numbers = count()

    async def submit() -> str:
        n = next(numbers)
        request = gateway_pb2.SubmitRequestRequest(
            idempotency_key=f"bench-submit-{uuid.uuid4().hex}",
            category="roads",
            title=f"Jalan berlubang {n}",
            description=f"Jalan berlubang nomor {n} di depan pasar",
            address="Jl. Jend. Sudirman",
            # ~330 m apart in a grid: no two reports are possible duplicates of each other.
            location=common_pb2.GeoPoint(latitude=CENTER[0] + (n % 100) * 0.003,
                                         longitude=CENTER[1] + (n // 100) * 0.003),
        )
        if with_reporter:
            request.reporter.CopyFrom(requests_pb2.Reporter(name=f"Warga {n}", phone=f"0812{n:08d}"))
        reply = await stub.SubmitRequest(request, metadata=auth("t-portal"), timeout=10)
        if reply.request.status != requests_pb2.REQUEST_STATUS_SUBMITTED:
            raise RuntimeError(f"unexpected status {reply.request.status}")
        return str(reply.request.request_id)

    return submit


async def wait_http_ok(url: str, proc: ServiceProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(http_ok, url):
        if time.monotonic() > deadline or not proc.running:
            raise SystemExit(f"not ready: {url}\n{proc.log_tail()}")
        await asyncio.sleep(0.3)


async def measure_gateway(prefix: str, workdir: Path, rate: float, seconds: float, *,
                          with_reporter: bool, profile: Path | None) -> dict[str, Any]:
    started: list[ServiceProcess] = []
    worker_metrics = free_port()
    env = service_env(BOOTSTRAP, prefix, metrics_port=worker_metrics, LOG_LEVEL="WARNING", LOG_FORMAT="text")
    worker = ServiceProcess([sys.executable, "-m", "citizen_requests"], env, workdir / "citizen-requests.log")
    started.append(worker.start())
    gateway = make_starter(BOOTSTRAP, workdir, started)(
        prefix,
        write_tokens(workdir / "tokens.yaml"),
        GATEWAY_RATE_LIMIT_RPS="1000000",
        GATEWAY_RATE_LIMIT_BURST="1000000",
        LOG_LEVEL="WARNING",
    )
    try:
        await gateway.wait_serving(120)
        await wait_http_ok(f"http://127.0.0.1:{worker_metrics}/readyz", worker, 120)
        async with gateway.channel() as channel:
            call = submit_call(gateway_pb2_grpc.RequestServiceStub(channel), with_reporter)
            for _ in range(5):  # the first requests open the topics' partitions: not measured
                await call()
            pids = {"gateway": gateway.proc.pid, "worker": worker.pid}
            profilers = {} if profile is None else {
                name: Profiler(pid, profile / f"{name}.txt") for name, pid in pids.items()}
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            calls_seen: list[tuple[float, float, Any]] = []
            try:
                row = await open_loop(call, rate, seconds, calls_seen=calls_seen)
                row["calls_seen"] = calls_seen
                # CPU per call, whatever else the machine runs: what the rate costs each process.
                for name, pid in pids.items():
                    used = cpu_seconds(pid) - cpu_before[name]
                    row[f"{name}_cpu_ms_per_call"] = used * 1000.0 / max(row["calls"] + rate * 2.0, 1)
                return row
            finally:
                for name, profiler in profilers.items():
                    print(f"py-spy, {name}:\n{await asyncio.to_thread(profiler.stop)}")
    finally:
        for proc in reversed(started):
            proc.stop()


# Where a submit's time goes, hop by hop, from the clocks the run already has (one machine):
#   scheduled start ─gateway_in─► command's issued_time (the gateway took the call: gRPC,
#   auth, validation) ─seal_send─► command record's timestamp (the gateway's producer: sealing,
#   with the data key's publish when new, then the command handed over) ─worker─► its first
#   outcome event's timestamp (the worker's producer: the command's produce and ack, the
#   worker's fetch, batch wait and processing) ─back─► the reply at the client (the event's
#   produce, the gateway's fetch, its read-model write, the answer over gRPC).
HOPS = ("gateway_in", "seal_send", "worker", "back")


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def hop_breakdown(prefix: str, calls_seen: list[tuple[float, float, Any]]) -> dict[str, Any]:
    """p50 and p99 of each hop (ms) over the measured submits, and what the slowest 1% of them
    spent in each hop on average (`tail_*`: where p99 goes). Named as before for the worker's
    hop (`worker_stage_*`)."""
    catalogue = load_catalogue()
    commands = await consume_all(BOOTSTRAP, catalogue["requests.commands.v1"].full_name(prefix),
                                 security=SECURITY)
    events = await consume_all(BOOTSTRAP, catalogue["requests.events.v1"].full_name(prefix),
                               security=SECURITY)
    sent: dict[bytes, tuple[float, float]] = {}  # key -> (issued, record timestamp), epoch s
    for record in commands:
        command = requests_pb2.RequestCommand.FromString(record.value)
        issued = command.issued_time.seconds + command.issued_time.nanos / 1e9
        sent.setdefault(record.key, (issued, record.timestamp / 1000.0))
    first: dict[bytes, float] = {}
    for record in events:
        first.setdefault(record.key, record.timestamp / 1000.0)
    rows: list[tuple[float, dict[str, float]]] = []
    for due, ended, request_id in calls_seen:
        key = str(request_id).encode()
        if key not in sent or key not in first:
            continue
        issued, command_at = sent[key]
        answered = first[key]
        hops = {"gateway_in": issued - due, "seal_send": command_at - issued,
                "worker": answered - command_at, "back": ended - answered}
        rows.append(((ended - due) * 1000.0, {k: v * 1000.0 for k, v in hops.items()}))
    if not rows:
        return {}
    figures: dict[str, Any] = {"hops_matched": len(rows)}
    for hop in HOPS:
        ordered = sorted(r[1][hop] for r in rows)
        name = "worker_stage" if hop == "worker" else f"hop_{hop}"
        figures[f"{name}_p50_ms"] = statistics.median(ordered)
        figures[f"{name}_p99_ms"] = percentile(ordered, 0.99)
    rows.sort(key=lambda r: r[0])
    tail = rows[int(len(rows) * 0.99):] or rows[-1:]
    for hop in HOPS:
        figures[f"tail_{hop}_ms"] = statistics.fmean(r[1][hop] for r in tail)
    figures["tail_total_ms"] = statistics.fmean(r[0] for r in tail)
    return figures


# ---- the ceilings

class FixedSubmit(gateway_pb2_grpc.RequestServiceServicer):  # type: ignore[misc]
    def __init__(self, reply: gateway_pb2.SubmitRequestResponse) -> None:
        self.reply = reply

    async def SubmitRequest(self, request: Any, context: Any) -> Any:
        return self.reply


async def measure_bare_grpc(rate: float, seconds: float) -> dict[str, Any]:
    reply = gateway_pb2.SubmitRequestResponse(request=requests_pb2.ServiceRequest(
        request_id="req-fixed", status=requests_pb2.REQUEST_STATUS_SUBMITTED, category="roads"))
    server = grpc.aio.server()
    gateway_pb2_grpc.add_RequestServiceServicer_to_server(FixedSubmit(reply), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = submit_call(gateway_pb2_grpc.RequestServiceStub(channel), with_reporter=True)
            await call()
            return await open_loop(call, rate, seconds)
    finally:
        await server.stop(1)


async def measure_kafka_hop(prefix: str, rate: float, seconds: float) -> dict[str, Any]:
    """One hop: an acks=all producer (as the gateway's and the worker's) to a live consumer."""
    topic = f"{prefix}bench.kafka-hop"
    admin = admin_client(BOOTSTRAP, SECURITY)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, **SECURITY, acks="all", enable_idempotence=True,
                                linger_ms=0)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, **SECURITY, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=500)
    await producer.start()
    await consumer.start()
    waiting: dict[bytes, asyncio.Future[None]] = {}

    async def read() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    future = waiting.pop(record.key or b"", None)
                    if future is not None and not future.done():
                        future.set_result(None)

    try:
        partitions = await partitions_of(consumer, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        reading = asyncio.create_task(read())
        loop = asyncio.get_running_loop()

        async def hop() -> None:
            key = uuid.uuid4().hex.encode()
            arrived = waiting[key] = loop.create_future()
            await producer.send_and_wait(topic, b"x" * 600, key=key)
            await asyncio.wait_for(arrived, 10)

        await hop()
        result = await open_loop(hop, rate, seconds)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        return result
    finally:
        await consumer.stop()
        await producer.stop()


async def main(rate: float, seconds: float, ceiling_s: float, *, with_reporter: bool,
               profile: Path | None) -> dict[str, Any]:
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="bench-submit-"))
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await ensure_topics(BOOTSTRAP, prefix, security=SECURITY)
    try:
        print(f"open loop at {rate:.0f} calls/s; {seconds:.0f} s measured (ceilings {ceiling_s:.0f} s), "
              f"after a 2 s warm-up; loopback\n")
        print(f"{'':44} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}", flush=True)
        grpc_row = await measure_bare_grpc(rate, ceiling_s)
        show("ceiling: bare grpc.aio SubmitRequest", grpc_row)
        kafka_row = await measure_kafka_hop(prefix, rate, ceiling_s)
        show("ceiling: one Kafka hop (acks=all)", kafka_row)
        gateway_row = await measure_gateway(prefix, workdir, rate, seconds, with_reporter=with_reporter,
                                            profile=profile)
        show("gateway SubmitRequest" + (" (with a reporter)" if with_reporter else ""), gateway_row)
        stage = await hop_breakdown(prefix, gateway_row.pop("calls_seen"))
        if stage:
            print(f"{'':44} of which command to outcome event (the worker): "
                  f"p50 {stage['worker_stage_p50_ms']:.1f} ms, p99 {stage['worker_stage_p99_ms']:.1f} ms",
                  flush=True)
            for hop in HOPS:
                name = "worker_stage" if hop == "worker" else f"hop_{hop}"
                print(f"{'':44} hop {hop:10} p50 {stage[f'{name}_p50_ms']:8.1f}  p99 "
                      f"{stage[f'{name}_p99_ms']:8.1f}  slowest 1%: {stage[f'tail_{hop}_ms']:8.1f} ms",
                      flush=True)
    finally:
        await delete_topics(BOOTSTRAP, prefix, security=SECURITY)
    figures: dict[str, Any] = {"bench": "gateway_submit", "rate_per_s": rate, "seconds": seconds,
                               "with_reporter": with_reporter}
    for name in ("gateway", "worker"):
        figures[f"{name}_cpu_ms_per_submit"] = round(gateway_row[f"{name}_cpu_ms_per_call"], 2)
    figures.update({key: round(value, 1) for key, value in stage.items()})
    for key, row in (("submit", gateway_row), ("bare_grpc", grpc_row), ("kafka_hop", kafka_row)):
        figures[f"{key}_failed"] = row["failed"]
        for stat in ("p50_ms", "p99_ms", "max_ms"):
            if stat in row:
                figures[f"{key}_{stat}"] = round(row[stat], 1)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="SubmitRequests started per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time (after a 2 s warm-up)")
    parser.add_argument("--ceiling-seconds", type=float, default=10.0)
    parser.add_argument("--no-reporter", action="store_true", help="submits without contact data")
    parser.add_argument("--profile", type=Path, help="py-spy the gateway and the worker, samples there")
    args = parser.parse_args()
    if not (0 < args.rate <= 2000 and 0 < args.seconds <= 600 and 0 < args.ceiling_seconds <= 600):
        parser.error("keep the load bounded: 0 < rate <= 2000, 0 < seconds <= 600")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(main(args.rate, args.seconds, args.ceiling_seconds,
                              with_reporter=not args.no_reporter, profile=args.profile))
    print(json.dumps(result))

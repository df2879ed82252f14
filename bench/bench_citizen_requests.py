"""Benchmark of citizen-requests: N commands through one worker started from its entry point.

    uv run python bench/bench_citizen_requests.py [--commands 6000] [--keep] [--profile out.txt]

Writes N commands (each request: submit, acknowledge, assign, start, resolve, close; requests
interleaved) to `requests.commands.v1` under a fresh topic prefix, then starts one worker
(`python -m citizen_requests`) and reads `requests.events.v1` until every command has its
outcome. Prints commands/s over the processing span (first to last outcome, broker timestamps)
and end to end (worker start to last outcome, startup and recovery included). Stops by itself
and deletes its topics unless --keep. With --profile, the worker runs under py-spy, which
writes its samples there (collapsed stacks, one per line: flamegraph.pl or speedscope read them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from benchkit import (  # a sibling module (bench/ is on sys.path)
    SECURITY,
    bare_faust_figures,
    cpu_seconds,
    print_figures,
    produce_all,
    py_spy,
    raw_rate,
    service_env,
)

from citizen_requests.sim.command_builders import STAFF, action_command, actor, submit_command
from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.topics import delete_topics, ensure_topics
from smartcity.v1 import requests_pb2 as pb

ROOT = Path(__file__).resolve().parents[1]
PROTO = "smartcity.v1.requests_pb2:RequestCommand"
STEPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("acknowledge", {"note": "diterima"}), ("assign", {"assignee": "tim-1"}), ("start", {}),
    ("resolve", {"note": "selesai"}), ("close", {}))
CATEGORIES = ("permits", "roads", "waste", "health_info", "street_lights", "wifi_cctv")


def build_commands(total: int) -> list[pb.RequestCommand]:
    """Requests of 6 commands each, interleaved in waves of 50 like a busy hour."""
    per_request = 1 + len(STEPS)
    now = time.time()
    lifecycles: list[list[pb.RequestCommand]] = []
    for i in range(max(1, total // per_request)):
        category = CATEGORIES[i % len(CATEGORIES)]
        sub = submit_command(client_id="bench", idempotency_key=f"b{i}", category=category,
                             description="Laporan uji beban", issued_at=now + i * 0.01,
                             latitude=-7.39 + (i % 100) * 0.003, longitude=109.36 + (i // 100) * 0.003)
        by = actor(STAFF, "bench-staff", "PUPR")
        steps = [action_command(sub.request_id, action, issued_at=now + i * 0.01 + k + 1, by=by,
                                client_id="bench", **fields) for k, (action, fields) in enumerate(STEPS)]
        lifecycles.append([sub, *steps])
    commands: list[pb.RequestCommand] = []
    for wave in range(0, len(lifecycles), 50):
        group = lifecycles[wave:wave + 50]
        commands += [cmds[j] for j in range(per_request) for cmds in group]
    return commands


async def produce(bootstrap: str, topic: str, commands: list[pb.RequestCommand]) -> float:
    return await produce_all(bootstrap, ((topic, c.request_id.encode(), c.SerializeToString())
                                         for c in commands))


async def count_outcomes(bootstrap: str, topic: str, expected: int, timeout_s: float,
                         worker_pid: int) -> tuple[int, int, int, float]:
    """Reads the events topic until `expected` outcomes: (count, first ts ms, last ts ms, the
    worker's CPU seconds from the first outcome read to the last)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **SECURITY, enable_auto_commit=False,
                                group_id=None)
    await consumer.start()
    count, first, last, first_cpu, cpu = 0, 0, 0, 0.0, 0.0
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        while count < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            if batch and not count:
                first_cpu = cpu_seconds(worker_pid)
            for records in batch.values():
                for record in records:
                    count += 1
                    first = record.timestamp if not first else min(first, record.timestamp)
                    last = max(last, record.timestamp)
        cpu = cpu_seconds(worker_pid) - first_cpu
    finally:
        await consumer.stop()
    return count, first, last, cpu


async def prepare(bootstrap: str, prefix: str, commands: list[pb.RequestCommand]) -> float:
    await ensure_topics(bootstrap, prefix, security=SECURITY)
    return await produce(bootstrap, prefix + "requests.commands.v1", commands)


def worker_command(profile: Path | None) -> list[str]:
    """The worker from its entry point; under py-spy (its own child, so no ptrace rights
    needed) when profiling, sampled at 200 Hz with idle threads left out."""
    worker = [sys.executable, "-m", "citizen_requests"]
    if profile is None:
        return worker
    return [py_spy(), "record", "--format", "raw", "--rate", "200",
            "--output", str(profile), "--", *worker]


def worker_process(pid: int, under_py_spy: bool) -> int:
    """The worker's pid: py-spy's child when profiling (waits until py-spy started it)."""
    if not under_py_spy:
        return pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = children.read_text().split()
        if found:
            return int(found[0])
        time.sleep(0.05)
    raise SystemExit("py-spy did not start the worker within 30 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=6000)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP))
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's topics")
    parser.add_argument("--profile", type=Path, help="run the worker under py-spy, samples to this file")
    args = parser.parse_args()

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    commands = build_commands(args.commands)
    produce_s = asyncio.run(prepare(args.bootstrap, prefix, commands))
    print(f"produced {len(commands)} commands in {produce_s:.2f}s under prefix {prefix}")
    topic = prefix + "requests.commands.v1"
    raw = asyncio.run(raw_rate(args.bootstrap, {topic: pb.RequestCommand.FromString}, len(commands)))
    bare, bare_per_cpu = bare_faust_figures(args.bootstrap, [topic], len(commands), [PROTO])
    print(f"ceilings on the same topic: raw aiokafka + decode {raw:,.0f} msg/s, "
          f"bare Faust agent {bare:,.0f} msg/s")

    env = service_env(args.bootstrap, prefix, LOG_FORMAT="text", LOG_LEVEL="WARNING")
    started = time.time()
    worker = subprocess.Popen(worker_command(args.profile), env=env, cwd=ROOT, start_new_session=True)
    try:
        count, first_ms, last_ms, cpu = asyncio.run(count_outcomes(
            args.bootstrap, prefix + "requests.events.v1", len(commands), args.timeout,
            worker_process(worker.pid, args.profile is not None)))
    finally:
        # py-spy writes its samples on SIGINT (SIGTERM would kill it first); the worker stops on either.
        os.killpg(worker.pid, signal.SIGINT if args.profile else signal.SIGTERM)
        worker.wait(timeout=30)
    if not args.keep:
        asyncio.run(delete_topics(args.bootstrap, prefix, security=SECURITY))
    if count < len(commands):
        print(f"only {count} of {len(commands)} outcomes within {args.timeout:.0f}s", file=sys.stderr)
        return 1
    span_s = max((last_ms - first_ms) / 1000.0, 1e-3)
    rate = len(commands) / span_s
    print(f"processing: {len(commands)} commands in {span_s:.2f}s = {rate:.0f} commands/s "
          f"(first to last outcome; {rate / bare:.0%} of bare Faust, {rate / raw:.1%} of raw)")
    total_s = last_ms / 1000.0 - started
    print(f"end to end: {total_s:.2f}s from worker start = {len(commands) / total_s:.0f} commands/s "
          f"(startup and recovery included)")
    # On a shared machine the steadier comparison: commands per CPU second, the worker's and
    # bare Faust's (the worker's CPU from the first outcome read to the last, about the span).
    per_cpu = len(commands) / max(cpu, 1e-9)
    print(f"worker CPU {cpu:.2f}s -> {per_cpu:,.0f} commands per CPU second "
          f"({per_cpu / bare_per_cpu:.0%} of bare Faust's {bare_per_cpu:,.0f})")
    print_figures({"bench": "citizen_requests", "readings_per_s": rate, "messages_per_s": rate,
                   "bare_faust_messages_per_s": bare, "raw_messages_per_s": raw,
                   "readings_per_cpu_s": per_cpu, "bare_faust_messages_per_cpu_s": bare_per_cpu})
    return 0


if __name__ == "__main__":
    sys.exit(main())

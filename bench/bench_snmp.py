"""Benchmark: SNMP polls per second one poller completes against real net-snmp agents.

    uv run python bench/bench_snmp.py [--agents 4] [--aps 200] [--rounds 3] [--concurrency 50]

Starts A Debian `snmpd` agents on loopback and P AP targets spread over them, then runs
R rounds of the poller (`wifi_telemetry.edge.snmp.PollLoop`, a real acks=all producer under a fresh
topic prefix) and times them: one poll is a full AP reading (GET of the scalars and bulk walks
of the IF-MIB, HOST-RESOURCES and vendor columns) and its heartbeat acknowledged by Kafka.
Ceiling, same run and agents: single-varbind GETs per second (one round trip each) with the same
engine and concurrency; a poll costs several round trips, so polls/s sits well below it.
Stops by itself; stops the agents and deletes the prefix's topics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from benchkit import SECURITY  # a sibling module (bench/ is on sys.path)
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
)

from smartcity.edge_testing import SnmpAgent
from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.topics import delete_topics, ensure_topics
from wifi_telemetry.edge.snmp import POLLS, VENDORS_FILE, PollLoop, SnmpConfig, load_targets, load_vendors


async def raw_gets(agents: list[SnmpAgent], n: int, concurrency: int) -> float:
    """Seconds for n single sysUpTime GETs spread over the agents, `concurrency` at once."""
    engine, slots = SnmpEngine(), asyncio.Semaphore(concurrency)
    transports = [await UdpTransportTarget.create(("127.0.0.1", a.port), timeout=2, retries=1)
                  for a in agents]

    async def one(i: int) -> None:
        async with slots:
            error, *_ = await get_cmd(engine, CommunityData(agents[0].community, mpModel=1),
                                      transports[i % len(transports)], ContextData(),
                                      ObjectType(ObjectIdentity("1.3.6.1.2.1.1.3.0")), lookupMib=False)
            if error:
                raise RuntimeError(str(error))

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        engine.close_dispatcher()
    return time.perf_counter() - started


async def poll_rounds(bootstrap: str, prefix: str, targets_file: Path, rounds: int,
                      concurrency: int) -> tuple[float, int]:
    config = SnmpConfig(targets_file=str(targets_file), timeout_s=2, retries=1, concurrency=concurrency)
    targets = load_targets(targets_file, load_vendors(VENDORS_FILE))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **SECURITY, acks="all", enable_idempotence=True,
                                linger_ms=5)
    await producer.start()
    loop = PollLoop(config, targets, producer, f"{prefix}wifi.ap-telemetry.v1")
    try:
        await loop.round()  # warm-up: the engine's first contact with each agent
        started, sent = time.perf_counter(), 0
        for _ in range(rounds):
            sent += await loop.round()
        return time.perf_counter() - started, sent
    finally:
        loop.poller.close()
        await producer.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--aps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP)
    prefix = f"bench-snmp-{uuid.uuid4().hex[:8]}."
    asyncio.run(ensure_topics(bootstrap, prefix))
    agents: list[SnmpAgent] = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for i in range(args.agents):
                folder = Path(workdir) / f"agent-{i}"
                folder.mkdir()
                agents.append(SnmpAgent(folder, community="bench").start())
                agents[-1].clients_file.write_text(f"{10 + i}\n")
            lines = [f"  - {{ap_id: ap-bench-{j}, site_id: bench, port: {agents[j % len(agents)].port}}}"
                     for j in range(args.aps)]
            targets = Path(workdir) / "aps.yaml"
            targets.write_text("defaults: {host: 127.0.0.1, vendor: net-snmp, community: bench}\n"
                               "access_points:\n" + "\n".join(lines) + "\n")
            took, sent = asyncio.run(poll_rounds(bootstrap, prefix, targets, args.rounds, args.concurrency))
            raw_n = args.aps * args.rounds
            raw_s = asyncio.run(raw_gets(agents, raw_n, args.concurrency))
    finally:
        for agent in agents:
            agent.stop()
        asyncio.run(delete_topics(bootstrap, prefix))
    polls = args.aps * args.rounds
    rate, ceiling = polls / took, raw_n / raw_s
    print(f"snmp bench: {args.aps} APs over {args.agents} snmpd agents, {args.rounds} rounds, "
          f"concurrency {args.concurrency}")
    print(f"  {polls} polls in {took:.2f}s: {rate:,.1f} polls/s, {sent} heartbeats acknowledged "
          f"(unreachable so far: {POLLS.labels('unreachable')._value.get():.0f})")
    print(f"  ceiling: {ceiling:,.0f} single GETs/s (one round trip each) on the same agents")
    print(json.dumps({"snmp_polls_per_s": round(rate, 1), "raw_get_per_s": round(ceiling, 1),
                      "heartbeats": sent, "polls": polls, "aps": args.aps, "agents": args.agents,
                      "concurrency": args.concurrency}))
    return 0 if sent == polls else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: RADIUS Accounting-Requests per second one collector answers with acks=all.

    uv run python bench/bench_radius.py [--requests 20000] [--window 256] [--sessions 2000]

Starts the collector from its real entry point (`python -m wifi_telemetry.edge.radius`) under a fresh
topic prefix, then sends N signed Accounting-Requests (Start, Interim-Update, Stop of S
sessions, one NAS) over UDP keeping at most W unanswered, and times first send to last
Accounting-Response: each response means the event was acknowledged by every in-sync replica.
Unanswered requests are resent after 2 s, as a NAS does. The ceiling is measured in the same
run: the raw rate of an acks=all idempotent producer sending the same number of ClientSession
events from this process. Stops by itself; deletes the prefix's topics.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from benchkit import produce_all  # a sibling module (bench/ is on sys.path)

from smartcity.edge_testing import free_udp_port
from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.testing import free_port
from smartcity.topics import delete_topics, ensure_topics
from smartcity.v1 import wifi_pb2
from wifi_telemetry.edge import radius_protocol as rp

ROOT = Path(__file__).resolve().parents[1]
SECRET = b"bench-secret"
STATUSES = (rp.START, rp.INTERIM_UPDATE, rp.STOP)


def requests(n: int, sessions: int) -> list[bytes]:
    out = []
    for i in range(n):
        session, step = i % sessions, i // sessions
        status = STATUSES[step] if step < 3 else rp.INTERIM_UPDATE
        attrs = [(rp.ACCT_STATUS_TYPE, struct.pack("!I", status)),
                 (rp.ACCT_SESSION_ID, f"bench-{session}".encode()), (rp.NAS_IDENTIFIER, b"bench-nas"),
                 (rp.CALLING_STATION_ID, f"02-00-00-{session >> 16 & 255:02X}-{session >> 8 & 255:02X}-"
                                         f"{session & 255:02X}".encode()),
                 (rp.ACCT_SESSION_TIME, struct.pack("!I", step * 60)),
                 (rp.ACCT_INPUT_OCTETS, struct.pack("!I", step * 1000))]
        out.append(rp.sign_accounting_request(i % 256, attrs, SECRET))
    return out


class Client(asyncio.DatagramProtocol):
    """A NAS with a window of unanswered requests; identifiers are 8 bits, so key by (id, auth)."""

    def __init__(self, packets: list[bytes], window: int) -> None:
        self.packets, self.window = packets, window
        self.next = 0
        self.pending: dict[bytes, tuple[bytes, float]] = {}  # request authenticator → packet, sent at
        self.by_id: dict[int, list[bytes]] = {}
        self.answered = self.resent = 0
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._fill()

    def _fill(self) -> None:
        while len(self.pending) < self.window and self.next < len(self.packets):
            packet = self.packets[self.next]
            self.next += 1
            self.pending[packet[4:20]] = (packet, time.monotonic())
            self.by_id.setdefault(packet[1], []).append(packet[4:20])
            assert self.transport is not None
            self.transport.sendto(packet)

    def datagram_received(self, data: bytes, addr: object) -> None:
        # A response carries the request's identifier; its authenticator proves which request.
        for auth in self.by_id.get(data[1], []):
            if hashlib.md5(data[:4] + auth + SECRET).digest() == data[4:20] and auth in self.pending:
                del self.pending[auth]
                self.by_id[data[1]].remove(auth)
                self.answered += 1
                break
        self._fill()
        if self.answered == len(self.packets) and not self.done.done():
            self.done.set_result(None)

    def resend_late(self) -> None:
        now = time.monotonic()
        for auth, (packet, sent) in list(self.pending.items()):
            if now - sent > 2.0:
                self.pending[auth] = (packet, now)
                self.resent += 1
                assert self.transport is not None
                self.transport.sendto(packet)


async def send_all(port: int, packets: list[bytes], window: int,
                   timeout_s: float) -> tuple[float, int, int]:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(lambda: Client(packets, window),
                                                            remote_addr=("127.0.0.1", port))
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    try:
        while not client.done.done() and time.monotonic() < deadline:
            await asyncio.wait([client.done], timeout=0.5)
            client.resend_late()
    finally:
        transport.close()
    return time.perf_counter() - started, client.answered, client.resent


def start_collector(prefix: str, port: int, metrics_port: int, workdir: Path) -> subprocess.Popen[bytes]:
    (workdir / "nas.yaml").write_text("nas:\n  - nas_identifier: bench-nas\n    secret: bench-secret\n"
                                      "    ap_id: ap-bench-01\n    site_id: bench\n")
    env = os.environ | {"SMARTCITY_TOPIC_PREFIX": prefix, "WIFI_RADIUS_PORT": str(port),
                        "WIFI_RADIUS_NAS_FILE": str(workdir / "nas.yaml"),
                        "METRICS_PORT": str(metrics_port),
                        "LOG_LEVEL": "WARNING", "WIFI_CLIENT_HASH_SALT": "bench-salt"}
    proc = subprocess.Popen([sys.executable, "-m", "wifi_telemetry.edge.radius"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the collector did not become ready")


def collector_outcomes(metrics_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("wifi_radius_packets_total{")}


def raw_records(topic: str, n: int) -> list[tuple[str, bytes, bytes]]:
    event = wifi_pb2.ClientSession(ap_id="ap-bench-01", site_id="bench", client_hash="0" * 64,
                                   kind=wifi_pb2.SESSION_EVENT_KIND_CONNECT,
                                   session_id="bench", event_id="e" * 32)
    return [(topic, b"ap-bench-01", event.SerializeToString()) for _ in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--sessions", type=int, default=2000)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP)
    prefix = f"bench-radius-{uuid.uuid4().hex[:8]}."
    asyncio.run(ensure_topics(bootstrap, prefix))
    port, metrics_port = free_udp_port(), free_port()
    packets = requests(args.requests, args.sessions)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            collector = start_collector(prefix, port, metrics_port, Path(workdir))
            try:
                took, answered, resent = asyncio.run(send_all(port, packets, args.window, timeout_s=300))
                outcomes = collector_outcomes(metrics_port)
            finally:
                os.killpg(collector.pid, signal.SIGTERM)
                collector.wait(timeout=30)
        raw_s = asyncio.run(produce_all(bootstrap, raw_records(f"{prefix}wifi.client-sessions.v1",
                                                               args.requests)))
    finally:
        asyncio.run(delete_topics(bootstrap, prefix))
    rate, ceiling = answered / took, args.requests / raw_s
    print(f"radius bench: {args.requests} Accounting-Requests, window {args.window}, "
          f"{args.sessions} sessions")
    print(f"  one collector answered {answered} in {took:.2f}s: {rate:,.0f}/s (acks=all, {resent} resent)")
    print(f"  collector outcomes: {outcomes}")
    print(f"  ceiling: raw acks=all idempotent producer {ceiling:,.0f} msgs/s from this process")
    print(json.dumps({"radius_accounting_per_s": round(rate, 1), "raw_producer_per_s": round(ceiling, 1),
                      "share_of_ceiling": round(rate / ceiling, 3), "requests": args.requests,
                      "answered": answered, "resent": resent, "window": args.window}))
    return 0 if answered == args.requests else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the gateway's read model at years of history: memory, cold and warm restarts, reads.

    flock /tmp/smartcity-bench.lock uv run --frozen python bench/bench_gateway_history.py \
        [--requests 100000 1000000] [--reads 200] [--aps 2000] [--cameras 400] [--keep-topics]
        [--history PREFIX]

For each size, under a fresh topic prefix on the real broker:
1. history: that many closed requests, six lifecycle events each on requests.events.v1 as
   citizen-requests writes them (the request after the event, its history so far, the reporter's
   contact sealed), in event-time
   order (requests overlap in time, as in a city's year), and each request's final state on
   requests.state.v1 (what compaction leaves); a device fleet (AP and camera statuses, site
   stats, some incidents). Produced by partition with aiokafka's batch API, keys hashed as the
   default partitioner does.
2. ceiling: a bare consumer reads the request topics from the beginning and decodes every
   record, nothing else: no rebuild in Python can be faster than that here (read and decode
   seconds apart).
3. cold: the gateway (python -m gateway) on an empty store: start to SERVING, peak RSS of the
   gateway process, and of it with its rebuild worker processes (sampled every 0.2 s).
4. reads, one call at a time: GetRequest; ListRequests per OPD (first page, fifth page), per OPD
   as that OPD's own client, city-wide filtered by category and status (third page);
   ListRequestEvents. p50/p99 in ms over --reads calls each. RSS after the reads.
5. warm: SIGTERM, restart on the store it left: start to SERVING, RSS.
The topics are deleted afterwards unless --keep-topics (the run prints their prefix); --history
PREFIX measures on a history a kept run left (one size, the same --requests) instead of producing
one again, and keeps it too. Last line: one JSON object of the
figures, per size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import heapq
import json
import os
import random
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition
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
    site_stats,
    write_tokens,
)
from smartcity import inventory
from smartcity.codec import to_timestamp
from smartcity.ids import request_id_for
from smartcity.settings import LOCAL_BOOTSTRAP
from smartcity.testing import ServiceProcess
from smartcity.topics import delete_topics, ensure_topics, load_catalogue
from smartcity.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc
from smartcity.v1 import requests_pb2 as RS

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP)
# Category -> the OPD it is routed to (as citizen-requests' routing has it).
ROUTING = {
    "permits": "DPMPTSP",
    "health_info": "DINKES",
    "emergency": "BPBD",
    "roads": "PUPR",
    "waste": "DLH",
    "street_lights": "DISHUB",
    "wifi_cctv": "DINKOMINFO",
}
CATEGORIES = list(ROUTING)
# The lifecycle every synthetic request goes through: (status after, event type, hours after submit).
LIFECYCLE = [
    (RS.REQUEST_STATUS_SUBMITTED, RS.REQUEST_EVENT_TYPE_SUBMITTED, 0.0),
    (RS.REQUEST_STATUS_ACKNOWLEDGED, RS.REQUEST_EVENT_TYPE_ACKNOWLEDGED, 0.5),
    (RS.REQUEST_STATUS_ASSIGNED, RS.REQUEST_EVENT_TYPE_ASSIGNED, 2.0),
    (RS.REQUEST_STATUS_IN_PROGRESS, RS.REQUEST_EVENT_TYPE_STARTED, 6.0),
    (RS.REQUEST_STATUS_RESOLVED, RS.REQUEST_EVENT_TYPE_RESOLVED, 30.0),
    (RS.REQUEST_STATUS_CLOSED, RS.REQUEST_EVENT_TYPE_CLOSED, 78.0),
]
YEAR_S = 365 * 86400.0


def topic(prefix: str, name: str) -> str:
    return load_catalogue()[name].full_name(prefix)


# ---------------- the history ----------------


class History:
    """Synthetic closed requests: request i is submitted at a time spread over a year."""

    def __init__(self, requests: int, start: float, seed: int = 7) -> None:
        self.requests, self.start = requests, start
        rng = random.Random(seed)
        self._category = [rng.randrange(len(CATEGORIES)) for _ in range(min(requests, 4096))]
        self._templates = [self._template(k) for k in range(len(LIFECYCLE))]

    def request_id(self, i: int) -> str:
        """As citizen-requests derives it for a portal submit: a hash, so ids are in no order
        (ids in submission order would put each batch's index entries side by side in the
        store's b-trees, a flattering case no city's ids give)."""
        return request_id_for("citizen-portal", f"bench-{i}")

    def event_id(self, i: int, k: int) -> str:
        """Shaped as citizen-requests' event ids (a name-based hash), in no order either."""
        return "evt-" + hashlib.sha1(f"{i}\x1f{k}".encode()).hexdigest()[:24]

    def category(self, i: int) -> str:
        return CATEGORIES[self._category[i % len(self._category)]]

    def submitted(self, i: int) -> float:
        return self.start + YEAR_S * i / self.requests

    def _template(self, k: int) -> bytes:
        """Event k of a prototype request: what every request shares (fields, history so far)."""
        status, event_type, _ = LIFECYCLE[k]
        request = RS.ServiceRequest(
            priority=RS.PRIORITY_NORMAL,
            status=status,
            version=k + 1,
            description="Jalan berlubang di depan pasar, membahayakan pengendara motor pada malam hari.",
            address="Jl. Jenderal Sudirman No. 12, Purbalingga",
            location=common_pb2.GeoPoint(latitude=-7.3867, longitude=109.3655),
            # The contact sealed as the gateway seals it (sizes of AES-256-GCM over a name, a
            # phone and an e-mail); the store keeps it once per request and never opens it.
            encrypted_reporter=RS.EncryptedContact(
                subject_id="s" * 64,
                data_key_id="dk-" + "0" * 32,
                algorithm="AES-256-GCM",
                nonce=b"\x00" * 12,
                ciphertext=b"\x5a" * 80,
            ),
            submitted_by_client="citizen-portal",
            assignee="tim-lapangan-1" if k >= 2 else "",
        )
        for step in range(k + 1):
            request.history.add(
                version=step + 1,
                type=LIFECYCLE[step][1],
                status=LIFECYCLE[step][0],
                actor=RS.Actor(kind=RS.ACTOR_KIND_OPD_STAFF, id="petugas"),
                note="ditindaklanjuti",
            )
        event = RS.RequestEvent(
            type=event_type,
            version=k + 1,
            status_before=LIFECYCLE[k - 1][0] if k else RS.REQUEST_STATUS_UNSPECIFIED,
            status_after=status,
            actor=RS.Actor(kind=RS.ACTOR_KIND_OPD_STAFF, id="petugas"),
        )
        event.request.CopyFrom(request)
        return bytes(event.SerializeToString())

    def event(self, i: int, k: int) -> bytes:
        """Event k of request i: the template merged with what is the request's own (protobuf
        concatenation merges messages: these scalars override, nothing repeated is added)."""
        category = self.category(i)
        submitted = self.submitted(i)
        own = RS.RequestEvent(
            event_id=self.event_id(i, k),
            request_id=self.request_id(i),
            event_time=to_timestamp(submitted + LIFECYCLE[k][2] * 3600),
        )
        own.request.request_id = self.request_id(i)
        own.request.category = own.request.service_code = category
        own.request.opd_code = ROUTING[category]
        own.request.title = f"laporan {i}"
        own.request.requested_time.CopyFrom(to_timestamp(submitted))
        own.request.updated_time.CopyFrom(to_timestamp(submitted + LIFECYCLE[k][2] * 3600))
        return self._templates[k] + own.SerializeToString()

    def final_state(self, i: int) -> bytes:
        return bytes(
            RS.RequestEvent.FromString(self.event(i, len(LIFECYCLE) - 1)).request.SerializeToString()
        )

    def events_in_time_order(self) -> Iterator[tuple[int, int]]:
        """(request, step) in event-time order: six sorted streams merged."""
        streams = [self._step_in_time_order(k) for k in range(len(LIFECYCLE))]
        for _, i, k in heapq.merge(*streams):
            yield i, k

    def _step_in_time_order(self, k: int) -> Iterator[tuple[float, int, int]]:
        hours = LIFECYCLE[k][2]
        for i in range(self.requests):
            yield self.submitted(i) + hours * 3600, i, k


class BatchingProducer:
    """Appends records to one batch per partition, sends full batches (acks=all, idempotent)."""

    def __init__(self, producer: AIOKafkaProducer, partitions: dict[str, int]) -> None:
        self._producer = producer
        self._partitions = partitions
        self._partitioner = DefaultPartitioner()
        self._batches: dict[tuple[str, int], Any] = {}
        self._pending: list[asyncio.Future[Any]] = []
        self.records = 0

    async def send(self, topic_name: str, key: bytes, value: bytes) -> None:
        count = self._partitions[topic_name]
        partition = self._partitioner(key, list(range(count)), list(range(count)))
        batch = self._batches.get((topic_name, partition))
        if batch is None:
            batch = self._batches[(topic_name, partition)] = self._producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            await self._flush(topic_name, partition)
            batch = self._batches[(topic_name, partition)] = self._producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)
        self.records += 1

    async def _flush(self, topic_name: str, partition: int) -> None:
        batch = self._batches.pop((topic_name, partition))
        self._pending.append(await self._producer.send_batch(batch, topic_name, partition=partition))
        if len(self._pending) > 64:
            await asyncio.gather(*self._pending)
            self._pending.clear()

    async def close(self) -> None:
        for topic_name, partition in list(self._batches):
            await self._flush(topic_name, partition)
        await asyncio.gather(*self._pending)


async def build_history(prefix: str, history: History, aps: int, cameras: int) -> dict[str, float]:
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        **SECURITY,
        acks="all",
        enable_idempotence=True,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    catalogue = load_catalogue()
    names = [
        "requests.events.v1",
        "requests.state.v1",
        "wifi.ap-status.v1",
        "camera.status.v1",
        "camera.incidents.v1",
        "wifi.site-stats.v1",
    ]
    out = BatchingProducer(producer, {topic(prefix, n): catalogue[n].partitions for n in names})
    began = time.perf_counter()
    try:
        events, states = topic(prefix, "requests.events.v1"), topic(prefix, "requests.state.v1")
        for i, k in history.events_in_time_order():
            key = history.request_id(i).encode()
            await out.send(events, key, history.event(i, k))
            if k == len(LIFECYCLE) - 1:
                await out.send(states, key, history.final_state(i))
        await seed_fleet(prefix, out, aps, cameras)
        await out.close()
    finally:
        await producer.stop()
    elapsed = time.perf_counter() - began
    return {"records": out.records, "seconds": elapsed, "records_per_s": out.records / elapsed}


async def seed_fleet(prefix: str, out: BatchingProducer, aps: int, cameras: int) -> None:
    sites = inventory.SITES
    for n in range(aps):
        site = sites[n % len(sites)]
        status = ap(
            f"ap-b-{n:05d}",
            site_id=site.site_id,
            health=CRITICAL if n % 37 == 0 else OK,
            clients=n % 40,
            lat=site.latitude,
            lon=site.longitude,
        )
        await out.send(topic(prefix, "wifi.ap-status.v1"), status.ap_id.encode(), status.SerializeToString())
    for n in range(cameras):
        site = sites[n % len(sites)]
        status = camera(
            f"cam-b-{n:05d}",
            site_id=site.site_id,
            health=CRITICAL if n % 53 == 0 else OK,
            lat=site.latitude,
            lon=site.longitude,
        )
        await out.send(
            topic(prefix, "camera.status.v1"), status.camera_id.encode(), status.SerializeToString()
        )
        for m in range(3):  # a few incidents per camera over the year, all but the last resolved
            found = incident(
                f"inc-b-{n:05d}-{m}",
                status.camera_id,
                site_id=site.site_id,
                resolved=m < 2,
                opened=time.time() - (3 - m) * 86400,
            )
            await out.send(
                topic(prefix, "camera.incidents.v1"), status.camera_id.encode(), found.SerializeToString()
            )
    for site in sites:
        for window in (common_pb2.STATS_WINDOW_HOUR, common_pb2.STATS_WINDOW_DAY):
            stats = site_stats(site.site_id, window, unique_users=100)
            await out.send(
                topic(prefix, "wifi.site-stats.v1"),
                f"{site.site_id}:{window}".encode(),
                stats.SerializeToString(),
            )


async def read_ceiling(prefix: str) -> dict[str, float]:
    """A bare consumer reading the request topics from the beginning to their end, no decoding."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP,
        **SECURITY,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        catalogue = load_catalogue()
        parts = [
            TopicPartition(topic(prefix, n), p)
            for n in ("requests.events.v1", "requests.state.v1")
            for p in range(catalogue[n].partitions)
        ]
        consumer.assign(parts)
        starts = await consumer.beginning_offsets(parts)
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            consumer.seek(tp, starts[tp])
        expected = sum(ends[tp] - starts[tp] for tp in parts)
        began, records = time.perf_counter(), 0
        deadline = time.monotonic() + 1800
        decoding = 0.0
        events = topic(prefix, "requests.events.v1")
        while records < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10000)
            records += sum(len(r) for r in batch.values())
            # What any rebuild in Python must do besides reading: decode every record.
            decode_began = time.perf_counter()
            for tp, found in batch.items():
                kind = RS.RequestEvent if tp.topic == events else RS.ServiceRequest
                for record in found:
                    kind.FromString(record.value)
            decoding += time.perf_counter() - decode_began
        elapsed = time.perf_counter() - began
    finally:
        await consumer.stop()
    return {
        "records": records,
        "seconds": elapsed,
        "read_seconds": elapsed - decoding,
        "decode_seconds": decoding,
        "records_per_s": records / elapsed,
    }


# ---------------- the gateway ----------------


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants (the rebuild workers), MiB, now."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            total += rss_mib(current)[0]
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pending.extend(int(child) for child in children)
    return total


async def sample_tree_rss(gateway: GatewayProcess, peak: list[float]) -> None:
    """Keeps peak[0] at the highest resident memory of the gateway's process tree seen."""
    while True:
        with contextlib.suppress(AssertionError, FileNotFoundError, ProcessLookupError):
            peak[0] = max(peak[0], await asyncio.to_thread(tree_rss_mib, gateway.proc.pid))
        await asyncio.sleep(0.2)


async def start_and_wait(
    starter: Callable[..., GatewayProcess], prefix: str, tokens: Path, store: Path
) -> tuple[GatewayProcess, float, float]:
    """(the gateway, seconds to SERVING, peak resident memory of its process tree meanwhile)."""
    began = time.perf_counter()
    gateway = starter(
        prefix,
        tokens,
        GATEWAY_STORE_PATH=str(store),
        LOG_LEVEL="INFO",
        GATEWAY_RATE_LIMIT_RPS="1000000",
        GATEWAY_RATE_LIMIT_BURST="1000000",
    )
    peak = [0.0]
    sampler = asyncio.create_task(sample_tree_rss(gateway, peak))
    try:
        await gateway.wait_serving(timeout_s=3600)
    finally:
        sampler.cancel()
    serving_at[0] = time.perf_counter()
    return gateway, time.perf_counter() - began, peak[0]


def rebuild_phases(log: Path) -> dict[str, float]:
    """Seconds the rebuild workers spent per phase (states, then events), from the gateway's log
    ("rebuild: <view> read by <n> workers in <s> s")."""
    found = re.finditer(r"rebuild: (\w+) read by \d+ workers in ([0-9.]+) s", log.read_text(errors="replace"))
    return {match.group(1): float(match.group(2)) for match in found}


def rebuild_workers(log: Path) -> list[str]:
    """What each rebuild worker reported of its time ("worker <n> (<view>): fetch 1.0 s, ..."),
    and the store's steps between and after the phases (the requests settled, index builds),
    as the gateway logged them."""
    found = re.finditer(
        r"rebuild (worker \d+ \(\w+\): .*)|rebuild: (between the phases .*)|history store: (built .*)",
        log.read_text(errors="replace"),
    )
    return [next(group for group in match.groups() if group).strip() for match in found]


Call = Callable[[], Awaitable[Any]]
# When the gateway last reported SERVING (perf_counter): slow calls are told by when they began
# after it, to match them with what the gateway did then (its log, the machine's disk).
serving_at = [0.0]


async def timed(calls: list[Call]) -> dict[str, Any]:
    latencies, began_at = [], []
    for call in calls:
        began = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - began) * 1000)
        began_at.append(began - serving_at[0])
    # Which call was the slowest (0: the first): an outlier right after SERVING is early.
    slowest = max(range(len(latencies)), key=latencies.__getitem__)
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 2),
        "slowest_ms": round(ordered[-1], 2),
        "slowest_call": slowest,
        "calls_over_20_ms": [n for n, ms in enumerate(latencies) if ms > 20],
        # Seconds after SERVING each of those began.
        "calls_over_20_ms_at_s": [round(began_at[n], 2) for n, ms in enumerate(latencies) if ms > 20],
        "first_call_at_s": round(began_at[0], 2),
    }


async def measure_reads(gateway: GatewayProcess, history: History, reads: int) -> dict[str, Any]:
    rng = random.Random(11)
    async with gateway.channel() as channel:
        stub = gateway_pb2_grpc.RequestServiceStub(channel)
        ids = [history.request_id(rng.randrange(history.requests)) for _ in range(reads)]
        sample = await stub.GetRequest(
            gateway_pb2.GetRequestRequest(request_id=ids[0]), metadata=auth("t-cc"), timeout=30
        )
        assert sample.request.status == RS.REQUEST_STATUS_CLOSED, sample
        events = await stub.ListRequestEvents(
            gateway_pb2.ListRequestEventsRequest(request_id=ids[0]), metadata=auth("t-cc"), timeout=30
        )
        assert len(events.events) == len(LIFECYCLE), events
        figures: dict[str, Any] = {}
        get = [unary(stub.GetRequest, gateway_pb2.GetRequestRequest(request_id=rid)) for rid in ids]
        figures["get_request"] = await timed(get)
        trails = [
            unary(stub.ListRequestEvents, gateway_pb2.ListRequestEventsRequest(request_id=rid)) for rid in ids
        ]
        figures["list_request_events"] = await timed(trails)
        listings = {
            "list_opd_first_page": (
                gateway_pb2.ListRequestsRequest(opd_code="PUPR", page_size=50),
                "t-cc",
                1,
            ),
            "list_opd_page_5": (gateway_pb2.ListRequestsRequest(opd_code="PUPR", page_size=50), "t-cc", 5),
            "list_own_opd_client": (gateway_pb2.ListRequestsRequest(page_size=50), "t-dlh", 1),
            "list_city_filtered_page_3": (
                gateway_pb2.ListRequestsRequest(
                    category="emergency", status=RS.REQUEST_STATUS_CLOSED, page_size=50
                ),
                "t-cc",
                3,
            ),
        }
        for name, (request, token, page) in listings.items():
            call = await paged(stub, request, token, page)
            first = await call()
            assert len(first.requests) == 50 and first.total_size > 50, (name, first.total_size)
            figures[name] = await timed([call] * reads) | {"total_size": first.total_size}
    return figures


def unary(method: Any, request: Any, token: str = "t-cc") -> Call:
    return lambda: method(request, metadata=auth(token), timeout=30)


async def paged(stub: Any, request: Any, token: str, page: int) -> Call:
    """The call of page `page` (1-based) of a listing; the earlier pages fetched beforehand."""
    for _ in range(page - 1):
        reply = await stub.ListRequests(request, metadata=auth(token), timeout=30)
        following = type(request)()
        following.CopyFrom(request)
        following.page_token = reply.next_page_token
        request = following
    return unary(stub.ListRequests, request, token)


async def one_size(  # noqa: PLR0917
    requests: int, reads: int, aps: int, cameras: int, keep_topics: bool, reuse: str = ""
) -> dict[str, Any]:
    # A kept history's prefix as the run printed it, its closing dot given or not.
    prefix = (reuse.rstrip(".") + ".") if reuse else f"benchh{uuid.uuid4().hex[:8]}."
    if keep_topics or reuse:
        # A kept history's folder is found again by its prefix: the gateway's secrets (its KEK
        # keyring made the data keys on the history's topic) are in it.
        workdir = Path(tempfile.gettempdir()) / f"bench-history-{prefix.rstrip('.')}"
        workdir.mkdir(exist_ok=True)
        shutil.rmtree(workdir / "store", ignore_errors=True)  # cold means cold
    else:
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="bench-history-"))
    await ensure_topics(BOOTSTRAP, prefix, security=SECURITY)
    history = History(requests, start=time.time() - YEAR_S - 4 * 86400)
    figures: dict[str, Any] = {
        "requests": requests,
        "events": requests * len(LIFECYCLE),
        "aps": aps,
        "cameras": cameras,
    }
    started: list[ServiceProcess] = []
    try:
        if reuse:
            print(f"[{requests}] on the history kept under the prefix {prefix}", flush=True)
        else:
            figures["produce"] = await build_history(prefix, history, aps, cameras)
            print(
                f"[{requests}] produced {figures['produce']['records']} records in "
                f"{figures['produce']['seconds']:.1f} s under the prefix {prefix}",
                flush=True,
            )
        figures["ceiling_read"] = await read_ceiling(prefix)
        ceiling = figures["ceiling_read"]
        if reuse and ceiling["records"] < requests * len(LIFECYCLE):
            raise SystemExit(
                f"--history {reuse}: {ceiling['records']} records under the prefix {prefix}, not the "
                f"{requests * len(LIFECYCLE)} events of {requests} requests "
                "(a kept run's prefix and --requests?)"
            )
        print(
            f"[{requests}] bare consumer: {ceiling['records']} records in {ceiling['seconds']:.1f} s "
            f"(read {ceiling['read_seconds']:.1f} s, decode {ceiling['decode_seconds']:.1f} s)",
            flush=True,
        )
        starter = make_starter(BOOTSTRAP, workdir, started)
        tokens = write_tokens(workdir / "tokens.yaml")
        store = workdir / "store" / "history.sqlite3"
        gateway, cold_s, tree_peak = await start_and_wait(starter, prefix, tokens, store)
        figures["cold_start_s"] = round(cold_s, 2)
        figures["cold_peak_rss_mib"] = round(rss_mib(gateway.proc.pid)[1], 1)
        figures["cold_peak_tree_rss_mib"] = round(tree_peak, 1)
        figures["cold_vs_ceiling"] = round(cold_s / figures["ceiling_read"]["seconds"], 2)
        figures["cold_phases_s"] = rebuild_phases(gateway.proc.log_path)
        figures["cold_workers"] = rebuild_workers(gateway.proc.log_path)
        print(
            f"[{requests}] cold start to SERVING {cold_s:.1f} s ({figures['cold_vs_ceiling']:.2f} x the "
            f"ceiling), peak RSS {figures['cold_peak_rss_mib']:.0f} MiB, with its rebuild workers "
            f"{tree_peak:.0f} MiB (sampled); rebuild phases {figures['cold_phases_s']}",
            flush=True,
        )
        for worker in figures["cold_workers"]:
            print(f"[{requests}]   {worker}", flush=True)
        figures["reads"] = await measure_reads(gateway, history, reads)
        figures["rss_after_reads_mib"] = round(rss_mib(gateway.proc.pid)[0], 1)
        gateway.proc.stop()
        figures["store_mib"] = round(sum(f.stat().st_size for f in store.parent.glob("*")) / 2**20, 1)
        gateway, warm_s, _ = await start_and_wait(starter, prefix, tokens, store)
        figures["warm_start_s"] = round(warm_s, 2)
        current, peak = rss_mib(gateway.proc.pid)
        figures["warm_rss_mib"], figures["warm_peak_rss_mib"] = round(current, 1), round(peak, 1)
        print(f"[{requests}] warm start to SERVING {warm_s:.1f} s, RSS {current:.0f} MiB", flush=True)
    finally:
        for proc in started:
            proc.stop()
        if not keep_topics and not reuse:
            await delete_topics(BOOTSTRAP, prefix, security=SECURITY)
    return figures


def report(rows: list[dict[str, Any]]) -> None:
    print(
        f"\n{'requests':>9} {'events':>9} {'cold s':>7} {'warm s':>7} {'peak MiB':>9} {'tree MiB':>9} "
        f"{'RSS MiB':>8} {'store MiB':>9} {'ceiling s':>9}"
    )
    for r in rows:
        print(
            f"{r['requests']:>9} {r['events']:>9} {r['cold_start_s']:>7.1f} {r['warm_start_s']:>7.1f} "
            f"{r['cold_peak_rss_mib']:>9.0f} {r['cold_peak_tree_rss_mib']:>9.0f} "
            f"{r['rss_after_reads_mib']:>8.0f} {r['store_mib']:>9.0f} "
            f"{r['ceiling_read']['seconds']:>9.1f}"
        )
    print(f"\n{'read (ms)':<28}" + "".join(f"{r['requests']:>16}" for r in rows))
    for name in rows[0]["reads"]:
        cells = "".join(
            f"{r['reads'][name]['p50_ms']:>7.1f} /{r['reads'][name]['p99_ms']:>7.1f}" for r in rows
        )
        print(f"{name + ' p50/p99':<28}{cells}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--reads", type=int, default=200, help="calls per read kind")
    parser.add_argument("--aps", type=int, default=2000)
    parser.add_argument("--cameras", type=int, default=400)
    parser.add_argument("--keep-topics", action="store_true")
    parser.add_argument("--history", default="", metavar="PREFIX", help="a kept history's topic prefix")
    args = parser.parse_args()
    if args.history and len(args.requests) != 1:
        parser.error("--history measures one size: give the --requests it was produced with")
    rows = [
        await one_size(n, args.reads, args.aps, args.cameras, args.keep_topics, args.history)
        for n in args.requests
    ]
    report(rows)
    print(json.dumps({"bench": "gateway_history", "sizes": rows}))


if __name__ == "__main__":
    asyncio.run(main())

"""The cold rebuild in parallel: worker processes read the request topics into the history store.

    projector (store rebuilding) ── pauses its requests.state / requests.events partitions
        phase 1: requests.state  partitions ──► W worker processes ─┐ each: its own consumer and
        phase 2: requests.events partitions ──► W worker processes ─┤ store connection, one
                                                                     │ transaction per batch
                                                                     ▼ (rows + offsets)
                                                               history store (SQLite, WAL)
    into an empty store, phase 1 appends the requests without their id index; between the
    phases the store settles them (one row per request, the index, the counts); during phase 2
    the gateway builds the requests' listing indexes (dropped for phase 1), and phase 2 appends
    the trail without its unique index, built once the projector has read to the end; then
    the projector fills its memory from the store (open requests, counts), as a warm start
    does, seeks those partitions to the store's checkpoint and reads on from there.

    in a worker: event loop   fetch batch n+1 ──────────────► fetch batch n+2 ...
                 work thread     decode + write batch n (rows + offsets, one transaction) ...

Why processes: a rebuild is Python work per record (Kafka record parsing, protobuf decoding,
stripping contact fields, SQL parameters), bound by one interpreter lock; records of different
partitions are independent, so W processes do W partitions at a time, and SQLite serialises only
their short write transactions. The state topic is read whole before the event topic (as the
single-process catch-up does), so nearly every event finds its request's newest version stored
and adds its trail row only; a request's records share a partition of each topic (keyed by the
request id), so no two workers ever write the same request in the same phase.

Each batch commits its rows with its offsets, so a worker (or the gateway) killed half-way
leaves a store the next start resumes from. A worker whose gateway is gone stops by itself.

Where a worker's time goes (each logs it): it is bound by CPU, and the two workers keep the
two cores busy (the broker and the gateway take a tenth of a core). A batch is decoded and
written on one thread, in order, while the event loop fetches the next: with both on the loop,
the loop read no socket while it worked, so every batch that drained a partition's buffer
waited for a whole fetch. (An earlier split, decoding on the loop and writing on a thread,
overlapped nothing: the two threads took turns at the interpreter lock, sqlite3 letting go of
it for every row's step.) The per-record work is written out for the millions of records
(`trail_batch`, `state_batch`, `history_store._insert`). At a million requests, in-run ceiling
81.4 s: events 70.6 s, worker CPU 54 s each (decode 20, write 26); with the thread alone (the
per-record work as before), events 94.8 s and 73-75 s of CPU each beside the same ceiling.
State records made into rows straight from the records (`state_batch`), not decoded and
planned as requests whose columns the commit then picks: at a million requests, the requests
phase 31.1 -> 20.1 s, worker CPU 23.4 -> 15.5 s each (write 16.1 -> 7.5 s).
(Those figures were of request ids in submission order, which a city's hashed ids are not. With
hashed ids, every batch's commit rewrote most pages of the unique indexes: at a million
requests, cold 366.7 s, events phase 318.8 s; appending without them, and building them after
(HistoryStore.append_requests, build_trail_index), 126-140 s, events phase 84-95 s.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import functools
import gc
import logging
import multiprocessing
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.structs import TopicPartition

from gateway.adapters.history_store import HistoryStore, mark_of
from gateway.adapters.request_history import Carried, RequestHistory
from gateway.core.history import (
    TRAIL_PARSE_ERRORS,
    TRAIL_PARTITION_BITS,
    StateRequest,
    StateRow,
    TrailEvent,
    TrailRow,
    check_trail_partition,
)
from smartcity.codec import DecodeError, ProtoCodec
from smartcity.kafka import make_consumer
from smartcity.request_rules import OPEN_STATUSES
from smartcity.settings import PlatformSettings

log = logging.getLogger(__name__)

# The phases, in order: the state topic, then the event topic (see the module doc).
PHASES: tuple[tuple[str, str], ...] = (("requests.state.v1", "requests"), ("requests.events.v1", "events"))
_BATCH = 5000
_PR_SET_PDEATHSIG = 1
_FETCH_BYTES = 4 * 1024 * 1024
# A worker collects reference cycles itself, every so many batches (see _read_into_store).
_BATCHES_PER_COLLECTION = 20

Outcomes = Counter[str]  # "ok" | "tombstone" | "undecodable" -> records


@dataclass(frozen=True)
class Job:
    """What one worker process reads: partitions of one topic, each from `start` to `end`."""

    settings: PlatformSettings
    store_path: Path
    store_topics: tuple[str, ...]
    cache_mib: int
    view: str  # "requests" | "events"
    # (full topic name, partition, first offset to read, end offset to reach)
    partitions: tuple[tuple[str, int, int, int], ...]
    parent_pid: int
    number: int


def jobs_for(
    view: str,
    behind: dict[TopicPartition, tuple[int, int]],
    workers: int,
    make: Callable[[str, tuple[tuple[str, int, int, int], ...], int], Job],
) -> list[Job]:
    """The phase's partitions dealt to up to `workers` jobs, largest first, so that each job
    gets about as many records to read (`behind`: partition -> (first offset, end))."""
    ordered = sorted(behind.items(), key=lambda item: item[1][1] - max(0, item[1][0]), reverse=True)
    shares: list[list[tuple[str, int, int, int]]] = [[] for _ in range(min(workers, len(ordered)))]
    loads = [0] * len(shares)
    for tp, (start, end) in ordered:  # start -1: from the beginning
        lightest = loads.index(min(loads))
        shares[lightest].append((tp.topic, tp.partition, start, end))
        loads[lightest] += end - max(0, start)
    return [make(view, tuple(share), n) for n, share in enumerate(shares) if share]


class ParallelRebuild:
    """Runs the phases, one worker process per job; returns the records' outcomes per view."""

    def __init__(self) -> None:
        # spawn, not fork: the gateway has threads (gRPC, SQLite writes) a fork would copy
        # half-way.
        self._context = multiprocessing.get_context("spawn")

    async def run(
        self,
        phases: Sequence[list[Job]],
        between: Callable[[], Awaitable[None]] | None = None,
        after_first: Callable[[], Awaitable[None]] | None = None,
    ) -> dict[str, Outcomes]:
        """The phases one after the other; `between` runs after the first phase and before the
        next (the appended requests settled: the event topic's workers look them up), and
        `after_first` beside the phases after the first one (the store's listing indexes,
        built while the event topic is read), waited for at the end.

        A phase's workers are started before `between` and read once it is done: a process
        spawned takes a second or so (an interpreter, its imports, a broker connection) that
        `between`, one SQLite statement on one core, leaves the other core for."""
        outcomes: dict[str, Outcomes] = {}
        beside: asyncio.Task[None] | None = None
        started: list[_Started] = []
        try:
            for number, jobs in enumerate(phases):
                go = self._context.Event()
                started = [self._start(job, go) for job in jobs]
                if number == 1 and between is not None:
                    began = time.monotonic()
                    await between()
                    log.info("rebuild: between the phases %.1f s", time.monotonic() - began)
                go.set()
                if number == 1 and after_first is not None:
                    beside = asyncio.ensure_future(after_first())
                await self._phase(started, outcomes)
            if beside is not None:
                await beside
        finally:
            if beside is not None and not beside.done():
                beside.cancel()
            for worker in started:
                await worker.end()
        return outcomes

    def _start(self, job: Job, go: Event) -> _Started:
        """A job's process started; it reads once `go` is set."""
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_job_main, args=(job, sender, go),
                                        name=f"rebuild-{job.number}")
        process.start()
        sender.close()
        return _Started(job, process, receiver)

    async def _phase(self, started: list[_Started], outcomes: dict[str, Outcomes]) -> None:
        began = time.monotonic()
        for worker, found in zip(started, await asyncio.gather(*[w.result() for w in started]), strict=True):
            outcomes.setdefault(worker.job.view, Counter()).update(found)
        if started:
            view = started[0].job.view
            log.info(
                "rebuild: %s read by %d workers in %.1f s (%s)",
                view,
                len(started),
                time.monotonic() - began,
                dict(outcomes.get(view, {})),
            )


@dataclass
class _Started:
    """A job's worker process and the end of the pipe its result comes through."""

    job: Job
    process: Any  # multiprocessing's SpawnProcess
    receiver: Connection

    async def result(self) -> Outcomes:
        """The job's outcomes once its process sent them; the process ended either way
        (cancelled: the gateway stops)."""
        job, process, receiver = self.job, self.process, self.receiver
        try:
            while not receiver.poll():
                if not process.is_alive() and not receiver.poll():
                    raise RuntimeError(f"rebuild worker {job.number} exited with code {process.exitcode}")
                await asyncio.sleep(0.05)
            done, found, spent = receiver.recv()
        finally:
            await self.end()
        if done != "ok":
            raise RuntimeError(f"rebuild worker {job.number} failed: {found}")
        log.info(
            "rebuild worker %d (%s): %s",
            job.number,
            job.view,
            ", ".join(f"{what} {seconds:.1f} s" for what, seconds in spent.items()),
        )
        return Counter(found)

    async def end(self) -> None:
        """The process ended (terminated if still running) and joined; the pipe closed. Once:
        `result` ends it, and the rebuild ends every worker of a phase it left half-way."""
        if self.receiver.closed:
            return
        self.receiver.close()
        if self.process.is_alive() and self.process.exitcode is None:
            self.process.terminate()
        await asyncio.to_thread(self.process.join, 10)


# ---------------- in the worker process ----------------


def _job_main(job: Job, result: Connection, go: Event) -> None:
    """A worker's entry point: once `go` is set, reads its partitions up to their ends into the
    store, then sends ("ok", outcomes, seconds spent per step) or ("failed", why, {})."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _die_with_the_gateway()
    try:
        outcomes, spent = asyncio.run(_read_into_store(job, go))
    except BaseException as exc:
        result.send(("failed", repr(exc), {}))
        raise
    result.send(("ok", dict(outcomes), spent))


def _die_with_the_gateway() -> None:
    """Linux: the kernel kills this process when the gateway dies (even by SIGKILL), so no
    worker writes on after it. Elsewhere the worker notices its parent changed, per batch."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _NoMemory:
    """The worker keeps no memory views: the gateway loads them from the store afterwards."""

    def place_request(self, request_id: str, request: Any | None) -> None:
        return None


def _plain_records() -> None:
    """aiokafka wraps every record it parsed (in C) in a ConsumerRecord made in Python, which
    costs about as much as the parsing: a worker, which reads nothing else, takes the parsed
    records as they are (offset, key, value, timestamp and headers, as a ConsumerRecord has
    them; no topic or partition: the batch gives those). aiokafka has no public way to do
    this: where the private method is not there, the records stay wrapped, and all works."""
    records = getattr(aiokafka_fetcher, "PartitionRecords", None)
    if records is not None and hasattr(records, "_consumer_record"):
        records._consumer_record = lambda self, tp, record: record


async def _read_into_store(job: Job, go: Event) -> tuple[Outcomes, dict[str, float]]:
    """Reads the job's partitions into the store once `go` is set,
    connected to the broker and assigned before; returns the records' outcomes and the seconds
    spent waiting for fetches, decoding, writing (wall and CPU) and waiting for the store's
    write lock (the workers' transactions take turns).

    A batch is decoded and written on a thread of its own while the event loop fetches the
    next one: with both on the loop, the loop read no socket while it worked, and each batch
    that drained a partition's buffer waited a whole fetch (see the module doc)."""
    _plain_records()
    store = HistoryStore(job.store_path, job.store_topics, job.cache_mib).attach()
    history = RequestHistory(store, _NoMemory(), OPEN_STATUSES)
    consumer = make_consumer(
        job.settings,
        group_id=None,
        client_id=f"{job.settings.service_name}-rebuild-{job.number}",
        max_partition_fetch_bytes=_FETCH_BYTES,
        # As the projector while catching up (see Projector._check_crcs_from_now_on).
        check_crcs=False,
    )
    ends = {TopicPartition(topic, p): end for topic, p, _, end in job.partitions}
    outcomes: Outcomes = Counter()
    spent = dict.fromkeys(("fetch", "decode", "write", "write cpu", "work wait"), 0.0)
    work = functools.partial(_work, job.view, history, outcomes, spent)
    loop = asyncio.get_running_loop()
    worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rebuild-work")
    working: asyncio.Future[None] | None = None
    await consumer.start()
    # Python's collector would run every 700 new objects, and a batch makes tens of thousands
    # (records, rows, tuples): a twentieth of a worker's time went to scanning them. They are
    # freed by reference counting; the few cycles (asyncio's) are collected every so often.
    gc.freeze()
    gc.disable()
    try:
        await _assign(consumer, job)
        spent["go wait"] = await _wait_for(go)
        batches = 0
        while ends:
            if os.getppid() != job.parent_pid:
                raise SystemExit("the gateway that started this rebuild worker is gone")
            began = time.perf_counter()
            batch = await consumer.getmany(timeout_ms=500, max_records=_BATCH)
            fetched = time.perf_counter()
            spent["fetch"] += fetched - began
            # The batch before has its turn first (rows and offsets go in order).
            if working is not None:
                await working
                working = None
            spent["work wait"] += time.perf_counter() - fetched
            batches += 1
            if batches % _BATCHES_PER_COLLECTION == 0:
                gc.collect()
            if batch:
                working = loop.run_in_executor(worker, work, batch)
            await _drop_partitions_read(consumer, ends)
        if working is not None:
            await working
    finally:
        if working is not None:
            with contextlib.suppress(BaseException):
                await working
        worker.shutdown()
        gc.enable()
        await consumer.stop()
        store.close()
    spent["store lock"] = store.lock_wait_s
    spent["cpu"] = time.process_time()
    return outcomes, spent


def _work(
    view: str,
    history: RequestHistory,
    outcomes: Outcomes,
    spent: dict[str, float],
    batch: dict[TopicPartition, list[Any]],
) -> None:
    """One batch decoded and written (on the worker's work thread), the seconds counted."""
    began = time.perf_counter()
    write, wrote_to = _batch_write(view, batch, history, outcomes)
    decoded, cpu = time.perf_counter(), time.thread_time()
    spent["decode"] += decoded - began
    if wrote_to:
        write()
    spent["write"] += time.perf_counter() - decoded
    spent["write cpu"] += time.thread_time() - cpu


async def _drop_partitions_read(consumer: Any, ends: dict[TopicPartition, int]) -> None:
    """Forgets the partitions read up to their end offsets."""
    for tp, end in list(ends.items()):
        if await consumer.position(tp) >= end:
            del ends[tp]


async def _wait_for(go: Event) -> float:
    """Waits until `go` is set; returns the seconds waited."""
    began = time.perf_counter()
    await asyncio.to_thread(go.wait)
    return time.perf_counter() - began


async def _assign(consumer: Any, job: Job) -> None:
    consumer.assign([TopicPartition(topic, p) for topic, p, _, _ in job.partitions])
    for topic, p, start, _ in job.partitions:
        if start < 0:
            await consumer.seek_to_beginning(TopicPartition(topic, p))
        else:
            consumer.seek(TopicPartition(topic, p), start)


def _batch_write(
    view: str,
    batch: dict[TopicPartition, list[Any]],
    history: RequestHistory,
    outcomes: Outcomes,
) -> tuple[Callable[[], Any], dict[tuple[str, int], int]]:
    """The batch decoded for the store: (the write to run, the offsets it reaches)."""
    if view == "events":
        rows, carried, offsets, marks = trail_batch(batch.items(), outcomes)
        return functools.partial(history.write_trail, rows, carried, offsets, marks), offsets
    arrivals, offsets, marks = state_batch(batch.items(), outcomes)
    return functools.partial(history.write_states, arrivals, offsets, marks), offsets


def state_batch(
    batch: Iterable[tuple[TopicPartition, list[Any]]], outcomes: Outcomes
) -> tuple[list[tuple[str, StateRow | None]], dict[tuple[str, int], int], dict[tuple[str, int], str]]:
    """A batch of the state topic as the store's rows, made straight from the records: the
    arrivals (request id, its row; None for a tombstone, which deletes) in order, the offsets
    reached and the marks of the last records.

    Each row is what `HistoryRecord`s of the decoded requests become through
    `RequestHistory.write` (the request's columns, `stored_parts` of it; a property test holds
    the two paths together), written out here for the rebuild's millions of requests: one
    message parsed into again and again, its methods looked up once, the row made in one step
    (decoding, stripping and the commit's column picking took three quarters of a state
    record's Python work)."""
    arrivals: list[tuple[str, StateRow | None]] = []
    offsets: dict[tuple[str, int], int] = {}
    marks: dict[tuple[str, int], str] = {}
    ok = tombstones = 0
    state = StateRequest()
    parse, has, clear = state.ParseFromString, state.HasField, state.ClearField
    serialize = state.SerializeToString
    arrive, make_row = arrivals.append, StateRow._make
    for tp, found in batch:
        for record in found:
            value = record.value
            if value is None:
                tombstones += 1
                arrive((record.key.decode("utf-8", "replace") if record.key else "", None))
                continue
            try:
                parse(value)
            except TRAIL_PARSE_ERRORS as exc:
                log.warning(
                    "skipping undecodable record %s[%d]@%d: %s", tp.topic, tp.partition, record.offset, exc
                )
                outcomes["undecodable"] += 1
                continue
            subject: str | None = None
            contact: bytes | None = None
            if has("encrypted_reporter"):
                envelope = state.encrypted_reporter
                subject, contact = envelope.subject_id, envelope.SerializeToString()
                clear("encrypted_reporter")
                clear("reporter")
            elif has("reporter"):
                clear("reporter")  # a plaintext contact is never stored
            requested, updated = state.requested_time, state.updated_time
            request_id = state.request_id
            arrive(
                (
                    request_id,
                    make_row(
                        (
                            request_id,
                            state.version,
                            state.opd_code,
                            state.category,
                            state.status,
                            state.submitted_by_client,
                            -(requested.seconds + requested.nanos / 1e9),
                            subject,
                            updated.seconds + updated.nanos / 1e9,
                            serialize(),
                            contact,
                        )
                    ),
                )
            )
            ok += 1
        if found:
            offsets[(tp.topic, tp.partition)] = found[-1].offset + 1
            marks[(tp.topic, tp.partition)] = mark_of(found[-1])
    outcomes["ok"] += ok
    outcomes["tombstone"] += tombstones
    return arrivals, offsets, marks


def trail_batch(
    batch: Iterable[tuple[TopicPartition, list[Any]]], outcomes: Outcomes
) -> tuple[list[TrailRow], list[Carried], dict[tuple[str, int], int], dict[tuple[str, int], str]]:
    """A batch of the event topic as the trail stores it, without decoding its events whole:
    the rows, the events that carry a request (for `write_trail` to find the newer ones), the
    offsets reached and the marks of the last records.

    Each row is what `core.history.trail_row` makes of the record (a property test holds the
    two together), written out here for the rebuild's millions of events: one message parsed
    into again and again instead of one made per record, its methods looked up once, no call
    per record (a third of the per-event Python work was making and calling)."""
    rows: list[TrailRow] = []
    carried: list[Carried] = []
    offsets: dict[tuple[str, int], int] = {}
    marks: dict[tuple[str, int], str] = {}
    ok = tombstones = 0
    event = TrailEvent()
    parse, has, serialize = event.ParseFromString, event.HasField, event.SerializeToString
    add_row, carry = rows.append, carried.append
    for tp, found in batch:
        partition = tp.partition
        check_trail_partition(partition)  # once a partition: `trail_position` is inlined below
        for record in found:
            offset, value = record.offset, record.value
            if value is None:
                tombstones += 1  # means nothing on a stream topic
                continue
            try:
                parse(value)
            except TRAIL_PARSE_ERRORS as exc:
                log.warning(
                    "skipping undecodable record %s[%d]@%d: %s", tp.topic, partition, record.offset, exc
                )
                outcomes["undecodable"] += 1
                continue
            if has("request"):
                request = event.request
                carried_id = request.request_id
                if carried_id:
                    carry((len(rows), carried_id, request.version, value))
                request.ClearField("history")
                request.ClearField("reporter")
                request.ClearField("encrypted_reporter")
            request_id = event.request_id
            if not request_id and record.key:
                request_id = record.key.decode("utf-8", "replace")
            position = (offset + 1) << TRAIL_PARTITION_BITS | partition  # trail_position, inlined
            add_row((request_id, event.event_id or f"@{partition}:{offset}", position, serialize()))
            ok += 1
        if found:
            offsets[(tp.topic, partition)] = found[-1].offset + 1
            marks[(tp.topic, partition)] = mark_of(found[-1])
    outcomes["ok"] += ok
    outcomes["tombstone"] += tombstones
    return rows, carried, offsets, marks


def decode_record(codec: ProtoCodec[Any], tp: TopicPartition, record: Any, outcomes: Outcomes) -> Any | None:
    """The record's message; None for a tombstone or an undecodable record (skipped: not ours
    to dead-letter, the topic's owner validates), counted in `outcomes` either way."""
    if record.value is None:
        outcomes["tombstone"] += 1
        return None
    try:
        message = codec.decode(record.value)
    except DecodeError as exc:
        log.warning("skipping undecodable record %s[%d]@%d: %s", tp.topic, tp.partition, record.offset, exc)
        outcomes["undecodable"] += 1
        return None
    outcomes["ok"] += 1
    return message

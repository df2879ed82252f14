"""Kafka into the views: rebuilds them at start, then follows the topics live.

    device, stats topics ───────────────────────► Views (memory), from the beginning at start
    requests.state, requests.events,  ─batch──► RequestHistory ─► history store (rows + offsets
    camera.incidents                                │               in one transaction)
                                                    └─► Views: open requests, incidents
    after each batch is applied and committed ──► on_change (watch streams), on_event (outcomes)
    live: small batches committed on the event loop, the store's log copied on a thread now and then

No consumer group: the projector assigns itself every partition of the topics it reads. The
compacted device and stats topics (small: one record per entity) are read from the beginning at
every start. The request and incident topics resume from the history store's checkpoint (warm),
or from the beginning when the store is new, unusable or ahead of a topic (cold; then set aside
and rebuilt). It reads until the end offsets it captured at start; then it is "caught up" and
the gateway reports SERVING, so a replica never serves an older picture than Kafka's at its
start, and every replica holds the same answers from its own store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from gateway.adapters import metrics
from gateway.adapters.history_store import mark_of
from gateway.adapters.rebuild import PHASES, Job, ParallelRebuild, decode_record, jobs_for
from gateway.adapters.request_history import HistoryRecord, RequestHistory
from gateway.core.history import RequestBatch
from gateway.core.views import Change, Views
from smartcity.codec import ProtoCodec
from smartcity.kafka import client_security, make_consumer
from smartcity.settings import PlatformSettings
from smartcity.topics import admin_client, load_catalogue
from smartcity.tracing import traced_runs
from smartcity.v1 import camera_pb2, requests_pb2, wifi_pb2

log = logging.getLogger(__name__)

# The topics the gateway reads: catalogue name (looked up in the catalogue when the projector
# starts) -> (message type, the view it feeds).
VIEW_TOPICS: dict[str, tuple[Any, str]] = {
    "wifi.ap-status.v1": (wifi_pb2.AccessPointStatus, "access_points"),
    "wifi.site-stats.v1": (wifi_pb2.SiteWifiStats, "site_stats"),
    "camera.status.v1": (camera_pb2.CameraStatus, "cameras"),
    "camera.incidents.v1": (camera_pb2.CameraIncident, "incidents"),
    "requests.state.v1": (requests_pb2.ServiceRequest, "requests"),
    "requests.stats.v1": (requests_pb2.RequestStats, "request_stats"),
    "requests.events.v1": (requests_pb2.RequestEvent, "events"),
}


OnChange = Callable[[str, Change], None]
OnEvent = Callable[[Any], None]

# Views whose records are not keyed by their entry (stream topics): tombstones mean nothing there.
_STREAM_VIEWS = {"events", "incidents"}
# Views whose topics go to the history store and resume from its checkpoint.
STORED_VIEWS = frozenset({"requests", "events", "incidents"})
# Records per batch (one store transaction): small when live (changes go out soon), large while
# rebuilding (fewer transactions, more versions of a request collapse into one row write).
_MAX_BATCH = 500
_REBUILD_BATCH = 5000
# Live batches up to this many records are committed on the event loop (a millisecond or two):
# handing each to a thread cost more than the commit (at 200 submits/s a batch holds a few).
_INLINE_RECORDS = 50
# Live commits between two copies of the store's log into its file (on a thread).
_COMMITS_PER_LOG_COPY = 100
_PROGRESS_LOG_S = 10.0
# The longest the start waits to read again the last record the store read of each partition.
_PROBE_TIMEOUT_S = 10.0
# Request records to read before a rebuild is worth worker processes (each costs a second or
# two to start).
_PARALLEL_FROM = 20_000


def stored_topics(topic_prefix: str) -> list[str]:
    """The full names of the topics the history store holds (and checkpoints)."""
    catalogue = load_catalogue()
    return [
        catalogue[name].full_name(topic_prefix)
        for name, (_, view) in VIEW_TOPICS.items()
        if view in STORED_VIEWS
    ]


class Projector:
    def __init__(
        self,
        settings: PlatformSettings,
        views: Views,
        history: RequestHistory,
        on_change: OnChange,
        on_event: OnEvent,
        *,
        rebuild_workers: int = 0,
    ) -> None:
        self._settings = settings
        # Worker processes for a rebuild from the beginning (0: this process reads everything).
        self._rebuild_workers = rebuild_workers
        self._parallel: asyncio.Task[None] | None = None
        self._sealing: asyncio.Task[None] | None = None
        self._copying: asyncio.Future[None] | None = None
        self._live_commits = 0
        self._views = views
        self._history = history
        self._on_change = on_change
        self._on_event = on_event
        catalogue = load_catalogue()
        self._topics = {catalogue[name].full_name(settings.topic_prefix): name for name in VIEW_TOPICS}
        self._codecs = {full: ProtoCodec(VIEW_TOPICS[name][0]) for full, name in self._topics.items()}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._behind: dict[TopicPartition, int] = {}
        self._applying = False
        self._last_progress = 0.0
        # Event partitions paused while the state partitions catch up (see start).
        self._paused: set[TopicPartition] = set()
        self._states_behind: set[TopicPartition] = set()
        # Why the gateway is not serving yet (readiness reason), "" once caught up.
        self.catching_up = "connecting to Kafka"
        self.caught_up = asyncio.Event()
        self.failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        consumer = make_consumer(
            self._settings,
            group_id=None,
            client_id=f"{self._settings.service_name}-views",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # Off while catching up (see _check_crcs_from_now_on).
            check_crcs=False,
        )
        await consumer.start()
        self._consumer = consumer
        partitions = await self._partitions(consumer)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await self._bind_store_to_cluster()
        await self._set_aside_a_store_of_recreated_topics()
        resume = self._resume_points(ends)
        await consumer.seek_to_beginning(*[tp for tp in partitions if tp not in resume])
        for tp, offset in resume.items():
            consumer.seek(tp, offset)
        self._behind = {tp: end for tp, end in ends.items() if end > resume.get(tp, 0)}
        store = self._history.store
        reason = store.rebuild_reason
        if reason:
            store.begin_rebuild()
            self.catching_up = f"rebuilding the history store from the beginning of the topics ({reason})"
        elif store.rebuilding:
            self.catching_up = "resuming the history store from its checkpoint (a rebuild cut short)"
        else:
            self.catching_up = "resuming the history store from its checkpoint"
        metrics.STORE_REBUILDING.set(1 if store.rebuilding else 0)
        if (
            store.rebuilding
            and self._rebuild_workers > 0
            and self._request_records_behind(resume) >= _PARALLEL_FROM
        ):
            self._hand_requests_to_workers(consumer, resume)
        else:
            self._pause_trails_until_states_are_read(consumer)
        if self._parallel is None:
            # A rebuild cut short while its workers appended requests, resumed here.
            await asyncio.to_thread(store.settle_requests)
        self._load_memory()
        log.info(
            "%s; views from %d partitions, %d records to read at most",
            self.catching_up,
            len(partitions),
            sum(end - resume.get(tp, 0) for tp, end in self._behind.items()),
        )
        self._started = self._last_progress = time.monotonic()
        if not self._behind:
            await self._mark_caught_up()
        self._task = asyncio.create_task(self._run(), name="projector")
        self._task.add_done_callback(self._on_done)

    async def stop(self) -> None:
        if self._copying is not None:
            await asyncio.gather(self._copying, return_exceptions=True)
        if self._sealing is not None:
            # Not interrupted (a thread): a stop waits for it, so the mark goes when it can.
            await asyncio.gather(self._sealing, return_exceptions=True)
        if self._parallel is not None:
            self._parallel.cancel()
            await asyncio.gather(self._parallel, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Every partition of the view topics, waiting for topics that do not exist yet."""
        last_log = 0.0
        while True:
            await consumer._client.force_metadata_update()
            found = {t: consumer.partitions_for_topic(t) or set() for t in self._topics}
            missing = sorted(t for t, parts in found.items() if not parts)
            if not missing:
                return [TopicPartition(t, p) for t, parts in found.items() for p in sorted(parts)]
            if time.monotonic() - last_log > 10:
                log.warning("waiting for topics to exist: %s", ", ".join(missing))
                last_log = time.monotonic()
            await asyncio.sleep(1.0)

    async def _bind_store_to_cluster(self) -> None:
        admin = admin_client(self._settings.kafka_bootstrap, client_security(self._settings))
        await admin.start()
        try:
            cluster_id = str((await admin.describe_cluster())["cluster_id"])
        finally:
            await admin.close()
        store = self._history.store
        store.bind_cluster(cluster_id)
        if store.set_aside.startswith("built from another Kafka cluster"):
            metrics.STORE_SET_ASIDE.inc()

    async def _set_aside_a_store_of_recreated_topics(self) -> None:
        """A topic deleted and made again starts at offset 0 again: once it holds more records
        than the store applied, the checkpoint looks valid. The last record the store read of
        each partition is read again: another record at that offset (another mark) means
        other topics, and the store is set aside. (Where that record is gone, compacted or
        past retention, nothing can be told: the store is kept.)"""
        store = self._history.store
        last = {TopicPartition(t, p): found for (t, p), found in store.last_records().items()}
        if not last:
            return
        probe = make_consumer(
            self._settings,
            group_id=None,
            client_id=f"{self._settings.service_name}-probe",
            max_partition_fetch_bytes=64 * 1024,
        )
        await probe.start()
        try:
            probe.assign(list(last))
            for tp, (offset, _) in last.items():
                probe.seek(tp, offset)
            seen: dict[TopicPartition, Any] = {}
            deadline = time.monotonic() + _PROBE_TIMEOUT_S
            while len(seen) < len(last) and time.monotonic() < deadline:
                batch = await probe.getmany(
                    *[tp for tp in last if tp not in seen], timeout_ms=500, max_records=1
                )
                seen.update({tp: records[0] for tp, records in batch.items() if records})
        finally:
            await probe.stop()
        for tp, record in seen.items():
            offset, mark = last[tp]
            if record.offset == offset and mark_of(record) != mark:
                store.reset(
                    f"{tp.topic}[{tp.partition}]@{offset} is not the record the store read there "
                    "(the topic was deleted and made again)"
                )
                metrics.STORE_SET_ASIDE.inc()
                return

    def _resume_points(self, ends: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Where each store-backed partition resumes: the store's checkpoint, unless it is ahead
        of a topic's end (the topic was recreated): then the store is set aside and rebuilt."""
        store = self._history.store
        checkpoint = store.checkpoint()
        for tp, end in ends.items():
            applied = checkpoint.get((tp.topic, tp.partition), 0)
            if applied > end:
                store.reset(
                    f"its checkpoint {tp.topic}[{tp.partition}]@{applied} is ahead of the topic's end {end}"
                )
                metrics.STORE_SET_ASIDE.inc()
                return {}
        stored = {tp for tp in ends if VIEW_TOPICS[self._topics[tp.topic]][1] in STORED_VIEWS}
        return {
            tp: checkpoint[(tp.topic, tp.partition)]
            for tp in stored
            if (tp.topic, tp.partition) in checkpoint
        }

    def _pause_trails_until_states_are_read(self, consumer: AIOKafkaConsumer) -> None:
        """While catching up, the state topic (one record per request once compacted, the newest
        version) is read before the event topic: every event then finds its request's newest
        version stored and adds its trail row only, instead of rewriting the request once per
        version. The order of the two topics does not change the result (the newest version
        wins either way); only the work."""
        states = {tp for tp in self._behind if self._topics[tp.topic] == "requests.state.v1"}
        if states:
            self._paused = {tp for tp in self._behind if self._topics[tp.topic] == "requests.events.v1"}
            consumer.pause(*self._paused)
            self._states_behind = states

    def _request_records_behind(self, resume: dict[TopicPartition, int]) -> int:
        names = {name for name, _ in PHASES}
        return sum(
            end - resume.get(tp, 0) for tp, end in self._behind.items() if self._topics[tp.topic] in names
        )

    def _hand_requests_to_workers(
        self, consumer: AIOKafkaConsumer, resume: dict[TopicPartition, int]
    ) -> None:
        """A rebuild: the request topics' partitions go to worker processes (gateway.adapters
        .rebuild), paused here meanwhile; the other topics are read here as usual."""
        phases = []
        handed: list[TopicPartition] = []
        for name, view in PHASES:
            behind = {
                tp: (resume.get(tp, -1), end)
                for tp, end in self._behind.items()
                if self._topics[tp.topic] == name
            }
            phases.append(jobs_for(view, behind, self._rebuild_workers, self._job))
            handed.extend(behind)
        if not handed:
            return
        consumer.pause(*handed)
        # An empty store: the state topic's workers append its requests, settled between the
        # phases (HistoryStore.append_requests).
        self._history.store.append_requests()
        self._parallel = asyncio.create_task(self._rebuild_in_parallel(phases, handed), name="rebuild")
        self._parallel.add_done_callback(self._on_parallel_done)

    def _job(self, view: str, partitions: tuple[tuple[str, int, int, int], ...], number: int) -> Job:
        store = self._history.store
        return Job(
            self._settings,
            store.path,
            tuple(stored_topics(self._settings.topic_prefix)),
            store.cache_mib,
            view,
            partitions,
            os.getpid(),
            number,
        )

    async def _rebuild_in_parallel(self, phases: list[list[Job]], handed: list[TopicPartition]) -> None:
        """Runs the workers; then fills the memory from what they stored (as a warm start does)
        and reads those partitions on from the store's checkpoint."""
        workers = max(len(jobs) for jobs in phases)
        log.info("rebuilding the request history with %d worker processes", workers)
        began = time.monotonic()
        store = self._history.store
        # The listing indexes are built while the workers read the event topic: the build takes
        # its turn at the file, and the workers decode on meanwhile (their writes queue).
        outcomes = await ParallelRebuild().run(
            phases,
            between=lambda: asyncio.to_thread(store.settle_requests),
            after_first=lambda: asyncio.to_thread(store.build_indexes),
        )
        for name, view in PHASES:
            for outcome, n in outcomes.get(view, {}).items():
                metrics.RECORDS.labels(name, outcome).inc(n)
        assert self._consumer is not None
        # Before the first read of the requests (the open ones are found by status), where
        # the workers had no event topic to read.
        await asyncio.to_thread(store.build_indexes)
        checkpoint = self._history.store.checkpoint()
        self._load_memory(requests_only=True)
        for tp in handed:
            self._consumer.seek(tp, checkpoint.get((tp.topic, tp.partition), 0))
        self._consumer.resume(*handed)
        log.info(
            "the workers rebuilt the request history in %.1f s: %s", time.monotonic() - began, self.sizes()
        )

    def _on_parallel_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.failed.done() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        log.error("the parallel rebuild failed: %r", exc)
        self.failed.set_result(exc)

    def _resume_trails_once_states_are_read(self) -> None:
        assert self._consumer is not None
        if self._paused and not (self._states_behind & set(self._behind)):
            self._consumer.resume(*self._paused)
            log.info("request states read; reading the audit trails")
            self._paused = set()

    def _load_memory(self, requests_only: bool = False) -> None:
        """What the store holds that lives in memory too: open requests, recent incidents."""
        open_requests = self._history.load()
        if requests_only:
            log.info("from the history store: %d open requests", open_requests)
            return
        incidents = self._history.store.incidents_to_keep(self._views.max_resolved_incidents)
        for incident in incidents:
            self._views.apply_incident(incident)
        if open_requests or incidents:
            log.info("from the history store: %d open requests, %d incidents", open_requests, len(incidents))

    async def _run(self) -> None:
        assert self._consumer is not None
        # While catching up, a batch is written to the store (on a worker thread) while the
        # next one is fetched and decoded here: two cores at work. Live, each batch is written
        # before its outcomes and changes go out.
        pending: asyncio.Future[RequestBatch] | None = None
        while True:
            live = self.caught_up.is_set()
            batch = await self._consumer.getmany(
                timeout_ms=500, max_records=_MAX_BATCH if live else _REBUILD_BATCH
            )
            self._applying = True
            try:
                changes, events, stored, offsets, marks = self._apply_batch(batch, live)
                if pending is not None:
                    self._history.remember(await pending)
                    pending = None
                if offsets and live and len(stored) <= _INLINE_RECORDS:
                    written = self._history.write(stored, offsets, False, marks)
                    changes.extend(("requests", r) for r in self._history.remember(written))
                    self._copy_log_now_and_then()
                elif offsets:
                    # Off the event loop (SQLite lets go of the GIL): health checks and reads are
                    # answered meanwhile. While catching up the decoded messages go nowhere
                    # else, so the store may strip them in place.
                    write = asyncio.ensure_future(
                        asyncio.to_thread(self._history.write, stored, offsets, not live, marks)
                    )
                    if live:
                        changes.extend(("requests", r) for r in self._history.remember(await write))
                        self._copy_log_now_and_then()
                    else:
                        pending = write
            finally:
                self._applying = False
            # Only now, with the batch committed: outcomes and changes may go out.
            for event in events:
                self._on_event(event)
            for view, change in changes:
                self._on_change(view, change)
                # Let watch streams drain their queues between changes, so a burst of changes
                # does not overflow subscribers that keep up.
                await asyncio.sleep(0)
            if not live and await self._read_to_the_end():
                if pending is not None:
                    self._history.remember(await pending)
                    pending = None
                if self._history.store.rebuilding:
                    # Off the event loop: a rebuild's listing indexes and the trail's index
                    # (seconds at a million requests).
                    await asyncio.to_thread(self._history.store.build_indexes)
                    await asyncio.to_thread(self._history.store.build_trail_index)
                await self._mark_caught_up()
            elif not live:
                self._resume_trails_once_states_are_read()

    def _copy_log_now_and_then(self) -> None:
        """Every so many live commits, the store's log is copied into its file on a thread (the
        writer does not: see HistoryStore.live_writes); one copy at a time."""
        self._live_commits += 1
        if self._live_commits < _COMMITS_PER_LOG_COPY or not (self._copying is None or self._copying.done()):
            return
        self._live_commits = 0
        self._copying = asyncio.ensure_future(asyncio.to_thread(self._history.store.copy_log))
        self._copying.add_done_callback(_log_copy_failure)

    def _apply_batch(
        self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]], live: bool
    ) -> tuple[
        list[tuple[str, Change]],
        list[Any],
        list[HistoryRecord],
        dict[tuple[str, int], int],
        dict[tuple[str, int], str],
    ]:
        """Applies a batch to the memory views; sorts out what goes to the history store.

        Returns the changes for watch streams and the request events for the command bus
        (both empty while catching up: nobody waits for history), the records for the store,
        the offsets they reach and the marks of the last records read."""
        changes: list[tuple[str, Change]] = []
        events: list[Any] = []
        stored: list[HistoryRecord] = []
        offsets: dict[tuple[str, int], int] = {}
        marks: dict[tuple[str, int], str] = {}
        # Outcomes counted per batch and topic: a rebuild reads millions of records.
        outcomes: dict[str, Counter[str]] = {}
        for tp, records in batch.items():
            view = VIEW_TOPICS[self._topics[tp.topic]][1]
            is_stored, partition = view in STORED_VIEWS, tp.partition
            # A span only for records a traced producer sent (not the whole history), one per
            # run of records with the same trace context (one per batch of citizen-requests).
            for record in traced_runs(records):
                key = record.key.decode("utf-8", "replace") if record.key else ""
                message = self._decode(tp, view, key, record, outcomes)
                if not is_stored:
                    change = self._dispatch(view, key, message) if message is not None else None
                    if change is not None and live:
                        changes.append((view, change))
                    continue
                if message is None and (record.value is not None or view in _STREAM_VIEWS):
                    continue  # undecodable, or a tombstone on a stream topic: nothing to apply
                stored.append(HistoryRecord(view, partition, record.offset, key, message))
                if view == "incidents":
                    change = self._views.apply_incident(message)
                    if change is not None and live:
                        changes.append((view, change))
                elif view == "events" and live:
                    events.append(message)
            if is_stored and records:
                offsets[(tp.topic, partition)] = records[-1].offset + 1
                marks[(tp.topic, partition)] = mark_of(records[-1])
        for name, found in outcomes.items():
            for outcome, n in found.items():
                metrics.RECORDS.labels(name, outcome).inc(n)
        return changes, events, stored, offsets, marks

    def _decode(
        self,
        tp: TopicPartition,
        view: str,
        key: str,
        record: ConsumerRecord[Any, Any],
        outcomes: dict[str, Counter[str]],
    ) -> Any | None:
        """The record's message; None for a tombstone (applied to a memory view here) or an
        undecodable record (skipped: not ours to dead-letter, the topic's owner validates)."""
        name = self._topics[tp.topic]
        if record.value is None and view not in _STREAM_VIEWS and view not in STORED_VIEWS:
            self._views.delete(view, key)
        return decode_record(self._codecs[tp.topic], tp, record, outcomes.setdefault(name, Counter()))

    async def read_up_to_now(self, timeout_s: float, views: tuple[str, ...] = ("requests",)) -> bool:
        """Waits until the given views hold every record their topics had when called.

        For read-your-writes across replicas (a request submitted through another gateway a
        moment ago). True when read up to then; False when `timeout_s` ran out first.
        """
        consumer = self._consumer
        if consumer is None:
            return False
        wanted = [tp for tp in consumer.assignment() if VIEW_TOPICS[self._topics[tp.topic]][1] in views]
        ends = await consumer.end_offsets(wanted)
        deadline = time.monotonic() + timeout_s
        while True:
            # The consumer's position counts a fetched batch as read before it is applied: only
            # trust it between batches.
            if not self._applying and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)

    async def _read_to_the_end(self) -> bool:
        """Whether every partition was read up to the end offset it had at start."""
        assert self._consumer is not None
        for tp, end in list(self._behind.items()):
            if await self._consumer.position(tp) >= end:
                del self._behind[tp]
        if not self._behind:
            return True
        if time.monotonic() - self._last_progress >= _PROGRESS_LOG_S:
            self._last_progress = time.monotonic()
            left = {f"{tp.topic}[{tp.partition}]": end for tp, end in self._behind.items()}
            log.info("%s: %d partitions still behind, %s", self.catching_up, len(left), self.sizes())
        return False

    async def _mark_caught_up(self) -> None:
        store = self._history.store
        if store.rebuilding:
            store.leave_bulk_mode()
            # The rebuilt pages reach the disk before serving, not while: most are written back
            # by then (under a second at a million requests), but the rest, synced at once,
            # fills the disk's queue, and a read of a page the OS no longer holds (the store
            # outgrows the page cache) waits behind it: GetRequest took up to a third of a
            # second in the first second after SERVING. A failed sync is logged and the store
            # stays marked (the next start finishes it), as before.
            self._sealing = asyncio.create_task(asyncio.to_thread(store.seal_rebuild), name="seal")
            self._sealing.add_done_callback(self._on_sealed)
            await asyncio.gather(self._sealing, return_exceptions=True)
        store.live_writes()
        self._check_crcs_from_now_on()
        elapsed = time.monotonic() - self._started
        metrics.CATCHUP_SECONDS.set(elapsed)
        metrics.STORE_REBUILDING.set(0)
        self._update_sizes()
        log.info("views caught up in %.2f s (%s): %s", elapsed, self.catching_up, self.sizes())
        self.catching_up = ""
        self.caught_up.set()

    def _on_sealed(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:
            log.warning(
                "the rebuilt history store was not synced (the next start finishes it): %r", task.exception()
            )
        else:
            log.info("the rebuilt history store is synced to disk")

    def _check_crcs_from_now_on(self) -> None:
        """Record checksums are checked once live. While catching up they are not: checking
        the CRC-32C of every record in Python costs as much as reading it (a third of a
        rebuild), a damaged record still fails to decode or to match its request, and the
        broker checked each record's checksum when it was written. (aiokafka reads the flag
        per fetch, and has no public setter.)"""
        if self._consumer is not None:
            self._consumer._fetcher._check_crcs = True

    def _dispatch(self, view: str, key: str, message: Any) -> Change | None:
        views = self._views
        if view == "access_points":
            return views.apply_access_point(message)
        if view == "cameras":
            return views.apply_camera(message)
        if view == "site_stats":
            views.apply_site_stats(key, message)
        elif view == "request_stats":
            views.apply_request_stats(key, message)
        return None

    def sizes(self) -> dict[str, int]:
        v = self._views
        return {
            "access_points": len(v.access_points),
            "cameras": len(v.cameras),
            "site_stats": len(v.site_stats),
            "incidents": len(v.incidents),
            "open_requests": len(v.open_requests),
            "request_stats": len(v.request_stats),
            **self._history.store.sizes(),
        }

    def _update_sizes(self) -> None:
        for view, size in self.sizes().items():
            metrics.VIEW_SIZE.labels(view).set(size)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.failed.done():
            return
        exc = task.exception() or RuntimeError("the projector stopped")
        log.error("projector failed: %r", exc)
        self.failed.set_result(exc)


def _log_copy_failure(copy: asyncio.Future[None]) -> None:
    if not copy.cancelled() and copy.exception() is not None:
        # The next copy retries; meanwhile the log only grows.
        log.warning("could not copy the history store's log into its file: %r", copy.exception())

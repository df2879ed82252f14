"""Kafka into the views: rebuilds them from the topics at start, then follows them live.

No consumer group: the projector assigns itself every partition of the topics it reads, seeks
to the beginning and reads until the end offsets it captured at start (then it is "caught up"
and the gateway reports SERVING), so every replica holds the full views and a restart rebuilds
them. Each change is handed to `on_change` (fan-out to watch streams) and every request event
to `on_event` (outcomes of the gateway's own commands).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from gateway.adapters import metrics
from gateway.core.views import Change, Views
from smartcity.codec import DecodeError, ProtoCodec
from smartcity.kafka import make_consumer
from smartcity.settings import PlatformSettings
from smartcity.topics import load_catalogue
from smartcity.tracing import message_span
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
_MAX_BATCH = 500


class Projector:
    def __init__(
        self, settings: PlatformSettings, views: Views, on_change: OnChange, on_event: OnEvent
    ) -> None:
        self._settings = settings
        self._views = views
        self._on_change = on_change
        self._on_event = on_event
        catalogue = load_catalogue()
        self._topics = {catalogue[name].full_name(settings.topic_prefix): name for name in VIEW_TOPICS}
        self._codecs = {full: ProtoCodec(VIEW_TOPICS[name][0]) for full, name in self._topics.items()}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._behind: dict[TopicPartition, int] = {}
        self._applying = False
        self.caught_up = asyncio.Event()
        self.failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        consumer = make_consumer(
            self._settings,
            group_id=None,
            client_id=f"{self._settings.service_name}-views",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        self._consumer = consumer
        partitions = await self._partitions(consumer)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        self._behind = {tp: end for tp, end in ends.items() if end > 0}
        await consumer.seek_to_beginning(*partitions)
        log.info(
            "rebuilding views from %d partitions, %d records at most",
            len(partitions),
            sum(self._behind.values()),
        )
        self._started = time.monotonic()
        if not self._behind:
            self._mark_caught_up()
        self._task = asyncio.create_task(self._run(), name="projector")
        self._task.add_done_callback(self._on_done)

    async def stop(self) -> None:
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

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=500, max_records=_MAX_BATCH)
            self._applying = True
            for tp, records in batch.items():
                for record in records:
                    # A span only for records a traced producer sent (not the whole history).
                    with message_span(record, only_traced=True):
                        changed = self._apply(tp.topic, record)
                    if changed:
                        # Let watch streams drain their queues between changes, so a burst of
                        # changes does not overflow subscribers that keep up.
                        await asyncio.sleep(0)
            self._applying = False
            if not self.caught_up.is_set():
                await self._check_caught_up()

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

    async def _check_caught_up(self) -> None:
        assert self._consumer is not None
        for tp, end in list(self._behind.items()):
            if await self._consumer.position(tp) >= end:
                del self._behind[tp]
        if not self._behind:
            self._mark_caught_up()

    def _mark_caught_up(self) -> None:
        elapsed = time.monotonic() - self._started
        metrics.CATCHUP_SECONDS.set(elapsed)
        self._update_sizes()
        log.info("views caught up in %.2f s: %s", elapsed, self.sizes())
        self.caught_up.set()

    def _apply(self, topic: str, record: ConsumerRecord[Any, Any]) -> bool:
        """Feeds one record to its view; True when a change went out to watch streams."""
        name = self._topics[topic]
        view = VIEW_TOPICS[name][1]
        key = record.key.decode("utf-8", "replace") if record.key else ""
        if record.value is None:
            if view not in _STREAM_VIEWS:
                self._views.delete(view, key)
            metrics.RECORDS.labels(name, "tombstone").inc()
            return False
        try:
            message = self._codecs[topic].decode(record.value)
        except DecodeError as exc:
            # Not ours to dead-letter (the owner of the topic validates what it writes): skip it.
            log.warning(
                "skipping undecodable record %s[%d]@%d: %s", topic, record.partition, record.offset, exc
            )
            metrics.RECORDS.labels(name, "undecodable").inc()
            return False
        metrics.RECORDS.labels(name, "ok").inc()
        change = self._dispatch(view, key, message)
        live = self.caught_up.is_set()
        if view == "events" and live:
            self._on_event(message)
        if change is not None and live:
            self._on_change(view, change)
            return True
        return False

    def _dispatch(self, view: str, key: str, message: Any) -> Change | None:
        views = self._views
        if view == "access_points":
            return views.apply_access_point(message)
        if view == "cameras":
            return views.apply_camera(message)
        if view == "incidents":
            return views.apply_incident(message)
        if view == "requests":
            return views.apply_request(message)
        if view == "events":
            return views.apply_event(message)
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
            "requests": len(v.requests),
            "request_stats": len(v.request_stats),
            "request_events": sum(len(e) for e in v.events.values()),
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

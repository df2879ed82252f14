"""The Faust side of wifi-telemetry: thin adapters around `core/processor.py` and `core/published.py`.

    wifi.ap-telemetry.v1 ──┐ ingest: decode, validate (bad → <topic>.dlq),  ┌─► table "state" (changelog)
    wifi.client-sessions.v1┘ re-key by site ─► <app>-by-site ─► process ─────┘        │
                                                                                      ▼
                       timer: AccessPointStatus on change / cadence / silence ─► wifi.ap-status.v1
                              SiteWifiStats when changed                      ─► wifi.site-stats.v1

Why re-key by site: site statistics combine the APs of a site, and a Faust table is partitioned
like its input. With the input keyed by site, one worker owns a site, its APs and its windows,
and every record of a site lives in one changelog partition (see processor.py for how that
makes a crash harmless). Health changes are published as they are applied; everything else is
published by the timer from the table, so a restarted worker republishes the same values.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from opentelemetry import trace

from smartcity import topic_names
from smartcity.headers import header_value, headers_of
from smartcity.settings import PlatformSettings
from smartcity.streams import StreamService, assigned_and_recovered
from smartcity.tracing import extract_context, inject_headers
from smartcity.v1 import wifi_pb2
from wifi_telemetry.adapters import metrics
from wifi_telemetry.adapters.messages import (
    SESSION_CODEC,
    TELEMETRY_CODEC,
    redacted_session,
    sample_from_proto,
    session_from_proto,
    site_stats_proto,
    status_proto,
)
from wifi_telemetry.config import WINDOWS, WifiConfig
from wifi_telemetry.core.privacy import client_hash_problem
from wifi_telemetry.core.processor import AP_PREFIX, SITE_PREFIX, SiteProcessor
from wifi_telemetry.core.published import ApView, SiteStats, ap_view, change_view, site_stats, site_windows
from wifi_telemetry.core.windows import SESSIONS, USERS, SiteState

log = logging.getLogger(__name__)
tracer = trace.get_tracer("wifi_telemetry")

KIND_HEADER = "wifi.kind"
KIND_TELEMETRY = b"telemetry"
KIND_SESSION = b"session"
# Input still to read, per partition, below which the worker counts as caught up (then a
# missing heartbeat really is missing, not waiting in a backlog).
CAUGHT_UP_LAG = 100


@dataclass
class _Published:
    """What was last published, to publish changes only (memory: a restart republishes all)."""

    health: dict[str, tuple[int, bool, float]] = field(default_factory=dict)
    stats: dict[tuple[str, str, int], tuple[Any, ...]] = field(default_factory=dict)
    stats_at: float = 0.0


class WifiTelemetryService(StreamService):
    """The app, its topics, the state table, three agents and the publishing timer."""

    def __init__(self, settings: PlatformSettings, config: WifiConfig) -> None:
        datadir = Path(config.data_dir) / f"{settings.group_id}-data"
        datadir.parent.mkdir(parents=True, exist_ok=True)
        # A short group session: after a crash the partitions move on within seconds, not a minute.
        super().__init__(settings, datadir=str(datadir),
                         broker_session_timeout=config.session_timeout_s,
                         broker_heartbeat_interval=min(3.0, config.session_timeout_s / 4))
        self.config = config
        # Topics.
        self.telemetry_in = self.catalogue_topic(topic_names.WIFI_AP_TELEMETRY)
        self.sessions_in = self.catalogue_topic(topic_names.WIFI_CLIENT_SESSIONS)
        self.by_site = self.internal_topic("by-site", config.site_partitions)
        self.status_out = self.catalogue_topic(topic_names.WIFI_AP_STATUS)
        self.stats_out = self.catalogue_topic(topic_names.WIFI_SITE_STATS)
        # Tables. Every heartbeat rewrites its AP's record: short segments let the broker
        # compact the changelog, so a restart (in-memory store: it reads the changelog) stays quick.
        self.table = self.app.Table("state", partitions=config.site_partitions,
                                    schema=faust.Schema(key_type=str, key_serializer="json",
                                                        value_serializer="json"),
                                    extra_topic_configs={"segment.ms": "600000",
                                                         "min.cleanable.dirty.ratio": "0.2"})
        self.processor = SiteProcessor(config, self.table)
        self.published = _Published()
        self._announced_ready = False
        # Agents and timers.
        self.agent(self.telemetry_in, self.ingest_telemetry, "wifi-ingest-telemetry")
        self.agent(self.sessions_in, self.ingest_sessions, "wifi-ingest-sessions")
        self.agent(self.by_site, self.process, "wifi-process")
        self.timer(config.tick_interval_s, self.publish_tick, "wifi-publish")

    # -- agents --------------------------------------------------------------------------------

    async def ingest_telemetry(self, stream: faust.StreamT) -> None:
        async for item in self.decoded(stream, TELEMETRY_CODEC):
            await self._forward(item.value.site_id, KIND_TELEMETRY, item.record.value,
                                item.record.headers)

    async def ingest_sessions(self, stream: faust.StreamT) -> None:
        async for item in self.decoded(stream, SESSION_CODEC):
            problem = client_hash_problem(item.value.client_hash)
            if problem is not None:
                # The DLQ gets the event with its client id blanked: it may be a raw MAC.
                record = dataclasses.replace(item.record, value=redacted_session(item.value))
                await self.dlq.publish(record, problem)
                metrics.EVENTS.labels("session", "rejected").inc()
                continue
            await self._forward(item.value.site_id, KIND_SESSION, item.record.value, item.record.headers)

    async def process(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            await self._process(event)

    async def publish_tick(self) -> None:
        await self._tick()

    async def _forward(self, site_id: str, kind: bytes, value: bytes | None,
                       headers: Any) -> None:
        """Re-keys an accepted event by its site, keeping its trace context."""
        carried = [(k, v) for k, v in headers if k != KIND_HEADER] + [(KIND_HEADER, kind)]
        await self.by_site.send(key=site_id.encode(), value=value, headers=carried)

    # -- processing ----------------------------------------------------------------------------

    async def _process(self, event: Any) -> None:
        message = event.message
        headers = headers_of(message)
        kind = header_value(headers, KIND_HEADER)
        with tracer.start_as_current_span("wifi.process", context=extract_context(headers)):
            try:
                if kind == KIND_TELEMETRY:
                    await self._on_telemetry(event.value, message.partition)
                elif kind == KIND_SESSION:
                    self._on_session(event.value, message.partition)
                else:
                    log.warning("by-site message without a known %s header skipped", KIND_HEADER)
            except Exception:  # one bad event must not stop the site's stream
                log.exception("event at %s[%d]@%d not processed", message.topic, message.partition,
                              message.offset)
                metrics.EVENTS.labels(kind.decode() if kind else "unknown", "error").inc()

    async def _on_telemetry(self, value: bytes, partition: int) -> None:
        sample = sample_from_proto(wifi_pb2.ApTelemetry.FromString(value))
        result = self.processor.on_telemetry(sample, partition)
        metrics.EVENTS.labels("telemetry", str(result.outcome)).inc()
        if result.reboots:
            metrics.REBOOTS.labels(sample.site_id).inc(result.reboots)
        if result.skipped_gaps:
            metrics.SEQ_GAPS.labels(sample.site_id).inc(result.skipped_gaps)
        for change in result.changes:
            metrics.HEALTH_CHANGES.labels(sample.site_id, metrics.health_label(change.after)).inc()
            await self._publish_status(change_view(result.state, change), time.time())
        self.observe_latency(self.telemetry_in.get_topic_name(), sample.t)

    def _on_session(self, value: bytes, partition: int) -> None:
        session = session_from_proto(wifi_pb2.ClientSession.FromString(value))
        result = self.processor.on_session(session, partition)
        metrics.EVENTS.labels("session", result.outcome).inc()
        self.observe_latency(self.sessions_in.get_topic_name(), session.t)

    # -- publishing ----------------------------------------------------------------------------

    async def _publish_status(self, view: ApView, now: float) -> None:
        ap_id = view.state.ap_id
        status = status_proto(view, now)
        await self.status_out.send(key=ap_id.encode(), value=status.SerializeToString(deterministic=True),
                                   headers=inject_headers())
        self.published.health[ap_id] = (int(view.health), view.silent, now)
        metrics.PUBLISHED.labels(topic_names.WIFI_AP_STATUS).inc()

    async def _publish_stats(self, stats: SiteStats, now: float) -> None:
        message = site_stats_proto(stats, now)
        await self.stats_out.send(key=stats.key.encode(), value=message.SerializeToString(deterministic=True),
                                  headers=inject_headers())
        metrics.PUBLISHED.labels(topic_names.WIFI_SITE_STATS).inc()

    def caught_up(self) -> bool:
        """Whether no input partition has a backlog (only then is silence really silence)."""
        consumer = self.app.consumer
        inputs = {self.telemetry_in.get_topic_name(), self.sessions_in.get_topic_name(),
                  self.by_site.get_topic_name()}
        read: Mapping[Any, int | None] = getattr(consumer, "_read_offset", {})
        committed: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
        for tp in consumer.assignment():
            if tp.topic not in inputs:
                continue
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            last_read = read.get(tp)
            position = max(last_read + 1 if last_read is not None else 0, committed.get(tp) or 0)
            if highwater - position > CAUGHT_UP_LAG:
                return False
        return True

    def _owned_partitions(self) -> set[int]:
        topic = self.by_site.get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    def _records(self, prefix: str, owned: set[int]) -> list[dict[str, Any]]:
        return [value for key, value in list(self.table.items())
                if isinstance(key, str) and key.startswith(prefix) and value is not None
                and value.get("p") in owned]

    async def _tick(self) -> None:
        if not assigned_and_recovered(self.app):
            return
        if not self._announced_ready:
            self._announced_ready = True
            log.info("wifi-telemetry ready: partitions assigned, state recovered")
        now = time.time()
        owned = self._owned_partitions()
        live = self.caught_up()
        model = self.processor.model
        states = [model.load(raw) for raw in self._records(AP_PREFIX, owned)]
        views = {s.ap_id: ap_view(model, s, now if live else None) for s in states}
        await self._publish_statuses(views, now)
        metrics.set_site_gauges(views.values())
        if now - self.published.stats_at >= self.config.stats_interval_s:
            self.published.stats_at = now
            await self._publish_site_stats(views, owned, now)

    async def _publish_statuses(self, views: Mapping[str, ApView], now: float) -> None:
        for ap_id, view in views.items():
            last = self.published.health.get(ap_id)
            due = (last is None or last[0] != int(view.health) or last[1] != view.silent
                   or now - last[2] >= self.config.status_interval_s)
            if due:
                await self._publish_status(view, now)

    async def _publish_site_stats(self, views: Mapping[str, ApView], owned: set[int], now: float) -> None:
        for raw in self._records(SITE_PREFIX, owned):
            site = SiteState.from_dict(raw)
            site_views = {ap: views[ap] for ap in site.aps if ap in views}
            for window, _ in WINDOWS:
                for stats in self._changed_stats(site, site_views, window):
                    await self._publish_stats(stats, now)

    def _changed_stats(self, site: SiteState, views: Mapping[str, ApView], window: str) -> list[SiteStats]:
        """Windows whose numbers changed, oldest first, and always ending with the newest one,
        so the compacted topic keeps the current window under "<site>:<window>"."""
        keys = site_windows(site, views, window, self.config.allowed_lateness_s)
        current = [
            site_stats(site, views, key, self.processor.distinct_count(site.site_id, USERS, key),
                       self.processor.distinct_count(site.site_id, SESSIONS, key))
            for key in keys
        ]
        changed = []
        for stats in current:
            marker = (stats.site_id, stats.window, stats.start)
            signature = tuple(stats.__dict__.values())
            if self.published.stats.get(marker) != signature:
                self.published.stats[marker] = signature
                changed.append(stats)
        if changed and changed[-1] is not current[-1]:
            changed.append(current[-1])
        kept = {(s.site_id, s.window, s.start) for s in current}
        for marker in [m for m in self.published.stats if m[0] == site.site_id and m[1] == window]:
            if marker not in kept:
                del self.published.stats[marker]
        return changed


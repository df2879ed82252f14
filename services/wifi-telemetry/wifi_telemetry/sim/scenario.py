"""Reproducible traffic of the simulated city, and what the service must make of it.

For tests and benchmarks: `simulated_events` steps the simulator (`WifiCity`) with its own
clock, through the same edge code path (readings → hashed protobuf events); `expected` runs the
domain code directly over those events, which is what the service must publish after any
ordering, redelivery or crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smartcity.codec import from_timestamp
from smartcity.inventory import AccessPointInfo
from smartcity.v1 import wifi_pb2
from wifi_telemetry.adapters.messages import sample_from_proto, session_from_proto
from wifi_telemetry.config import WINDOWS, WifiConfig
from wifi_telemetry.core.privacy import DEV_SALT, ClientHasher
from wifi_telemetry.core.processor import SITE_PREFIX, SiteProcessor, stored_aps
from wifi_telemetry.core.published import ApView, SiteStats, ap_view, site_stats, site_windows
from wifi_telemetry.core.windows import SESSIONS, USERS, SiteState
from wifi_telemetry.edge.readings import session_from_reading, telemetry_from_reading
from wifi_telemetry.sim.simulator import WifiCity

Event = wifi_pb2.ApTelemetry | wifi_pb2.ClientSession


@dataclass(frozen=True)
class Fault:
    at_step: int
    command: dict[str, Any]


def simulated_events(aps: Sequence[AccessPointInfo], *, start: float, steps: int, interval_s: float,
                     seed: int = 1, faults: Iterable[Fault] = (), load: float = 1.0,
                     hasher: ClientHasher | None = None) -> list[Event]:
    """The events the simulator would send over `steps` heartbeats, in sending order."""
    city = WifiCity(aps, seed=seed, start=start, load=load)
    hasher = hasher or ClientHasher(DEV_SALT)
    by_step: dict[int, list[Fault]] = {}
    for fault in faults:
        by_step.setdefault(fault.at_step, []).append(fault)
    events: list[Event] = []
    for step in range(steps):
        now = start + step * interval_s
        for fault in by_step.get(step, []):
            city.apply_fault(fault.command, now=now)
        telemetry, sessions = city.step(now)
        events += [session_from_reading(r, hasher) for r in sessions]
        events += [telemetry_from_reading(r) for r in telemetry]
    return events


def event_time(event: Event) -> float:
    if isinstance(event, wifi_pb2.ApTelemetry):
        return from_timestamp(event.observed_time)
    return from_timestamp(event.event_time)


@dataclass(frozen=True)
class Expected:
    """What the service must publish for some input (the wall-clock silence check left out)."""

    statuses: dict[str, ApView]
    # "<site>:<window>" -> the newest window's statistics.
    stats: dict[str, SiteStats]


def expected(config: WifiConfig, events: Iterable[Event]) -> Expected:
    """Runs the domain code over the events in the given order (one store, no Kafka)."""
    store: dict[str, Any] = {}
    processor = SiteProcessor(config, store)
    for event in events:
        if isinstance(event, wifi_pb2.ApTelemetry):
            processor.on_telemetry(sample_from_proto(event))
        else:
            processor.on_session(session_from_proto(event))
    views = {ap_id: ap_view(processor.model, state)
             for ap_id, state in stored_aps(processor.model, store.items()).items()}
    stats: dict[str, SiteStats] = {}
    for key, raw in store.items():
        if key.startswith(SITE_PREFIX):
            site = SiteState.from_dict(raw)
            stats.update(_newest_stats(processor, site, views, config.allowed_lateness_s))
    return Expected(views, stats)


def _newest_stats(processor: SiteProcessor, site: SiteState, views: Mapping[str, ApView],
                  lateness_s: float) -> dict[str, SiteStats]:
    site_views = {ap: views[ap] for ap in site.aps if ap in views}
    out = {}
    for window, _ in WINDOWS:
        keys = site_windows(site, site_views, window, lateness_s)
        if keys:
            key = keys[-1]
            stats = site_stats(site, site_views, key, processor.distinct_count(site.site_id, USERS, key),
                               processor.distinct_count(site.site_id, SESSIONS, key))
            out[stats.key] = stats
    return out

"""Prometheus metrics of camera-health (names as the rules and dashboards in deploy/monitoring
expect them). Dead letters, consumed events, processing latency and consumer lag come from
the shared libs (`smartcity_dead_letters_total`, `smartcity_events_consumed_total`,
`smartcity_processing_latency_seconds`, `smartcity_consumer_lag_messages`)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from camera_health.core.model import IncidentEvent, StatusView
from smartcity.health import Health

CAMERAS = Gauge("smartcity_camera_cameras", "Cameras by health state per site", ["site", "health"])
OPEN_INCIDENTS = Gauge("smartcity_camera_open_incidents", "Open camera incidents per site", ["site"])
AVAILABILITY = Gauge("smartcity_camera_availability_ratio",
                     "Share of time not CRITICAL per camera and window (event time)",
                     ["camera", "site", "window"])
EVENTS = Counter("smartcity_camera_events_processed_total",
                 "Camera heartbeats processed, by source and ordering verdict "
                 "(applied, buffered, duplicate = already seen or too late, restarted)",
                 ["source", "outcome"])
INCIDENTS = Counter("smartcity_camera_incidents_total", "Incident events published, by phase and cause",
                    ["site", "phase", "cause"])
BATCH_ROUTES = Counter("smartcity_camera_batch_heartbeats_total",
                       "Edge-batch heartbeats by route: applied where they were read (direct) or "
                       "forwarded to their camera's partition (forwarded)", ["route"])
TICKS = Counter("smartcity_camera_timer_ticks_total",
                "Ticks of the silence timer, by why (silence or a gap to give up, or refresh)",
                ["reason"])

_SITES_SEEN: set[str] = set()
_HEALTH_LABELS = {Health.OK: "ok", Health.PROBLEM: "problem", Health.CRITICAL: "critical"}


def health_label(health: Health) -> str:
    return _HEALTH_LABELS[health]


def record_status(status: StatusView) -> None:
    a = status.availability
    if a is None:
        return
    for window, ratio in (("1h", a.hour), ("24h", a.day), ("7d", a.week)):
        AVAILABILITY.labels(status.camera_id, status.site_id, window).set(ratio)


def record_incidents(events: Iterable[IncidentEvent]) -> None:
    for event in events:
        INCIDENTS.labels(event.site_id, event.phase, event.cause).inc()


def set_fleet(cameras: Iterable[tuple[str, Health, bool]]) -> None:
    """Sets the per-site gauges from (site, health, has open incident) of every owned camera.

    Every health label of every site ever seen is set, zeros included, so alerts and dashboards
    see 0 rather than no series (also for a site whose partitions moved to another worker).
    """
    by_state: Tally[tuple[str, Health]] = Tally()
    open_by_site: Tally[str] = Tally()
    for site, health, has_open in cameras:
        _SITES_SEEN.add(site)
        by_state[(site, health)] += 1
        open_by_site[site] += int(has_open)
    for site in _SITES_SEEN:
        for health, label in _HEALTH_LABELS.items():
            CAMERAS.labels(site, label).set(by_state[(site, health)])
        OPEN_INCIDENTS.labels(site).set(open_by_site[site])

"""Prometheus metrics of the service (names as deploy/monitoring/metrics_used.yaml expects).

Dead letters, processing latency and consumer lag come from the shared libs
(`smartcity_dead_letters_total`, `smartcity_processing_latency_seconds`,
`smartcity_consumer_lag_messages`). Client identifiers never appear in any label.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from smartcity.health import Health
from wifi_telemetry.core.published import ApView

ACCESS_POINTS = Gauge("smartcity_wifi_access_points", "Access points by health state per site",
                      ["site", "health"])
CLIENTS_ONLINE = Gauge("smartcity_wifi_clients_online", "Clients connected now per site", ["site"])
# Traffic as a counter (a rate is the query's business: rate(...[5m]) * 8 for bits per second):
# the bytes each applied heartbeat's counters moved by, attributed to its site.
TRAFFIC = Counter("smartcity_wifi_traffic_bytes", "Bytes the site's APs received (rx) and sent (tx)",
                  ["site", "direction"])
EVENTS = Counter("smartcity_wifi_events_processed_total",
                 "Telemetry and session events by outcome (applied, buffered, duplicate, late, rejected)",
                 ["kind", "outcome"])
HEALTH_CHANGES = Counter("smartcity_wifi_health_changes_total", "AP health changes by new state",
                         ["site", "health"])
REBOOTS = Counter("smartcity_wifi_ap_reboots_total", "AP reboots seen as counter resets", ["site"])
SEQ_GAPS = Counter("smartcity_wifi_seq_gaps_total", "Telemetry seq gaps given up as lost", ["site"])
PUBLISHED = Counter("smartcity_wifi_published_total", "Messages published by output topic",
                    ["topic"])

_STATES = {Health.OK: "ok", Health.PROBLEM: "problem", Health.CRITICAL: "critical"}


def health_label(health: Health) -> str:
    return _STATES[health]


def set_site_gauges(views: Iterable[ApView]) -> None:
    """Sets the per-site gauges from the current AP views (every state present, even at 0)."""
    by_state: Tally[tuple[str, str]] = Tally()
    clients: Tally[str] = Tally()
    sites: set[str] = set()
    for view in views:
        site = view.state.site_id
        sites.add(site)
        by_state[(site, health_label(view.health))] += 1
        clients[site] += view.clients
    for site in sites:
        for state in _STATES.values():
            ACCESS_POINTS.labels(site, state).set(by_state[(site, state)])
        CLIENTS_ONLINE.labels(site).set(clients[site])


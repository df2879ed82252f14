"""The /metrics endpoint: the whole registry, or only the metrics a `name[]` query names."""

from __future__ import annotations

import urllib.request

from prometheus_client import Counter

from smartcity.observability import ObservabilityServer
from smartcity.testing import free_port

WANTED = Counter("smartcity_test_wanted_total", "a counter a poller asks for", ["outcome"])
OTHER = Counter("smartcity_test_other_total", "a counter it does not")


def scrape(port: int, query: str = "") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics{query}", timeout=5) as reply:
        return str(reply.read().decode())


def test_a_name_query_gives_only_the_metrics_it_names_and_none_gives_all() -> None:
    WANTED.labels("ok").inc(3)
    OTHER.inc()
    server = ObservabilityServer("127.0.0.1", free_port()).start()
    try:
        everything = scrape(server.port)
        only = scrape(server.port, "?name[]=smartcity_test_wanted_total")
    finally:
        server.stop()
    assert 'smartcity_test_wanted_total{outcome="ok"} 3.0' in everything
    assert "smartcity_test_other_total 1.0" in everything
    assert 'smartcity_test_wanted_total{outcome="ok"} 3.0' in only
    assert "smartcity_test_other_total" not in only
    assert "process_cpu_seconds_total" not in only and "process_cpu_seconds_total" in everything

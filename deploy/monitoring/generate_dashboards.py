"""Writes the Grafana dashboards of the platform into deploy/monitoring/dashboards/*.json.

    uv run python deploy/monitoring/generate_dashboards.py           # (re)write the JSON files
    uv run python deploy/monitoring/generate_dashboards.py --check   # exit 1 when they are stale

Generated rather than hand-edited so the four service-health boards stay alike and every panel
gets the `${datasource}` template variable. The JSON files are committed: Grafana (and the
kustomize configMapGenerator in this folder) read them, and tests/ops checks they are current.
Edit here, not in the JSON (or edit in Grafana, export, and port the change back here).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).with_name("dashboards")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
STREAM_SERVICES = ("wifi-telemetry", "camera-health", "citizen-requests")
SERVER_ERROR_CODES = "UNKNOWN|INTERNAL|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED|UNIMPLEMENTED"
HEALTH_COLOURS = {"ok": "green", "problem": "orange", "critical": "red"}
# WiFi traffic in bits per second, from the byte counter (a rate, so restarts do not matter).
WIFI_THROUGHPUT = f"sum by (site, direction) (rate(smartcity_wifi_traffic_bytes_total[{RATE}])) * 8"

Json = dict[str, Any]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


class Board:
    """Lays panels out left to right in rows of 24 grid units."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._row_height = 0

    def add(self, kind: str, title: str, queries: list[Query], *, width: int = 8, height: int = 8,
            unit: str = "short", defaults: Json | None = None, overrides: list[Json] | None = None,
            options: Json | None = None) -> None:
        if self._x + width > 24:
            self._x, self._y, self._row_height = 0, self._y + self._row_height, 0
        panel: Json = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "datasource": DATASOURCE,
            "gridPos": {"h": height, "w": width, "x": self._x, "y": self._y},
            "targets": [_target(q, i, table=kind == "table") for i, q in enumerate(queries)],
            "fieldConfig": {"defaults": {"unit": unit, **(defaults or {})},
                            "overrides": overrides or []},
            "options": options or {},
        }
        if kind == "table":  # one row per label set, one column per query
            panel["transformations"] = [{"id": "merge", "options": {}}]
        self.panels.append(panel)
        self._x += width
        self._row_height = max(self._row_height, height)


def _target(query: Query, index: int, table: bool = False) -> Json:
    target: Json = {
        "refId": chr(ord("A") + index),
        "datasource": DATASOURCE,
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "instant": query.instant,
        "range": not query.instant,
    }
    if table:
        target["format"] = "table"
    return target


def _health_overrides() -> list[Json]:
    """Colours a series by the health state in its name (OK green, PROBLEM orange, ...)."""
    return [
        {
            "matcher": {"id": "byRegexp", "options": f".*{state}.*"},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}],
        }
        for state, colour in HEALTH_COLOURS.items()
    ]


def _datasource_variable() -> Json:
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
            "includeAll": False, "multi": False, "options": []}


def _query_variable(name: str, label: str, query: str) -> Json:
    return {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
            "definition": query, "query": {"query": query, "refId": f"{name}-variable"},
            "current": {}, "hide": 0, "refresh": 2, "regex": "", "sort": 1,
            "includeAll": True, "multi": True, "allValue": ".*", "options": []}


def _dashboard(uid: str, title: str, board: Board, variables: list[Json] | None = None,
               description: str = "") -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["smartcity"],
        "timezone": "Asia/Jakarta",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard",
        }]},
        "templating": {"list": [_datasource_variable(), *(variables or [])]},
        "links": [{"title": "Smart City", "type": "dashboards", "tags": ["smartcity"],
                   "asDropdown": True, "includeVars": False, "keepTime": True}],
        "panels": board.panels,
    }


def command_center() -> Json:
    b = Board()
    stat: Json = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value", "graphMode": "area", "textMode": "value_and_name"}
    b.add("stat", "Access points online", [
        Query('sum(smartcity_wifi_access_points{health!="critical"})', "online", instant=True),
        Query("sum(smartcity_wifi_access_points)", "total", instant=True)], width=6, height=5, options=stat)
    b.add("stat", "People online", [Query("sum(smartcity_wifi_clients_online)", "people online")],
          width=4, height=5, options=stat)
    b.add("stat", "Cameras", [Query("sum by (health) (smartcity_camera_cameras)", "{{health}}",
                                    instant=True)], width=6, height=5,
          overrides=_health_overrides(), options=stat)
    b.add("stat", "Open camera incidents", [Query("sum(smartcity_camera_open_incidents)", "open")],
          width=4, height=5, defaults={"thresholds": _thresholds(1)}, options=stat)
    b.add("stat", "Citizen requests", [
        Query("sum(smartcity_requests_open)", "open", instant=True),
        Query("sum(smartcity_requests_overdue)", "overdue", instant=True)], width=4, height=5, options=stat)

    b.add("bargauge", "Devices by health", [
        Query("sum by (health) (smartcity_wifi_access_points)", "access points {{health}}", instant=True),
        Query("sum by (health) (smartcity_camera_cameras)", "cameras {{health}}", instant=True)],
        width=8, overrides=_health_overrides(), options={"displayMode": "basic", "orientation": "horizontal"})
    b.add("timeseries", "People online per site",
          [Query("sum by (site) (smartcity_wifi_clients_online)", "{{site}}")], width=16)

    b.add("bargauge", "Requests per OPD: open and overdue", [
        Query("sum by (opd) (smartcity_requests_open)", "{{opd}} open", instant=True),
        Query("sum by (opd) (smartcity_requests_overdue)", "{{opd}} overdue", instant=True)],
        width=8, height=10, options={"displayMode": "gradient", "orientation": "horizontal"})
    b.add("table", "Access points and cameras by site and health", [
        Query("sum by (site, health) (smartcity_wifi_access_points)", "", instant=True),
        Query("sum by (site, health) (smartcity_camera_cameras)", "", instant=True)],
        width=8, height=10, options={"showHeader": True})
    b.add("table", "Firing alerts", [
        # "or on() vector(0)": one row of 0 when nothing fires, instead of an empty panel.
        Query('sum by (alertname, severity) (ALERTS{alertstate="firing"}) or on() vector(0)', "",
              instant=True)],
        width=8, height=10, options={"showHeader": True})

    b.add("timeseries", "Open camera incidents per site",
          [Query("sum by (site) (smartcity_camera_open_incidents)", "{{site}}")], width=8)
    b.add("timeseries", "WiFi throughput per site",
          [Query(WIFI_THROUGHPUT, "{{site}} {{direction}}")], width=8, unit="bps")
    b.add("timeseries", "Request transitions per hour",
          [Query("sum by (type) (increase(smartcity_requests_transitions_total[1h]))", "{{type}}")],
          width=8)
    return _dashboard("smartcity-command-center", "Smart City / Command center", b,
                      description="The live city: devices by health, people online, incidents, "
                                  "citizen requests per OPD.")


def _thresholds(red_from: float) -> Json:
    return {"mode": "absolute",
            "steps": [{"color": "green", "value": None}, {"color": "red", "value": red_from}]}


def _pipeline_panels(b: Board, service: str) -> None:
    """Throughput, latency, lag, errors and dead letters of one stream consumer."""
    sel = f'service="{service}"'
    b.add("stat", "Up", [Query(f'sum(up{{job="{service}"}})', "instances up", instant=True)],
          width=4, height=6, defaults={"thresholds": {"mode": "absolute", "steps": [
              {"color": "red", "value": None}, {"color": "green", "value": 1}]}})
    b.add("timeseries", "Throughput (messages/s by topic and outcome)", [Query(
        f"sum by (topic, outcome) (rate(smartcity_events_consumed_total{{{sel}}}[{RATE}]))",
        "{{topic}} {{outcome}}")], width=10, height=6, unit="ops")
    b.add("timeseries", "Processing latency (event time to output)", [
        Query(f"histogram_quantile({q}, sum by (le) (rate("
              f"smartcity_processing_latency_seconds_bucket{{{sel}}}[{RATE}])))", f"p{int(q * 100)}")
        for q in (0.5, 0.95, 0.99)], width=10, height=6, unit="s")
    b.add("timeseries", "Consumer lag (messages by topic)", [Query(
        f"sum by (topic) (smartcity_consumer_lag_messages{{{sel}}})", "{{topic}}")], width=8)
    b.add("timeseries", "Errors (share of messages dead-lettered)", [Query(
        f'sum(rate(smartcity_events_consumed_total{{{sel}, outcome="dead_letter"}}[{RATE}]))'
        f" / sum(rate(smartcity_events_consumed_total{{{sel}}}[{RATE}]))", "dead-lettered")],
        width=8, unit="percentunit")
    b.add("timeseries", "Dead letters (per minute by topic)", [Query(
        f"sum by (topic) (rate(smartcity_dead_letters_total{{{sel}}}[{RATE}])) * 60", "{{topic}}.dlq")],
        width=8)
    b.add("timeseries", "Agent crashes (last 10 min, by agent)", [Query(
        f"sum by (agent) (increase(smartcity_agent_crashes_total{{{sel}}}[10m]))", "{{agent}}")],
        width=8, defaults={"thresholds": _thresholds(1)})


def _wifi_panels(b: Board) -> None:
    b.add("timeseries", "Access points by health", [Query(
        "sum by (health) (smartcity_wifi_access_points)", "{{health}}")], overrides=_health_overrides())
    b.add("timeseries", "Clients online per site", [Query(
        "sum by (site) (smartcity_wifi_clients_online)", "{{site}}")])
    b.add("timeseries", "Throughput per site", [Query(WIFI_THROUGHPUT, "{{site}} {{direction}}")], unit="bps")


def _camera_panels(b: Board) -> None:
    b.add("timeseries", "Cameras by health", [Query(
        "sum by (health) (smartcity_camera_cameras)", "{{health}}")], overrides=_health_overrides())
    b.add("timeseries", "Open incidents per site", [Query(
        "sum by (site) (smartcity_camera_open_incidents)", "{{site}}")])
    b.add("table", "Availability per camera (1h, 24h, 7d)", [Query(
        "min by (camera, site, window) (smartcity_camera_availability_ratio)", "", instant=True)],
        unit="percentunit", options={"showHeader": True})


def _requests_panels(b: Board) -> None:
    b.add("timeseries", "Transitions per minute by type", [Query(
        f"sum by (type) (rate(smartcity_requests_transitions_total[{RATE}])) * 60", "{{type}}")])
    b.add("timeseries", "Rejected commands per minute by code", [Query(
        f"sum by (code) (rate(smartcity_requests_rejections_total[{RATE}])) * 60", "{{code}}")])
    b.add("timeseries", "SLA breaches per hour by kind", [Query(
        "sum by (kind) (increase(smartcity_requests_sla_breaches_total[1h]))", "{{kind}}")])


def _gateway_panels(b: Board) -> None:
    calls = "smartcity_gateway_rpcs_total"
    b.add("stat", "Up", [Query('sum(up{job="gateway"})', "instances up", instant=True)],
          width=4, height=6)
    b.add("timeseries", "Calls per second by method", [Query(
        f"sum by (method) (rate({calls}[{RATE}]))", "{{method}}")], width=10, height=6, unit="reqps")
    b.add("timeseries", "Calls per second by status code", [Query(
        f"sum by (code) (rate({calls}[{RATE}]))", "{{code}}")], width=10, height=6, unit="reqps")
    b.add("timeseries", "Server error ratio", [Query(
        f'(sum(rate({calls}{{code=~"{SERVER_ERROR_CODES}"}}[{RATE}])) or on() vector(0))'
        f" / sum(rate({calls}[{RATE}]))",
        "server errors")], unit="percentunit")
    b.add("timeseries", "Unary call latency p99 by method", [Query(
        "histogram_quantile(0.99, sum by (le, method) (rate("
        f'smartcity_gateway_rpc_duration_seconds_bucket{{method!~".*Watch.*"}}[{RATE}])))',
        "{{method}}")], unit="s")
    b.add("timeseries", "Unary call latency p50 / p99", [
        Query(f"histogram_quantile({q}, sum by (le) (rate("
              f'smartcity_gateway_rpc_duration_seconds_bucket{{method!~".*Watch.*"}}[{RATE}])))',
              f"p{int(q * 100)}") for q in (0.5, 0.99)], unit="s")
    # The gateway's consumer side: its read views, fed from the compacted topics.
    b.add("stat", "Read views ready", [Query("min(smartcity_gateway_ready)", "ready", instant=True)],
          width=4, defaults={"thresholds": {"mode": "absolute", "steps": [
              {"color": "red", "value": None}, {"color": "green", "value": 1}]}})
    b.add("timeseries", "Records read into the views (per second by topic and outcome)", [Query(
        f"sum by (topic, outcome) (rate(smartcity_gateway_records_total[{RATE}]))",
        "{{topic}} {{outcome}}")], width=10, unit="ops")
    b.add("timeseries", "Undecodable records skipped (per minute by topic)", [Query(
        f'sum by (topic) (rate(smartcity_gateway_records_total{{outcome="undecodable"}}[{RATE}])) * 60',
        "{{topic}}")], width=10)
    b.add("timeseries", "Open watch streams", [Query(
        "sum by (stream) (smartcity_gateway_watchers)", "{{stream}}")])
    b.add("timeseries", "Commands per minute by action and outcome", [Query(
        f"sum by (action, outcome) (rate(smartcity_gateway_commands_total[{RATE}])) * 60",
        "{{action}} {{outcome}}")])
    b.add("timeseries", "Rate-limited calls per minute by client", [Query(
        f"sum by (client) (rate(smartcity_gateway_rate_limited_total[{RATE}])) * 60", "{{client}}")])


def service_health(service: str) -> Json:
    b = Board()
    if service == "gateway":
        _gateway_panels(b)
    else:
        _pipeline_panels(b, service)
        {"wifi-telemetry": _wifi_panels, "camera-health": _camera_panels,
         "citizen-requests": _requests_panels}[service](b)
    return _dashboard(f"smartcity-svc-{service}", f"Smart City / Service health: {service}", b,
                      description=f"Throughput, latency, lag, errors and dead letters of {service}.")


def sla_per_opd() -> Json:
    b = Board()
    opd = 'opd=~"$opd"'
    stat: Json = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value", "graphMode": "area"}
    b.add("stat", "Open requests", [Query(f"sum(smartcity_requests_open{{{opd}}})", "open")],
          width=6, height=5, options=stat)
    b.add("stat", "Overdue requests", [Query(f"sum(smartcity_requests_overdue{{{opd}}})", "overdue")],
          width=6, height=5, defaults={"thresholds": _thresholds(1)}, options=stat)
    b.add("stat", "Overdue share", [Query(
        f"sum(smartcity_requests_overdue{{{opd}}}) / sum(smartcity_requests_open{{{opd}}})", "overdue")],
        width=6, height=5, unit="percentunit", defaults={"thresholds": _thresholds(0.2)}, options=stat)
    b.add("stat", "SLA breaches (24h)", [Query(
        f"sum(increase(smartcity_requests_sla_breaches_total{{{opd}}}[24h]))", "breaches")],
        width=6, height=5, defaults={"thresholds": _thresholds(1)}, options=stat)
    b.add("bargauge", "Open and overdue per OPD", [
        Query(f"sum by (opd) (smartcity_requests_open{{{opd}}})", "{{opd}} open", instant=True),
        Query(f"sum by (opd) (smartcity_requests_overdue{{{opd}}})", "{{opd}} overdue", instant=True)],
        width=8, height=10, options={"displayMode": "gradient", "orientation": "horizontal"})
    b.add("timeseries", "Overdue share per OPD", [Query(
        f"sum by (opd) (smartcity_requests_overdue{{{opd}}})"
        f" / sum by (opd) (smartcity_requests_open{{{opd}}})",
        "{{opd}}")], width=16, height=10, unit="percentunit")
    b.add("timeseries", "SLA breaches per hour by OPD and kind", [Query(
        f"sum by (opd, kind) (increase(smartcity_requests_sla_breaches_total{{{opd}}}[1h]))",
        "{{opd}} {{kind}}")], width=12)
    b.add("timeseries", "Emergencies not acknowledged in time (per hour)", [Query(
        "sum by (opd) (increase(smartcity_requests_sla_breaches_total"
        f'{{{opd}, category="emergency", kind="acknowledge"}}[1h]))', "{{opd}}")],
        width=12, defaults={"thresholds": _thresholds(1)})
    b.add("table", "Open and overdue per OPD and category", [
        Query(f"sum by (opd, category) (smartcity_requests_open{{{opd}}})", "open", instant=True),
        Query(f"sum by (opd, category) (smartcity_requests_overdue{{{opd}}})", "overdue", instant=True)],
        width=24, height=10, options={"showHeader": True})
    variables = [_query_variable("opd", "OPD", "label_values(smartcity_requests_open, opd)")]
    return _dashboard("smartcity-sla-opd", "Smart City / SLA per OPD", b, variables,
                      description="Citizen requests per OPD against their SLAs.")


def all_dashboards() -> dict[str, Json]:
    """File name -> dashboard."""
    boards = {"command-center.json": command_center(), "sla-per-opd.json": sla_per_opd()}
    for service in (*STREAM_SERVICES, "gateway"):
        boards[f"service-health-{service}.json"] = service_health(service)
    return boards


def render(dashboard: Json) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def stale_files(directory: Path = DASHBOARD_DIR) -> list[str]:
    """Dashboards whose committed JSON differs from what this script writes (or extra files)."""
    wanted = {name: render(board) for name, board in all_dashboards().items()}
    present = {p.name for p in directory.glob("*.json")} if directory.is_dir() else set()
    stale = [n for n, text in wanted.items()
             if not (directory / n).is_file() or (directory / n).read_text() != text]
    return sorted(stale + sorted(present - wanted.keys()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when the JSON files are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: {DASHBOARD_DIR.name}/{name} (run deploy/monitoring/generate_dashboards.py)")
        return 1 if stale else 0
    DASHBOARD_DIR.mkdir(exist_ok=True)
    for name, board in all_dashboards().items():
        (DASHBOARD_DIR / name).write_text(render(board))
        print(f"wrote {DASHBOARD_DIR.name}/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

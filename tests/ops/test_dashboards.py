"""Grafana dashboards and the list of metrics the rules and dashboards use."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "monitoring"
DASHBOARDS = MONITORING / "dashboards"
SERVICES = ("wifi-telemetry", "camera-health", "citizen-requests", "gateway")
DATASOURCE_UID = "${datasource}"


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"ops_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


check_metrics = load_script(MONITORING / "check_metrics.py")


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def panels_of(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    stack = list(board.get("panels", []))
    while stack:
        panel = stack.pop(0)
        found.append(panel)
        stack.extend(panel.get("panels", []))
    return found


def test_generated_dashboards_are_current():
    result = subprocess.run([sys.executable, str(MONITORING / "generate_dashboards.py"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_required_dashboards_exist():
    names = {p.name for p in dashboard_files()}
    required = {"command-center.json", "sla-per-opd.json"} | {f"service-health-{s}.json" for s in SERVICES}
    assert required <= names, f"missing: {sorted(required - names)}"


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_dashboard_is_valid_and_every_panel_has_a_datasource_and_a_query(path):
    board = json.loads(path.read_text())
    assert board.get("uid") and board.get("title")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == DATASOURCE_UID, variable["name"]
    panels = [p for p in panels_of(board) if p.get("type") != "row"]
    assert panels, "a dashboard without panels"
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        where = f"{path.name}: panel {panel.get('title')!r}"
        assert panel.get("datasource", {}).get("uid") == DATASOURCE_UID, f"{where}: datasource"
        targets = panel.get("targets", [])
        assert targets, f"{where}: no query"
        for target in targets:
            assert str(target.get("expr", "")).strip(), f"{where}: empty query"
            assert target.get("datasource", {}).get("uid") == DATASOURCE_UID, f"{where}: query datasource"
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, f"{where}: gridPos"


def test_dashboard_uids_are_unique():
    uids = [json.loads(p.read_text())["uid"] for p in dashboard_files()]
    assert len(uids) == len(set(uids))


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    """promtool parses each query (Grafana's variables given plausible values) as a recording rule."""
    expressions = check_metrics.dashboard_expressions(DASHBOARDS)
    rules = [{"record": f"dashboard:query_{i}", "expr": check_metrics.substitute_grafana_variables(expr)}
             for i, (_, expr) in enumerate(expressions) if not expr.startswith("label_values(")]
    assert len(rules) > 20
    path = tmp_path / "dashboard_queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_metrics_list_is_exactly_what_rules_and_dashboards_use():
    comparison = check_metrics.compare_with_list(check_metrics.used_series(), check_metrics.load_listed())
    assert not comparison.unlisted, f"used but not in metrics_used.yaml: {comparison.unlisted}"
    assert not comparison.unused, f"in metrics_used.yaml but used nowhere: {comparison.unused}"


def test_listed_metrics_follow_the_naming_rules():
    prefixes = {"libs": "smartcity_", "wifi-telemetry": "smartcity_wifi_",
                "camera-health": "smartcity_camera_", "citizen-requests": "smartcity_requests_",
                "gateway": "smartcity_gateway_"}
    for name, spec in check_metrics.load_listed().items():
        assert spec["type"] in {"counter", "gauge", "histogram"}, name
        assert spec["owner"] in {*prefixes, "prometheus"}, name
        if spec["owner"] != "prometheus":
            assert name.startswith(prefixes[spec["owner"]]), f"{name} should start {prefixes[spec['owner']]}"
        assert name.endswith("_total") == (spec["type"] == "counter"), f"{name}: counters end in _total"
        assert set(spec.get("label_values", {})) <= set(spec["labels"]), name


@pytest.mark.parametrize(("expr", "expected"), [
    ('sum by (site) (smartcity_camera_cameras{health="critical"}) > 0', {"smartcity_camera_cameras"}),
    ("histogram_quantile(0.99, sum by (le, method) (rate(x_bucket{method!~\".*Watch.*\"}[5m])))",
     {"x_bucket"}),
    ("sum(rate(a_total[$__rate_interval])) / sum without (pod) (b) and on (job) up == bool 1",
     {"a_total", "b", "up"}),
    ('sum(c{opd=~"$opd", q="sum(d)"} offset 1h) unless ignoring (x) e', {"c", "e"}),
    ("max_over_time(f[1h:5m]) * on (site) group_left (name) g", {"f", "g"}),
    ("label_values(smartcity_requests_open, opd)", {"smartcity_requests_open"}),
])
def test_metric_names_are_found_in_promql(expr, expected):
    assert check_metrics.names_in(expr) == expected


@pytest.mark.parametrize(("expr", "expected"), [
    # What a tokenizer gets wrong and a PromQL parser does not.
    ('{__name__="smartcity_up", job="x"}', {"smartcity_up"}),
    ("sum(\n  # errors per second, from requests_total\n  rate(e_total[5m]))", {"e_total"}),
    ('count(label_replace(up, "dst", "$1", "src", "(.*)"))', {"up"}),
    ("rate(x_total[5m] offset -5m @ start())", {"x_total"}),
])
def test_metric_names_come_from_the_parsed_expression(expr, expected):
    assert check_metrics.names_in(expr) == expected


@pytest.mark.parametrize("expr", ["sum(rate(x_total[5m])", "rate(x_total[5m] offset)", "a +"])
def test_an_expression_that_is_not_promql_is_an_error_naming_it(expr):
    with pytest.raises(check_metrics.PromQLError) as err:
        check_metrics.names_in(expr)
    assert expr in str(err.value)


def test_shared_metrics_of_libs_are_declared_and_exported_as_listed():
    """The libs metrics exist today: compare the list with the real registry and its /metrics."""
    from prometheus_client import REGISTRY, generate_latest

    libs = {n: s for n, s in check_metrics.load_listed().items() if s["owner"] == "libs"}
    assert libs
    declared = check_metrics.declared_metrics(["smartcity.streams", "smartcity.dlq"])
    assert check_metrics.compare_with_exported(libs, declared) == []
    assert {n: sorted(declared[n].labels) for n in libs} == {n: sorted(s["labels"]) for n, s in libs.items()}
    exported = check_metrics.exported_metrics(generate_latest(REGISTRY).decode())
    assert check_metrics.compare_with_exported(libs, exported) == []


def test_comparison_with_live_metrics_reports_what_is_wrong():
    exposition = "\n".join([
        "# HELP smartcity_camera_cameras Cameras by health",
        "# TYPE smartcity_camera_cameras gauge",
        'smartcity_camera_cameras{site="alun-alun"} 4',
        "# HELP smartcity_camera_open_incidents Open incidents",
        "# TYPE smartcity_camera_open_incidents counter",
        "# HELP smartcity_camera_availability_ratio Availability",
        "# TYPE smartcity_camera_availability_ratio gauge",
        "",
    ])
    listed = {n: s for n, s in check_metrics.load_listed().items() if s["owner"] == "camera-health"}
    problems = check_metrics.compare_with_exported(listed, check_metrics.exported_metrics(exposition))
    assert problems == [
        "smartcity_camera_cameras: samples lack labels ['health']",
        "smartcity_camera_open_incidents (camera-health): not exported",
    ]

"""Which metrics the rules and dashboards use, and whether the services export them.

    uv run python deploy/monitoring/check_metrics.py
        checks that metrics_used.yaml lists exactly the metrics that rules.yaml and
        dashboards/*.json use (exit 1 and a list when not)
    uv run python deploy/monitoring/check_metrics.py --against URL_OR_FILE [...]
        also compares the list with live /metrics pages (or saved copies of them): every
        metric of the services and libs must be exported with its type and labels
    uv run python deploy/monitoring/check_metrics.py --import MODULE [...]
        the same without running anything: imports the modules that define the metrics
        (e.g. smartcity.streams smartcity.dlq wifi_telemetry.adapters.metrics camera_health.adapters.metrics
        citizen_requests.metrics gateway.metrics) and compares names, types and declared labels

Metric names are read from the syntax tree of each expression, parsed by `promql-parser` (the
Rust crate of the same name, which follows Prometheus' own grammar): every vector selector,
named before its braces or by a `__name__="..."` matcher. An expression that does not parse is an
error naming it. Grafana's variables are given plausible values first; promtool also checks the
expressions' syntax in tests/ops.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import yaml

HERE = Path(__file__).parent
RULES_PATH = HERE / "rules.yaml"
DASHBOARD_DIR = HERE / "dashboards"
LISTED_PATH = HERE / "metrics_used.yaml"

# Grafana's own variables, given a plausible value so the expression stays valid PromQL.
_GRAFANA_INTERVALS = re.compile(r"\$__(?:rate_interval|interval|range)\b"
                                r"|\$\{__(?:rate_interval|interval|range)\}")
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]+\}|\$[A-Za-z_]\w*|\[\[[^\]]+\]\]")
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def substitute_grafana_variables(expr: str) -> str:
    """An expression with Grafana's variables replaced so it parses as PromQL."""
    expr = _GRAFANA_INTERVALS.sub("5m", expr)
    return _GRAFANA_VARIABLE.sub("x", expr)


class PromQLError(ValueError):
    """An expression of a rule or dashboard that is not PromQL."""


def promql_metric_names(expr: str) -> set[str]:
    """Metric names used by one PromQL expression (Grafana variables allowed)."""
    try:
        tree = promql_parser.parse(substitute_grafana_variables(expr))
    except ValueError as exc:
        raise PromQLError(f"not PromQL ({exc}): {expr}") from None
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.update(_selected_names(node))

    promql_parser.walk(tree, visit)
    return names


def _selected_names(selector: Any) -> set[str]:
    """The metric a selector names: `name{...}` or `{__name__="name", ...}`."""
    if selector.name:
        return {selector.name}
    return {m.value for m in selector.matchers.matchers
            if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal}


def rule_expressions(path: Path = RULES_PATH) -> list[tuple[str, str]]:
    """(where, expr) of every rule."""
    data = yaml.safe_load(path.read_text())
    return [(f"{path.name}: {rule.get('alert') or rule.get('record')}", str(rule["expr"]))
            for group in data["groups"] for rule in group["rules"]]


def dashboard_expressions(directory: Path = DASHBOARD_DIR) -> list[tuple[str, str]]:
    """(where, expr) of every panel query and every query variable of the dashboards."""
    found: list[tuple[str, str]] = []
    for path in sorted(directory.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in _all_panels(board.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"{path.name}: {panel.get('title')}", str(target["expr"])))
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable.get("query")
                text = query.get("query", "") if isinstance(query, dict) else str(query or "")
                found.append((f"{path.name}: variable {variable.get('name')}", text))
    return found


def _all_panels(panels: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _all_panels(panel.get("panels", []))


def names_in(expr: str) -> set[str]:
    """Metric names of a panel query, a rule, or a `label_values(metric, label)` variable."""
    variable = _LABEL_VALUES.search(expr)
    if variable:
        return {variable.group(1)}
    return promql_metric_names(expr)


def used_series(rules: Path = RULES_PATH, dashboards: Path = DASHBOARD_DIR) -> dict[str, list[str]]:
    """Series name -> where it is used."""
    used: dict[str, list[str]] = {}
    for where, expr in rule_expressions(rules) + dashboard_expressions(dashboards):
        for name in names_in(expr):
            used.setdefault(name, []).append(where)
    return used


def load_listed(path: Path = LISTED_PATH) -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text())["metrics"]
    return data


def family_of(series: str, listed: dict[str, dict[str, Any]]) -> str | None:
    """The listed metric a series belongs to (`x_bucket` belongs to histogram `x`)."""
    if series in listed:
        return series
    for suffix in HISTOGRAM_SUFFIXES:
        base = series.removesuffix(suffix)
        if base != series and listed.get(base, {}).get("type") == "histogram":
            return base
    return None


@dataclass
class ListComparison:
    unlisted: dict[str, list[str]] = field(default_factory=dict)  # used but not in the list
    unused: list[str] = field(default_factory=list)                # listed but used nowhere

    @property
    def ok(self) -> bool:
        return not self.unlisted and not self.unused


def compare_with_list(used: dict[str, list[str]], listed: dict[str, dict[str, Any]]) -> ListComparison:
    result = ListComparison()
    families = set()
    for series, where in sorted(used.items()):
        family = family_of(series, listed)
        if family is None:
            result.unlisted[series] = where
        else:
            families.add(family)
    result.unused = sorted(set(listed) - families)
    return result


@dataclass(frozen=True)
class Exported:
    type: str
    labels: frozenset[str]
    has_samples: bool


def exported_metrics(exposition: str) -> dict[str, Exported]:
    """Metric name (as PromQL sees it: counters with _total) -> type and labels, from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, Exported] = {}
    for family in text_string_to_metric_families(exposition):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        labels = frozenset(k for s in family.samples for k in s.labels if k not in ("le", "quantile"))
        merge_into(found, name, Exported(family.type, labels, bool(family.samples)))
    return found


def merge_into(found: dict[str, Exported], name: str, metric: Exported) -> None:
    """Adds a metric seen on one more page (or twice on one page): labels and samples add up."""
    old = found.get(name)
    if old is not None:
        metric = Exported(metric.type, metric.labels | old.labels, metric.has_samples or old.has_samples)
    found[name] = metric


def compare_with_exported(listed: dict[str, dict[str, Any]], exported: dict[str, Exported]) -> list[str]:
    """Problems: listed metrics (libs and services) missing from /metrics, of another type,
    or without the labels the rules and dashboards rely on."""
    problems = []
    for name, spec in sorted(listed.items()):
        if spec.get("owner") == "prometheus":
            continue
        got = exported.get(name)
        if got is None:
            problems.append(f"{name} ({spec.get('owner')}): not exported")
            continue
        if got.type != spec["type"]:
            problems.append(f"{name}: exported as {got.type}, the rules expect a {spec['type']}")
        missing = set(spec.get("labels", [])) - got.labels
        if got.has_samples and missing:
            problems.append(f"{name}: samples lack labels {sorted(missing)}")
    return problems


def declared_metrics(modules: Iterable[str]) -> dict[str, Exported]:
    """Metrics the given modules register in prometheus_client's default registry, with the
    label names they declare (known even before a first sample)."""
    import importlib

    from prometheus_client import REGISTRY

    for module in modules:
        importlib.import_module(module)
    found: dict[str, Exported] = {}
    for collector in list(REGISTRY._collector_to_names):
        name, kind = getattr(collector, "_name", None), getattr(collector, "_type", None)
        if name is None or kind is None:
            continue
        full = f"{name}_total" if kind == "counter" else name
        found[full] = Exported(str(kind), frozenset(getattr(collector, "_labelnames", ())), True)
    return found


def read_exposition(source: str) -> str:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as response:
            return str(response.read().decode("utf-8"))
    return Path(source).read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", nargs="*", default=[], metavar="URL_OR_FILE",
                        help="/metrics pages (or saved copies) of the running services")
    parser.add_argument("--import", dest="modules", nargs="*", default=[], metavar="MODULE",
                        help="modules defining the metrics, compared without running them")
    args = parser.parse_args(argv)
    listed = load_listed()
    comparison = compare_with_list(used_series(), listed)
    for series, where in comparison.unlisted.items():
        print(f"used but not listed in {LISTED_PATH.name}: {series} ({'; '.join(where)})")
    for name in comparison.unused:
        print(f"listed in {LISTED_PATH.name} but used nowhere: {name}")
    problems: list[str] = []
    if args.modules:
        declared = declared_metrics(args.modules)
        owners = {spec["owner"] for spec in listed.values()}
        checked = {n: s for n, s in listed.items() if s["owner"] in owners - {"prometheus"}
                   and (s["owner"] == "libs" or any(m.startswith(s["owner"].replace("-", "_"))
                                                    for m in args.modules))}
        problems += compare_with_exported(checked, declared)
        problems += [f"{n}: declares labels {sorted(declared[n].labels)}, the list says {s['labels']}"
                     for n, s in checked.items() if n in declared
                     and set(s.get("labels", [])) != declared[n].labels]
        for problem in problems:
            print(problem)
    if args.against:
        exported: dict[str, Exported] = {}
        for source in args.against:
            for name, metric in exported_metrics(read_exposition(source)).items():
                merge_into(exported, name, metric)
        live = compare_with_exported(listed, exported)
        for problem in live:
            print(problem)
        problems += live
    ok = comparison.ok and not problems
    print(f"{len(listed)} metrics listed; " + ("all consistent" if ok else "problems above"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The alert rules: promtool checks and unit tests, conventions, and that the tests can fail."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "rules.yaml"
RULES_TEST = MONITORING / "rules_test.yaml"
RUNBOOKS = MONITORING / "runbooks.md"
SEVERITIES = {"critical", "warning", "info"}
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> int:
    match = _DURATION.match(str(duration))
    assert match, f"unsupported duration {duration!r}"
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def alerts() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def unit_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load(RULES_TEST.read_text())["tests"]
    return tests


def promtool_run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules(promtool):
    result = promtool_run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass(promtool):
    result = promtool_run(promtool, "test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_required_alerts_exist():
    names = {rule["alert"] for rule in alerts()}
    required = {"CameraDown", "WifiApOfflineRatioHigh", "RequestSlaBreaches", "EmergencyNotAcknowledged",
                "KafkaConsumerLagHigh", "DeadLettersGrowing", "GatewayErrorRatioHigh",
                "GatewayLatencyHigh", "SmartcityServiceDown"}
    assert required <= names, f"missing alerts: {sorted(required - names)}"
    assert len(names) == len(alerts()), "alert names must be unique"


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_alert_has_for_severity_and_annotations(alert):
    assert seconds(alert.get("for", "0s")) > 0, "every alert waits for its condition to hold"
    assert alert.get("labels", {}).get("severity") in SEVERITIES
    annotations = alert.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"annotation {key} missing"


def github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub gives the headings of a Markdown file."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_runbook_url_points_at_a_runbook_section(alert):
    url = alert["annotations"]["runbook_url"]
    page, _, anchor = url.partition("#")
    assert page == RUNBOOKS.name and anchor, f"runbook_url {url!r} should be {RUNBOOKS.name}#<section>"
    assert anchor in github_anchors(RUNBOOKS.read_text()), f"no section #{anchor} in {RUNBOOKS.name}"


def test_every_alert_name_appears_in_the_unit_tests():
    text = RULES_TEST.read_text()
    missing = [rule["alert"] for rule in alerts() if rule["alert"] not in text]
    assert not missing, f"alerts without promtool tests: {missing}"


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_alert_is_tested_pending_firing_and_healthy(alert):
    """A firing case; a case inside its `for:` window (same input) with no alert; healthy input."""
    name, hold = alert["alert"], seconds(alert["for"])
    firing_groups, healthy_groups = [], []
    for index, group in enumerate(unit_tests()):
        cases = [c for c in group.get("alert_rule_test", []) if c["alertname"] == name]
        if not cases:
            continue
        fired = [seconds(c["eval_time"]) for c in cases if c.get("exp_alerts")]
        if not fired:
            healthy_groups.append(index)
            continue
        first = min(fired)
        pending = [seconds(c["eval_time"]) for c in cases if not c.get("exp_alerts")
                   and first - hold <= seconds(c["eval_time"]) < first]
        assert pending, f"{group['name']}: no quiet case within `for: {alert['for']}` before {first}s"
        firing_groups.append(index)
        for case in cases:
            for expected in case.get("exp_alerts") or []:
                assert expected.get("exp_annotations"), f"{group['name']}: annotations not asserted"
                assert expected["exp_labels"].get("severity") == alert["labels"]["severity"]
    assert firing_groups, f"{name}: no test where it fires"
    assert healthy_groups, f"{name}: no test with healthy input where it stays silent"


@pytest.mark.parametrize("mutation", ["for-0s", "always-true"])
@pytest.mark.parametrize("alert", [a["alert"] for a in alerts()])
def test_unit_tests_catch_a_broken_alert(promtool, tmp_path, alert, mutation):
    """The promtool tests fail when an alert fires without waiting, or on any input."""
    data = yaml.safe_load(RULES.read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                if mutation == "for-0s":
                    rule["for"] = "0s"
                else:
                    rule["expr"] = "vector(1)"
    (tmp_path / RULES.name).write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    result = promtool_run(promtool, "test", "rules", str(tmp_path / RULES_TEST.name))
    assert result.returncode != 0, f"the unit tests did not notice {alert} with {mutation}"

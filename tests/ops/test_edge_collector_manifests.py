"""The edge collectors' manifests (deploy/k8s/base/services/edge): they render alone and next to
an overlay, validate strictly, are hardened like the services, run a console script their image
has, and agree on their metrics port with their code."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EDGE = REPO / "deploy" / "k8s" / "base" / "services" / "edge"
COLLECTORS = {  # Deployment -> (service folder, module of the entry point, default metrics port)
    "wifi-radius": ("wifi-telemetry", "wifi_telemetry.edge.radius", 9121),
    "wifi-snmp": ("wifi-telemetry", "wifi_telemetry.edge.snmp", 9122),
    "camera-frames": ("camera-health", "camera_health.edge.frames", 9123),
}


def build(kustomize: str, path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([kustomize, "build", str(path)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def docs(kustomize: str) -> list[dict[str, Any]]:
    return build(kustomize, EDGE)


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_the_collectors_validate_strictly_in_the_namespace(docs: list[dict[str, Any]]) -> None:
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"} == set(COLLECTORS)
    for doc in docs:
        assert doc["metadata"]["namespace"] == "smartcity"
        if not doc["apiVersion"].startswith("monitoring.coreos.com"):
            kubernetes_validate.validate(doc, "1.31", strict=True)


@pytest.mark.parametrize("name", COLLECTORS)
def test_a_collector_is_hardened_probed_and_runs_its_console_script(docs: list[dict[str, Any]],
                                                                    name: str) -> None:
    service, module, port = COLLECTORS[name]
    pod = named(docs, "Deployment", name)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["image"].startswith(f"smartcity/{service}:")
    config = named(docs, "ConfigMap", name)["data"]
    assert int(config["METRICS_PORT"]) == port
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == port
    project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())["project"]
    scripts = project["scripts"]
    assert scripts[config["SMARTCITY_SERVICE"]] == f"{module}:main"
    source = (REPO / "services" / service / (module.replace(".", "/") + ".py")).read_text()
    assert f"DEFAULT_METRICS_PORT = {port}" in source
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["devices"]["secret"]["secretName"] == f"{name}-config"


def test_the_collectors_compose_with_the_dev_overlay(kustomize: str, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    base = os.path.relpath(REPO / "deploy" / "k8s" / "overlays" / "dev", overlay)
    edge = os.path.relpath(EDGE, overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {base}\n  - {edge}\n")
    docs = build(kustomize, overlay)
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys))
    assert {"wifi-radius", "wifi-snmp", "camera-frames", "wifi-telemetry"} <= {
        n for k, n in keys if k == "Deployment"}

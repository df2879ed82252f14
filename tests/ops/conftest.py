"""Fixtures of the operations checks: the real tools (promtool, kustomize) and rendered overlays.

A missing tool FAILS the tests that need it, with the command that installs it: these checks
are never skipped.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
INSTALL_HINT = "install it with `bash scripts/install_ops_tools.sh` (or `make install`)"


def find_tool(name: str) -> str:
    """The tool in the repository's .local/bin, else on PATH; fails the test when absent."""
    local = REPO / ".local" / "bin" / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return found


def run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def promtool() -> str:
    return find_tool("promtool")


@pytest.fixture(scope="session")
def kustomize() -> str:
    return find_tool("kustomize")


_RENDERED: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(scope="session")
def render(kustomize: str) -> Any:
    """render(overlay) -> the documents `kustomize build deploy/k8s/overlays/<overlay>` prints."""

    def _render(overlay: str) -> list[dict[str, Any]]:
        if overlay not in _RENDERED:
            result = run([kustomize, "build", str(K8S / "overlays" / overlay)])
            assert result.returncode == 0, f"kustomize build {overlay} failed:\n{result.stderr}"
            _RENDERED[overlay] = [d for d in yaml.safe_load_all(result.stdout) if d]
        return _RENDERED[overlay]

    return _render


def _load_module(path: Path) -> Any:
    """A script of the repository (not a package) imported by its path."""
    spec = importlib.util.spec_from_file_location(f"ops_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def live_apiserver() -> Iterator[Any]:
    """A real kube-apiserver (with etcd) on loopback with the Strimzi and prometheus-operator
    CRDs installed: deploy/k8s/live_apiserver.py. Fails (never skips) when the binaries are not
    built, naming the command that builds them."""
    live = _load_module(K8S / "live_apiserver.py")
    try:
        live.binaries()
    except live.MissingBinary as missing:
        pytest.fail(str(missing), pytrace=False)
    yield from live.running_server()

"""A real Kubernetes API server on loopback (etcd + kube-apiserver), for server-side apply.

    uv run python deploy/k8s/live_apiserver.py run     # start, install the CRDs, print KUBECONFIG,
                                                        # stop on Ctrl-C
`make ops-live` (tests/ops/test_live_apiserver.py) starts one per test session. There is no
controller manager, scheduler or kubelet: nothing runs, but every object goes through the same
decoding, defaulting, strict field validation, CRD schema validation and admission as in a
cluster, so an object it accepts is one a cluster accepts.

The binaries come from `scripts/install_live_k8s.sh` (cached in .cache/ops/<component>-<version>/):
kube-apiserver and kubectl built from the Go module proxy, etcd from Debian's etcd-server.

The custom resource definitions installed (`install_crds`):
  monitoring.coreos.com  ServiceMonitor, PrometheusRule: the published CRDs of the
                         prometheus-operator Go module (example/prometheus-operator-crd/),
                         copied into the cache by the install script
  kafka.strimzi.io       Kafka, KafkaNodePool, KafkaTopic, KafkaUser: no registry serves
                         Strimzi's CRD files, so they are rebuilt from the schemas derived from
                         them in tests/ops/crd_schemas/ (see `strimzi_crd`)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
OPS_CACHE = Path(os.environ.get("OPS_CACHE", REPO / ".cache" / "ops"))
KUBERNETES_VERSION = os.environ.get("KUBERNETES_VERSION", "v1.37.2")
PROMETHEUS_OPERATOR_VERSION = os.environ.get("PROMETHEUS_OPERATOR_VERSION", "v0.93.0")
CRD_SCHEMAS = REPO / "tests" / "ops" / "crd_schemas"
INSTALL_HINT = "run `bash scripts/install_live_k8s.sh` (or `make ops-live`)"
# The plural of each Strimzi kind: the CRD's resource name (Kafka -> kafkas).
STRIMZI_PLURALS = {"Kafka": "kafkas", "KafkaNodePool": "kafkanodepools",
                   "KafkaTopic": "kafkatopics", "KafkaUser": "kafkausers"}
STRIMZI_SHORT_NAMES = {"Kafka": ["k"], "KafkaNodePool": ["knp"], "KafkaTopic": ["kt"], "KafkaUser": ["ku"]}
PROMETHEUS_OPERATOR_CRDS = ("monitoring.coreos.com_servicemonitors.yaml",
                            "monitoring.coreos.com_prometheusrules.yaml")


class MissingBinary(RuntimeError):
    """A binary of the live API server is not in the cache."""


def binaries() -> dict[str, Path]:
    """The cached kube-apiserver, kubectl and etcd; MissingBinary naming the install command."""
    kube = OPS_CACHE / f"kubernetes-{KUBERNETES_VERSION}"
    etcd_dirs = sorted(OPS_CACHE.glob("etcd-*/etcd"))
    found = {"kube-apiserver": kube / "kube-apiserver", "kubectl": kube / "kubectl",
             "etcd": etcd_dirs[-1] if etcd_dirs else OPS_CACHE / "etcd-<version>" / "etcd"}
    missing = [str(path) for path in found.values() if not os.access(path, os.X_OK)]
    if missing:
        raise MissingBinary(f"not built yet: {', '.join(missing)}: {INSTALL_HINT}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------- CRDs

def _legal_structural(schema: Any) -> Any:
    """A derived (strict JSON) schema turned back into a legal CRD schema.

    The two differences: a CRD schema may not put `additionalProperties: false` beside
    `properties` (the API server closes objects itself: strict field validation rejects unknown
    fields), and int-or-string is `x-kubernetes-int-or-string`, not an `anyOf` of two types.
    """
    if isinstance(schema, list):
        return [_legal_structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _legal_structural(value) for key, value in schema.items() if key != "$comment"}
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    if out.get("anyOf") == [{"type": "integer"}, {"type": "string"}]:
        del out["anyOf"]
        out["x-kubernetes-int-or-string"] = True
    return out


def strimzi_crd(schema_file: Path) -> dict[str, Any]:
    """The CustomResourceDefinition of one Strimzi kind from its schema in tests/ops/crd_schemas."""
    derived = json.loads(schema_file.read_text())
    properties = dict(derived["properties"])
    api_version = properties["apiVersion"]["enum"][0]
    group, version = api_version.split("/")
    kind = properties["kind"]["enum"][0]
    # metadata is the API server's own (a CRD may only restrict name); apiVersion/kind plain
    # strings; status as Strimzi keeps it, free-form and a subresource.
    properties["metadata"] = {"type": "object"}
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema = _legal_structural(derived | {"properties": properties, "required": ["spec"]})
    plural = STRIMZI_PLURALS[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}",
                     "labels": {"app": "strimzi", "strimzi.io/crd-install": "true"}},
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "shortNames": STRIMZI_SHORT_NAMES[kind], "categories": ["strimzi"]},
            "scope": "Namespaced",
            "versions": [{"name": version, "served": True, "storage": True,
                          "subresources": {"status": {}}, "schema": {"openAPIV3Schema": schema}}],
        },
    }


def prometheus_operator_crd_files() -> list[Path]:
    crd_dir = OPS_CACHE / f"prometheus-operator-{PROMETHEUS_OPERATOR_VERSION}" / "crds"
    files = [crd_dir / name for name in PROMETHEUS_OPERATOR_CRDS]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise MissingBinary(f"prometheus-operator CRDs missing: {', '.join(missing)}: {INSTALL_HINT}")
    return files


def crd_documents() -> list[dict[str, Any]]:
    """Every CRD the overlays need: Strimzi's (rebuilt) and the prometheus-operator's (published)."""
    docs = [strimzi_crd(path) for path in sorted(CRD_SCHEMAS.glob("*-kafka.strimzi.io-*.json"))]
    for path in prometheus_operator_crd_files():
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


# ---------------------------------------------------------------------------- the server

@dataclass
class KubectlResult:
    returncode: int
    stdout: str
    stderr: str


class LiveApiServer:
    """etcd and kube-apiserver as child processes on free loopback ports, in a scratch folder."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.bin = binaries()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="smartcity-apiserver-"))
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.kubeconfig = self.workdir / "kubeconfig"
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> LiveApiServer:
        try:
            self._start_etcd()
            self._start_apiserver()
            self._write_kubeconfig()
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self._procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True))

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._spawn("etcd", [
            str(self.bin["etcd"]), "--name", "ops-live", "--data-dir", str(self.workdir / "etcd"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"ops-live=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync", "--quota-backend-bytes", str(512 * 1024 * 1024),
        ])

    def _start_apiserver(self) -> None:
        key = self.workdir / "service-account.key"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.token},ops-live-admin,ops-live-admin,"system:masters"\n')
        self._spawn("kube-apiserver", [
            str(self.bin["kube-apiserver"]),
            "--etcd-servers", self.etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.port), "--cert-dir", str(self.workdir / "certs"),
            "--token-auth-file", str(tokens), "--authorization-mode", "RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(key), "--service-account-signing-key-file", str(key),
            "--service-cluster-ip-range", "10.96.0.0/16", "--endpoint-reconciler-type", "none",
            "--enable-priority-and-fairness=false",
        ])

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "ops-live",
            "clusters": [{"name": "ops-live",
                          "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "ops-live", "context": {"cluster": "ops-live", "user": "admin"}}],
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def _wait_ready(self, timeout_s: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the server's own self-signed loopback certificate
        request = urllib.request.Request(f"{self.url}/readyz",
                                         headers={"Authorization": f"Bearer {self.token}"})
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            for proc, name in zip(self._procs, ("etcd", "kube-apiserver"), strict=False):
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(request, timeout=5, context=context) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as error:
                last = str(error)
            time.sleep(0.5)
        raise TimeoutError(f"kube-apiserver not ready after {timeout_s:.0f}s ({last}):\n"
                           f"{self.log_tail('kube-apiserver')}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def kubectl(self, *args: str, stdin: str | None = None, timeout_s: float = 120.0) -> KubectlResult:
        argv = [str(self.bin["kubectl"]), "--kubeconfig", str(self.kubeconfig), *args]
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
        return KubectlResult(done.returncode, done.stdout, done.stderr)

    def apply(self, documents: list[dict[str, Any]], *, dry_run: bool = False) -> KubectlResult:
        """Server-side apply with strict field validation (unknown or duplicate fields refused)."""
        args = ["apply", "--server-side", "--field-manager", "smartcity-ops", "--validate=strict", "-f", "-"]
        if dry_run:
            args.append("--dry-run=server")
        return self.kubectl(*args, stdin=yaml.safe_dump_all(documents, sort_keys=False))

    def install_crds(self) -> list[str]:
        """Applies the CRDs and waits until each is Established; their names."""
        crds = crd_documents()
        result = self.apply(crds)
        if result.returncode != 0:
            raise RuntimeError(f"installing the CRDs failed:\n{result.stderr}")
        names = [crd["metadata"]["name"] for crd in crds]
        self._wait_established(set(names))
        return names

    def _wait_established(self, names: set[str], timeout_s: float = 60.0) -> None:
        # Polled rather than `kubectl wait`, which errors on a CRD whose status is not yet set.
        deadline = time.monotonic() + timeout_s
        pending = names
        while time.monotonic() < deadline:
            listed = self.kubectl("get", "customresourcedefinitions", "-o", "json")
            if listed.returncode == 0:
                established = {
                    item["metadata"]["name"] for item in json.loads(listed.stdout)["items"]
                    if any(c["type"] == "Established" and c["status"] == "True"
                           for c in (item.get("status") or {}).get("conditions") or [])
                }
                pending = names - established
                if not pending:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"CRDs not established after {timeout_s:.0f}s: {sorted(pending)}")

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        self._procs.clear()

    def remove_workdir(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def running_server() -> Iterator[LiveApiServer]:
    """A started server with the CRDs installed; stopped and removed when the caller is done."""
    server = LiveApiServer().start()
    try:
        server.install_crds()
        yield server
    finally:
        server.stop()
        server.remove_workdir()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "crds"],
                        help="run: start until Ctrl-C; crds: print the CRDs it would install")
    args = parser.parse_args(argv)
    if args.command == "crds":
        print(yaml.safe_dump_all(crd_documents(), sort_keys=False))
        return 0
    for server in running_server():
        print(f"kube-apiserver ready at {server.url}\nexport KUBECONFIG={server.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The manifests on a real Kubernetes API server: accepted as rendered, refused when broken.

`make ops-live` runs these (marker `apiserver`) against kube-apiserver + etcd on loopback
(deploy/k8s/live_apiserver.py) with the Strimzi and prometheus-operator CRDs installed. Each
overlay is applied server-side with strict field validation, the way `kubectl apply
--server-side` deploys it, and read back; then objects broken the way a hand edit breaks them
must be refused by the server (dry run, so nothing of theirs is stored).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.apiserver

NAMESPACE = "smartcity"
OVERLAYS = ("dev", "prod")
STRIMZI_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}
Doc = dict[str, Any]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def resource_name(doc: Doc) -> str:
    """kind.group/name as kubectl takes it (the group keeps KafkaTopic apart from other kinds)."""
    group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
    return f"{doc['kind'].lower()}{'.' + group if group else ''}/{doc['metadata']['name']}"


def read_back(server: Any, docs: list[Doc]) -> list[Doc]:
    """The stored objects of the documents, in their order (one `kubectl get -f -`)."""
    result = server.kubectl("get", "-f", "-", "-o", "json", stdin=yaml.safe_dump_all(docs))
    assert result.returncode == 0, f"not on the server: {result.stderr}"
    listed = json.loads(result.stdout)
    stored: list[Doc] = listed["items"] if listed.get("kind") == "List" else [listed]
    assert [(s["kind"], s["metadata"]["name"]) for s in stored] == \
        [(d["kind"], d["metadata"]["name"]) for d in docs]
    return stored


def missing_fields(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Where `stored` lacks or changed a value of `sent` (the server may add, not drop)."""
    if isinstance(sent, dict) and isinstance(stored, dict):
        return [miss for key, value in sent.items()
                for miss in (missing_fields(value, stored[key], f"{path}.{key}") if key in stored
                             else [f"{path}.{key} dropped"])]
    if isinstance(sent, list) and isinstance(stored, list):
        if len(sent) != len(stored):
            return [f"{path}: {len(sent)} items sent, {len(stored)} stored"]
        return [miss for i, (a, b) in enumerate(zip(sent, stored, strict=True))
                for miss in missing_fields(a, b, f"{path}[{i}]")]
    return [] if sent == stored else [f"{path}: sent {sent!r}, stored {stored!r}"]


def test_the_crds_are_served(live_apiserver):
    for group, wanted in (("kafka.strimzi.io", {"kafkas", "kafkanodepools", "kafkatopics", "kafkausers"}),
                          ("monitoring.coreos.com", {"servicemonitors", "prometheusrules"})):
        result = live_apiserver.kubectl("api-resources", "--api-group", group, "-o", "name")
        assert result.returncode == 0, result.stderr
        served = {line.split(".")[0] for line in result.stdout.split()}
        assert wanted <= served, f"{group}: {sorted(served)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_is_accepted_server_side_and_stored_as_rendered(live_apiserver, render, overlay):
    docs = render(overlay)
    result = live_apiserver.apply(docs)
    assert result.returncode == 0, f"server-side apply of {overlay} refused:\n{result.stderr}"
    assert result.stdout.count("serverside-applied") == len(docs), result.stdout
    for doc, stored in zip(docs, read_back(live_apiserver, docs), strict=True):
        labels = doc["metadata"].get("labels", {})
        assert stored["metadata"].get("labels", {}) == labels | stored["metadata"].get("labels", {})
        assert missing_fields(labels, stored["metadata"].get("labels", {})) == []
        if doc["kind"] in STRIMZI_KINDS or doc["apiVersion"].startswith("monitoring.coreos.com/"):
            # A custom resource is pruned silently where its schema lacks a field: the server
            # must keep every field the manifests set.
            assert missing_fields(doc["spec"], stored["spec"]) == [], resource_name(doc)


def versions(server: Any, docs: list[Doc]) -> dict[str, str]:
    return {resource_name(d): s["metadata"]["resourceVersion"]
            for d, s in zip(docs, read_back(server, docs), strict=True)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_second_apply_changes_nothing(live_apiserver, render, overlay):
    docs = render(overlay)
    assert live_apiserver.apply(docs).returncode == 0
    before = versions(live_apiserver, docs)
    again = live_apiserver.apply(docs)
    assert again.returncode == 0, again.stderr
    after = versions(live_apiserver, docs)
    assert after == before, "applying the same manifests again rewrote objects"


# ------------------------------------------------------------------------ refused by the server

def first(docs: list[Doc], kind: str) -> Doc:
    return copy.deepcopy(of_kind(docs, kind)[0])


def deployment_replicas_as_text(docs: list[Doc]) -> Doc:
    doc = first(docs, "Deployment")
    doc["spec"]["replicas"] = "two"
    return doc


def deployment_misspelt_field(docs: list[Doc]) -> Doc:
    doc = first(docs, "Deployment")
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    return doc


def kafkatopic_partitions_as_text(docs: list[Doc]) -> Doc:
    doc = first(docs, "KafkaTopic")
    doc["spec"]["partitions"] = "three"
    return doc


def kafkatopic_unknown_field(docs: list[Doc]) -> Doc:
    doc = first(docs, "KafkaTopic")
    doc["spec"]["retentionHours"] = 24
    return doc


def prometheusrule_group_without_name(docs: list[Doc]) -> Doc:
    doc = first(docs, "PrometheusRule")
    del doc["spec"]["groups"][0]["name"]
    return doc


def prometheusrule_rules_not_a_list(docs: list[Doc]) -> Doc:
    doc = first(docs, "PrometheusRule")
    doc["spec"]["groups"][0]["rules"] = "up == 0"
    return doc


def servicemonitor_endpoints_not_a_list(docs: list[Doc]) -> Doc:
    doc = first(docs, "ServiceMonitor")
    doc["spec"]["endpoints"] = doc["spec"]["endpoints"][0]
    return doc


BROKEN: dict[str, tuple[Callable[[list[Doc]], Doc], str]] = {
    "deployment replicas as text": (deployment_replicas_as_text, "spec.replicas"),
    "deployment misspelt field": (deployment_misspelt_field, "imagePullPolice: field not declared in schema"),
    "kafkatopic partitions as text": (kafkatopic_partitions_as_text, "spec.partitions"),
    "kafkatopic unknown field": (kafkatopic_unknown_field,
                                 ".spec.retentionHours: field not declared in schema"),
    "prometheusrule group without name": (prometheusrule_group_without_name, 'omits all key fields ["name"]'),
    "prometheusrule rules not a list": (prometheusrule_rules_not_a_list, "].rules: expected list"),
    "servicemonitor endpoints not a list": (servicemonitor_endpoints_not_a_list, "spec.endpoints"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_object_is_refused_by_the_server(live_apiserver, render, case):
    docs = render("dev")
    namespace = [d for d in docs if d["kind"] == "Namespace"]
    assert live_apiserver.apply(namespace).returncode == 0
    breaker, expected = BROKEN[case]
    broken = breaker(docs)
    # The intact object is accepted: the refusal below is the break's, nothing else's.
    intact = live_apiserver.apply([first(docs, broken["kind"])], dry_run=True)
    assert intact.returncode == 0, intact.stderr
    refused = live_apiserver.apply([broken], dry_run=True)
    assert refused.returncode != 0, f"{case}: accepted by the server:\n{refused.stdout}"
    assert "Error from server" in refused.stderr, refused.stderr
    assert expected in refused.stderr, refused.stderr

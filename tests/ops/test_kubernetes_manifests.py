"""The Kubernetes manifests: every overlay renders with kustomize and validates strictly.

Built-in kinds validate against the Kubernetes OpenAPI schemas (kubernetes-validate, offline,
strict); custom resources against the schemas in crd_schemas/ (derived from the Strimzi and
Prometheus-operator CRDs). Then what the schemas cannot see: topics match the catalogue,
containers are hardened, selectors and references resolve, network exposure (ingress and the
services' egress) is as designed, the images come from one Dockerfile with the right ports.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

from smartcity import topic_names
from smartcity.topics import load_catalogue

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
MONITORING = REPO / "deploy" / "monitoring"
CRD_SCHEMAS = Path(__file__).parent / "crd_schemas"
KUBERNETES_VERSION = "1.31"
OVERLAYS = ("dev", "prod")
NAMESPACE = "smartcity"
SERVICES = ("wifi-telemetry", "camera-health", "citizen-requests", "gateway")
WORKERS = SERVICES[:3]
# Deployments that talk no Kafka: the Open311 facade reaches the gateway only.
FACADES = ("open311",)
DEPLOYMENTS = SERVICES + FACADES
METRICS_PORTS = {"wifi-telemetry": 9101, "camera-health": 9102, "citizen-requests": 9103, "gateway": 9104,
                 "open311": 9105}
CUSTOM_GROUPS = ("kafka.strimzi.io", "monitoring.coreos.com")
KAFKA_CLIENT_LABEL = ("smartcity.io/kafka-client", "true")
PROD_SECRETS = {"gateway-tokens", "wifi-client-hash-salt", "gateway-personal-data", "open311-gateway-token"}

Doc = dict[str, Any]


# ------------------------------------------------------------------------------- helpers

def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    matches = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) matches a set of labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if (operator == "In" and labels.get(key) not in values) \
                or (operator == "NotIn" and labels.get(key) in values) \
                or (operator == "Exists" and not present) or (operator == "DoesNotExist" and present):
            return False
    return True


def pod_labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def is_custom(doc: Doc) -> bool:
    return doc["apiVersion"].split("/")[0] in CUSTOM_GROUPS


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request, render) -> tuple[str, list[Doc]]:
    return request.param, render(request.param)


# ------------------------------------------------------------------------------- rendering, schemas

def test_every_object_and_pod_carries_the_recommended_labels(overlay):
    """app.kubernetes.io/part-of, managed-by, instance and version on every object and pod
    template; the version is the overlay's image tag; selectors carry none of them (immutable)."""
    name, docs = overlay
    tags = {c["image"].rsplit(":", 1)[1] for d in of_kind(docs, "Deployment") for c in containers_of(d)}
    assert len(tags) == 1, f"{name}: the services run different tags {sorted(tags)}"
    wanted = {"app.kubernetes.io/part-of": "smartcity", "app.kubernetes.io/managed-by": "kustomize",
              "app.kubernetes.io/instance": f"smartcity-{name}", "app.kubernetes.io/version": tags.pop()}
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        assert labels.items() >= wanted.items(), f"{doc['kind']} {doc['metadata']['name']}: {labels}"
    for doc in of_kind(docs, "Deployment"):
        pod_labels = doc["spec"]["template"]["metadata"]["labels"]
        assert pod_labels.items() >= wanted.items(), doc["metadata"]["name"]
        selector = doc["spec"]["selector"]["matchLabels"]
        assert not set(selector) & set(wanted), f"{doc['metadata']['name']}: selector {selector}"


def test_every_overlay_renders_into_the_namespace(overlay):
    name, docs = overlay
    kinds = {d["kind"] for d in docs}
    expected = {"Namespace", "ConfigMap", "ServiceAccount", "Deployment", "Service",
                "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Kafka",
                "KafkaNodePool", "KafkaTopic", "ServiceMonitor", "PrometheusRule"}
    assert expected <= kinds, f"{name}: missing {sorted(expected - kinds)}"
    for doc in docs:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == NAMESPACE
        else:
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']} {doc['metadata']['name']}"
    keys = [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), "duplicate resources"


def test_builtin_resources_validate_strictly_against_kubernetes(overlay):
    name, docs = overlay
    builtin = [d for d in docs if not is_custom(d)]
    assert len(builtin) > 20
    errors = []
    for doc in builtin:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            errors.append(f"{doc['kind']} {doc['metadata']['name']}: {getattr(exc, 'message', exc)}")
    assert not errors, f"{name}:\n" + "\n".join(errors)


def test_strict_kubernetes_validation_rejects_unknown_fields(render):
    service = json.loads(json.dumps(named(render("prod"), "Service", "gateway")))
    kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)
    service["spec"]["externalTrafficPolice"] = "Local"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)


def crd_schema(doc: Doc) -> Doc:
    group, version = doc["apiVersion"].split("/")
    path = CRD_SCHEMAS / f"{doc['kind'].lower()}-{group}-{version}.json"
    assert path.is_file(), f"no schema for {doc['kind']} {doc['apiVersion']}: add {path.name} (crd_schemas/)"
    schema: Doc = json.loads(path.read_text())
    return schema


def test_custom_resources_validate_against_their_crd_schemas(overlay):
    name, docs = overlay
    custom = [d for d in docs if is_custom(d)]
    users = {"KafkaUser"} if name == "prod" else set()
    assert {d["kind"] for d in custom} == {"Kafka", "KafkaNodePool", "KafkaTopic", "ServiceMonitor",
                                           "PrometheusRule"} | users
    errors = []
    for doc in custom:
        validator = jsonschema.Draft7Validator(crd_schema(doc))
        errors += [f"{doc['kind']} {doc['metadata']['name']}: {'/'.join(map(str, e.absolute_path))}: "
                   f"{e.message}" for e in validator.iter_errors(doc)]
    assert not errors, f"{name}:\n" + "\n".join(errors)


def test_crd_schemas_reject_what_the_api_server_would():
    """The derived schemas are strict: an unknown field or a wrong type is an error."""
    topic = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic",
             "metadata": {"name": "x.v1", "labels": {"strimzi.io/cluster": "smartcity"}},
             "spec": {"partitions": 3, "replicas": 1, "config": {"retention.ms": "1"}}}
    validator = jsonschema.Draft7Validator(crd_schema(topic))
    assert not list(validator.iter_errors(topic))
    assert list(validator.iter_errors(topic | {"spec": {"partitions": 3, "replica": 1}}))
    assert list(validator.iter_errors(topic | {"spec": {"partitions": "three"}}))
    kafka = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "metadata": {"name": "k"},
             "spec": {"kafka": {"listeners": [{"name": "plain", "port": 9092, "type": "internl",
                                               "tls": False}]}}}
    assert list(jsonschema.Draft7Validator(crd_schema(kafka)).iter_errors(kafka))


# ------------------------------------------------------------------------------- Kafka and topics

def test_generated_topics_are_current():
    result = subprocess.run([sys.executable, str(K8S / "generate_topics.py"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_catalogue_topic_has_exactly_one_matching_kafkatopic(overlay):
    name, docs = overlay
    kafka = of_kind(docs, "Kafka")
    assert len(kafka) == 1
    topics = of_kind(docs, "KafkaTopic")
    catalogue = load_catalogue().all_topics()
    assert len(topics) == len(catalogue), "a KafkaTopic that is not in the catalogue, or one missing"
    replicas = 3 if name == "prod" else None
    for spec in catalogue:
        matching = [t for t in topics if t["spec"].get("topicName", t["metadata"]["name"]) == spec.name]
        assert len(matching) == 1, f"{spec.name}: {len(matching)} KafkaTopics"
        topic = matching[0]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka[0]["metadata"]["name"]
        assert topic["spec"]["partitions"] == spec.partitions, spec.name
        assert {k: str(v) for k, v in topic["spec"].get("config", {}).items()} == spec.config, spec.name
        assert topic["spec"]["replicas"] == (replicas or spec.replicas), spec.name
    assert any(t["spec"]["topicName"].endswith(".dlq") for t in topics), "dead-letter topics missing"


def test_kafka_cluster_is_kraft_with_node_pools_that_can_hold_the_replicas(overlay):
    name, docs = overlay
    kafka = of_kind(docs, "Kafka")[0]
    annotations = kafka["metadata"].get("annotations", {})
    assert annotations.get("strimzi.io/kraft") == "enabled"
    assert annotations.get("strimzi.io/node-pools") == "enabled"
    pools = [p for p in of_kind(docs, "KafkaNodePool")
             if p["metadata"]["labels"].get("strimzi.io/cluster") == kafka["metadata"]["name"]]
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    controllers = sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"])
    assert controllers % 2 == 1, "a KRaft quorum needs an odd number of controllers"
    config = kafka["spec"]["kafka"]["config"]
    for topic in of_kind(docs, "KafkaTopic"):
        assert topic["spec"]["replicas"] <= brokers
    assert int(config["min.insync.replicas"]) < max(brokers, 2) or brokers == 1
    assert int(config["default.replication.factor"]) <= brokers
    if name == "prod":
        assert brokers >= 3 and int(config["min.insync.replicas"]) == 2


def test_services_point_at_the_strimzi_bootstrap_service(overlay):
    _, docs = overlay
    kafka = of_kind(docs, "Kafka")[0]
    listener = client_listener(docs)
    platform = named(docs, "ConfigMap", "smartcity-platform")["data"]
    expected = f"{kafka['metadata']['name']}-kafka-bootstrap.{NAMESPACE}.svc:{listener['port']}"
    assert platform["KAFKA_BOOTSTRAP_SERVERS"] == expected
    assert platform["METRICS_HOST"] == "0.0.0.0"


# ------------------------------------------------------------------------------- workloads

def containers_of(doc: Doc) -> list[Doc]:
    spec = doc["spec"]["template"]["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def test_every_container_is_hardened_with_probes_and_limits(overlay):
    name, docs = overlay
    deployments = of_kind(docs, "Deployment")
    assert {d["metadata"]["name"] for d in deployments} == set(DEPLOYMENTS)
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        where = f"{name}/{deployment['metadata']['name']}"
        assert pod.get("automountServiceAccountToken") is False, where
        pod_security = pod.get("securityContext", {})
        assert pod_security.get("runAsNonRoot") is True, where
        assert pod_security.get("runAsUser", 0) != 0, where
        assert pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        for container in containers_of(deployment):
            sc = container.get("securityContext", {})
            assert sc.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
            assert sc.get("privileged", False) is False, where
            seccomp = sc.get("seccompProfile", pod_security.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            assert container.get("livenessProbe") and container.get("readinessProbe"), where
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind}"


def test_directories_the_services_write_are_mounted_volumes(overlay):
    """With a read-only root filesystem, data directories must be on a volume (emptyDir)."""
    _, docs = overlay
    for deployment in of_kind(docs, "Deployment"):
        container = containers_of(deployment)[0]
        mounts = [m["mountPath"].rstrip("/") for m in container.get("volumeMounts", [])]
        assert "/tmp" in mounts, deployment["metadata"]["name"]
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            env |= named(docs, "ConfigMap", source["configMapRef"]["name"])["data"]
        paths = [v for k, v in env.items() if re.search(r"DATA_?DIR$", k)]
        paths += [container["workingDir"]] if "workingDir" in container else []
        for path in paths:
            assert any(path == m or path.startswith(m + "/") for m in mounts), f"{path} not writable"


def test_probes_use_grpc_health_for_the_gateway_and_http_for_the_workers(overlay):
    _, docs = overlay
    gateway = containers_of(named(docs, "Deployment", "gateway"))[0]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert gateway[probe]["grpc"]["port"] == 50051, probe
    for worker in WORKERS:
        container = containers_of(named(docs, "Deployment", worker))[0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert container["readinessProbe"]["httpGet"]["port"] in ("metrics", ports["metrics"])


def test_metrics_ports_agree_between_config_container_service_and_servicemonitor(overlay):
    _, docs = overlay
    for service in DEPLOYMENTS:
        deployment = named(docs, "Deployment", service)
        container = containers_of(deployment)[0]
        config = named(docs, "ConfigMap", service)["data"]
        assert int(config["METRICS_PORT"]) == METRICS_PORTS[service]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == METRICS_PORTS[service]
        svc = named(docs, "Service", service)
        assert selects({"matchLabels": svc["spec"]["selector"]}, pod_labels(deployment))
        svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
        assert svc_ports["metrics"]["port"] == METRICS_PORTS[service]
        monitor = named(docs, "ServiceMonitor", service)
        assert selects(monitor["spec"]["selector"], svc["metadata"]["labels"])
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
        # The rules' `up{job=...}` expects the service name as the job.
        assert svc["metadata"]["labels"][monitor["spec"]["jobLabel"]] == service


def test_references_resolve(overlay):
    """ServiceAccounts, ConfigMaps and Secrets the pods use exist (prod: Secrets are created by hand)."""
    name, docs = overlay
    present = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        account = named(docs, "ServiceAccount", pod["serviceAccountName"])
        assert account.get("automountServiceAccountToken") is False
        refs = [("ConfigMap", e["configMapRef"]["name"]) for c in containers_of(deployment)
                for e in c.get("envFrom", []) if "configMapRef" in e]
        secrets = [e["valueFrom"]["secretKeyRef"]["name"] for c in containers_of(deployment)
                   for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
        secrets += [v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v]
        assert ("ConfigMap", "smartcity-platform") in refs
        for ref in refs:
            assert ref in present, f"{deployment['metadata']['name']}: {ref} missing"
        for secret in secrets:
            if name == "prod":  # created by the platform team, as deploy/k8s/README.md says, or by Strimzi
                assert secret in PROD_SECRETS | strimzi_secrets(docs), f"{secret}: not a documented Secret"
            else:
                assert ("Secret", secret) in present, f"{secret} missing in {name}"
    if name == "prod":
        assert not of_kind(docs, "Secret"), "no secret material in the prod overlay"


@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_gateway_tokens_and_wifi_salt_come_from_secrets(render, overlay_name):
    docs = render(overlay_name)
    wifi = containers_of(named(docs, "Deployment", "wifi-telemetry"))[0]
    salt = next(e for e in wifi["env"] if e["name"] == "WIFI_CLIENT_HASH_SALT")
    assert salt["valueFrom"]["secretKeyRef"]["name"].startswith("wifi-client-hash-salt")
    gateway = named(docs, "Deployment", "gateway")
    tokens_file = named(docs, "ConfigMap", "gateway")["data"]["GATEWAY_TOKENS_FILE"]
    if overlay_name == "dev":
        assert tokens_file == "", "dev uses the gateway's packaged dev tokens"
        return
    volumes = {v["name"]: v for v in gateway["spec"]["template"]["spec"]["volumes"]}
    mounts = containers_of(gateway)[0]["volumeMounts"]
    mount = next(m for m in mounts if tokens_file.startswith(m["mountPath"].rstrip("/") + "/"))
    assert mount.get("readOnly") is True
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "gateway-tokens"
    assert [i["path"] for i in secret["items"]] == [Path(tokens_file).name]


def test_gateway_is_autoscaled_and_every_service_has_a_disruption_budget(overlay):
    name, docs = overlay
    gateway = named(docs, "Deployment", "gateway")
    assert "replicas" not in gateway["spec"], "the HPA owns the gateway's replica count"
    hpa = named(docs, "HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    if name == "prod":
        assert hpa["spec"]["minReplicas"] >= 2
    for service in DEPLOYMENTS:
        budgets = [b for b in of_kind(docs, "PodDisruptionBudget")
                   if selects(b["spec"]["selector"], pod_labels(named(docs, "Deployment", service)))]
        assert len(budgets) == 1, service


# ------------------------------------------------------------------------------- network policies

def ingress_policies_for(docs: list[Doc], labels: dict[str, str]) -> list[Doc]:
    return [p for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]


def test_ingress_is_denied_by_default_and_only_the_gateway_and_open311_are_open(overlay):
    _, docs = overlay
    deny = [p for p in of_kind(docs, "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1 and deny[0]["spec"]["policyTypes"] == ["Ingress"]
    assert not deny[0]["spec"].get("ingress"), "the catch-all policy must allow nothing"
    for service in DEPLOYMENTS:
        labels = pod_labels(named(docs, "Deployment", service))
        open_rules = [r for p in ingress_policies_for(docs, labels) for r in p["spec"].get("ingress", [])
                      if not r.get("from")]
        if service == "gateway":
            assert [[p["port"] for p in r["ports"]] for r in open_rules] == [["grpc"]]
        elif service == "open311":
            assert [[p["port"] for p in r["ports"]] for r in open_rules] == [["http"]]
        else:
            assert not open_rules, f"{service} is reachable from anywhere"
        # Every other rule names its peers; the metrics port only for Prometheus.
        for policy in ingress_policies_for(docs, labels):
            for rule in policy["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    if "namespaceSelector" in peer:
                        assert peer["namespaceSelector"]["matchLabels"] == {
                            "kubernetes.io/metadata.name": "monitoring"}
                        assert [p["port"] for p in rule["ports"]] == ["metrics"]


def test_only_the_platforms_pods_reach_kafka(overlay):
    _, docs = overlay
    key, value = KAFKA_CLIENT_LABEL
    for service in SERVICES:
        assert pod_labels(named(docs, "Deployment", service)).get(key) == value, service
    kafka = of_kind(docs, "Kafka")[0]
    for listener in kafka["spec"]["kafka"]["listeners"]:
        peers = listener.get("networkPolicyPeers")
        assert peers == [{"podSelector": {"matchLabels": {key: value}}}], listener["name"]
    broker_labels = {"strimzi.io/cluster": kafka["metadata"]["name"], "strimzi.io/broker-role": "true",
                     "strimzi.io/kind": "Kafka"}
    policies = ingress_policies_for(docs, broker_labels)
    peers = [peer for p in policies if p["spec"]["podSelector"] != {}
             for r in p["spec"].get("ingress", []) for peer in r.get("from", [])]
    assert peers == [{"podSelector": {"matchLabels": {key: value}}}]


def test_prometheus_may_scrape_every_service(overlay):
    _, docs = overlay
    prometheus_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                       "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
    for service in DEPLOYMENTS:
        labels = pod_labels(named(docs, "Deployment", service))
        rules = [r for p in ingress_policies_for(docs, labels) for r in p["spec"].get("ingress", [])
                 if prometheus_peer in r.get("from", [])]
        assert any("metrics" in [p["port"] for p in r["ports"]] for r in rules), service


# ------------------------------------------------------------------------------- egress

DNS_NAMESPACE = {"kubernetes.io/metadata.name": "kube-system"}
DNS_POD = {"k8s-app": "kube-dns"}
OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


def policy_types(policy: Doc) -> list[str]:
    """policyTypes, with the API server's default when it is left out."""
    spec = policy["spec"]
    return list(spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else [])))


def egress_policies_for(docs: list[Doc], labels: dict[str, str]) -> list[Doc]:
    return [p for p in of_kind(docs, "NetworkPolicy")
            if "Egress" in policy_types(p) and selects(p["spec"]["podSelector"], labels)]


def namespace_labels(name: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name}


def peer_matches(peer: Doc, namespace: str, labels: dict[str, str]) -> bool:
    """Whether a NetworkPolicy peer (of a policy in NAMESPACE) selects a pod of `namespace`."""
    if "ipBlock" in peer:
        return True  # a CIDR can hold any pod or address: treat it as reaching everything
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], namespace_labels(namespace))
    else:
        in_namespace = namespace == NAMESPACE
    return in_namespace and selects(peer.get("podSelector", {}), labels)


def port_matches(rule_port: Doc, port: int, protocol: str) -> bool:
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    if "port" not in rule_port:
        return True
    low = rule_port["port"]
    if isinstance(low, str):
        return False  # a named port: none of the destinations here name theirs so
    high = int(rule_port.get("endPort") or low)
    return bool(low <= port <= high)


def egress_allowed(docs: list[Doc], labels: dict[str, str], namespace: str, peer_labels: dict[str, str],
                   port: int, *, protocol: str = "TCP") -> bool:
    """Whether the egress policies let a pod with `labels` open a connection to that pod and port."""
    policies = egress_policies_for(docs, labels)
    if not policies:
        return True  # not isolated for egress
    return any((not rule.get("to") or any(peer_matches(peer, namespace, peer_labels) for peer in rule["to"]))
               and (not rule.get("ports") or any(port_matches(p, port, protocol) for p in rule["ports"]))
               for policy in policies for rule in policy["spec"].get("egress", []))


def strimzi_pods(docs: list[Doc]) -> dict[str, dict[str, str]]:
    """The labels Strimzi puts on its pods (node pools, entity operator), with the Kafka and node
    pool resources' own labels, which Strimzi copies onto them."""
    kafka = of_kind(docs, "Kafka")[0]
    cluster = kafka["metadata"]["name"]
    common = dict(kafka["metadata"].get("labels", {})) | {
        "strimzi.io/cluster": cluster, "strimzi.io/kind": "Kafka", "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/managed-by": "strimzi-cluster-operator"}
    pods = {}
    for pool in of_kind(docs, "KafkaNodePool"):
        roles = pool["spec"]["roles"]
        pods[f"kafka pool {pool['metadata']['name']}"] = dict(pool["metadata"].get("labels", {})) | common | {
            "strimzi.io/name": f"{cluster}-kafka", "strimzi.io/component-type": "kafka",
            "app.kubernetes.io/name": "kafka", "strimzi.io/pool-name": pool["metadata"]["name"],
            "strimzi.io/broker-role": str("broker" in roles).lower(),
            "strimzi.io/controller-role": str("controller" in roles).lower()}
    pods["entity operator"] = common | {
        "strimzi.io/name": f"{cluster}-entity-operator", "strimzi.io/component-type": "entity-operator",
        "app.kubernetes.io/name": "entity-operator"}
    return pods


def client_listener(docs: list[Doc]) -> Doc:
    """The Kafka listener the services use: plain in dev, TLS + SCRAM in prod."""
    listeners = of_kind(docs, "Kafka")[0]["spec"]["kafka"]["listeners"]
    protocol = named(docs, "ConfigMap", "smartcity-platform")["data"].get("KAFKA_SECURITY_PROTOCOL",
                                                                         "PLAINTEXT")
    tls = protocol in {"SSL", "SASL_SSL"}
    matching = [x for x in listeners if x["type"] == "internal" and x["tls"] == tls]
    assert len(matching) == 1, f"one internal listener with tls={tls} for {protocol}: {listeners}"
    listener: Doc = matching[0]
    return listener


def kafka_client_port(docs: list[Doc]) -> int:
    port: int = client_listener(docs)["port"]
    return port


def otlp_port(docs: list[Doc]) -> int | None:
    """The collector port the services export traces to, None when tracing is not configured."""
    endpoint = named(docs, "ConfigMap", "smartcity-platform")["data"].get(OTLP_ENDPOINT, "")
    for service in SERVICES:
        endpoint = named(docs, "ConfigMap", service)["data"].get(OTLP_ENDPOINT, endpoint)
    if not endpoint:
        return None
    match = re.match(r"(https?)://[^/:]+(?::(\d+))?", endpoint)
    assert match, f"{OTLP_ENDPOINT}={endpoint}: not a URL"
    return int(match.group(2) or (443 if match.group(1) == "https" else 80))


def egress_problems(docs: list[Doc]) -> list[str]:
    """What is wrong with the egress of the namespace: [] when every service pod is isolated by a
    default deny and reaches DNS (UDP and TCP 53) and the Kafka brokers' client port, and nothing
    else (a trace collector only when one is configured), and no Strimzi pod is egress-isolated."""
    problems = []
    kafka_port = kafka_client_port(docs)
    trace_port = otlp_port(docs)
    pods = strimzi_pods(docs)
    brokers = {n: labels for n, labels in pods.items() if labels.get("strimzi.io/broker-role") == "true"}
    assert brokers, "no broker pool"
    for service in SERVICES:
        labels = pod_labels(named(docs, "Deployment", service))
        policies = egress_policies_for(docs, labels)
        if not any(not p["spec"].get("egress") for p in policies):
            problems.append(f"{service}: no default-deny egress policy selects it")
        for protocol in ("UDP", "TCP"):
            if not egress_allowed(docs, labels, "kube-system", DNS_POD, 53, protocol=protocol):
                problems.append(f"{service}: cannot reach DNS (kube-dns) over {protocol} 53")
        for name, broker in brokers.items():
            if not egress_allowed(docs, labels, NAMESPACE, broker, kafka_port):
                problems.append(f"{service}: cannot reach Kafka {kafka_port} ({name})")
        if trace_port is not None and not any(
                rule.get("to") and any(port_matches(p, trace_port, "TCP") for p in rule.get("ports", []))
                for policy in policies for rule in policy["spec"].get("egress", [])):
            problems.append(f"{service}: {OTLP_ENDPOINT} is set but no egress reaches port {trace_port}")
        # Nothing else: every rule names its peers and ports, and each is DNS, Kafka or (if set) OTLP.
        for policy in policies:
            for rule in policy["spec"].get("egress", []):
                where = f"{service}: {policy['metadata']['name']}"
                if not rule.get("to") or not rule.get("ports"):
                    problems.append(f"{where}: a rule without `to` or `ports` opens every peer or port")
                    continue
                ports = {(p.get("port"), p.get("protocol", "TCP"), p.get("endPort")) for p in rule["ports"]}
                for peer in rule["to"]:
                    dns = peer == {"namespaceSelector": {"matchLabels": DNS_NAMESPACE},
                                   "podSelector": {"matchLabels": DNS_POD}}
                    kafka = set(peer) == {"podSelector"} and all(
                        peer_matches(peer, NAMESPACE, b) for b in brokers.values()) and not any(
                        peer_matches(peer, NAMESPACE, p) for n, p in pods.items() if n not in brokers)
                    if dns and ports <= {(53, "UDP", None), (53, "TCP", None)}:
                        continue
                    if kafka and ports == {(kafka_port, "TCP", None)}:
                        continue
                    if trace_port is not None and "ipBlock" not in peer \
                            and ports == {(trace_port, "TCP", None)}:
                        continue
                    problems.append(f"{where}: egress to {peer} on {sorted(map(str, ports))} is not "
                                    "DNS, Kafka or a configured trace collector")
    # Strimzi's pods talk to each other and to the Kubernetes API: no egress policy of ours may
    # isolate them.
    for name, labels in pods.items():
        for policy in egress_policies_for(docs, labels):
            problems.append(f"Strimzi {name}: selected by egress policy {policy['metadata']['name']}")
    return problems


def test_service_pods_reach_only_dns_and_kafka_and_strimzi_keeps_its_egress(overlay):
    name, docs = overlay
    assert otlp_port(docs) is None, "tracing configured: the OTLP egress must be checked too"
    assert egress_problems(docs) == [], name
    # Spot checks of what the analysis concludes.
    gateway = pod_labels(named(docs, "Deployment", "gateway"))
    camera = pod_labels(named(docs, "Deployment", "camera-health"))
    assert not egress_allowed(docs, gateway, NAMESPACE, camera, 9102)
    assert not egress_allowed(docs, gateway, "default", {"component": "apiserver"}, 443)
    assert not egress_allowed(docs, gateway, "kube-system", {"k8s-app": "metrics-server"}, 53, protocol="UDP")
    broker = next(v for v in strimzi_pods(docs).values() if v.get("strimzi.io/broker-role") == "true")
    assert not egress_allowed(docs, gateway, NAMESPACE, broker, 9091), "replication listener"
    assert egress_allowed(docs, gateway, NAMESPACE, broker, kafka_client_port(docs))
    if name == "prod":
        assert not egress_allowed(docs, gateway, NAMESPACE, broker, 9092), "the plain listener is gone"


def test_open311_reaches_only_dns_and_the_gateways_grpc_port(overlay):
    _, docs = overlay
    facade = pod_labels(named(docs, "Deployment", "open311"))
    gateway = pod_labels(named(docs, "Deployment", "gateway"))
    policies = egress_policies_for(docs, facade)
    assert any(not p["spec"].get("egress") for p in policies), "no default-deny egress selects open311"
    for protocol in ("UDP", "TCP"):
        assert egress_allowed(docs, facade, "kube-system", DNS_POD, 53, protocol=protocol)
    assert egress_allowed(docs, facade, NAMESPACE, gateway, 50051)
    assert not egress_allowed(docs, facade, NAMESPACE, gateway, 9104), "the gateway's metrics"
    for name, broker in strimzi_pods(docs).items():
        for port in (9091, 9092, 9093):
            assert not egress_allowed(docs, facade, NAMESPACE, broker, port), f"{name} {port}"
    worker = pod_labels(named(docs, "Deployment", "citizen-requests"))
    assert not egress_allowed(docs, facade, NAMESPACE, worker, 9103)
    assert not egress_allowed(docs, facade, "default", {"component": "apiserver"}, 443)
    for rule in (r for p in policies for r in p["spec"].get("egress", [])):
        assert rule.get("to") and rule.get("ports"), "every egress rule names its peers and ports"
    assert KAFKA_CLIENT_LABEL[0] not in facade, "open311 is no Kafka client"


def without(docs: list[Doc], kind: str, name: str) -> list[Doc]:
    return [d for d in docs if (d["kind"], d["metadata"]["name"]) != (kind, name)]


def edited(docs: list[Doc], name: str, edit: Any) -> list[Doc]:
    """A deep copy of the documents with the NetworkPolicy `name` changed by edit(spec)."""
    copy: list[Doc] = json.loads(json.dumps(docs))
    edit(named(copy, "NetworkPolicy", name)["spec"])
    return copy


def set_platform(docs: list[Doc], key: str, value: str) -> list[Doc]:
    copy: list[Doc] = json.loads(json.dumps(docs))
    named(copy, "ConfigMap", "smartcity-platform")["data"][key] = value
    return copy


@pytest.mark.parametrize(("mutation", "expected"), [
    (lambda d: without(d, "NetworkPolicy", "default-deny-egress"), "no default-deny egress"),
    (lambda d: without(d, "NetworkPolicy", "allow-dns-egress"), "cannot reach DNS"),
    (lambda d: edited(d, "allow-dns-egress", lambda s: s["egress"][0]["ports"].pop()), "over TCP 53"),
    (lambda d: edited(d, "allow-dns-egress", lambda s: s["egress"][0]["to"][0].pop("namespaceSelector")),
     "cannot reach DNS"),
    (lambda d: without(d, "NetworkPolicy", "allow-kafka-egress"), "cannot reach Kafka"),
    (lambda d: edited(d, "allow-kafka-egress", lambda s: s["egress"][0]["ports"][0].update(port=9092)),
     "cannot reach Kafka"),
    (lambda d: edited(d, "allow-kafka-egress", lambda s: s["egress"][0]["to"][0]["podSelector"].update(
        matchLabels={"strimzi.io/cluster": "smartcity"})), "is not DNS, Kafka"),
    (lambda d: edited(d, "allow-kafka-egress", lambda s: s["egress"].append({})), "without `to` or `ports`"),
    (lambda d: edited(d, "allow-dns-egress", lambda s: s["egress"].append(
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]})), "is not DNS, Kafka"),
    (lambda d: edited(d, "default-deny-egress", lambda s: s.update(podSelector={})), "Strimzi"),
    (lambda d: set_platform(d, OTLP_ENDPOINT, "http://otel-collector.observability.svc:4318"),
     "no egress reaches port 4318"),
])
def test_egress_analysis_catches_a_broken_policy(render, mutation, expected):
    problems = egress_problems(mutation(render("prod")))
    assert any(expected in p for p in problems), problems


def readme_yaml_block(first_line: str) -> Doc:
    """The ```yaml block of deploy/k8s/README.md that starts with `first_line`."""
    blocks = re.findall(r"```yaml\n(.*?)```", (K8S / "README.md").read_text(), flags=re.DOTALL)
    matching = [b for b in blocks if b.startswith(first_line)]
    assert len(matching) == 1, f"README.md: no yaml block starting with {first_line!r}"
    block: Doc = yaml.safe_load(matching[0])
    return block


def test_the_documented_tracing_setup_renders_and_opens_only_the_collector(tmp_path, kustomize):
    """deploy/k8s/README.md's recipe for an OTLP collector, applied on top of prod."""
    kustomization = readme_yaml_block("# overlays/<env>/kustomization.yaml")
    policy = readme_yaml_block("# overlays/<env>/otlp-egress.yaml")
    (tmp_path / "otlp-egress.yaml").write_text(yaml.safe_dump(policy))
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(K8S / "overlays" / "prod", tmp_path), *kustomization["resources"]],
        "patches": kustomization["patches"]}))
    result = subprocess.run([kustomize, "build", str(tmp_path)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    kubernetes_validate.validate(named(docs, "NetworkPolicy", "allow-otlp-egress"), KUBERNETES_VERSION,
                                 strict=True)
    assert otlp_port(docs) == 4318
    assert egress_problems(docs) == []
    gateway = pod_labels(named(docs, "Deployment", "gateway"))
    collector = {"app.kubernetes.io/name": "opentelemetry-collector"}
    assert egress_allowed(docs, gateway, "observability", collector, 4318)
    assert not egress_allowed(docs, gateway, "observability", collector, 4317)
    # Without the endpoint, the same policy is an egress nobody needs: rejected.
    without_endpoint = set_platform(docs, OTLP_ENDPOINT, "")
    assert any("allow-otlp-egress" in p for p in egress_problems(without_endpoint))


# ------------------------------------------------------------------------------- monitoring objects

def load_script(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"ops_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prometheusrule_is_generated_from_the_tested_rules(overlay):
    """The same groups as rules.yaml, the runbook links made absolute under the base URL."""
    _, docs = overlay
    env = {k: v for k, v in os.environ.items() if k != "SMARTCITY_RUNBOOK_BASE_URL"}
    result = subprocess.run([sys.executable, str(K8S / "generate_prometheusrule.py"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    base = load_script(K8S / "generate_prometheusrule.py").DEFAULT_RUNBOOK_BASE_URL
    groups = yaml.safe_load((MONITORING / "rules.yaml").read_text())["groups"]
    for group in groups:
        for alert in group["rules"]:
            if "runbook_url" in alert.get("annotations", {}):
                alert["annotations"]["runbook_url"] = f"{base}/{alert['annotations']['runbook_url']}"
    rule = named(docs, "PrometheusRule", "smartcity-alerts")
    assert rule["spec"]["groups"] == groups


def test_runbook_links_follow_the_configured_base_url(monkeypatch):
    generator = load_script(K8S / "generate_prometheusrule.py")
    monkeypatch.setenv("SMARTCITY_RUNBOOK_BASE_URL", "https://wiki.ops.example/smartcity/")
    urls = [a["annotations"]["runbook_url"] for g in generator.prometheus_rule()["spec"]["groups"]
            for a in g["rules"] if "alert" in a]
    assert urls and all(re.fullmatch(r"https://wiki\.ops\.example/smartcity/runbooks\.md#[\w-]+", u)
                        for u in urls), urls
    assert generator.prometheus_rule("http://other.example")["spec"]["groups"] != \
        generator.prometheus_rule()["spec"]["groups"]
    with pytest.raises(ValueError, match="must be absolute"):
        generator.prometheus_rule("runbooks.internal/smartcity")


def test_dashboards_are_configmaps_for_the_grafana_sidecar(overlay):
    _, docs = overlay
    maps = [m for m in of_kind(docs, "ConfigMap")
            if m["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    shipped = {}
    for config_map in maps:
        assert not re.search(r"-[a-z0-9]{10}$", config_map["metadata"]["name"]), "no hash suffix"
        shipped.update(config_map["data"])
    files = {p.name: p.read_text() for p in (MONITORING / "dashboards").glob("*.json")}
    assert shipped == files


# ------------------------------------------------------------------------------- images

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
BUILD_IMAGES = REPO / "scripts" / "build_images.sh"


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines()
                                             if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip())
            for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, flags=re.MULTILINE)]


def image_builds() -> dict[str, dict[str, str]]:
    """The `docker build` commands `make images` runs, per service: -f, build args, tag, context."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DOCKER", "IMAGE_REPO", "IMAGE_TAG", "PYTHON_IMAGE", "UV_IMAGE")}
    env["CONTAINER_ENGINE"] = "docker"
    result = subprocess.run(["bash", str(BUILD_IMAGES), "--print"], capture_output=True, text=True,
                            timeout=30, check=False, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    builds: dict[str, dict[str, str]] = {}
    for line in result.stdout.splitlines():
        argv = line.split()
        assert argv[:2] == ["docker", "build"], line
        options = {"context": argv[-1]}
        args: dict[str, str] = {}
        for flag, value in zip(argv[2:-1:2], argv[3:-1:2], strict=True):
            if flag == "--build-arg":
                key, _, val = value.partition("=")
                args[key] = val
            else:
                options[flag] = value
        builds[args["SERVICE"]] = options | {f"ARG {k}": v for k, v in args.items()}
    return builds


def test_one_dockerfile_is_multi_stage_pinned_locked_and_non_root():
    assert not sorted(REPO.glob("services/*/Dockerfile")), "per-service copies: use deploy/docker/Dockerfile"
    text = DOCKERFILE.read_text()
    steps = dockerfile_instructions(text)
    stages = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(stages) >= 2, "multi-stage"
    uv_image = re.search(r"^ARG UV_IMAGE=(\S+)", text, flags=re.MULTILINE)
    assert uv_image and uv_image.group(1) == "ghcr.io/astral-sh/uv:0.13.9", "uv pinned"
    assert "${UV_IMAGE}" in stages
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, flags=re.MULTILINE)
    image = base.group(1) if base else stages[-1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?|python@sha256:[0-9a-f]{64}",
                        image), f"base image not pinned: {image}"
    assert stages[-1] in (image, "${PYTHON_IMAGE}"), "runtime stage on the pinned Python image"
    runs = [args for op, args in steps if op == "RUN"]
    assert any('uv sync --frozen --no-dev --no-editable --package "${SERVICE}"' in r for r in runs)
    assert any("install -d -o 10001 -g 10001 /var/lib/smartcity" in r for r in runs)
    user = [args for op, args in steps if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root"), "runs as root"
    assert user[-1] == "10001:10001"
    env = " ".join(args for op, args in steps if op == "ENV")
    assert "METRICS_PORT=${METRICS_PORT}" in env and "SMARTCITY_SERVICE=${SERVICE}" in env
    expose = [args for op, args in steps if op == "EXPOSE"]
    assert expose == ["${METRICS_PORT} ${EXTRA_PORTS}"]
    for op, args in steps:  # what the build copies from the context exists
        if op == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_entrypoint_execs_the_service_console_script_as_the_same_process(tmp_path):
    """The shell of the ENTRYPOINT `exec`s: the console script keeps its PID (PID 1 in the
    container, so SIGTERM reaches Python) and gets the arguments."""
    steps = dockerfile_instructions(DOCKERFILE.read_text())
    entrypoint = [args for op, args in steps if op == "ENTRYPOINT"]
    assert len(entrypoint) == 1
    argv = json.loads(entrypoint[0])  # exec form: a JSON array, no shell around it
    assert argv[:2] == ["/bin/sh", "-c"] and "exec " in argv[2]
    script = tmp_path / "fake-service"
    script.write_text('#!/bin/sh\necho "$$ $*"\n')
    script.chmod(0o755)
    process = subprocess.Popen([*argv, "--flag", "value"], stdout=subprocess.PIPE, text=True,
                               env={"SMARTCITY_SERVICE": str(script), "PATH": "/usr/bin:/bin"})
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert out.split() == [str(process.pid), "--flag", "value"]


@pytest.mark.parametrize("service", DEPLOYMENTS)
def test_each_service_image_is_built_from_the_one_dockerfile(render, service):
    build = image_builds()[service]
    assert build["-f"] == str(DOCKERFILE.relative_to(REPO)) and build["context"] == "."
    assert build["-t"].rsplit(":", 1)[0] == f"smartcity/{service}"
    project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())["project"]
    assert project["name"] == service, "uv sync --package takes the project name"
    assert service in project["scripts"], "the entrypoint runs the console script named SERVICE"
    assert build["ARG METRICS_PORT"] == str(METRICS_PORTS[service])
    exposed = {build["ARG METRICS_PORT"], *build.get("ARG EXTRA_PORTS", "").split()}
    for overlay_name in OVERLAYS:
        container = containers_of(named(render(overlay_name), "Deployment", service))[0]
        assert container["image"].rsplit(":", 1)[0] == f"smartcity/{service}"
        assert exposed == {str(p["containerPort"]) for p in container["ports"]}, "EXPOSE = container ports"


def test_make_images_fails_clearly_without_docker():
    result = subprocess.run(["make", "-s", "images"], capture_output=True, text=True, timeout=60,
                            check=False, cwd=REPO, env={"PATH": "/usr/bin:/bin",
                                                        "DOCKER": "/nonexistent/docker"})
    assert result.returncode != 0
    assert "/nonexistent/docker' is not installed" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    printed = subprocess.run(["make", "-s", "images", "PRINT=1"], capture_output=True, text=True,
                             timeout=60, check=False, cwd=REPO,
                             env={"PATH": "/usr/bin:/bin", "DOCKER": "/nonexistent/docker"})
    assert printed.returncode == 0 and len(printed.stdout.splitlines()) == len(DEPLOYMENTS)


def test_the_build_context_leaves_local_environments_out_and_keeps_what_the_image_copies():
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for local in (".venv", ".local", ".git", "deploy/local/jars"):
        assert local in ignored, local
    copied = [p for step in dockerfile_instructions(DOCKERFILE.read_text()) if step[0] == "COPY"
              and "--from" not in step[1] for p in step[1].split()[:-1]]
    assert copied and not any(p in ignored or p.split("/")[0] in ignored for p in copied), copied


# ------------------------------------------------------------------------------- Kafka authentication (prod)

# What each service reads and writes (catalogue names; the services' READMEs, their streams.py,
# the gateway's projector.py VIEW_TOPICS and publisher.py). A stream service writes the dead-letter
# twin of each input that has one, and owns its Faust group and internal topics (<app id>-...).
SERVICE_TOPICS: dict[str, tuple[set[str], set[str]]] = {
    "wifi-telemetry": ({"wifi.ap-telemetry.v1", "wifi.client-sessions.v1",
                        "wifi.ap-telemetry-batches.v1", "wifi.client-session-batches.v1"},
                       {"wifi.ap-status.v1", "wifi.site-stats.v1"}),
    "camera-health": ({"camera.heartbeats.v1", "camera.heartbeat-batches.v1"},
                      {"camera.status.v1", "camera.incidents.v1"}),
    "citizen-requests": ({"requests.commands.v1"},
                         {"requests.events.v1", "requests.state.v1", "requests.stats.v1"}),
    "gateway": ({"wifi.ap-status.v1", "wifi.site-stats.v1", "camera.status.v1", "camera.incidents.v1",
                 "requests.state.v1", "requests.stats.v1", "requests.events.v1", "requests.data-keys.v1"},
                {"requests.commands.v1", "requests.data-keys.v1", "requests.audit.v1"}),
}
DEPLOYED_MODULES = {"wifi-telemetry": ["wifi_telemetry/adapters/streams.py"],
                    "camera-health": ["camera_health/adapters/streams.py"],
                    "citizen-requests": ["citizen_requests/adapters/streams.py"],
                    "gateway": ["gateway/adapters/projector.py", "gateway/adapters/publisher.py"]}
USER_MOUNT, CA_MOUNT = "/etc/smartcity/kafka-user", "/etc/smartcity/kafka-ca"


def strimzi_secrets(docs: list[Doc]) -> set[str]:
    """Secrets Strimzi makes: one per KafkaUser (its name) and the cluster CA certificate."""
    cluster = of_kind(docs, "Kafka")[0]["metadata"]["name"]
    return {u["metadata"]["name"] for u in of_kind(docs, "KafkaUser")} | {f"{cluster}-cluster-ca-cert"}


def acl_grants(user: Doc) -> dict[tuple[str, str, str], set[str]]:
    """(resource type, name, pattern type) -> operations, for the allow ACLs of a KafkaUser."""
    grants: dict[tuple[str, str, str], set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow" and "host" not in acl, acl
        resource = acl["resource"]
        key = (resource["type"], resource.get("name", ""), resource.get("patternType", "literal"))
        grants.setdefault(key, set()).update(acl.get("operations", [acl.get("operation")]))
    return grants


def test_prod_kafka_accepts_only_tls_with_scram_and_authorizes(render):
    docs = render("prod")
    kafka = of_kind(docs, "Kafka")[0]["spec"]
    assert kafka["kafka"]["listeners"] == [{
        "name": "tls", "port": 9093, "type": "internal", "tls": True,
        "authentication": {"type": "scram-sha-512"},
        "networkPolicyPeers": [{"podSelector": {"matchLabels": dict([KAFKA_CLIENT_LABEL])}}]}]
    assert kafka["kafka"]["authorization"] == {"type": "simple"}
    assert "userOperator" in kafka["entityOperator"], "KafkaUsers need the User Operator"
    platform = named(docs, "ConfigMap", "smartcity-platform")["data"]
    assert platform["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert platform["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    # dev stays plaintext like the local broker.
    assert "KAFKA_SECURITY_PROTOCOL" not in named(render("dev"), "ConfigMap", "smartcity-platform")["data"]
    assert not of_kind(render("dev"), "KafkaUser")


@pytest.mark.parametrize("service", SERVICES)
def test_every_prod_service_logs_in_as_its_own_user(render, service):
    docs = render("prod")
    platform = named(docs, "ConfigMap", "smartcity-platform")["data"]
    env = platform | named(docs, "ConfigMap", service)["data"]
    assert env["KAFKA_SASL_USERNAME"] == service
    user = named(docs, "KafkaUser", service)
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == of_kind(docs, "Kafka")[0]["metadata"]["name"]
    assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
    deployment = named(docs, "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in containers_of(deployment)[0]["volumeMounts"]}
    for variable, mount_path, secret, key in (
            ("KAFKA_SASL_PASSWORD_FILE", USER_MOUNT, service, "password"),
            ("KAFKA_SSL_CAFILE", CA_MOUNT, "smartcity-cluster-ca-cert", "ca.crt")):
        path = Path(env[variable])
        assert str(path.parent) == mount_path, variable
        mount = mounts[mount_path]
        assert mount.get("readOnly") is True
        source = volumes[mount["name"]]["secret"]
        assert source["secretName"] == secret
        assert source["items"] == [{"key": key, "path": path.name}]
    assert "KAFKA_SASL_PASSWORD" not in env, "the password is a mounted file, never a ConfigMap value"


def test_each_prod_user_may_use_exactly_its_services_topics(render):
    docs = render("prod")
    catalogue = load_catalogue()
    assert {u["metadata"]["name"] for u in of_kind(docs, "KafkaUser")} == set(SERVICES)
    for service in SERVICES:
        reads, writes = SERVICE_TOPICS[service]
        assert reads | writes <= {s.name for s in catalogue.topics}, service
        is_worker = service in WORKERS
        dead_letters = {catalogue[t].dlq_name() for t in reads if catalogue[t].has_dlq and is_worker}
        expected: dict[tuple[str, str, str], set[str]] = {}
        for topic in reads:
            expected[("topic", topic, "literal")] = {"Read", "Describe"}
        for topic in writes | dead_letters:
            expected.setdefault(("topic", topic, "literal"), {"Describe"}).update({"Write", "Describe"})
        if is_worker:  # Faust: its group (the app id) and its internal topics (<app id>-...)
            expected[("topic", f"{service}-", "prefix")] = {"Read", "Write", "Create", "Describe"}
            expected[("group", service, "literal")] = {"Read"}
        assert acl_grants(named(docs, "KafkaUser", service)) == expected, service


@pytest.mark.parametrize("service", SERVICES)
def test_the_topic_table_covers_what_the_service_code_names(service):
    """A catalogue topic named in the service's deployed code but missing in SERVICE_TOPICS would
    be denied in prod."""
    reads, writes = SERVICE_TOPICS[service]
    names = {s.name for s in load_catalogue().topics}
    # Code names a topic by its literal or by its constant in smartcity.topic_names.
    constants = {v: k for k, v in vars(topic_names).items() if k.isupper() and isinstance(v, str)}
    for module in DEPLOYED_MODULES[service]:
        text = (REPO / "services" / service / module).read_text()
        used = {n for n in names if f'"{n}"' in text or f"topic_names.{constants.get(n)}" in text}
        assert used <= reads | writes, f"{module}: {sorted(used - reads - writes)}"


def test_strimzi_kafkauser_schema_is_strict(render):
    user = json.loads(json.dumps(named(render("prod"), "KafkaUser", "gateway")))
    validator = jsonschema.Draft7Validator(crd_schema(user))
    assert not list(validator.iter_errors(user))
    user["spec"]["authentication"]["type"] = "scram-sha-256"
    assert list(validator.iter_errors(user))

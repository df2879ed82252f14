"""Traces end to end in a real Jaeger: the services export over OTLP, the test reads the traces
back through Jaeger's HTTP query API and checks their shape and their semantic conventions.

- A request submitted through the gateway is followed end to end: one trace of the gateway's
  gRPC server span and its producer span to requests.commands.v1; citizen-requests processes
  commands in batches, one consumer span per batch, a trace of its own that links to the
  producer span of each command it holds; the batch's outputs (requests.state.v1,
  requests.events.v1) carry the batch span's context, so the gateway's consumer spans reading
  them back are its children.
- A camera heartbeat (sent by the test as a traced device would) is one trace through
  camera-health's consumer span to its producer span on camera.status.v1.

Jaeger is the one scripts/install_jaeger.sh builds, run on free loopback ports
(deploy/monitoring/jaeger_local.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, format_trace_id

from smartcity.codec import to_timestamp
from smartcity.personal_data.local import write_local_secrets
from smartcity.testing import free_port
from smartcity.tracing import inject_headers, messaging_attributes
from smartcity.v1 import camera_pb2, common_pb2, gateway_pb2, gateway_pb2_grpc, requests_pb2

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
DEV_PORTAL_TOKEN = "dev-citizen-portal"  # a documented dev token (services/gateway dev_tokens.yaml)
SUBMIT = "smartcity.v1.RequestService/SubmitRequest"
TRACE_TIMEOUT_S = 40.0
Span = dict[str, Any]


def _load_jaeger_local() -> ModuleType:
    path = REPO / "deploy" / "monitoring" / "jaeger_local.py"
    spec = importlib.util.spec_from_file_location("deploy_jaeger_local", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


jaeger_local = _load_jaeger_local()


@dataclass
class Jaeger:
    query: Any  # jaeger_local.JaegerQuery
    otlp_endpoint: str

    def service_env(self) -> dict[str, str]:
        """What a service needs to export its spans here, quickly (batches every 200 ms)."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    try:
        argv = jaeger_local.argv()
    except FileNotFoundError as missing:
        pytest.fail(str(missing), pytrace=False)
    ports = {name: str(free_port()) for name in jaeger_local.DEFAULT_PORTS}
    log_path = tmp_path_factory.mktemp("jaeger") / "jaeger.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, env=os.environ | ports, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    query = jaeger_local.JaegerQuery(f"http://127.0.0.1:{ports['JAEGER_QUERY_PORT']}")
    try:
        deadline = time.monotonic() + 60
        while not query.ready():
            assert proc.poll() is None, f"jaeger exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"jaeger not answering:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.3)
        yield Jaeger(query, jaeger_local.otlp_endpoint(ports))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# ------------------------------------------------------------------------ reading a trace

def tags(span: Span) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def tag_types(span: Span) -> dict[str, str]:
    return {tag["key"]: tag["type"] for tag in span.get("tags", [])}


def service_of(trace: dict[str, Any], span: Span) -> str:
    return str(trace["processes"][span["processID"]]["serviceName"])


def links(span: Span) -> list[tuple[str, str]]:
    """(trace id, span id) of each span the span links to (Jaeger's FOLLOWS_FROM references)."""
    return [(r["traceID"], r["spanID"]) for r in span.get("references", []) if r["refType"] == "FOLLOWS_FROM"]


def parent_id(span: Span) -> str | None:
    refs = [r for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
    return refs[0]["spanID"] if refs else None


def one(spans: list[Span], what: str) -> Span:
    assert len(spans) >= 1, f"no {what}"
    return spans[0]


def find(trace: dict[str, Any], service: str, name: str, kind: str) -> list[Span]:
    return [s for s in trace["spans"] if service_of(trace, s) == service and s["operationName"] == name
            and tags(s).get("span.kind") == kind]


def assert_messaging(span: Span, operation: str, topic: str, key: str) -> None:
    got = tags(span)
    assert got["messaging.system"] == "kafka"
    assert got["messaging.destination.name"] == topic
    assert got["messaging.operation.type"] == operation
    assert got["messaging.kafka.message.key"] == key
    if operation == "process":
        assert "messaging.destination.partition.id" in got
        assert tag_types(span)["messaging.kafka.offset"] == "int64"


def read_back(trace: dict[str, Any], topics: set[str]) -> list[Span]:
    """The gateway's consumer spans of the given topics (its projector reading them)."""
    return [s for topic in sorted(topics) for s in find(trace, "gateway", f"process {topic}", "consumer")]


async def wait_for_trace(jaeger: Jaeger, find_trace: Callable[[], dict[str, Any] | None],
                         what: str) -> dict[str, Any]:
    deadline = time.monotonic() + TRACE_TIMEOUT_S
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        try:
            last = await asyncio.to_thread(find_trace)
        except (urllib.error.URLError, OSError):
            last = None
        if last is not None and last.get("complete"):
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"no complete trace of {what} in Jaeger within {TRACE_TIMEOUT_S:.0f}s; "
                         f"services {jaeger.query.services()}; last seen: {last}")


# ------------------------------------------------------------------------ the services

def submit_request() -> gateway_pb2.SubmitRequestRequest:
    return gateway_pb2.SubmitRequestRequest(
        idempotency_key=f"trace-{time.time_ns()}", category="permits", title="Izin usaha mikro",
        description="Mohon bantuan pengurusan izin", address="Jl. Jend. Sudirman 1",
        location=common_pb2.GeoPoint(latitude=-7.3883, longitude=109.3639),
        reporter=requests_pb2.Reporter(name="Siti", phone="+62 812 1111", email="siti@example.id"),
    )


# ------------------------------------------------------------------------ the tests

async def test_a_submitted_request_is_one_trace_from_the_gateway_through_citizen_requests_and_back(
        jaeger: Jaeger, run_service: Any, readiness: Any, topic_prefix: str, tmp_path: Path) -> None:
    otel = jaeger.service_env()
    worker_port = free_port()
    worker = run_service("citizen_requests", topic_prefix, METRICS_PORT=str(worker_port),
                         REQUESTS_BROKER_SESSION_TIMEOUT_S="6", **otel)
    address = f"127.0.0.1:{free_port()}"
    gateway = run_service("gateway", topic_prefix, GATEWAY_ADDRESS=address, METRICS_PORT=str(free_port()),
                          **otel, **write_local_secrets(tmp_path / "personal-data"))
    await readiness.wait_until(worker, readiness.http_ready(worker_port), "citizen-requests ready")
    await readiness.wait_until(gateway, readiness.grpc_serving(address), "gateway SERVING")

    async with grpc.aio.insecure_channel(address) as channel:
        reply = await gateway_pb2_grpc.RequestServiceStub(channel).SubmitRequest(
            submit_request(), metadata=[("authorization", f"Bearer {DEV_PORTAL_TOKEN}")], timeout=30)
    request_id = reply.request.request_id
    commands = f"{topic_prefix}requests.commands.v1"
    outputs = {f"{topic_prefix}requests.state.v1", f"{topic_prefix}requests.events.v1"}

    def the_trace() -> dict[str, Any] | None:
        trace: dict[str, Any]
        for trace in jaeger.query.traces("gateway", operation=SUBMIT, limit=20, lookback_s=600):
            sends = [s for s in find(trace, "gateway", f"send {commands}", "producer")
                     if tags(s).get("messaging.kafka.message.key") == request_id]
            if sends:
                trace["complete"] = True
                return trace
        return None

    trace = await wait_for_trace(jaeger, the_trace, f"request {request_id}")

    server = one(find(trace, "gateway", SUBMIT, "server"), "gateway server span")
    assert parent_id(server) is None, "the gateway's server span is the root"
    assert tags(server).items() >= {"rpc.system": "grpc", "rpc.service": "smartcity.v1.RequestService",
                                    "rpc.method": "SubmitRequest", "rpc.grpc.status_code": 0}.items()
    assert tag_types(server)["rpc.grpc.status_code"] == "int64"

    send = one(find(trace, "gateway", f"send {commands}", "producer"), "gateway producer span")
    assert parent_id(send) == server["spanID"]
    assert_messaging(send, "send", commands, request_id)
    sent_from = (send["traceID"], send["spanID"])

    def the_batch() -> dict[str, Any] | None:
        """The trace of citizen-requests' batch span that links to the gateway's producer span."""
        batch: dict[str, Any]
        for batch in jaeger.query.traces("citizen-requests", operation=f"process {commands}", limit=50,
                                         lookback_s=600):
            spans = [s for s in find(batch, "citizen-requests", f"process {commands}", "consumer")
                     if sent_from in links(s)]
            if spans:
                batch["complete"] = bool(read_back(batch, outputs))
                return batch
        return None

    batch = await wait_for_trace(jaeger, the_batch, f"the batch holding request {request_id}")
    process = one([s for s in find(batch, "citizen-requests", f"process {commands}", "consumer")
                   if sent_from in links(s)], "citizen-requests batch span")
    assert parent_id(process) is None, "a batch span starts its own trace (it links to its commands')"
    got = tags(process)
    assert got["messaging.system"] == "kafka"
    assert got["messaging.destination.name"] == commands
    assert got["messaging.operation.type"] == "process"
    assert got["messaging.batch.message_count"] >= 1

    back = read_back(batch, outputs)
    assert back and all(parent_id(s) == process["spanID"] for s in back), "not read from citizen-requests"
    for span in back:
        assert_messaging(span, "process", tags(span)["messaging.destination.name"], request_id)


async def test_a_camera_heartbeat_is_one_trace_through_camera_health_to_the_status_topic(
        jaeger: Jaeger, run_service: Any, readiness: Any, topic_prefix: str,
        producer: AIOKafkaProducer) -> None:
    port = free_port()
    service = run_service("camera_health", topic_prefix, METRICS_PORT=str(port),
                          CAMERA_HEALTH_SESSION_TIMEOUT_S="6", CAMERA_STATUS_INTERVAL_S="3600",
                          **jaeger.service_env())
    await readiness.wait_until(service, readiness.http_ready(port), "camera-health ready")

    # The test is the camera's agent: a traced producer, exporting to the same Jaeger.
    provider = TracerProvider(resource=Resource.create({"service.name": "camera-agent-test"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{jaeger.otlp_endpoint}/v1/traces")))
    heartbeats = f"{topic_prefix}camera.heartbeats.v1"
    status = f"{topic_prefix}camera.status.v1"
    camera_id = f"cam-trace-{time.time_ns() % 10**6}"
    beat = camera_pb2.CameraHeartbeat(camera_id=camera_id, site_id="alun-alun", seq=1,
                                      observed_time=to_timestamp(time.time()), fps=25.0, configured_fps=25.0,
                                      storage_free_percent=60.0, recording=True, source="agent")
    with provider.get_tracer("camera-agent").start_as_current_span(
            f"send {heartbeats}", kind=SpanKind.PRODUCER,
            attributes=messaging_attributes("send", heartbeats, camera_id)) as device_span:
        await producer.send_and_wait(heartbeats, beat.SerializeToString(), key=camera_id.encode(),
                                     headers=inject_headers())
    provider.shutdown()
    trace_id = format_trace_id(device_span.get_span_context().trace_id)

    def the_trace() -> dict[str, Any] | None:
        trace: dict[str, Any] = jaeger.query.trace(trace_id)
        if not trace:
            return None
        trace["complete"] = bool(find(trace, "camera-health", f"send {status}", "producer"))
        return trace

    trace = await wait_for_trace(jaeger, the_trace, f"heartbeat of {camera_id}")
    device = one(find(trace, "camera-agent-test", f"send {heartbeats}", "producer"), "device span")
    process = one(find(trace, "camera-health", f"process {heartbeats}", "consumer"), "camera-health consumer")
    assert parent_id(process) == device["spanID"]
    assert_messaging(process, "process", heartbeats, camera_id)
    sent = one(find(trace, "camera-health", f"send {status}", "producer"), "camera-health status producer")
    assert parent_id(sent) == process["spanID"]
    assert_messaging(sent, "send", status, camera_id)

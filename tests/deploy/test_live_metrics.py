"""Every live /metrics passes `promtool check metrics` (Prometheus' own lint of names, types,
units and HELP): scraped from the gateway and a stream worker started from their real entry
points against the local Kafka, after they handled traffic, so labelled series exist too.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaProducer

from smartcity.codec import to_timestamp
from smartcity.personal_data.local import write_local_secrets
from smartcity.testing import free_port
from smartcity.v1 import camera_pb2, gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.kafka



def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: run `bash scripts/install_ops_tools.sh`", pytrace=False)
    return found


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def assert_promtool_clean(text: str, who: str) -> None:
    assert "# TYPE smartcity_" in text, f"{who}: no platform metric in:\n{text[:1500]}"
    checked = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True,
                             timeout=60, check=False)
    problems = (checked.stdout + checked.stderr).strip()
    assert checked.returncode == 0 and not problems, f"promtool check metrics on {who}:\n{problems}"


async def test_the_gateways_live_metrics_pass_promtool(run_service: Any, readiness: Any, topic_prefix: str,
                                                       tmp_path: Path) -> None:
    address, metrics_port = f"127.0.0.1:{free_port()}", free_port()
    gateway = run_service("gateway", topic_prefix, GATEWAY_ADDRESS=address, METRICS_PORT=str(metrics_port),
                          **write_local_secrets(tmp_path / "personal-data"))

    await readiness.wait_until(gateway, readiness.grpc_serving(address), "gateway SERVING")
    async with grpc.aio.insecure_channel(address) as channel:
        # Traffic, so the per-method series (and an error code) exist.
        stub = gateway_pb2_grpc.OverviewServiceStub(channel)
        await stub.GetCitySnapshot(gateway_pb2.GetCitySnapshotRequest(),
                                   metadata=[("authorization", "Bearer dev-command-center")], timeout=10)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetCitySnapshot(gateway_pb2.GetCitySnapshotRequest(), timeout=10)
    assert_promtool_clean(await asyncio.to_thread(scrape, metrics_port), "the gateway")


async def test_a_stream_workers_live_metrics_pass_promtool(run_service: Any, readiness: Any,
                                                           topic_prefix: str,
                                                           producer: AIOKafkaProducer) -> None:
    port = free_port()
    worker = run_service("camera_health", topic_prefix, METRICS_PORT=str(port),
                         CAMERA_HEALTH_SESSION_TIMEOUT_S="6")

    await readiness.wait_until(worker, readiness.http_ready(port), "camera-health ready")
    topic = f"{topic_prefix}camera.heartbeats.v1"
    beat = camera_pb2.CameraHeartbeat(camera_id="cam-metrics-1", site_id="alun-alun", seq=1,
                                      observed_time=to_timestamp(time.time()), fps=25.0, configured_fps=25.0,
                                      storage_free_percent=60.0, recording=True, source="agent")
    await producer.send_and_wait(topic, beat.SerializeToString(), key=b"cam-metrics-1")
    await producer.send_and_wait(topic, b"\xff not a heartbeat", key=b"cam-metrics-2")  # a dead letter

    async def processed() -> bool:
        text = await asyncio.to_thread(scrape, port)
        return 'outcome="dead_letter"' in text and 'outcome="ok"' in text

    await readiness.wait_until(worker, processed, "camera-health processing both messages")
    assert_promtool_clean(await asyncio.to_thread(scrape, port), "camera-health")

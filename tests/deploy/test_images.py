"""The service images run: the gateway and a stream service from their images, against the
local Kafka (host network), as their non-root user, ready and serving.

Marker `images` (`make ops-live` builds the two images and runs these): the images are the
ones `make images` builds from deploy/docker/Dockerfile, not the working tree.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from smartcity.personal_data.local import write_local_secrets
from smartcity.testing import free_port

pytestmark = [pytest.mark.images, pytest.mark.kafka]

IMAGE_UID = 10001  # the Dockerfile's USER


def uid_of(pid: int) -> int:
    """The real uid of a process (the first number of the Uid: line of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def assert_runs_as_the_image_user(container) -> None:
    pids = container.service_pids()
    assert pids, f"no {container.service} process inside a container"
    assert {uid_of(pid) for pid in pids} == {IMAGE_UID}


def assert_metrics_served(container, port: int, prefix: str) -> None:
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, body
    assert f"# TYPE {prefix}" in body, f"no {prefix}* metric:\n{body[:2000]}"


def personal_data_secrets(folder: Path, inside: str) -> tuple[dict[str, str], dict[str, str]]:
    """Fresh personal-data secrets (the gateway refuses to start without them), readable by the
    image's user: the environment naming them inside the container, and the mount."""
    host_env = write_local_secrets(folder)
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, IMAGE_UID, IMAGE_UID)
    env = {name: value.replace(str(folder), inside) if value.startswith(str(folder)) else value
           for name, value in host_env.items()}
    return env, {str(folder): inside}


async def test_the_gateway_image_serves_grpc_as_its_user(run_image, readiness, kafka_bootstrap, topic_prefix,
                                                          tmp_path):
    grpc_port, metrics_port = free_port(), free_port()
    secrets_env, mounts = personal_data_secrets(tmp_path / "personal-data", "/run/secrets/personal-data")
    gateway = run_image("gateway", volumes={Path(k): v for k, v in mounts.items()}, **secrets_env,
                        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
                        SMARTCITY_TOPIC_PREFIX=topic_prefix, GATEWAY_ADDRESS=f"127.0.0.1:{grpc_port}",
                        METRICS_HOST="127.0.0.1", METRICS_PORT=str(metrics_port), LOG_FORMAT="text")

    await readiness.wait_until(gateway, readiness.grpc_serving(f"127.0.0.1:{grpc_port}"), "gateway SERVING")
    assert_runs_as_the_image_user(gateway)
    assert_metrics_served(gateway, metrics_port, "smartcity_gateway_")
    gateway.stop()
    assert not gateway.running


async def test_a_stream_service_image_gets_ready_and_serves_metrics_as_its_user(
        run_image, readiness, kafka_bootstrap, topic_prefix):
    metrics_port = free_port()
    worker = run_image("wifi-telemetry", KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
                       SMARTCITY_TOPIC_PREFIX=topic_prefix, METRICS_HOST="127.0.0.1",
                       METRICS_PORT=str(metrics_port), LOG_FORMAT="text")

    await readiness.wait_until(worker, readiness.http_ready(metrics_port), "wifi-telemetry ready")
    assert_runs_as_the_image_user(worker)
    assert_metrics_served(worker, metrics_port, "smartcity_")

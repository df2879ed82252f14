"""The whole city, up with the same command a user runs (`make up`), checked through the gateway.

One module-scoped city: Kafka, the topics, the four services and the three simulators, with
tolerances and heartbeat intervals shortened through the environment so faults show in seconds.
The last test runs `make down` and checks that nothing is left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from smartcity.inventory import access_points, cameras
from smartcity.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, requests_pb2

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "127.0.0.1:50051"
T = TypeVar("T")

CITY_ENV = {
    "SMARTCITY_TOPIC_PREFIX": f"e2e{uuid.uuid4().hex[:8]}.",
    "WIFI_SIM_HEARTBEAT_S": "1",
    "WIFI_HEARTBEAT_TOLERANCE_S": "6",
    "SIM_HEARTBEAT_INTERVAL_S": "1",
    "CAMERA_HEARTBEAT_TOLERANCE_S": "5",
    "CAMERA_STATUS_INTERVAL_S": "5",
    "CAMERA_SILENCE_CHECK_INTERVAL_S": "1",
    "CAMERA_INCIDENT_RESOLVE_HOLD_S": "5",
    "LOG_LEVEL": "INFO",
}
CRITICAL = common_pb2.HEALTH_STATE_CRITICAL
OK = common_pb2.HEALTH_STATE_OK


def make(target: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", target],
        cwd=ROOT,
        env=os.environ | CITY_ENV,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture(scope="module")
def city(kafka_bootstrap: str) -> Iterator[str]:
    started = time.monotonic()
    result = make("up", timeout_s=420)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"make up took {time.monotonic() - started:.1f}s")
    yield result.stdout
    make("down", timeout_s=120)


def metadata(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@pytest.fixture(scope="module")
def channel(city: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(GATEWAY) as chan:
        yield chan


def eventually(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Polls until `probe` returns something truthy; fails with `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")


def test_make_up_reports_where_everything_is(city: str) -> None:
    for expected in (
        "gateway SERVING on 127.0.0.1:50051",
        "http://127.0.0.1:9101/metrics",
        "fault control http://127.0.0.1:9112/faults",
        "make down",
    ):
        assert expected in city


def test_every_simulated_device_appears_with_a_health_state(channel: grpc.Channel) -> None:
    devices = gateway_pb2_grpc.DeviceServiceStub(channel)
    token = metadata("dev-devices")

    def all_aps() -> list[Any] | None:
        reply = devices.ListAccessPoints(gateway_pb2.ListAccessPointsRequest(page_size=1000), metadata=token)
        found = [ap for ap in reply.access_points if ap.health != common_pb2.HEALTH_STATE_UNSPECIFIED]
        return found if len(found) == len(access_points()) else None

    def all_cameras() -> list[Any] | None:
        reply = devices.ListCameras(gateway_pb2.ListCamerasRequest(page_size=1000), metadata=token)
        found = [c for c in reply.cameras if c.health != common_pb2.HEALTH_STATE_UNSPECIFIED]
        return found if len(found) == len(cameras()) else None

    aps = eventually(all_aps, 60, "every access point of the inventory")
    cams = eventually(all_cameras, 60, "every camera of the inventory")
    assert {ap.ap_id for ap in aps} == {info.ap_id for info in access_points()}
    assert {c.camera_id for c in cams} == {info.camera_id for info in cameras()}
    assert all(ap.site_id and ap.location.latitude for ap in aps)


class WatchRecorder:
    """Reads a WatchDevices stream in a thread and keeps what arrives."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.items: list[gateway_pb2.WatchDevicesResponse] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self.stream:
                self.items.append(item)
        except grpc.RpcError:
            return

    def stop(self) -> None:
        self.stream.cancel()
        self._thread.join(timeout=5)


def scenario(command: str, name: str) -> None:
    result = subprocess.run(
        [sys.executable, "deploy/local/scenarios.py", command, name],
        cwd=ROOT,
        env=os.environ | CITY_ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_dark_camera_shows_in_snapshot_and_watch_and_opens_then_resolves_an_incident(
    channel: grpc.Channel,
) -> None:
    devices = gateway_pb2_grpc.DeviceServiceStub(channel)
    overview = gateway_pb2_grpc.OverviewServiceStub(channel)
    token = metadata("dev-command-center")
    camera_id = "cam-alun-alun-2"

    def camera_health() -> int:
        reply = devices.GetCamera(gateway_pb2.GetCameraRequest(camera_id=camera_id), metadata=token)
        return int(reply.camera.health)

    eventually(lambda: camera_health() == OK, 60, f"{camera_id} OK before the scenario")
    watch = WatchRecorder(
        devices.WatchDevices(
            gateway_pb2.WatchDevicesRequest(kind=gateway_pb2.DEVICE_KIND_CAMERA), metadata=token
        )
    )
    try:
        scenario("run", "camera-dark")
        eventually(lambda: camera_health() == CRITICAL, 60, f"{camera_id} CRITICAL")
        snapshot = overview.GetCitySnapshot(gateway_pb2.GetCitySnapshotRequest(), metadata=token).snapshot
        assert snapshot.cameras_critical >= 1 and snapshot.open_incidents >= 1

        def opened() -> list[Any]:
            reply = devices.ListIncidents(
                gateway_pb2.ListIncidentsRequest(camera_id=camera_id, open_only=True), metadata=token
            )
            return list(reply.incidents)

        incidents = eventually(opened, 30, f"an open incident for {camera_id}")
        assert len(incidents) == 1 and incidents[0].cause

        def watched(health: int) -> bool:
            return any(
                i.HasField("camera") and i.camera.camera_id == camera_id and i.camera.health == health
                for i in watch.items
            )

        eventually(lambda: watched(CRITICAL), 10, "the CRITICAL change on the watch stream")
        assert any(i.HasField("incident") and i.incident.camera_id == camera_id for i in watch.items)

        scenario("recover", "camera-dark")
        eventually(lambda: camera_health() == OK, 60, f"{camera_id} back to OK")
        eventually(lambda: not opened(), 30, f"the incident of {camera_id} resolved")
        eventually(lambda: watched(OK), 10, "the recovery on the watch stream")
        everything = devices.ListIncidents(
            gateway_pb2.ListIncidentsRequest(camera_id=camera_id), metadata=token
        )
        resolved = [i for i in everything.incidents if i.incident_id == incidents[0].incident_id]
        assert resolved and resolved[0].resolved_time.seconds > 0
    finally:
        watch.stop()


def _opd_stats(requests: Any, opd: str) -> requests_pb2.RequestStats | None:
    reply = requests.ListRequestStats(
        gateway_pb2.ListRequestStatsRequest(scope=requests_pb2.STATS_SCOPE_OPD),
        metadata=metadata("dev-command-center"),
    )
    return next((s for s in reply.stats if s.key == opd), None)


def test_a_request_is_routed_moves_through_its_lifecycle_and_shows_in_opd_stats(
    channel: grpc.Channel,
) -> None:
    requests = gateway_pb2_grpc.RequestServiceStub(channel)
    before = _opd_stats(requests, "PUPR")
    resolved_before = before.resolved_today if before else 0
    submitted = requests.SubmitRequest(
        gateway_pb2.SubmitRequestRequest(
            idempotency_key=f"e2e-{uuid.uuid4().hex}",
            category="roads",
            title="Jalan berlubang",
            description="Lubang besar di Jl. Jend. Sudirman dekat Alun-Alun",
            location=common_pb2.GeoPoint(latitude=-7.3885, longitude=109.3641),
            address="Jl. Jend. Sudirman, Purbalingga",
        ),
        metadata=metadata("dev-citizen-portal"),
        timeout=15,
    )
    request = submitted.request
    assert request.opd_code == "PUPR" and request.status == requests_pb2.REQUEST_STATUS_SUBMITTED
    pupr = metadata("dev-pupr")
    steps = [
        (gateway_pb2.REQUEST_ACTION_ACKNOWLEDGE, "", requests_pb2.REQUEST_STATUS_ACKNOWLEDGED),
        (gateway_pb2.REQUEST_ACTION_ASSIGN, "tim-jalan-1", requests_pb2.REQUEST_STATUS_ASSIGNED),
        (gateway_pb2.REQUEST_ACTION_START, "", requests_pb2.REQUEST_STATUS_IN_PROGRESS),
        (gateway_pb2.REQUEST_ACTION_RESOLVE, "", requests_pb2.REQUEST_STATUS_RESOLVED),
        (gateway_pb2.REQUEST_ACTION_CLOSE, "", requests_pb2.REQUEST_STATUS_CLOSED),
    ]
    version = request.version
    for action, assignee, status in steps:
        reply = requests.TransitionRequest(
            gateway_pb2.TransitionRequestRequest(
                request_id=request.request_id, action=action, assignee=assignee, note="e2e"
            ),
            metadata=pupr,
            timeout=15,
        )
        assert reply.request.status == status and reply.request.version > version
        version = reply.request.version
    # A transition the lifecycle forbids is refused with the reason, and changes nothing.
    with pytest.raises(grpc.RpcError) as refused:
        requests.TransitionRequest(
            gateway_pb2.TransitionRequestRequest(
                request_id=request.request_id, action=gateway_pb2.REQUEST_ACTION_START
            ),
            metadata=pupr,
            timeout=15,
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    def counted() -> requests_pb2.RequestStats | None:
        stats = _opd_stats(requests, "PUPR")
        return stats if stats is not None and stats.resolved_today > resolved_before else None

    stats = eventually(counted, 30, "PUPR's stats to count the resolved request")
    assert stats.resolved_today == resolved_before + 1


def test_the_terminal_view_renders_the_live_city(channel: grpc.Channel) -> None:
    overview = gateway_pb2_grpc.OverviewServiceStub(channel)
    snapshot = overview.GetCitySnapshot(
        gateway_pb2.GetCitySnapshotRequest(), metadata=metadata("dev-command-center")
    ).snapshot
    requests = gateway_pb2_grpc.RequestServiceStub(channel)
    requests.SubmitRequest(
        gateway_pb2.SubmitRequestRequest(
            idempotency_key=f"e2e-top-{uuid.uuid4().hex}",
            category="waste",
            title="Sampah menumpuk",
            description="Sampah menumpuk di dekat Pasar Segamas",
            address="Pasar Segamas, Purbalingga",
            location=common_pb2.GeoPoint(latitude=-7.3867, longitude=109.3655),
        ),
        metadata=metadata("dev-citizen-portal"),
        timeout=15,
    )
    result = subprocess.run(
        [sys.executable, "-m", "smartcity_cli", "top", "--once"],
        cwd=ROOT,
        env=os.environ | {"SMARTCITY_GATEWAY": GATEWAY, "SMARTCITY_TOKEN": "dev-command-center"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    frame = result.stdout
    assert str(snapshot.access_points_total) in frame and str(snapshot.cameras_total) in frame
    # The open request just submitted is routed to DLH and counted in its row.
    assert "DLH" in frame and "ACCESS POINTS" in frame and "CAMERAS" in frame


SCRAPE_JOBS = {"wifi-telemetry": 9101, "camera-health": 9102, "citizen-requests": 9103, "gateway": 9104}
PROMETHEUS = "127.0.0.1:19090"


def _prom_query(expr: str) -> dict[str, Any]:
    url = f"http://{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as reply:
        result: dict[str, Any] = json.loads(reply.read())
    return result


def _dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL) of every panel target, Grafana variables filled in."""
    queries = []
    for path in sorted((ROOT / "deploy/monitoring/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "1m").replace("$opd", ".*")
                queries.append((path.stem, panel.get("title", "?"), expr))
    return queries


async def _send_malformed_to_every_input(bootstrap: str) -> None:
    """One undecodable message per consumed topic, so dead-letter series exist to be shown."""
    from aiokafka import AIOKafkaProducer

    from smartcity.topics import load_catalogue

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for spec in load_catalogue().topics:
            if spec.has_dlq:
                topic = spec.full_name(CITY_ENV["SMARTCITY_TOPIC_PREFIX"])
                await producer.send_and_wait(topic, b"\xff not protobuf", key=b"e2e-malformed")
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def prometheus(city: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run 'make ops-tools' (Debian's prometheus package)")
    workdir = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy/monitoring/rules.yaml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for job, port in SCRAPE_JOBS.items()
        ],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))
    log = (workdir / "prometheus.log").open("w")
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={PROMETHEUS}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield PROMETHEUS
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_every_dashboard_panel_shows_data_from_a_real_prometheus(
    prometheus: str, kafka_bootstrap: str
) -> None:
    asyncio.run(_send_malformed_to_every_input(kafka_bootstrap))

    def all_up() -> bool:
        try:
            series = _prom_query("up == 1")["data"]["result"]
        except OSError:
            return False
        return {s["metric"]["job"] for s in series} == set(SCRAPE_JOBS)

    eventually(all_up, 60, "Prometheus to scrape every service")
    time.sleep(15)  # a few scrapes, so rate() over the panels' window has points
    empty = []
    for dashboard, title, expr in _dashboard_queries():
        reply = _prom_query(expr)
        assert reply["status"] == "success", (dashboard, title, expr, reply)
        if not reply["data"]["result"]:
            empty.append(f"{dashboard} / {title}: {expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    with urllib.request.urlopen(f"http://{prometheus}/api/v1/rules", timeout=10) as reply:
        groups = json.loads(reply.read())["data"]["groups"]
    broken = [r["name"] for g in groups for r in g["rules"] if r.get("health") != "ok"]
    assert groups and not broken, f"rules that do not evaluate: {broken}"


def test_every_metric_the_dashboards_and_rules_use_is_exported(city: str) -> None:
    urls = [f"http://127.0.0.1:{port}/metrics" for port in SCRAPE_JOBS.values()]
    result = subprocess.run(
        [sys.executable, "deploy/monitoring/check_metrics.py", "--against", *urls],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _live_pids() -> list[int]:
    pids = []
    for pid_file in (ROOT / ".local/run").glob("*.pid"):
        try:
            pids.append(int(pid_file.read_text().strip()))
        except ValueError:
            continue
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] != "Z"


def test_make_up_twice_starts_no_second_copy_and_make_down_leaves_nothing(city: str) -> None:
    pids = _live_pids()
    assert len(pids) >= 8, pids  # supervisor + 7 processes
    again = make("up", timeout_s=300)
    assert again.returncode == 0 and "already running" in again.stdout
    assert sorted(_live_pids()) == sorted(pids)
    down = make("down", timeout_s=120)
    assert down.returncode == 0, down.stdout + down.stderr
    left = [pid for pid in pids if _alive(pid)]
    assert not left, f"still running after make down: {left}"
    assert not _processes_of_this_city(), "a process of this city outlived make down"


def _processes_of_this_city() -> list[int]:
    """Pids whose environment carries this city's topic prefix (every process make up starts)."""
    marker = f"SMARTCITY_TOPIC_PREFIX={CITY_ENV['SMARTCITY_TOPIC_PREFIX']}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            pid = int(environ.parent.name)
            if pid != os.getpid() and marker in environ.read_bytes().split(b"\0") and _alive(pid):
                found.append(pid)
        except (OSError, ValueError):
            continue
    return found

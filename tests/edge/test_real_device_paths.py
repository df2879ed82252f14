"""One real-protocol path of each kind, end to end, every piece a real process:

    snmpd ──SNMP──► wifi_telemetry.edge.snmp ──► wifi.ap-telemetry ──► wifi-telemetry ──► wifi.ap-status
    radclient ──RADIUS──► wifi_telemetry.edge.radius ──► wifi.client-sessions ──► wifi-telemetry
                                                                              ──► wifi.site-stats
    gst-rtsp-server ──RTSP──► camera_health.edge.frames ──► camera.heartbeats ──► camera-health
                                                                              ──► camera.status
The device servers and clients are Debian's (scripts/install_edge_tools.sh); free ports and a
topic prefix per test, so nothing here needs the e2e lock.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smartcity.edge_testing import RtspServer, SnmpAgent, free_udp_port, radclient, wait_http_ok
from smartcity.testing import ServiceProcess, consume, free_port
from smartcity.v1 import camera_pb2, wifi_pb2

pytestmark = [pytest.mark.kafka, pytest.mark.skipif(
    not all(shutil.which(t) for t in ("radclient", "snmpget")) or not Path("/usr/sbin/snmpd").exists(),
    reason="device tools missing: scripts/install_edge_tools.sh installs them")]

OK, PROBLEM, CRITICAL = 1, 2, 3
WIFI_ENV = {"WIFI_DATA_DIR": tempfile.gettempdir() + "/smartcity-tests", "METRICS_PORT": "0",
            "WIFI_TICK_INTERVAL_S": "0.2", "WIFI_STATUS_INTERVAL_S": "1", "WIFI_STATS_INTERVAL_S": "0.5",
            "WIFI_SITE_PARTITIONS": "3", "WIFI_SESSION_TIMEOUT_S": "6", "WIFI_HEARTBEAT_TOLERANCE_S": "4"}
CAMERA_ENV = {"METRICS_PORT": "0", "CAMERA_HEALTH_SESSION_TIMEOUT_S": "6",
              "CAMERA_SILENCE_CHECK_INTERVAL_S": "0.5", "CAMERA_STATUS_INTERVAL_S": "1"}


def newest(records: list[Any], message: Any) -> dict[str, Any]:
    return {r.key.decode(): message.FromString(r.value) for r in records}


def collector(run_service: Callable[..., ServiceProcess], module: str, prefix: str,
              **env: str) -> ServiceProcess:
    metrics = free_port()
    proc = run_service(module, prefix, METRICS_PORT=str(metrics), **env)
    assert wait_http_ok(f"http://127.0.0.1:{metrics}/healthz", 60), proc.log_tail()
    assert wait_http_ok(f"http://127.0.0.1:{metrics}/metrics", 5), proc.log_tail()
    return proc


async def test_snmpd_through_the_poller_to_an_ap_status_and_silence_to_critical(
        kafka_bootstrap: str, topic_prefix: str, run_service: Callable[..., ServiceProcess],
        tmp_path: Path) -> None:
    agent = SnmpAgent(tmp_path, community="pbg-e2e").start()
    try:
        agent.clients_file.write_text("12\n")
        targets = tmp_path / "aps.yaml"
        targets.write_text("access_points:\n  - {ap_id: ap-edge-1, site_id: alun-alun, host: 127.0.0.1, "
                           f"port: {agent.port}, vendor: openwrt, community: pbg-e2e}}\n")
        run_service("wifi_telemetry", topic_prefix, **WIFI_ENV)
        collector(run_service, "wifi_telemetry.edge.snmp", topic_prefix, WIFI_SNMP_TARGETS_FILE=str(targets),
                  WIFI_SNMP_INTERVAL_S="1", WIFI_SNMP_TIMEOUT_S="0.5")
        status_topic = f"{topic_prefix}wifi.ap-status.v1"

        def status(records: list[Any]) -> wifi_pb2.AccessPointStatus | None:
            return newest(records, wifi_pb2.AccessPointStatus).get("ap-edge-1")

        up = await consume(kafka_bootstrap, status_topic, timeout_s=90, until=lambda rs: (
            (s := status(rs)) is not None and s.health == OK and s.clients_now == 12))
        assert (s := status(up)) is not None and s.health == OK and s.clients_now == 12, s
        assert s.uptime_seconds >= 0 and s.last_seq > 0
    finally:
        agent.stop()
    down = await consume(kafka_bootstrap, status_topic, timeout_s=60,
                         until=lambda rs: (s := status(rs)) is not None and s.health == CRITICAL)
    assert (s := status(down)) is not None and s.health == CRITICAL, s
    assert "heartbeat" in {r.check for r in s.reasons}


async def test_radclient_through_the_accounting_server_to_site_stats(
        kafka_bootstrap: str, topic_prefix: str, run_service: Callable[..., ServiceProcess],
        tmp_path: Path) -> None:
    (tmp_path / "nas.yaml").write_text("nas:\n  - nas_identifier: hotspot-alun-alun\n    secret: e2e-secret\n"
                                       "    ap_id: ap-edge-1\n    site_id: alun-alun\n")
    port = free_udp_port()
    run_service("wifi_telemetry", topic_prefix, **WIFI_ENV)
    collector(run_service, "wifi_telemetry.edge.radius", topic_prefix, WIFI_RADIUS_PORT=str(port),
              WIFI_RADIUS_NAS_FILE=str(tmp_path / "nas.yaml"), WIFI_CLIENT_HASH_SALT="e2e-salt")
    interim = {"Acct-Session-Time": 60, "Acct-Input-Octets": 5000}
    for status, extra in (("Start", {}), ("Interim-Update", interim)):
        sent = await asyncio.to_thread(radclient, port, "e2e-secret", {
            "Acct-Status-Type": status, "Acct-Session-Id": "e2e-1", "NAS-Identifier": "hotspot-alun-alun",
            "Calling-Station-Id": "A4-5E-60-00-00-01", **extra})
        assert sent.returncode == 0, sent.stdout
    stats_topic = f"{topic_prefix}wifi.site-stats.v1"

    def hour(records: list[Any]) -> wifi_pb2.SiteWifiStats | None:
        return newest(records, wifi_pb2.SiteWifiStats).get("alun-alun:hour")

    got = await consume(kafka_bootstrap, stats_topic, timeout_s=90,
                        until=lambda rs: (s := hour(rs)) is not None and s.unique_users >= 1)
    stats = hour(got)
    assert stats is not None and (stats.unique_users, stats.sessions_started) == (1, 1), stats


async def test_rtsp_through_the_frame_prober_to_camera_statuses(
        kafka_bootstrap: str, topic_prefix: str, run_service: Callable[..., ServiceProcess],
        tmp_path: Path) -> None:
    server = RtspServer(tmp_path, {"ok": "normal", "black": "black"}).start()
    try:
        cameras = tmp_path / "cameras.yaml"
        cameras.write_text("defaults: {site_id: alun-alun, configured_fps: 10}\ncameras:\n"
                           f"  - {{camera_id: cam-edge-ok, url: '{server.url('ok')}'}}\n"
                           f"  - {{camera_id: cam-edge-black, url: '{server.url('black')}'}}\n")
        run_service("camera_health", topic_prefix, **CAMERA_ENV)
        collector(run_service, "camera_health.edge.frames", topic_prefix,
                  CAMERA_FRAMES_TARGETS_FILE=str(cameras), CAMERA_FRAMES_INTERVAL_S="2",
                  CAMERA_FRAMES_SAMPLE_S="1")
        status_topic = f"{topic_prefix}camera.status.v1"

        def healths(records: list[Any]) -> dict[str, int]:
            return {k: s.health for k, s in newest(records, camera_pb2.CameraStatus).items()}

        got = await consume(kafka_bootstrap, status_topic, timeout_s=120, until=lambda rs: healths(rs) == {
            "cam-edge-ok": OK, "cam-edge-black": PROBLEM})
        statuses = newest(got, camera_pb2.CameraStatus)
        assert healths(got) == {"cam-edge-ok": OK, "cam-edge-black": PROBLEM}, statuses
        black = statuses["cam-edge-black"]
        assert {r.check for r in black.reasons} == {"picture"}
        assert "covered" in black.reasons[0].detail and "too_dark" in black.reasons[0].detail
    finally:
        server.stop()
    lost = await consume(kafka_bootstrap, status_topic, timeout_s=90,
                         until=lambda rs: healths(rs).get("cam-edge-ok") == CRITICAL)
    assert healths(lost).get("cam-edge-ok") == CRITICAL

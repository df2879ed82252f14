"""Device and overview RPCs against a running gateway whose views were rebuilt from Kafka."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from google.protobuf.duration_pb2 import Duration
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway_testing import (
    CRITICAL,
    OK,
    PROBLEM,
    GatewayProcess,
    Stubs,
    ap,
    auth,
    camera,
    incident,
    produce,
    reason,
    rpc_error,
    site_stats,
)
from smartcity import inventory
from smartcity.v1 import common_pb2, gateway_pb2

pytestmark = pytest.mark.kafka
CC = auth("t-cc")
CLIENTS = 5


async def seed_city(producer: AIOKafkaProducer, prefix: str) -> None:
    for info in inventory.access_points():
        health = {"ap-mpp-01": CRITICAL, "ap-owabong-01": PROBLEM}.get(info.ap_id, OK)
        reasons = (reason("cpu"),) if health == PROBLEM else ()
        status = ap(
            info.ap_id,
            site_id=info.site_id,
            health=health,
            clients=CLIENTS,
            lat=info.latitude,
            lon=info.longitude,
            reasons=reasons,
        )
        await produce(producer, prefix, "wifi.ap-status.v1", info.ap_id, status)
    for cam in inventory.cameras():
        critical = cam.camera_id == "cam-terminal-1"
        status = camera(
            cam.camera_id,
            site_id=cam.site_id,
            health=CRITICAL if critical else OK,
            lat=cam.latitude,
            lon=cam.longitude,
            open_incident_id="inc-terminal-1" if critical else "",
        )
        await produce(producer, prefix, "camera.status.v1", cam.camera_id, status)
    await produce(
        producer,
        prefix,
        "camera.incidents.v1",
        "cam-alun-alun-2",
        incident("inc-old", "cam-alun-alun-2", opened=1_700_000_000),
    )
    await produce(
        producer,
        prefix,
        "camera.incidents.v1",
        "cam-alun-alun-2",
        incident("inc-old", "cam-alun-alun-2", resolved=True, opened=1_700_000_000),
    )
    await produce(
        producer,
        prefix,
        "camera.incidents.v1",
        "cam-terminal-1",
        incident("inc-terminal-1", "cam-terminal-1", site_id="terminal"),
    )
    await produce(
        producer, prefix, "wifi.site-stats.v1", "alun-alun:day", site_stats("alun-alun", unique_users=500)
    )
    await produce(
        producer,
        prefix,
        "wifi.site-stats.v1",
        "alun-alun:hour",
        site_stats("alun-alun", common_pb2.STATS_WINDOW_HOUR, 40),
    )
    await produce(producer, prefix, "wifi.site-stats.v1", "mpp:day", site_stats("mpp", unique_users=80))
    # A stale tombstone and a record that is not an AccessPointStatus: the views must cope.
    await produce(producer, prefix, "wifi.site-stats.v1", "gone:day", site_stats("gone"))
    await produce(producer, prefix, "wifi.site-stats.v1", "gone:day", None)
    await producer.send_and_wait(
        f"{prefix}wifi.ap-status.v1", key=b"ap-garbage", value=b"\xff\xfenot protobuf"
    )


@pytest_asyncio.fixture(scope="module")
async def gw(
    module_prefix: str, module_starter: Any, tokens_file: Any, kafka_bootstrap: str
) -> GatewayProcess:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await seed_city(producer, module_prefix)
    finally:
        await producer.stop()
    process: GatewayProcess = module_starter(
        module_prefix,
        tokens_file,
        GATEWAY_SNAPSHOT_MIN_INTERVAL_S="0.1",
        GATEWAY_RATE_LIMIT_RPS="1000",
        GATEWAY_RATE_LIMIT_BURST="1000",
    )
    await process.wait_serving()
    return process


async def test_get_access_point_and_camera(stubs: Stubs) -> None:
    reply = await stubs.devices.GetAccessPoint(
        gateway_pb2.GetAccessPointRequest(ap_id="ap-owabong-01"), metadata=CC
    )
    assert reply.access_point.health == PROBLEM and reply.access_point.reasons[0].check == "cpu"
    cam = await stubs.devices.GetCamera(gateway_pb2.GetCameraRequest(camera_id="cam-terminal-1"), metadata=CC)
    assert cam.camera.health == CRITICAL and cam.camera.open_incident_id == "inc-terminal-1"


async def test_unknown_devices_are_not_found_and_bad_ids_invalid(stubs: Stubs) -> None:
    err = await rpc_error(
        stubs.devices.GetAccessPoint(gateway_pb2.GetAccessPointRequest(ap_id="ap-nope"), metadata=CC)
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND and "ap-nope" in (err.details() or "")
    err = await rpc_error(
        stubs.devices.GetCamera(gateway_pb2.GetCameraRequest(camera_id="cam-x"), metadata=CC)
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await rpc_error(stubs.devices.GetCamera(gateway_pb2.GetCameraRequest(), metadata=CC))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "camera_id: is required" in (
        err.details() or ""
    )
    err = await rpc_error(
        stubs.devices.GetAccessPoint(gateway_pb2.GetAccessPointRequest(ap_id="a b"), metadata=CC)
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "ap_id" in (err.details() or "")


async def test_list_access_points_pages_through_everything(stubs: Stubs) -> None:
    seen: list[str] = []
    req = gateway_pb2.ListAccessPointsRequest(page_size=7)
    while True:
        reply = await stubs.devices.ListAccessPoints(req, metadata=CC)
        assert reply.total_size == len(inventory.access_points())
        seen += [a.ap_id for a in reply.access_points]
        if not reply.next_page_token:
            break
        req.page_token = reply.next_page_token
    assert seen == sorted(a.ap_id for a in inventory.access_points())
    req.page_size = 1001
    err = await rpc_error(stubs.devices.ListAccessPoints(req, metadata=CC))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in (err.details() or "")
    bad = gateway_pb2.ListAccessPointsRequest(page_token="garbage")
    err = await rpc_error(stubs.devices.ListAccessPoints(bad, metadata=CC))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in (err.details() or "")


async def test_list_devices_by_site_health_and_distance(stubs: Stubs) -> None:
    by_site = await stubs.devices.ListAccessPoints(
        gateway_pb2.ListAccessPointsRequest(filter=gateway_pb2.DeviceFilter(site_id="alun-alun")), metadata=CC
    )
    assert [a.ap_id for a in by_site.access_points] == [f"ap-alun-alun-0{i}" for i in range(1, 5)]
    critical = await stubs.devices.ListAccessPoints(
        gateway_pb2.ListAccessPointsRequest(filter=gateway_pb2.DeviceFilter(health=CRITICAL)), metadata=CC
    )
    assert [a.ap_id for a in critical.access_points] == ["ap-mpp-01"]
    pendopo = inventory.site("pendopo")
    near = gateway_pb2.DeviceFilter(
        near=common_pb2.GeoPoint(latitude=pendopo.latitude, longitude=pendopo.longitude), radius_meters=150
    )
    nearby = await stubs.devices.ListAccessPoints(
        gateway_pb2.ListAccessPointsRequest(filter=near), metadata=CC
    )
    expected = sorted(
        (inventory.distance_m(pendopo.latitude, pendopo.longitude, a.latitude, a.longitude), a.ap_id)
        for a in inventory.access_points()
        if inventory.distance_m(pendopo.latitude, pendopo.longitude, a.latitude, a.longitude) <= 150
    )
    assert [a.ap_id for a in nearby.access_points] == [ap_id for _, ap_id in expected]
    assert {a.site_id for a in nearby.access_points} == {"pendopo", "alun-alun"}
    cams = await stubs.devices.ListCameras(gateway_pb2.ListCamerasRequest(filter=near), metadata=CC)
    assert {c.site_id for c in cams.cameras} == {"alun-alun"}
    err = await rpc_error(
        stubs.devices.ListCameras(
            gateway_pb2.ListCamerasRequest(filter=gateway_pb2.DeviceFilter(radius_meters=5)), metadata=CC
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "filter.near" in (err.details() or "")


async def test_list_incidents(stubs: Stubs) -> None:
    every = await stubs.devices.ListIncidents(gateway_pb2.ListIncidentsRequest(), metadata=CC)
    assert [i.incident_id for i in every.incidents] == ["inc-terminal-1", "inc-old"]  # newest first
    open_only = await stubs.devices.ListIncidents(
        gateway_pb2.ListIncidentsRequest(open_only=True), metadata=CC
    )
    assert [i.incident_id for i in open_only.incidents] == ["inc-terminal-1"]
    by_camera = await stubs.devices.ListIncidents(
        gateway_pb2.ListIncidentsRequest(camera_id="cam-alun-alun-2"), metadata=CC
    )
    assert [(i.incident_id, i.phase) for i in by_camera.incidents] == [("inc-old", 2)]


async def test_city_snapshot(stubs: Stubs) -> None:
    snap = (await stubs.overview.GetCitySnapshot(gateway_pb2.GetCitySnapshotRequest(), metadata=CC)).snapshot
    n_aps, n_cams = len(inventory.access_points()), len(inventory.cameras())
    assert (
        snap.access_points_total,
        snap.access_points_ok,
        snap.access_points_problem,
        snap.access_points_critical,
    ) == (n_aps, n_aps - 2, 1, 1)
    assert snap.people_online == (n_aps - 1) * CLIENTS
    assert (snap.cameras_total, snap.cameras_ok, snap.cameras_critical) == (n_cams, n_cams - 1, 1)
    assert snap.open_incidents == 1
    sites = {s.site_id: s for s in snap.sites}
    assert sites["alun-alun"].name == "Alun-Alun Purbalingga" and sites["alun-alun"].unique_users_today == 500
    assert (sites["mpp"].access_points_total, sites["mpp"].access_points_up) == (3, 2)
    assert (sites["terminal"].cameras_total, sites["terminal"].cameras_up) == (1, 0)
    assert "gone" not in sites


async def test_site_stats(stubs: Stubs) -> None:
    every = await stubs.overview.ListSiteStats(gateway_pb2.ListSiteStatsRequest(), metadata=CC)
    assert [(s.site_id, s.window) for s in every.stats] == [("alun-alun", 2), ("alun-alun", 3), ("mpp", 3)]
    day = await stubs.overview.ListSiteStats(
        gateway_pb2.ListSiteStatsRequest(site_id="alun-alun", window=common_pb2.STATS_WINDOW_DAY), metadata=CC
    )
    assert [s.unique_users for s in day.stats] == [500]


async def test_watch_city_snapshot_streams_fresh_snapshots(stubs: Stubs) -> None:
    call = stubs.overview.WatchCitySnapshot(
        gateway_pb2.WatchCitySnapshotRequest(interval=Duration(nanos=200_000_000)), metadata=CC
    )
    stamps = []
    async for reply in call:
        stamps.append(reply.snapshot.as_of.ToNanoseconds())
        assert reply.snapshot.access_points_total == len(inventory.access_points())
        if len(stamps) == 3:
            break
    call.cancel()
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    bad = stubs.overview.WatchCitySnapshot(
        gateway_pb2.WatchCitySnapshotRequest(interval=Duration(nanos=1000)), metadata=CC
    )
    err = await rpc_error(bad.read())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "interval" in (err.details() or "")


async def test_watch_devices_snapshot_lists_current_state_then_ends(stubs: Stubs) -> None:
    call = stubs.devices.WatchDevices(
        gateway_pb2.WatchDevicesRequest(send_snapshot=True, site_id="terminal"), metadata=CC
    )
    kinds = []
    async for reply in call:
        kinds.append(reply.WhichOneof("change"))
        if kinds[-1] == "snapshot_end":
            break
    call.cancel()
    assert sorted(kinds[:-1]) == ["access_point", "access_point", "camera", "incident"]


@pytest.mark.parametrize(
    "metadata, code, says",
    [
        ([], grpc.StatusCode.UNAUTHENTICATED, "missing"),
        (auth("wrong-token"), grpc.StatusCode.UNAUTHENTICATED, "unknown bearer token"),
        ([("authorization", "t-cc")], grpc.StatusCode.UNAUTHENTICATED, "Bearer"),
        (auth("t-dlh"), grpc.StatusCode.PERMISSION_DENIED, "needs scope devices:read"),
        (auth("t-none"), grpc.StatusCode.PERMISSION_DENIED, "client nobody has: none"),
    ],
)
async def test_device_calls_need_a_token_with_devices_read(
    stubs: Stubs, metadata: Any, code: Any, says: str
) -> None:
    calls = [
        stubs.devices.GetAccessPoint(gateway_pb2.GetAccessPointRequest(ap_id="ap-mpp-01"), metadata=metadata),
        stubs.devices.ListCameras(gateway_pb2.ListCamerasRequest(), metadata=metadata),
        stubs.overview.GetCitySnapshot(gateway_pb2.GetCitySnapshotRequest(), metadata=metadata),
        stubs.devices.WatchDevices(gateway_pb2.WatchDevicesRequest(), metadata=metadata).read(),
    ]
    for call in calls:
        err = await rpc_error(call)
        assert err.code() == code and says in (err.details() or "")


async def test_rate_limit_per_client(gw: GatewayProcess) -> None:
    async with gw.channel() as channel:
        stubs = Stubs(channel)
        codes = []
        for _ in range(6):
            try:
                await stubs.overview.GetCitySnapshot(
                    gateway_pb2.GetCitySnapshotRequest(), metadata=auth("t-slow")
                )
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as err:
                codes.append(err.code())
                assert "rate limit" in (err.details() or "")
        assert codes[:3] == [grpc.StatusCode.OK] * 3  # the burst
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes[3:]
        # Another client is not affected.
        await stubs.overview.GetCitySnapshot(gateway_pb2.GetCitySnapshotRequest(), metadata=CC)


async def test_health_and_reflection_need_no_token(stubs: Stubs) -> None:
    from grpc_health.v1 import health_pb2

    for service in ("", "smartcity.v1.DeviceService", "smartcity.v1.RequestService"):
        reply = await stubs.health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(stubs.channel)
    call = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    reply = await call.read()
    names = {s.name for s in reply.list_services_response.service}
    assert {
        "smartcity.v1.DeviceService",
        "smartcity.v1.OverviewService",
        "smartcity.v1.RequestService",
        "grpc.health.v1.Health",
    } <= names
    call.cancel()


async def test_metrics_count_calls_by_method_and_code(gw: GatewayProcess, stubs: Stubs) -> None:
    await stubs.devices.GetAccessPoint(gateway_pb2.GetAccessPointRequest(ap_id="ap-mpp-01"), metadata=CC)
    await rpc_error(
        stubs.devices.GetAccessPoint(gateway_pb2.GetAccessPointRequest(ap_id="nope"), metadata=CC)
    )
    url = f"http://127.0.0.1:{gw.metrics_port}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    assert (
        'smartcity_gateway_rpcs_total{code="OK",method="/smartcity.v1.DeviceService/GetAccessPoint"}' in body
    )
    assert (
        'smartcity_gateway_rpcs_total{code="NOT_FOUND",method="/smartcity.v1.DeviceService/GetAccessPoint"}'
        in body
    )
    assert (
        'smartcity_gateway_rpc_duration_seconds_bucket{code="OK",le="0.005",method="/smartcity.v1.DeviceService/GetAccessPoint"}'
        in body
    )
    assert "smartcity_gateway_ready 1.0" in body
    assert 'smartcity_gateway_records_total{outcome="undecodable",topic="wifi.ap-status.v1"} 1.0' in body
    ready = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{gw.metrics_port}/readyz", timeout=5).status
    )
    assert ready == 200

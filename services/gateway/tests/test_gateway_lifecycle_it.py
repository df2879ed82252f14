"""The gateway's life: rebuild after restart, waiting for topics, graceful shutdown, TLS, replicas."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from grpc_health.v1 import health_pb2

from gateway_testing import (
    CRITICAL,
    FakeRequestsService,
    GatewayProcess,
    Stubs,
    ap,
    auth,
    camera,
    eventually,
    incident,
    produce,
    rpc_error,
    submit_request,
    write_tokens,
)
from smartcity.topics import ensure_topics
from smartcity.v1 import gateway_pb2

pytestmark = pytest.mark.kafka
A = gateway_pb2


async def everything(gw: GatewayProcess, request_ids: list[str]) -> dict[str, Any]:
    """What the gateway serves, in a comparable form."""
    async with gw.channel() as channel:
        stubs = Stubs(channel)
        cc = auth("t-cc")
        snap = (await stubs.overview.GetCitySnapshot(A.GetCitySnapshotRequest(), metadata=cc)).snapshot
        snap.ClearField("as_of")
        result: dict[str, Any] = {
            "snapshot": snap,
            "aps": (
                await stubs.devices.ListAccessPoints(A.ListAccessPointsRequest(), metadata=cc)
            ).access_points,
            "incidents": (await stubs.devices.ListIncidents(A.ListIncidentsRequest(), metadata=cc)).incidents,
            "requests": (await stubs.requests.ListRequests(A.ListRequestsRequest(), metadata=cc)).requests,
        }
        for rid in request_ids:
            events = await stubs.requests.ListRequestEvents(
                A.ListRequestEventsRequest(request_id=rid), metadata=cc
            )
            result[rid] = list(events.events)
        return result


async def test_views_are_rebuilt_after_a_restart(
    start_gateway: Any, topic_prefix: str, producer: AIOKafkaProducer, kafka_bootstrap: str, tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml")
    await produce(producer, topic_prefix, "wifi.ap-status.v1", "ap-1", ap("ap-1", clients=7))
    await produce(producer, topic_prefix, "wifi.ap-status.v1", "ap-2", ap("ap-2", health=CRITICAL))
    await produce(producer, topic_prefix, "camera.status.v1", "cam-1", camera("cam-1", health=CRITICAL))
    await produce(producer, topic_prefix, "camera.incidents.v1", "cam-1", incident("inc-1", "cam-1"))
    fake = await FakeRequestsService(kafka_bootstrap, topic_prefix).start()
    try:
        first = start_gateway(topic_prefix, tokens)
        await first.wait_serving()
        async with first.channel() as channel:
            stubs = Stubs(channel)
            ids = []
            for category in ("permits", "emergency", "roads"):
                reply = await stubs.requests.SubmitRequest(
                    submit_request(category), metadata=auth("t-portal")
                )
                ids.append(reply.request.request_id)
            await stubs.requests.TransitionRequest(
                A.TransitionRequestRequest(request_id=ids[1], action=A.REQUEST_ACTION_ACKNOWLEDGE),
                metadata=auth("t-bpbd"),
            )
            await stubs.requests.CommentOnRequest(
                A.CommentOnRequestRequest(request_id=ids[0], text="cek"), metadata=auth("t-cc")
            )
        before = await everything(first, ids)
        assert first.proc.stop() == 0
        second = start_gateway(topic_prefix, tokens)
        await second.wait_serving()
        after = await everything(second, ids)
    finally:
        await fake.stop()
    assert before["snapshot"].access_points_total == 2 and before["snapshot"].open_incidents == 1
    assert len(before["requests"]) == 3 and [len(before[rid]) for rid in ids] == [2, 2, 1]
    assert after == before


async def test_unavailable_until_its_topics_exist_and_are_read(
    start_gateway: Any, kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."  # no topics yet
    gw = start_gateway(prefix, write_tokens(tmp_path / "tokens.yaml"))
    async with gw.channel() as channel:
        stubs = Stubs(channel)
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                status = (await stubs.health.Check(health_pb2.HealthCheckRequest(), timeout=1)).status
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.1)
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        err = await rpc_error(
            stubs.overview.GetCitySnapshot(A.GetCitySnapshotRequest(), metadata=auth("t-cc"))
        )
        assert err.code() == grpc.StatusCode.UNAVAILABLE and "catching up" in (err.details() or "")
        await ensure_topics(kafka_bootstrap, prefix)
        await gw.wait_serving()
        await stubs.overview.GetCitySnapshot(A.GetCitySnapshotRequest(), metadata=auth("t-cc"))


async def test_sigterm_finishes_in_flight_calls_and_ends_streams(
    start_gateway: Any, topic_prefix: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    fake = await FakeRequestsService(kafka_bootstrap, topic_prefix, slow_s=1.5).start()
    try:
        gw = start_gateway(
            topic_prefix, write_tokens(tmp_path / "tokens.yaml"), GATEWAY_SHUTDOWN_GRACE_S="10"
        )
        await gw.wait_serving()
        async with gw.channel() as channel:
            stubs = Stubs(channel)
            watch = stubs.devices.WatchDevices(
                A.WatchDevicesRequest(send_snapshot=True), metadata=auth("t-cc")
            )
            assert (await watch.read()).HasField("snapshot_end")
            request = submit_request("slow")
            in_flight = asyncio.ensure_future(
                stubs.requests.SubmitRequest(request, metadata=auth("t-portal"))
            )
            assert await eventually(lambda: bool(fake.commands), 10)  # the command is out: the call waits
            assert not in_flight.done()
            gw.signal(signal.SIGTERM)
            err = await rpc_error(watch.read())
            assert err.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in (err.details() or "")
            reply = await asyncio.wait_for(in_flight, timeout=10)  # answered although shutdown began
            assert reply.request.idempotency_key == request.idempotency_key
        await gw.wait_exit()
        assert gw.proc.stop() == 0
        assert "gateway stopped" in gw.proc.log_tail()
    finally:
        await fake.stop()


async def test_tls(start_gateway: Any, topic_prefix: str, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await asyncio.to_thread(
        subprocess.run,
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    gw = start_gateway(
        topic_prefix,
        write_tokens(tmp_path / "tokens.yaml"),
        GATEWAY_TLS_CERT_FILE=str(cert),
        GATEWAY_TLS_KEY_FILE=str(key),
    )
    await gw.wait_serving()
    async with gw.channel() as channel:
        snap = await Stubs(channel).overview.GetCitySnapshot(
            A.GetCitySnapshotRequest(), metadata=auth("t-cc")
        )
        assert snap.snapshot.HasField("as_of")
    async with grpc.aio.insecure_channel(gw.address) as plain:
        err = await rpc_error(
            Stubs(plain).overview.GetCitySnapshot(
                A.GetCitySnapshotRequest(), metadata=auth("t-cc"), timeout=3
            )
        )
        assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_replicas_each_hold_the_full_views(
    start_gateway: Any, topic_prefix: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml")
    fake = await FakeRequestsService(kafka_bootstrap, topic_prefix).start()
    try:
        one, two = start_gateway(topic_prefix, tokens), start_gateway(topic_prefix, tokens)
        await one.wait_serving()
        await two.wait_serving()
        async with one.channel() as c1, two.channel() as c2:
            written = await Stubs(c1).requests.SubmitRequest(
                submit_request("permits"), metadata=auth("t-dpmptsp")
            )
            rid = written.request.request_id
            deadline, found = time.monotonic() + 10, None
            while found is None and time.monotonic() < deadline:  # the other replica follows the topics
                try:
                    found = await Stubs(c2).requests.GetRequest(
                        A.GetRequestRequest(request_id=rid), metadata=auth("t-dpmptsp")
                    )
                except grpc.aio.AioRpcError as err:
                    assert err.code() == grpc.StatusCode.NOT_FOUND
                    await asyncio.sleep(0.05)
            assert found is not None and found.request.version == 1
            # A write through the second replica waits for its own outcome there.
            ack = await Stubs(c2).requests.TransitionRequest(
                A.TransitionRequestRequest(request_id=rid, action=A.REQUEST_ACTION_ACKNOWLEDGE),
                metadata=auth("t-dpmptsp"),
            )
            assert ack.request.version == 2
    finally:
        await fake.stop()

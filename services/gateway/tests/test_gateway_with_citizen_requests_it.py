"""The gateway in front of the real citizen-requests service (`python -m citizen_requests`)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from gateway_testing import GatewayProcess, Stubs, auth, rpc_error, submit_request
from smartcity.ids import request_id_for
from smartcity.testing import ServiceProcess, free_port, ready
from smartcity.v1 import gateway_pb2, requests_pb2

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]
A = gateway_pb2
RS = requests_pb2


@pytest_asyncio.fixture(scope="module")
async def gw(
    module_prefix: str, module_starter: Any, tokens_file: Any, kafka_bootstrap: str, module_logs: Any
) -> AsyncIterator[GatewayProcess]:
    port = free_port()
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SMARTCITY_TOPIC_PREFIX": module_prefix,
        "LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
        "METRICS_PORT": str(port),
        "REQUESTS_BROKER_SESSION_TIMEOUT_S": "6",
    }
    worker = ServiceProcess(
        [sys.executable, "-m", "citizen_requests"], env, module_logs / "citizen-requests.log"
    ).start()
    try:
        process: GatewayProcess = module_starter(module_prefix, tokens_file)
        await process.wait_serving()
        deadline = time.monotonic() + 90
        while not await asyncio.to_thread(ready, port):
            assert worker.running and time.monotonic() < deadline, worker.log_tail()
            await asyncio.sleep(0.5)
        yield process
    finally:
        worker.stop()


async def test_submit_retries_and_lifecycle_through_the_real_service(stubs: Stubs) -> None:
    req = submit_request("permits")
    replies = await asyncio.gather(
        *(stubs.requests.SubmitRequest(req, metadata=auth("t-portal"), timeout=30) for _ in range(3))
    )
    assert {r.request.request_id for r in replies} == {request_id_for("citizen-portal", req.idempotency_key)}
    assert sorted(r.deduplicated for r in replies) == [False, True, True]
    rid = replies[0].request.request_id
    assert (
        replies[0].request.opd_code == "DPMPTSP" and replies[0].request.status == RS.REQUEST_STATUS_SUBMITTED
    )
    got = await stubs.requests.GetRequest(A.GetRequestRequest(request_id=rid), metadata=auth("t-dpmptsp"))
    assert got.request.version == 1 and got.request.reporter.phone == "+62 812 1111"
    ack = await stubs.requests.TransitionRequest(
        A.TransitionRequestRequest(request_id=rid, action=A.REQUEST_ACTION_ACKNOWLEDGE, note="diterima"),
        metadata=auth("t-dpmptsp"),
        timeout=30,
    )
    assert ack.request.status == RS.REQUEST_STATUS_ACKNOWLEDGED and ack.event.version == ack.request.version
    again = await stubs.requests.GetRequest(A.GetRequestRequest(request_id=rid), metadata=auth("t-dpmptsp"))
    assert again.request.version == ack.request.version  # read-your-writes
    err = await rpc_error(
        stubs.requests.TransitionRequest(
            A.TransitionRequestRequest(request_id=rid, action=A.REQUEST_ACTION_CLOSE),
            metadata=auth("t-dpmptsp"),
            timeout=30,
        )
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and err.details()
    comment = await stubs.requests.CommentOnRequest(
        A.CommentOnRequestRequest(request_id=rid, text="cek berkas"), metadata=auth("t-cc"), timeout=30
    )
    assert comment.request.comment_count == 1 and not comment.request.HasField("reporter")
    events = await stubs.requests.ListRequestEvents(
        A.ListRequestEventsRequest(request_id=rid), metadata=auth("t-dpmptsp")
    )
    types = [e.type for e in events.events]
    assert types[0] == RS.REQUEST_EVENT_TYPE_SUBMITTED and RS.REQUEST_EVENT_TYPE_ACKNOWLEDGED in types
    assert RS.REQUEST_EVENT_TYPE_COMMAND_REJECTED in types and RS.REQUEST_EVENT_TYPE_COMMENTED in types


async def test_unknown_category_and_missing_request(stubs: Stubs) -> None:
    err = await rpc_error(
        stubs.requests.SubmitRequest(submit_request("parking"), metadata=auth("t-portal"), timeout=30)
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "parking" in (err.details() or "")
    err = await rpc_error(
        stubs.requests.TransitionRequest(
            A.TransitionRequestRequest(request_id="req-00000000000000000000", action=A.REQUEST_ACTION_START),
            metadata=auth("t-admin"),
            timeout=30,
        )
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_watchers_and_stats_follow_the_real_service(stubs: Stubs) -> None:
    watch = stubs.requests.WatchRequests(A.WatchRequestsRequest(), metadata=auth("t-bpbd"))
    submitted = await stubs.requests.SubmitRequest(
        submit_request("emergency"), metadata=auth("t-portal"), timeout=30
    )
    rid = submitted.request.request_id
    assert submitted.request.opd_code == "BPBD" and submitted.request.priority == RS.PRIORITY_EMERGENCY
    seen = await asyncio.wait_for(watch.read(), timeout=20)
    assert seen.request.request_id == rid and seen.request.reporter.name == "Siti"
    watch.cancel()
    stats: dict[str, Any] = {}

    async def fetch() -> None:
        reply = await stubs.requests.ListRequestStats(
            A.ListRequestStatsRequest(scope=RS.STATS_SCOPE_OPD), metadata=auth("t-cc")
        )
        stats.update({s.key: s for s in reply.stats})

    deadline = time.monotonic() + 30
    while "BPBD" not in stats and time.monotonic() < deadline:
        await fetch()
        await asyncio.sleep(0.5)
    assert "BPBD" in stats and stats["BPBD"].open >= 1
    snap = (await stubs.overview.GetCitySnapshot(A.GetCitySnapshotRequest(), metadata=auth("t-cc"))).snapshot
    assert snap.requests_open >= 2 and any(s.key == "BPBD" for s in snap.requests_by_opd)

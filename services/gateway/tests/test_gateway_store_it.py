"""The history store with the real gateway process on the real broker: cold rebuild, warm
resume from the checkpoint, a damaged, missing or too-new store set aside and rebuilt, and a
SIGKILL in the middle of a rebuild, after which the restarted gateway gives the same answers as
one rebuilt from nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from grpc_health.v1 import health_pb2

from gateway_testing import GatewayProcess, Stubs, auth, rpc_error, service_request, topic
from smartcity.topics import delete_topics, ensure_topics
from smartcity.v1 import gateway_pb2, requests_pb2

pytestmark = pytest.mark.kafka
RS = requests_pb2
OPDS = ["DPMPTSP", "BPBD", "DLH", "PUPR"]
STEPS = [
    (RS.REQUEST_STATUS_SUBMITTED, RS.REQUEST_EVENT_TYPE_SUBMITTED),
    (RS.REQUEST_STATUS_ACKNOWLEDGED, RS.REQUEST_EVENT_TYPE_ACKNOWLEDGED),
    (RS.REQUEST_STATUS_IN_PROGRESS, RS.REQUEST_EVENT_TYPE_STARTED),
    (RS.REQUEST_STATUS_CLOSED, RS.REQUEST_EVENT_TYPE_CLOSED),
]


async def write_history(bootstrap: str, prefix: str, first: int, count: int, steps: int = len(STEPS)) -> int:
    """Requests first..first+count-1 with `steps` lifecycle events each (the request embedded)
    and their last state; returns the number of records written."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    sent = []
    try:
        for i in range(first, first + count):
            request_id = f"req-{i:06d}"
            request = service_request(request_id, opd_code=OPDS[i % len(OPDS)], requested=1_780_000_000.0 + i)
            for version, (status, event_type) in enumerate(STEPS[:steps], start=1):
                request.version, request.status = version, status
                event = RS.RequestEvent(
                    event_id=f"ev-{i}-{version}",
                    request_id=request_id,
                    version=version,
                    type=event_type,
                    status_after=status,
                )
                event.request.CopyFrom(request)
                sent.append(
                    await producer.send(
                        topic(prefix, "requests.events.v1"),
                        event.SerializeToString(),
                        key=request_id.encode(),
                    )
                )
            sent.append(
                await producer.send(
                    topic(prefix, "requests.state.v1"), request.SerializeToString(), key=request_id.encode()
                )
            )
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(sent)


async def answers(gw: GatewayProcess, sample: list[str]) -> dict[str, Any]:
    """What the gateway answers about the requests: listings, pages, requests and trails."""
    async with gw.channel() as channel:
        stubs = Stubs(channel)
        found: dict[str, Any] = {}
        for opd in ["", *OPDS]:
            listing = await stubs.requests.ListRequests(
                gateway_pb2.ListRequestsRequest(opd_code=opd, page_size=100), metadata=auth("t-cc")
            )
            second = await stubs.requests.ListRequests(
                gateway_pb2.ListRequestsRequest(
                    opd_code=opd, page_size=100, page_token=listing.next_page_token
                ),
                metadata=auth("t-cc"),
            )
            found[f"list:{opd}"] = (
                listing.total_size,
                [r.request_id for r in listing.requests],
                [r.SerializeToString(deterministic=True) for r in second.requests],
            )
        own = await stubs.requests.ListRequests(
            gateway_pb2.ListRequestsRequest(page_size=50), metadata=auth("t-bpbd")
        )
        found["own"] = (own.total_size, [r.request_id for r in own.requests])
        for request_id in sample:
            reply = await stubs.requests.GetRequest(
                gateway_pb2.GetRequestRequest(request_id=request_id), metadata=auth("t-cc")
            )
            trail = await stubs.requests.ListRequestEvents(
                gateway_pb2.ListRequestEventsRequest(request_id=request_id), metadata=auth("t-cc")
            )
            found[request_id] = (
                reply.request.SerializeToString(deterministic=True),
                [e.SerializeToString(deterministic=True) for e in trail.events],
            )
    return found


def checkpoint_records(store: Path) -> int:
    """Records the store says it has applied (read-only, beside the writing gateway)."""
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
        try:
            return int(db.execute("SELECT coalesce(sum(next_offset), 0) FROM offsets").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def start_on(
    start_gateway: Callable[..., GatewayProcess], prefix: str, tokens: Path, store: Path, **env: str
) -> GatewayProcess:
    return start_gateway(
        prefix,
        tokens,
        GATEWAY_STORE_PATH=str(store),
        LOG_LEVEL="INFO",
        GATEWAY_RATE_LIMIT_RPS="10000",
        GATEWAY_RATE_LIMIT_BURST="10000",
        **env,
    )


def log_of(gw: GatewayProcess) -> str:
    return gw.proc.log_tail(400)


async def test_cold_rebuild_then_warm_resume_reads_only_what_is_new(
    kafka_bootstrap: str, topic_prefix: str, start_gateway: Any, tokens_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store" / "history.sqlite3"
    written = await write_history(kafka_bootstrap, topic_prefix, 0, 300)
    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    log = log_of(gw)
    assert "rebuilding the history store from the beginning of the topics (no store on disk)" in log
    # Synced before serving: a sync while serving holds up reads of pages not in the OS's cache.
    assert log.index("the rebuilt history store is synced to disk") < log.index("gateway ready")
    before = await answers(gw, ["req-000007", "req-000299"])
    assert before["list:"][0] == 300 and before["list:BPBD"][0] == 75
    assert len(before["req-000007"][1]) == len(STEPS)
    gw.proc.stop()

    more = await write_history(kafka_bootstrap, topic_prefix, 300, 20)
    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    log = log_of(gw)
    assert "resuming the history store from its checkpoint" in log
    assert f"{more} records to read at most" in log  # not the {written} of the first run
    after = await answers(gw, ["req-000007", "req-000319"])
    assert after["list:"][0] == 320 and after["req-000007"] == before["req-000007"]
    assert len(after["req-000319"][1]) == len(STEPS)
    assert checkpoint_records(store) == written + more


async def test_garbage_in_the_store_sets_it_aside_and_the_rebuild_answers_the_same(
    kafka_bootstrap: str, topic_prefix: str, start_gateway: Any, tokens_file: Path, tmp_path: Path
) -> None:
    await rebuilt_after(kafka_bootstrap, topic_prefix, start_gateway, tokens_file, tmp_path, "garbage")


async def test_a_missing_store_is_rebuilt_and_answers_the_same(
    kafka_bootstrap: str, topic_prefix: str, start_gateway: Any, tokens_file: Path, tmp_path: Path
) -> None:
    await rebuilt_after(kafka_bootstrap, topic_prefix, start_gateway, tokens_file, tmp_path, "missing")


async def rebuilt_after(  # noqa: PLR0917
    bootstrap: str, prefix: str, start_gateway: Any, tokens_file: Path, tmp_path: Path, damage: str
) -> None:
    """Answers before and after the store was damaged (or removed) between two runs."""
    kafka_bootstrap, topic_prefix = bootstrap, prefix
    store = tmp_path / "history.sqlite3"
    await write_history(kafka_bootstrap, topic_prefix, 0, 200)
    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    sample = ["req-000003", "req-000150"]
    before = await answers(gw, sample)
    gw.proc.stop()
    if damage == "garbage":
        with store.open("r+b") as f:
            f.write(b"\x00garbage\xff" * 2000)
    else:
        for file in store.parent.glob("history.sqlite3*"):
            if not file.name.endswith(".lock"):
                file.unlink()

    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    log = log_of(gw)
    if damage == "garbage":
        assert "set aside: not a usable SQLite database" in log
        assert (tmp_path / "history.sqlite3.set-aside").exists()
    else:
        assert "(no store on disk)" in log
    assert await answers(gw, sample) == before


async def test_damage_found_by_the_background_check_stops_the_gateway_and_the_restart_rebuilds(
    kafka_bootstrap: str, topic_prefix: str, start_gateway: Any, tokens_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "history.sqlite3"
    await write_history(kafka_bootstrap, topic_prefix, 0, 1500)
    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    sample = ["req-000010", "req-001400"]
    before = await answers(gw, sample)
    gw.proc.stop()
    with store.open("r+b") as f:  # past the header: the file opens, some pages are wrong
        f.seek(store.stat().st_size // 2)
        f.write(b"\x00\xff" * 16384)

    # As if the file were large: opened unverified, checked while serving.
    damaged = start_gateway(
        topic_prefix,
        tokens_file,
        GATEWAY_STORE_PATH=str(store),
        GATEWAY_STORE_CHECK_AT_OPEN_MIB="0",
        LOG_LEVEL="INFO",
    )
    await damaged.wait_exit(60)
    assert damaged.proc.wait(1) == 1
    assert "is damaged: integrity check failed" in log_of(damaged)

    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    assert "(no store on disk)" in log_of(gw)
    assert await answers(gw, sample) == before


async def recreate_topics(bootstrap: str, prefix: str, first: int, count: int) -> None:
    """Deletes the prefix's topics and makes them again holding `count` requests from `first`."""
    await delete_topics(bootstrap, prefix)
    for _ in range(100):
        try:
            await ensure_topics(bootstrap, prefix)
            await write_history(bootstrap, prefix, first, count)
            return
        except Exception:  # the deletion is still in progress on the broker
            await asyncio.sleep(0.5)
    raise AssertionError(f"the topics under {prefix} could not be made again")


async def get_request_status(gw: Any, request_id: str) -> grpc.StatusCode:
    """The status a GetRequest of `request_id` fails with (by the command center's token)."""
    async with gw.channel() as channel:
        err = await rpc_error(
            Stubs(channel).requests.GetRequest(
                gateway_pb2.GetRequestRequest(request_id=request_id), metadata=auth("t-cc"), timeout=10
            )
        )
    return err.code()


async def test_a_store_ahead_of_a_recreated_topic_is_set_aside_never_served(
    kafka_bootstrap: str, topic_prefix: str, start_gateway: Any, tokens_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "history.sqlite3"
    await write_history(kafka_bootstrap, topic_prefix, 0, 200)
    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    gw.proc.stop()
    # The topics are recreated (e.g. a cluster rebuilt) and hold less than the store applied.
    await recreate_topics(kafka_bootstrap, topic_prefix, 1000, 10)

    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    assert "is ahead of the topic's end" in log_of(gw)
    now = await answers(gw, ["req-001000"])
    assert now["list:"][0] == 10  # nothing of the old topics is served
    assert await get_request_status(gw, "req-000003") == grpc.StatusCode.NOT_FOUND


async def test_a_store_of_topics_recreated_with_more_records_is_set_aside_never_served(
    kafka_bootstrap: str, topic_prefix: str, start_gateway: Any, tokens_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "history.sqlite3"
    await write_history(kafka_bootstrap, topic_prefix, 0, 20)
    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    gw.proc.stop()
    # The topics are recreated and, by the next start, hold more than the store applied: the
    # checkpoint is behind every end, as if nothing had happened.
    await recreate_topics(kafka_bootstrap, topic_prefix, 2000, 200)

    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    assert "(the topic was deleted and made again)" in log_of(gw)
    now = await answers(gw, ["req-002000"])
    assert now["list:"][0] == 200  # exactly the new topics' requests
    assert await get_request_status(gw, "req-000003") == grpc.StatusCode.NOT_FOUND
    gw.proc.stop()
    # Restarted on the topics it was rebuilt from, it resumes: the marks match.
    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    await gw.wait_serving()
    assert "resuming the history store from its checkpoint" in log_of(gw)
    assert "deleted and made again" not in log_of(gw)


async def test_a_gateway_killed_mid_rebuild_resumes_and_answers_as_one_rebuilt_from_nothing(
    kafka_bootstrap: str, topic_prefix: str, start_gateway: Any, tokens_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "history.sqlite3"
    total = await write_history(kafka_bootstrap, topic_prefix, 0, 12000)
    gw = start_on(start_gateway, topic_prefix, tokens_file, store)
    # While it rebuilds: NOT_SERVING, and calls refused with the reason. Once some batches are
    # committed, the process is killed without warning.
    refusal: grpc.aio.AioRpcError | None = None
    async with gw.channel() as channel:
        stubs = Stubs(channel)
        for _ in range(3000):
            if refusal is not None and checkpoint_records(store) > 0:
                break
            if refusal is None:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    health = await stubs.health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if health.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                        refused = await rpc_error(
                            stubs.requests.ListRequests(
                                gateway_pb2.ListRequestsRequest(), metadata=auth("t-cc"), timeout=5
                            )
                        )
                        # (Before the projector starts, the reason is still "connecting to Kafka".)
                        if "rebuilding the history store" in (refused.details() or ""):
                            refusal = refused
            await asyncio.sleep(0.01)
    applied = checkpoint_records(store)
    gw.proc.kill()
    killed_at = checkpoint_records(store)
    assert 0 < applied <= killed_at < total, f"not killed mid-rebuild: {applied}, {killed_at} of {total}"
    assert refusal is not None and refusal.code() == grpc.StatusCode.UNAVAILABLE
    assert "rebuilding the history store" in (refusal.details() or "")

    resumed = start_on(start_gateway, topic_prefix, tokens_file, store)
    await resumed.wait_serving(timeout_s=180)
    log = log_of(resumed)
    assert "resuming the history store from its checkpoint" in log
    assert f"{total - killed_at} records to read at most" in log
    assert "with 2 worker processes" in log  # the rebuild resumed in the workers
    assert checkpoint_records(store) == total

    # The answers of a rebuild in the gateway process alone, from nothing.
    fresh = start_on(
        start_gateway, topic_prefix, tokens_file, tmp_path / "fresh.sqlite3", GATEWAY_REBUILD_WORKERS="0"
    )
    await fresh.wait_serving(timeout_s=180)
    assert "worker processes" not in log_of(fresh)
    sample = ["req-000000", "req-005001", "req-011999"]
    expected = await answers(fresh, sample)
    assert expected["list:"][0] == 12000
    assert await answers(resumed, sample) == expected

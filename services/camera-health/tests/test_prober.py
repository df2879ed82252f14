"""The RTSP prober against a tiny RTSP responder on 127.0.0.1 (started here, real sockets)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from camera_health.adapters.messages import HEARTBEATS, sample_from_heartbeat
from camera_health.edge.prober import ProbeResult, _targets, probe_heartbeat, probe_rtsp, rtsp_target
from camera_health.sim.fleet import Fleet
from camera_health.sim.rtsp_server import start_rtsp_server
from smartcity.codec import from_timestamp
from smartcity.inventory import cameras
from smartcity.testing import free_port

SDP = (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
       b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")

Answer = Callable[[str, dict[str, str]], bytes | None]


def rtsp_answer(method: str, headers: dict[str, str], *, describe_status: str = "200 OK",
                sdp: bytes = SDP) -> bytes:
    cseq = headers.get("cseq", "0")
    if method == "OPTIONS":
        return f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY\r\n\r\n".encode()
    if method == "DESCRIBE" and describe_status.startswith("200"):
        return (f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\n"
                f"Content-Length: {len(sdp)}\r\n\r\n").encode() + sdp
    return f"RTSP/1.0 {describe_status}\r\nCSeq: {cseq}\r\n\r\n".encode()


@asynccontextmanager
async def responder(answer: Answer | None) -> AsyncIterator[tuple[int, list[str]]]:
    """An RTSP server on a free port; `answer=None` accepts connections and never answers."""
    seen: list[str] = []
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            handlers.add(task)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                request_line, *lines = head.split("\r\n")
                seen.append(request_line)
                pairs = (ln.partition(":") for ln in lines)
                headers = {k.strip().lower(): v.strip() for k, _, v in pairs if k}
                reply = answer(request_line.split(" ")[0], headers) if answer else None
                if reply is None:
                    await asyncio.sleep(3600)  # hang: accept, read, never answer
                writer.write(reply or b"")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, seen
    finally:
        server.close()
        for task in handlers:
            task.cancel()


async def test_a_live_stream_is_reachable_with_options_then_describe() -> None:
    async with responder(rtsp_answer) as (port, seen):
        url = f"rtsp://127.0.0.1:{port}/live/cam-1"
        result = await probe_rtsp(url)
    assert result.reachable, result.error
    assert result.status == 200
    assert result.latency_ms > 0
    assert seen == [f"OPTIONS {url} RTSP/1.0", f"DESCRIBE {url} RTSP/1.0"]


async def test_an_error_status_is_unreachable_with_the_reason() -> None:
    def not_found(method: str, headers: dict[str, str]) -> bytes:
        return rtsp_answer(method, headers, describe_status="404 Stream Not Found")

    async with responder(not_found) as (port, _):
        result = await probe_rtsp(f"rtsp://127.0.0.1:{port}/nope")
    assert not result.reachable
    assert result.status == 404
    assert "404 Stream Not Found" in result.error


async def test_credentials_required_still_counts_as_reachable() -> None:
    def auth(method: str, headers: dict[str, str]) -> bytes:
        return rtsp_answer(method, headers, describe_status="401 Unauthorized")

    async with responder(auth) as (port, _):
        result = await probe_rtsp(f"rtsp://127.0.0.1:{port}/x")
    assert result.reachable and result.status == 401


async def test_describe_without_media_is_unreachable() -> None:
    def empty(method: str, headers: dict[str, str]) -> bytes:
        return rtsp_answer(method, headers, sdp=b"v=0\r\ns=nothing\r\n")

    async with responder(empty) as (port, _):
        result = await probe_rtsp(f"rtsp://127.0.0.1:{port}/x")
    assert not result.reachable and "media" in result.error


async def test_a_refused_connection_is_unreachable() -> None:
    port = free_port()  # bound then released: nothing listens there
    result = await probe_rtsp(f"rtsp://127.0.0.1:{port}/cam", connect_timeout_s=2.0)
    assert not result.reachable
    assert result.status is None
    assert "connect failed" in result.error


async def test_a_server_that_never_answers_times_out_quickly_as_unreachable() -> None:
    async with responder(None) as (port, seen):
        started = time.monotonic()
        result = await probe_rtsp(f"rtsp://127.0.0.1:{port}/cam", read_timeout_s=0.5)
        took = time.monotonic() - started
    assert not result.reachable
    assert "no answer within 0.5s" in result.error
    assert seen and seen[0].startswith("OPTIONS")
    assert took < 5  # bounded by the read timeout, not by the hanging server


async def test_an_answer_that_is_not_rtsp_is_unreachable() -> None:
    async with responder(lambda m, h: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as (port, _):
        result = await probe_rtsp(f"rtsp://127.0.0.1:{port}/cam")
    assert not result.reachable and "not an RTSP status line" in result.error


async def test_an_answer_to_another_request_is_rejected() -> None:
    async with responder(lambda m, h: b"RTSP/1.0 200 OK\r\nCSeq: 99\r\n\r\n") as (port, _):
        result = await probe_rtsp(f"rtsp://127.0.0.1:{port}/cam")
    assert not result.reachable and "CSeq" in result.error


def test_rtsp_urls_default_to_port_554_and_other_schemes_are_refused() -> None:
    assert rtsp_target("rtsp://10.0.0.5/stream1") == ("10.0.0.5", 554)
    assert rtsp_target("rtsp://cam.local:8554/a") == ("cam.local", 8554)
    with pytest.raises(ValueError):
        rtsp_target("http://10.0.0.5/stream1")


def test_a_probe_result_becomes_a_valid_probe_heartbeat() -> None:
    result = ProbeResult("rtsp://x/y", reachable=False, latency_ms=12.5, error="refused")
    hb = probe_heartbeat("cam-terminal-1", "terminal", 7, 1_800_000_000.25, result)
    decoded = HEARTBEATS.decode(hb.SerializeToString())
    sample = sample_from_heartbeat(decoded)
    assert (sample.source, sample.reachable, sample.seq, sample.probe_latency_ms) == ("probe", False, 7, 12.5)
    assert from_timestamp(decoded.observed_time) == 1_800_000_000.25


async def test_the_prober_sees_the_simulated_cameras_streams_go_down_and_up() -> None:
    from smartcity.inventory import cameras

    fleet = Fleet(cameras())
    server = await start_rtsp_server("127.0.0.1", 0, fleet.stream_up)
    base = f"rtsp://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        assert (await probe_rtsp(f"{base}/cam-terminal-1")).reachable
        fleet.command({"fault": "stream_down", "target": "terminal"})
        down = await probe_rtsp(f"{base}/cam-terminal-1")
        assert not down.reachable and down.status == 503
        assert (await probe_rtsp(f"{base}/cam-nowhere")).status == 404
        fleet.command({"fault": "clear", "target": "terminal"})
        assert (await probe_rtsp(f"{base}/cam-terminal-1")).reachable
    finally:
        server.close()


def test_probe_targets_from_json_or_from_a_base_url_for_every_camera() -> None:
    assert _targets('{"cam-1": "rtsp://10.0.0.9/s1"}') == {"cam-1": "rtsp://10.0.0.9/s1"}
    every = _targets("", "rtsp://127.0.0.1:9554/")
    assert list(every) == [c.camera_id for c in cameras()]
    assert every["cam-alun-alun-1"] == "rtsp://127.0.0.1:9554/cam-alun-alun-1"
    for bad in ('{"cam-1": "http://x/"}', '["rtsp://x/"]'):
        with pytest.raises(ValueError):
            _targets(bad)

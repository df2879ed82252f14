"""The active RTSP prober: is a camera's stream answering, and how fast?

`probe_rtsp(url)` connects over TCP, sends `OPTIONS` then `DESCRIBE` (RTSP/1.0, CSeq 1 and 2),
parses each status line and measures the latency from connect to the end of the DESCRIBE
answer. It never raises for a network problem: a refused or timed-out connection, a server
that accepts but never answers (read timeout), garbage, or an error status all come back as
`reachable=False` with the reason. Reachable means DESCRIBE answered 200 with at least one media
description (`m=` line) in its SDP, or 401: the stream server is up and asks for credentials,
which is a configuration matter, not an outage.

In health, a probe heartbeat feeds the `stream` check only: unreachable -> CRITICAL "stream
unreachable" (see `core/checks.py`); the prober counts its own seq (source "probe").

`python -m camera_health.edge.prober` probes CAMERA_PROBE_TARGETS every CAMERA_PROBE_INTERVAL_S and
sends the results to camera.heartbeats.v1:

    CAMERA_PROBE_TARGETS            JSON {"<camera_id>": "rtsp://host:port/path", ...}
    CAMERA_PROBE_BASE_URL           instead: probe <base>/<camera_id> for every camera of the
                                    inventory, e.g. rtsp://127.0.0.1:9554 (the simulator's
                                    SIM_RTSP_PORT)
    CAMERA_PROBE_INTERVAL_S         default 30
    CAMERA_PROBE_CONNECT_TIMEOUT_S  default 2
    CAMERA_PROBE_READ_TIMEOUT_S     default 3
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from smartcity import topic_names
from smartcity.codec import to_timestamp
from smartcity.v1 import camera_pb2

log = logging.getLogger("camera_health.edge.prober")

DEFAULT_RTSP_PORT = 554
MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "smartcity-camera-prober/1"


@dataclass(frozen=True)
class ProbeResult:
    url: str
    reachable: bool
    latency_ms: float
    status: int | None = None
    error: str = ""


class RtspError(Exception):
    """An answer that is not RTSP, or not the answer to our request."""


@dataclass(frozen=True)
class RtspResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def rtsp_target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "rtsp" or not parts.hostname:
        raise ValueError(f"not an rtsp:// URL: {url!r}")
    return parts.hostname, parts.port or DEFAULT_RTSP_PORT


async def probe_rtsp(url: str, connect_timeout_s: float = 2.0, read_timeout_s: float = 3.0) -> ProbeResult:
    host, port = rtsp_target(url)
    started = time.perf_counter()

    def result(reachable: bool, status: int | None = None, error: str = "") -> ProbeResult:
        return ProbeResult(url, reachable, (time.perf_counter() - started) * 1000, status, error)

    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), connect_timeout_s)
    except TimeoutError:
        return result(False, error=f"connect timed out after {connect_timeout_s:g}s")
    except OSError as exc:
        return result(False, error=f"connect failed: {exc.strerror or exc}")
    try:
        session = _Session(reader, writer, url, read_timeout_s)
        options = await session.request("OPTIONS")
        if options.status != 401 and not 200 <= options.status < 300:
            return result(False, options.status, f"OPTIONS answered {options.status} {options.reason}")
        describe = await session.request("DESCRIBE", Accept="application/sdp")
        return result(*_judge_describe(describe))
    except TimeoutError:
        return result(False, error=f"no answer within {read_timeout_s:g}s")
    except (OSError, RtspError, asyncio.IncompleteReadError) as exc:
        return result(False, error=f"bad RTSP exchange: {exc}")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _judge_describe(response: RtspResponse) -> tuple[bool, int, str]:
    if response.status == 401:
        return True, 401, "stream answers but asks for credentials"
    if response.status != 200:
        return False, response.status, f"DESCRIBE answered {response.status} {response.reason}"
    media = [line for line in response.body.decode("utf-8", "replace").splitlines() if line.startswith("m=")]
    if not media:
        return False, 200, "DESCRIBE answered without a media description"
    return True, 200, ""


@dataclass
class _Session:
    """One RTSP connection to `url`: requests in turn, each answer within `timeout_s`."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    url: str
    timeout_s: float
    cseq: int = 0

    async def request(self, method: str, **extra: str) -> RtspResponse:
        self.cseq += 1
        lines = [f"{method} {self.url} RTSP/1.0", f"CSeq: {self.cseq}", f"User-Agent: {USER_AGENT}"]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        await self.writer.drain()
        response = await asyncio.wait_for(_read_response(self.reader), self.timeout_s)
        if response.headers.get("cseq") != str(self.cseq):
            raise RtspError(f"answer to {method} carries CSeq {response.headers.get('cseq')!r}, "
                            f"not {self.cseq}")
        return response


async def _read_response(reader: asyncio.StreamReader) -> RtspResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("utf-8", "replace").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("RTSP/") or not parts[1].isdigit():
        raise RtspError(f"not an RTSP status line: {status_line[:80]!r}")
    headers = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_BODY_BYTES:
        raise RtspError(f"body of {length} bytes is too large")
    body = await reader.readexactly(length) if length else b""
    return RtspResponse(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body)


def probe_heartbeat(camera_id: str, site_id: str, seq: int, observed_at: float,
                    result: ProbeResult) -> camera_pb2.CameraHeartbeat:
    """The probe's verdict as a heartbeat of the camera (source "probe")."""
    return camera_pb2.CameraHeartbeat(camera_id=camera_id, site_id=site_id, seq=seq,
                                      observed_time=to_timestamp(observed_at), source="probe",
                                      reachable=result.reachable,
                                      probe_latency_ms=round(result.latency_ms, 3))


# --- the runner -------------------------------------------------------------------------------

def _targets(raw: str, base_url: str = "") -> dict[str, str]:
    if not raw and base_url:
        from smartcity.inventory import cameras

        raw = json.dumps({c.camera_id: f"{base_url.rstrip('/')}/{c.camera_id}" for c in cameras()})
    targets = json.loads(raw or "{}")
    if not isinstance(targets, dict) or not all(isinstance(v, str) for v in targets.values()):
        raise ValueError('CAMERA_PROBE_TARGETS must be a JSON object {"<camera_id>": "rtsp://..."}')
    for url in targets.values():
        rtsp_target(url)
    return targets


async def run_prober(targets: dict[str, str], interval_s: float, connect_s: float, read_s: float) -> None:
    from smartcity.inventory import cameras
    from smartcity.kafka import make_producer
    from smartcity.settings import PlatformSettings
    from smartcity.topics import load_catalogue

    settings = PlatformSettings.from_env("camera-prober")
    topic = load_catalogue()[topic_names.CAMERA_HEARTBEATS].full_name(settings.topic_prefix)
    sites = {c.camera_id: c.site_id for c in cameras()}
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    producer = make_producer(settings)
    await producer.start()
    seq = 0
    log.info("prober ready: %d camera(s) every %gs -> %s", len(targets), interval_s, topic)
    try:
        while not stop.is_set():
            seq, at = seq + 1, time.time()
            results = await asyncio.gather(*(probe_rtsp(u, connect_s, read_s) for u in targets.values()))
            for camera_id, res in zip(targets, results, strict=True):
                hb = probe_heartbeat(camera_id, sites.get(camera_id, ""), seq, at, res)
                await producer.send_and_wait(topic, hb.SerializeToString(), key=camera_id.encode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
    finally:
        await producer.stop()


def main() -> None:
    from smartcity.observability import configure_logging
    from smartcity.settings import PlatformSettings, env_float, env_str

    configure_logging(PlatformSettings.from_env("camera-prober"))
    targets = _targets(env_str("CAMERA_PROBE_TARGETS", ""), env_str("CAMERA_PROBE_BASE_URL", ""))
    asyncio.run(run_prober(targets,
                           env_float("CAMERA_PROBE_INTERVAL_S", 30.0),
                           env_float("CAMERA_PROBE_CONNECT_TIMEOUT_S", 2.0),
                           env_float("CAMERA_PROBE_READ_TIMEOUT_S", 3.0)))


if __name__ == "__main__":
    main()

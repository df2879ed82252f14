"""A minimal RTSP responder for the simulated cameras (OPTIONS and DESCRIBE only).

`rtsp://host:port/<camera_id>` answers like a camera whose stream is up (200 with an SDP
describing one H.264 video track), 503 when the simulator says its stream is down (faults
`offline`, `stream_down`), 404 for an unknown camera. Enough for the RTSP prober to have
something real to probe in demos; it streams no media.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from urllib.parse import urlsplit

StreamState = Callable[[str], bool | None]  # camera id -> up, down, or None when unknown

_SDP = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns={name}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n")


def answer(method: str, url: str, cseq: str, stream_state: StreamState) -> bytes:
    camera_id = urlsplit(url).path.strip("/")
    head = f"CSeq: {cseq}\r\nServer: smartcity-camera-sim\r\n"
    if method == "OPTIONS":
        return f"RTSP/1.0 200 OK\r\n{head}Public: OPTIONS, DESCRIBE\r\n\r\n".encode()
    if method != "DESCRIBE":
        return f"RTSP/1.0 405 Method Not Allowed\r\n{head}Allow: OPTIONS, DESCRIBE\r\n\r\n".encode()
    state = stream_state(camera_id)
    if state is None:
        return f"RTSP/1.0 404 Not Found\r\n{head}\r\n".encode()
    if not state:
        return f"RTSP/1.0 503 Service Unavailable\r\n{head}\r\n".encode()
    body = _SDP.format(name=camera_id).encode()
    return (f"RTSP/1.0 200 OK\r\n{head}Content-Base: {url}/\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def start_rtsp_server(host: str, port: int, stream_state: StreamState) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("utf-8", "replace")
                request_line, *lines = head.split("\r\n")
                method, url, *_ = [*request_line.split(" "), "", ""]
                cseq = next((v.strip() for k, _, v in (ln.partition(":") for ln in lines)
                             if k.strip().lower() == "cseq"), "0")
                writer.write(answer(method, url, cseq, stream_state))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)

"""`smartcity`: the command-line client of the gateway, for operators and for trying the API.

    smartcity snapshot                         the city at a glance
    smartcity aps --health critical            access points (also: ap ID, cameras, camera ID)
    smartcity incidents --open                 camera incidents
    smartcity sites                            WiFi statistics per site
    smartcity submit --category roads --title "Jalan berlubang" --description "..."
    smartcity requests --open                  requests visible to the token (also: request ID, events ID)
    smartcity transition REQ acknowledge       lifecycle: acknowledge assign start resolve close reject reopen
    smartcity comment REQ "text"
    smartcity watch devices|requests|snapshot  live changes
    smartcity top                              live terminal view of the city
    smartcity token-hash TOKEN                 SHA-256 of a new token, for the token file
    smartcity completion bash|zsh              shell completion: eval "$(smartcity completion bash)"

Connection: --address (env SMARTCITY_GATEWAY, default 127.0.0.1:50051), --token (env
SMARTCITY_TOKEN); for a TLS gateway --tls-system-ca (env SMARTCITY_TLS_SYSTEM_CA=1) trusts the
system's CA certificates, --tls-ca FILE (env SMARTCITY_TLS_CA) one CA file. Tables by default,
JSON with --json. Exit status 0 on success, 1 when the gateway refused the call or could not be
reached, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import ssl
import sys
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, suppress
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import argcomplete
import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.json_format import MessageToDict
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rich.console import Console
from rich.live import Live

from smartcity.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, requests_pb2
from smartcity_cli import render, top

DEFAULT_ADDRESS = "127.0.0.1:50051"
COMPLETION_SHELLS = ("bash", "zsh")
# A watch stream that ends with UNAVAILABLE (the gateway closed an old connection so watchers
# spread over new replicas, or a replica shut down) is opened again, at most this many times in
# a row without a message in between.
MAX_RESUBSCRIBE = 5
# gRPC's words for "nothing answered at that address" (the gateway's own UNAVAILABLE says why).
_UNREACHABLE = re.compile(
    r"failed to connect|connection refused|dns|handshake|socket closed|unreachable|resolve", re.IGNORECASE
)

# Command-line words for the contract's enums (values typed Any: protobuf enums are ints on the wire).
HEALTHS: dict[str, Any] = {"ok": 1, "problem": 2, "critical": 3}
WINDOWS: dict[str, Any] = {"minute": 1, "hour": 2, "day": 3}
KINDS: dict[str, Any] = {"ap": 1, "camera": 2}
SCOPES: dict[str, Any] = {"category": 1, "opd": 2}
ACTIONS: dict[str, Any] = {
    name.removeprefix("REQUEST_ACTION_").lower(): value
    for name, value in gateway_pb2.RequestAction.items()
    if value
}
STATUSES: dict[str, Any] = {
    name.removeprefix("REQUEST_STATUS_").lower(): value
    for name, value in requests_pb2.RequestStatus.items()
    if value
}
PRIORITIES: dict[str, Any] = {
    name.removeprefix("PRIORITY_").lower(): value for name, value in requests_pb2.Priority.items() if value
}


RESUBSCRIBED = object()  # marks a new subscription in `Client.follow`'s messages


@dataclass
class Client:
    """A connection to the gateway and how to print what it says."""

    devices: Any
    overview: Any
    requests: Any
    protection: Any
    metadata: list[tuple[str, str]]
    timeout: float
    as_json: bool

    def call(self, method: Callable[..., Awaitable[Any]], request: Any) -> Awaitable[Any]:
        return method(request, metadata=self.metadata, timeout=self.timeout)

    def stream(self, method: Callable[..., Any], request: Any) -> Any:
        return method(request, metadata=self.metadata)

    async def follow(self, method: Callable[..., Any], request: Any) -> AsyncGenerator[Any, None]:
        """The messages of a watch stream, subscribing again when it ends with UNAVAILABLE.

        Between two subscriptions it yields RESUBSCRIBED: what follows starts over (with the
        snapshot again when the request asks for one)."""
        failures = 0
        while True:
            call = self.stream(method, request)
            try:
                async for reply in _replies(call):
                    failures = 0
                    yield reply
                return
            except grpc.aio.AioRpcError as err:
                if err.code() is not grpc.StatusCode.UNAVAILABLE or failures >= MAX_RESUBSCRIBE:
                    raise
                failures += 1
                print(f"stream ended ({err.details()}); re-subscribing…", file=sys.stderr, flush=True)
            finally:
                call.cancel()
            await asyncio.sleep(min(0.1 * 2**failures, 5.0))
            yield RESUBSCRIBED

    def show(self, message: Any, text: str) -> None:
        print(render.to_json(message) if self.as_json else text)

    def show_list(self, items: list[Any], text: str) -> None:
        if self.as_json:
            print(
                json.dumps(
                    [MessageToDict(i, preserving_proto_field_name=True) for i in items],
                    indent=2,
                    ensure_ascii=False,
                )
            )
        else:
            print(text)


# ---------------- commands ----------------


async def cmd_snapshot(c: Client, args: argparse.Namespace) -> None:
    reply = await c.call(c.overview.GetCitySnapshot, gateway_pb2.GetCitySnapshotRequest())
    c.show(reply.snapshot, render.snapshot(reply.snapshot))


async def cmd_sites(c: Client, args: argparse.Namespace) -> None:
    req = gateway_pb2.ListSiteStatsRequest(site_id=args.site or "", window=WINDOWS.get(args.window or "", 0))
    reply = await c.call(c.overview.ListSiteStats, req)
    c.show_list(list(reply.stats), render.site_stats(reply.stats))


def _device_filter(args: argparse.Namespace) -> Any:
    flt = gateway_pb2.DeviceFilter(
        site_id=args.site or "", health=HEALTHS.get(args.health or "", 0), radius_meters=args.radius or 0.0
    )
    if args.near:
        lat, lon = args.near
        flt.near.CopyFrom(common_pb2.GeoPoint(latitude=lat, longitude=lon))
    return flt


async def _pages(fetch: Callable[[str], Awaitable[Any]], field: str, every: bool) -> list[Any]:
    """Items of one page, or of every page with --all."""
    items: list[Any] = []
    token = ""
    while True:
        reply = await fetch(token)
        items += list(getattr(reply, field))
        token = reply.next_page_token
        if not (every and token):
            if token and not every:
                print(f"(more: {reply.total_size} in all; use --all)", file=sys.stderr)
            return items


async def cmd_aps(c: Client, args: argparse.Namespace) -> None:
    async def fetch(token: str) -> Any:
        req = gateway_pb2.ListAccessPointsRequest(
            filter=_device_filter(args), page_size=args.page_size, page_token=token
        )
        return await c.call(c.devices.ListAccessPoints, req)

    items = await _pages(fetch, "access_points", args.all)
    c.show_list(items, render.access_points(items))


async def cmd_ap(c: Client, args: argparse.Namespace) -> None:
    reply = await c.call(c.devices.GetAccessPoint, gateway_pb2.GetAccessPointRequest(ap_id=args.id))
    c.show(reply.access_point, render.access_points([reply.access_point]))


async def cmd_cameras(c: Client, args: argparse.Namespace) -> None:
    async def fetch(token: str) -> Any:
        req = gateway_pb2.ListCamerasRequest(
            filter=_device_filter(args), page_size=args.page_size, page_token=token
        )
        return await c.call(c.devices.ListCameras, req)

    items = await _pages(fetch, "cameras", args.all)
    c.show_list(items, render.cameras(items))


async def cmd_camera(c: Client, args: argparse.Namespace) -> None:
    reply = await c.call(c.devices.GetCamera, gateway_pb2.GetCameraRequest(camera_id=args.id))
    c.show(reply.camera, render.cameras([reply.camera]))


async def cmd_incidents(c: Client, args: argparse.Namespace) -> None:
    async def fetch(token: str) -> Any:
        req = gateway_pb2.ListIncidentsRequest(
            camera_id=args.camera or "",
            site_id=args.site or "",
            open_only=args.open,
            page_size=args.page_size,
            page_token=token,
        )
        return await c.call(c.devices.ListIncidents, req)

    items = await _pages(fetch, "incidents", args.all)
    c.show_list(items, render.incidents(items))


async def cmd_submit(c: Client, args: argparse.Namespace) -> None:
    key = args.idempotency_key or f"cli-{uuid.uuid4().hex}"
    req = gateway_pb2.SubmitRequestRequest(
        idempotency_key=key,
        category=args.category,
        title=args.title,
        description=args.description,
        address=args.street or "",
        media_url=args.media_url or "",
        priority=PRIORITIES.get(args.priority or "", 0),
        reporter=requests_pb2.Reporter(name=args.name or "", phone=args.phone or "", email=args.email or ""),
    )
    if args.at:
        req.location.CopyFrom(common_pb2.GeoPoint(latitude=args.at[0], longitude=args.at[1]))
    reply = await c.call(c.requests.SubmitRequest, req)
    note = "deduplicated: the original request" if reply.deduplicated else "submitted"
    c.show(reply, f"{note} (idempotency key {key})\n{render.request_detail(reply.request)}")


async def cmd_requests(c: Client, args: argparse.Namespace) -> None:
    async def fetch(token: str) -> Any:
        req = gateway_pb2.ListRequestsRequest(
            opd_code=args.opd or "",
            category=args.category or "",
            status=STATUSES.get(args.status or "", 0),
            open_only=args.open,
            overdue_only=args.overdue,
            page_size=args.page_size,
            page_token=token,
        )
        return await c.call(c.requests.ListRequests, req)

    items = await _pages(fetch, "requests", args.all)
    c.show_list(items, render.requests(items))


async def cmd_request(c: Client, args: argparse.Namespace) -> None:
    reply = await c.call(c.requests.GetRequest, gateway_pb2.GetRequestRequest(request_id=args.id))
    c.show(reply.request, render.request_detail(reply.request))


async def cmd_events(c: Client, args: argparse.Namespace) -> None:
    async def fetch(token: str) -> Any:
        req = gateway_pb2.ListRequestEventsRequest(request_id=args.id, page_size=1000, page_token=token)
        return await c.call(c.requests.ListRequestEvents, req)

    items = await _pages(fetch, "events", True)
    c.show_list(items, render.request_events(items))


async def cmd_transition(c: Client, args: argparse.Namespace) -> None:
    req = gateway_pb2.TransitionRequestRequest(
        request_id=args.id,
        action=ACTIONS[args.action],
        note=args.note or "",
        assignee=args.assignee or "",
        expected_version=args.expected_version,
    )
    reply = await c.call(c.requests.TransitionRequest, req)
    c.show(reply, render.request_detail(reply.request))


async def cmd_comment(c: Client, args: argparse.Namespace) -> None:
    req = gateway_pb2.CommentOnRequestRequest(request_id=args.id, text=args.text)
    reply = await c.call(c.requests.CommentOnRequest, req)
    c.show(reply.request, f"commented ({reply.request.comment_count} comments)")


async def cmd_erase_contact(c: Client, args: argparse.Namespace) -> None:
    req = gateway_pb2.EraseContactDataRequest(request_id=args.id, reason=args.reason)
    reply = await c.call(c.protection.EraseContactData, req)
    c.show(reply, render.erasure(args.id, reply))


async def cmd_stats(c: Client, args: argparse.Namespace) -> None:
    req = gateway_pb2.ListRequestStatsRequest(scope=SCOPES.get(args.scope or "", 0))
    reply = await c.call(c.requests.ListRequestStats, req)
    c.show_list(list(reply.stats), render.request_stats(reply.stats))


async def cmd_watch(c: Client, args: argparse.Namespace) -> None:
    if args.what == "devices":
        replies = c.follow(
            c.devices.WatchDevices,
            gateway_pb2.WatchDevicesRequest(
                send_snapshot=args.snapshot, kind=KINDS.get(args.kind or "", 0), site_id=args.site or ""
            ),
        )
        line: Callable[[Any], str] = render.device_change
    elif args.what == "requests":
        replies = c.follow(
            c.requests.WatchRequests,
            gateway_pb2.WatchRequestsRequest(
                send_snapshot=args.snapshot, opd_code=args.opd or "", category=args.category or ""
            ),
        )
        line = render.request_change
    else:
        interval = Duration()
        interval.FromNanoseconds(int(args.interval * 1e9))
        replies = c.follow(
            c.overview.WatchCitySnapshot, gateway_pb2.WatchCitySnapshotRequest(interval=interval)
        )

        def line(reply: Any) -> str:
            return render.snapshot(reply.snapshot) + "\n"

    # On stderr: stdout stays the changes alone, for pipes and --json.
    print(f"watching {args.what} on {args.address}… (Ctrl-C to stop)", file=sys.stderr, flush=True)
    async with aclosing(replies):
        await _follow(replies, line, args, c.as_json)


async def _follow(
    replies: AsyncGenerator[Any, None], line: Callable[[Any], str], args: argparse.Namespace, as_json: bool
) -> None:
    """Prints each message of a stream; stops after --count live changes (those after the snapshot)
    or --duration seconds (0 = no limit)."""
    count, duration = args.count, args.duration
    with_snapshot = args.snapshot and args.what != "snapshot"
    live = not with_snapshot
    shown = 0

    async def consume() -> None:
        nonlocal shown, live
        async for reply in replies:
            if reply is RESUBSCRIBED:
                live = not with_snapshot  # the snapshot comes again before live changes
                continue
            text = (
                json.dumps(MessageToDict(reply, preserving_proto_field_name=True)) if as_json else line(reply)
            )
            print(text, flush=True)
            if _is_snapshot_end(reply):
                live = True
            elif live:
                shown += 1
            if count and shown >= count:
                return

    if duration:
        with suppress(TimeoutError):
            await asyncio.wait_for(consume(), timeout=duration)
    else:
        await consume()


def _is_snapshot_end(reply: Any) -> bool:
    return "snapshot_end" in reply.DESCRIPTOR.fields_by_name and reply.HasField("snapshot_end")


async def _replies(call: Any) -> AsyncIterator[Any]:
    while True:
        reply = await call.read()
        if reply is grpc.aio.EOF:
            return
        yield reply


async def cmd_top(c: Client, args: argparse.Namespace) -> None:
    """Live view: the watch streams feed a TopState, redrawn in place every --refresh seconds."""
    state = render.TopState()
    ready = {"devices": asyncio.Event(), "requests": asyncio.Event(), "snapshot": asyncio.Event()}
    interval = Duration()
    interval.FromNanoseconds(int(max(args.refresh, 1.0) * 1e9))

    async def devices() -> None:
        replies = c.follow(c.devices.WatchDevices, gateway_pb2.WatchDevicesRequest(send_snapshot=True))
        async with aclosing(replies):
            async for reply in replies:
                if reply is RESUBSCRIBED:
                    state.incidents.clear()  # the new snapshot lists the ones still open
                    continue
                state.apply_device(reply)
                if _is_snapshot_end(reply):
                    ready["devices"].set()

    async def requests() -> None:
        replies = c.follow(c.requests.WatchRequests, gateway_pb2.WatchRequestsRequest(send_snapshot=True))
        try:
            async with aclosing(replies):
                async for reply in replies:
                    if reply is not RESUBSCRIBED:
                        state.apply_request(reply)
                    if reply is not RESUBSCRIBED and _is_snapshot_end(reply):
                        ready["requests"].set()
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.PERMISSION_DENIED:
                raise
            state.requests_visible = False
            ready["requests"].set()

    async def snapshots() -> None:
        request = gateway_pb2.WatchCitySnapshotRequest(interval=interval)
        replies = c.follow(c.overview.WatchCitySnapshot, request)
        async with aclosing(replies):
            async for reply in replies:
                if reply is not RESUBSCRIBED:
                    state.snapshot = reply.snapshot
                    ready["snapshot"].set()

    tasks = [asyncio.create_task(f()) for f in (devices, requests, snapshots)]
    first_frame = asyncio.create_task(_all_set(list(ready.values())))
    try:
        done, _ = await asyncio.wait(
            [first_frame, *tasks], timeout=c.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for task in tasks:
            if task in done:
                task.result()  # a stream failed before the first frame: raise its error
        await _draw(state, tasks, args)
    finally:
        for task in [first_frame, *tasks]:
            task.cancel()
        await asyncio.gather(first_frame, *tasks, return_exceptions=True)


async def _draw(state: render.TopState, tasks: list[asyncio.Task[None]], args: argparse.Namespace) -> None:
    """One frame (--once), redrawn in place on a terminal, or one frame after another when piped.

    rich's Console measures the terminal's width and colours by health only on a terminal; on a
    pipe it writes plain text, so nothing here writes an escape code itself."""
    console = Console()
    if args.once:
        console.print(top.view(state, rows=args.rows))
        return

    def alive() -> None:
        for task in tasks:
            if task.done():
                task.result()  # a stream ended or failed: raise its error

    if not console.is_terminal:
        while True:
            alive()
            console.print(top.view(state, rows=args.rows))
            console.print()
            await asyncio.sleep(args.refresh)
    with Live(top.view(state, rows=args.rows), console=console, auto_refresh=False, screen=True) as live:
        while True:
            alive()
            live.update(top.view(state, rows=args.rows), refresh=True)
            await asyncio.sleep(args.refresh)


async def _all_set(events: list[asyncio.Event]) -> None:
    for event in events:
        await event.wait()


COMMANDS: dict[str, Callable[[Client, argparse.Namespace], Awaitable[None]]] = {
    "snapshot": cmd_snapshot,
    "sites": cmd_sites,
    "aps": cmd_aps,
    "ap": cmd_ap,
    "cameras": cmd_cameras,
    "camera": cmd_camera,
    "incidents": cmd_incidents,
    "submit": cmd_submit,
    "requests": cmd_requests,
    "request": cmd_request,
    "events": cmd_events,
    "transition": cmd_transition,
    "comment": cmd_comment,
    "erase-contact": cmd_erase_contact,
    "stats": cmd_stats,
    "watch": cmd_watch,
    "top": cmd_top,
}


# ---------------- arguments ----------------


def _point(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LAT,LON (e.g. -7.3883,109.3639), got {text!r}") from None
    return lat, lon


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartcity", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument(
        "--address",
        default=os.environ.get("SMARTCITY_GATEWAY", DEFAULT_ADDRESS),
        metavar="HOST:PORT",
        help=f"the gateway (env SMARTCITY_GATEWAY, default {DEFAULT_ADDRESS})",
    )
    parser.add_argument(
        "--token", default=os.environ.get("SMARTCITY_TOKEN", ""), help="bearer token (env SMARTCITY_TOKEN)"
    )
    parser.add_argument(
        "--tls-system-ca",
        action="store_true",
        default=os.environ.get("SMARTCITY_TLS_SYSTEM_CA", "") not in ("", "0", "false"),
        help="connect with TLS, trusting the system's CA certificates (SSL_CERT_FILE or the OS "
        "bundle; env SMARTCITY_TLS_SYSTEM_CA=1)",
    )
    parser.add_argument(
        "--tls-ca",
        default=os.environ.get("SMARTCITY_TLS_CA", ""),
        metavar="FILE",
        help="connect with TLS, trusting this CA certificate (PEM; env SMARTCITY_TLS_CA)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call in seconds")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _device_commands(sub)
    _request_commands(sub)
    _live_commands(sub)
    hashing = _command(sub, "token-hash", help="print the SHA-256 of a token for the token file")
    hashing.add_argument("token", help="the new bearer token (give it to the client, never store it)")
    completion = _command(sub, "completion", help="print the shell completion script")
    completion.add_argument(
        "shell", choices=COMPLETION_SHELLS, help='e.g. eval "$(smartcity completion bash)" in ~/.bashrc'
    )
    return parser


def version() -> str:
    try:
        return metadata.version("smartcity-cli")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _device_commands(sub: Any) -> None:
    _command(sub, "snapshot", help="the city at a glance")
    sites = _command(sub, "sites", help="WiFi statistics per site")
    sites.add_argument("--site", help="only this site (e.g. alun-alun)")
    sites.add_argument("--window", choices=sorted(WINDOWS), help="only this window")
    for name, noun in (("aps", "access points"), ("cameras", "cameras")):
        listing = _command(sub, name, help=f"list {noun}")
        listing.add_argument("--site", help="only this site (e.g. alun-alun)")
        listing.add_argument("--health", choices=sorted(HEALTHS), help="only this health")
        listing.add_argument("--near", type=_point, metavar="LAT,LON", help="e.g. --near=-7.3883,109.3639")
        listing.add_argument("--radius", type=float, metavar="METRES", help="with --near; at most 50000")
        _paging(listing)
    _command(sub, "ap", help="one access point").add_argument("id", help="access point id")
    _command(sub, "camera", help="one camera").add_argument("id", help="camera id")
    incidents = _command(sub, "incidents", help="camera incidents")
    incidents.add_argument("--open", action="store_true", help="only open incidents")
    incidents.add_argument("--camera", help="only this camera")
    incidents.add_argument("--site", help="only this site")
    _paging(incidents)


def _request_commands(sub: Any) -> None:
    submit = _command(sub, "submit", help="submit a citizen request")
    submit.add_argument(
        "--category", required=True, help="permits, health_info, emergency, roads, waste, ..."
    )
    submit.add_argument("--title", required=True, help="a short title (at most 200 characters)")
    submit.add_argument(
        "--description", required=True, help="what is wrong; several lines are fine (at most 4000)"
    )
    submit.add_argument("--at", type=_point, metavar="LAT,LON", help="e.g. --at=-7.3883,109.3639")
    submit.add_argument("--street", help="street address of the problem")
    submit.add_argument("--media-url", help="http(s) URL of a photo or video")
    submit.add_argument("--name", help="the reporter's name (only the routed OPD sees it)")
    submit.add_argument("--phone", help="the reporter's phone (only the routed OPD sees it)")
    submit.add_argument("--email", help="the reporter's e-mail (only the routed OPD sees it)")
    submit.add_argument("--priority", choices=sorted(PRIORITIES), help="default: the category's")
    submit.add_argument(
        "--idempotency-key",
        help="reuse it, with the same body, to retry safely (default: a new one)",
    )
    requests = _command(sub, "requests", help="list requests")
    requests.add_argument("--opd", help="only requests routed to this OPD (e.g. PUPR)")
    requests.add_argument("--category", help="only this category (e.g. roads)")
    requests.add_argument("--status", choices=sorted(STATUSES), help="only this status")
    requests.add_argument("--open", action="store_true", help="only open requests")
    requests.add_argument("--overdue", action="store_true", help="only overdue requests")
    _paging(requests)
    _command(sub, "request", help="one request with its history").add_argument("id", help="request id")
    _command(sub, "events", help="the audit trail of a request").add_argument("id", help="request id")
    transition = _command(sub, "transition", help="move a request through its lifecycle")
    transition.add_argument("id", help="request id")
    transition.add_argument("action", choices=sorted(ACTIONS), help="the lifecycle step")
    transition.add_argument("--note", help="note; the reason for reject and reopen")
    transition.add_argument("--assignee", help="required for assign")
    transition.add_argument(
        "--expected-version", type=int, default=0, help="refuse if the request moved on (0 = any)"
    )
    comment = _command(sub, "comment", help="comment on a request")
    comment.add_argument("id", help="request id")
    comment.add_argument("text", help="the comment; several lines are fine")
    erase = _command(sub, "erase-contact", help="erase the reporter's contact data (scope data-protection)")
    erase.add_argument("id", help="a request of the reporter: every request with the same contact is erased")
    erase.add_argument("--reason", required=True, help="why, for the audit trail (no personal data)")
    stats = _command(sub, "stats", help="request statistics per category and OPD")
    stats.add_argument("--scope", choices=sorted(SCOPES), help="only per category or only per OPD")


def _live_commands(sub: Any) -> None:
    watch = _command(sub, "watch", help="follow live changes")
    watch.add_argument("what", choices=["devices", "requests", "snapshot"], help="which stream to follow")
    watch.add_argument("--snapshot", action="store_true", help="start with the current state")
    watch.add_argument("--kind", choices=sorted(KINDS), help="devices: only this kind")
    watch.add_argument("--site", help="devices: only this site")
    watch.add_argument("--opd", help="requests: only this OPD")
    watch.add_argument("--category", help="requests: only this category")
    watch.add_argument("--interval", type=float, default=2.0, help="snapshot: seconds between snapshots")
    watch.add_argument("--count", type=int, default=0, help="stop after this many changes")
    watch.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    top = _command(sub, "top", help="live terminal view of the city")
    top.add_argument("--refresh", type=float, default=2.0, help="seconds between redraws")
    top.add_argument("--rows", type=int, default=10, help="rows per panel")
    top.add_argument("--once", action="store_true", help="print one frame and exit")


def _command(sub: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand that also accepts --json after its name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    parser: argparse.ArgumentParser = sub.add_parser(name, parents=[common], **kwargs)
    return parser


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page-size", type=int, default=100, help="items per call (1..1000)")
    parser.add_argument("--all", action="store_true", help="follow every page")


def _channel(args: argparse.Namespace) -> grpc.aio.Channel:
    if args.tls_ca:
        credentials = grpc.ssl_channel_credentials(Path(args.tls_ca).read_bytes())
        return grpc.aio.secure_channel(args.address, credentials)
    if args.tls_system_ca:
        return grpc.aio.secure_channel(args.address, grpc.ssl_channel_credentials(system_ca_certificates()))
    return grpc.aio.insecure_channel(args.address)


def system_ca_certificates() -> bytes:
    """The system's trusted CA certificates (PEM), where OpenSSL finds them: SSL_CERT_FILE, else
    the OS bundle, else the certificates of SSL_CERT_DIR / the OS directory.

    gRPC would otherwise use the roots bundled with grpcio, which knows nothing of a city's own CA
    installed on the operator's machine."""
    paths = ssl.get_default_verify_paths()
    for cafile in (paths.cafile, paths.openssl_cafile):
        if cafile and Path(cafile).is_file():
            return Path(cafile).read_bytes()
    pems = [
        f.read_bytes()
        for directory in (paths.capath, paths.openssl_capath)
        if directory and Path(directory).is_dir()
        for f in sorted(Path(directory).iterdir())
        if f.is_file() and f.suffix in (".pem", ".crt", ".0")
    ]
    if not pems:
        raise SystemExit("error: no system CA certificates found; set SSL_CERT_FILE or use --tls-ca FILE")
    return b"\n".join(pems)


async def run(args: argparse.Namespace) -> int:
    async with _channel(args) as channel:
        client = Client(
            devices=gateway_pb2_grpc.DeviceServiceStub(channel),
            overview=gateway_pb2_grpc.OverviewServiceStub(channel),
            requests=gateway_pb2_grpc.RequestServiceStub(channel),
            protection=gateway_pb2_grpc.DataProtectionServiceStub(channel),
            metadata=[("authorization", f"Bearer {args.token}")] if args.token else [],
            timeout=args.timeout,
            as_json=args.json,
        )
        try:
            await COMMANDS[args.command](client, args)
        except grpc.aio.AioRpcError as err:
            print(describe_error(err, args.address), file=sys.stderr)
            return 1
    return 0


def describe_error(err: grpc.aio.AioRpcError, address: str) -> str:
    """What went wrong, for a person: the status, each invalid field, and where the gateway was
    looked for when it could not be reached."""
    lines = [f"error: {err.code().name}: {err.details()}"]
    lines += [f"  {field}: {problem}" for field, problem in field_violations(err)]
    # gRPC's own words when nothing answered (nothing listens, DNS, TLS handshake), or its bare
    # deadline; not the gateway's UNAVAILABLE answers (catching up, shutting down, connection age).
    unreachable = err.code() is grpc.StatusCode.UNAVAILABLE and bool(_UNREACHABLE.search(err.details() or ""))
    no_answer = err.code() is grpc.StatusCode.DEADLINE_EXCEEDED and err.details() == "Deadline Exceeded"
    if unreachable or no_answer:
        lines.append(
            f"could not reach the gateway at {address}: is it running there? Point the CLI at another "
            "one with --address HOST:PORT or the SMARTCITY_GATEWAY environment variable "
            "(add --tls-system-ca or --tls-ca FILE for a TLS gateway)."
        )
    return "\n".join(lines)


def field_violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The google.rpc.BadRequest field violations an INVALID_ARGUMENT carries, if any."""
    status = rpc_status.from_call(err)
    violations: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            violations += [(v.field, v.description) for v in bad.field_violations]
    return violations


def hash_token(token: str) -> str:
    """What the gateway's token file holds for a bearer token: the SHA-256 hex of its UTF-8."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    argcomplete.autocomplete(parser)  # answers and exits when the shell asks for completions
    args = parser.parse_args(argv)
    if args.command == "completion":
        print(argcomplete.shellcode(["smartcity"], shell=args.shell))
        return
    if args.command == "token-hash":
        digest = hash_token(args.token)
        print(
            f"{digest}\n\n# token file entry:\n  {digest}:\n    client_id: <client>\n"
            f'    opd_code: "<OPD or empty>"\n    scopes: [devices:read, requests:read]'
        )
        return
    if not args.token:
        print(
            "warning: no token (set SMARTCITY_TOKEN or --token); the gateway will refuse the call",
            file=sys.stderr,
        )
    try:
        code = asyncio.run(run(args))
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # piped into head & co.: stop quietly
        sys.stderr.close()
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    main()

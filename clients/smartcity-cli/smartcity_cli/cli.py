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

Connection: --address (env SMARTCITY_GATEWAY, default 127.0.0.1:50051), --token (env
SMARTCITY_TOKEN), --tls-ca FILE (env SMARTCITY_TLS_CA) for a TLS gateway. Tables by default,
JSON with --json. Exit status 0 on success, 1 when the gateway refused the call.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.json_format import MessageToDict

from smartcity.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, requests_pb2
from smartcity_cli import render

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
        call = c.stream(
            c.devices.WatchDevices,
            gateway_pb2.WatchDevicesRequest(
                send_snapshot=args.snapshot, kind=KINDS.get(args.kind or "", 0), site_id=args.site or ""
            ),
        )
        line: Callable[[Any], str] = render.device_change
    elif args.what == "requests":
        call = c.stream(
            c.requests.WatchRequests,
            gateway_pb2.WatchRequestsRequest(
                send_snapshot=args.snapshot, opd_code=args.opd or "", category=args.category or ""
            ),
        )
        line = render.request_change
    else:
        interval = Duration()
        interval.FromNanoseconds(int(args.interval * 1e9))
        call = c.stream(c.overview.WatchCitySnapshot, gateway_pb2.WatchCitySnapshotRequest(interval=interval))

        def line(reply: Any) -> str:
            return render.snapshot(reply.snapshot) + "\n"

    await _follow(call, line, args, c.as_json)


async def _follow(call: Any, line: Callable[[Any], str], args: argparse.Namespace, as_json: bool) -> None:
    """Prints each message of a stream; stops after --count live changes (those after the snapshot)
    or --duration seconds (0 = no limit)."""
    count, duration = args.count, args.duration
    live = not (args.snapshot and args.what != "snapshot")
    shown = 0

    async def consume() -> None:
        nonlocal shown, live
        async for reply in _replies(call):
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

    try:
        if duration:
            with suppress(TimeoutError):
                await asyncio.wait_for(consume(), timeout=duration)
        else:
            await consume()
    finally:
        call.cancel()


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
        call = c.stream(c.devices.WatchDevices, gateway_pb2.WatchDevicesRequest(send_snapshot=True))
        async for reply in _replies(call):
            state.apply_device(reply)
            if _is_snapshot_end(reply):
                ready["devices"].set()

    async def requests() -> None:
        call = c.stream(c.requests.WatchRequests, gateway_pb2.WatchRequestsRequest(send_snapshot=True))
        try:
            async for reply in _replies(call):
                state.apply_request(reply)
                if _is_snapshot_end(reply):
                    ready["requests"].set()
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.PERMISSION_DENIED:
                raise
            state.requests_visible = False
            ready["requests"].set()

    async def snapshots() -> None:
        call = c.stream(c.overview.WatchCitySnapshot, gateway_pb2.WatchCitySnapshotRequest(interval=interval))
        async for reply in _replies(call):
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
        if args.once:
            print(render.top(state, rows=args.rows))
            return
        while True:
            for task in tasks:
                if task.done():
                    task.result()
            print("\x1b[H\x1b[2J" + render.top(state, rows=args.rows), flush=True)
            await asyncio.sleep(args.refresh)
    finally:
        for task in [first_frame, *tasks]:
            task.cancel()
        await asyncio.gather(first_frame, *tasks, return_exceptions=True)


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
    parser.add_argument("--address", default=os.environ.get("SMARTCITY_GATEWAY", "127.0.0.1:50051"))
    parser.add_argument(
        "--token", default=os.environ.get("SMARTCITY_TOKEN", ""), help="bearer token (env SMARTCITY_TOKEN)"
    )
    parser.add_argument(
        "--tls-ca",
        default=os.environ.get("SMARTCITY_TLS_CA", ""),
        help="CA certificate of a TLS gateway (env SMARTCITY_TLS_CA)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call in seconds")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _device_commands(sub)
    _request_commands(sub)
    _live_commands(sub)
    hashing = _command(sub, "token-hash", help="print the SHA-256 of a token for the token file")
    hashing.add_argument("token")
    return parser


def _device_commands(sub: Any) -> None:
    _command(sub, "snapshot", help="the city at a glance")
    sites = _command(sub, "sites", help="WiFi statistics per site")
    sites.add_argument("--site")
    sites.add_argument("--window", choices=sorted(WINDOWS))
    for name, noun in (("aps", "access points"), ("cameras", "cameras")):
        listing = _command(sub, name, help=f"list {noun}")
        listing.add_argument("--site")
        listing.add_argument("--health", choices=sorted(HEALTHS))
        listing.add_argument("--near", type=_point, metavar="LAT,LON", help="e.g. --near=-7.3883,109.3639")
        listing.add_argument("--radius", type=float, metavar="METRES", help="with --near")
        _paging(listing)
    _command(sub, "ap", help="one access point").add_argument("id")
    _command(sub, "camera", help="one camera").add_argument("id")
    incidents = _command(sub, "incidents", help="camera incidents")
    incidents.add_argument("--open", action="store_true", help="only open incidents")
    incidents.add_argument("--camera")
    incidents.add_argument("--site")
    _paging(incidents)


def _request_commands(sub: Any) -> None:
    submit = _command(sub, "submit", help="submit a citizen request")
    submit.add_argument(
        "--category", required=True, help="permits, health_info, emergency, roads, waste, ..."
    )
    submit.add_argument("--title", required=True)
    submit.add_argument("--description", required=True)
    submit.add_argument("--at", type=_point, metavar="LAT,LON", help="e.g. --at=-7.3883,109.3639")
    submit.add_argument("--street", help="street address of the problem")
    submit.add_argument("--media-url")
    submit.add_argument("--name")
    submit.add_argument("--phone")
    submit.add_argument("--email")
    submit.add_argument("--priority", choices=sorted(PRIORITIES))
    submit.add_argument("--idempotency-key", help="reuse it to retry safely (default: a new one)")
    requests = _command(sub, "requests", help="list requests")
    requests.add_argument("--opd")
    requests.add_argument("--category")
    requests.add_argument("--status", choices=sorted(STATUSES))
    requests.add_argument("--open", action="store_true")
    requests.add_argument("--overdue", action="store_true")
    _paging(requests)
    _command(sub, "request", help="one request with its history").add_argument("id")
    _command(sub, "events", help="the audit trail of a request").add_argument("id")
    transition = _command(sub, "transition", help="move a request through its lifecycle")
    transition.add_argument("id")
    transition.add_argument("action", choices=sorted(ACTIONS))
    transition.add_argument("--note", help="note; the reason for reject and reopen")
    transition.add_argument("--assignee", help="required for assign")
    transition.add_argument("--expected-version", type=int, default=0)
    comment = _command(sub, "comment", help="comment on a request")
    comment.add_argument("id")
    comment.add_argument("text")
    erase = _command(sub, "erase-contact", help="erase the reporter's contact data (scope data-protection)")
    erase.add_argument("id", help="a request of the reporter: every request with the same contact is erased")
    erase.add_argument("--reason", required=True, help="why, for the audit trail (no personal data)")
    stats = _command(sub, "stats", help="request statistics per category and OPD")
    stats.add_argument("--scope", choices=sorted(SCOPES))


def _live_commands(sub: Any) -> None:
    watch = _command(sub, "watch", help="follow live changes")
    watch.add_argument("what", choices=["devices", "requests", "snapshot"])
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
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--all", action="store_true", help="follow every page")


def _channel(args: argparse.Namespace) -> grpc.aio.Channel:
    if args.tls_ca:
        credentials = grpc.ssl_channel_credentials(Path(args.tls_ca).read_bytes())
        return grpc.aio.secure_channel(args.address, credentials)
    return grpc.aio.insecure_channel(args.address)


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
            print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    return 0


def hash_token(token: str) -> str:
    """What the gateway's token file holds for a bearer token: the SHA-256 hex of its UTF-8."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
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

"""The gateway's API as plain Python: authorization, validation, views, commands, watch streams.

gRPC servicers (gateway.adapters.servicers) call one method each and only translate errors; everything
that decides an answer is here and unit-testable without a server or a broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from gateway.core import validation
from gateway.core.auth import (
    DATA_PROTECTION,
    DEVICES_READ,
    REQUESTS_READ,
    REQUESTS_READ_ALL,
    REQUESTS_WRITE,
    Principal,
    can_see_request,
    can_transition,
)
from gateway.core.command_bus import CommandBus, new_command, set_transition, submit_action
from gateway.core.contacts import ContactGate
from gateway.core.errors import ApiError, ErrorKind, denied, not_found
from gateway.core.fanout import Hub, SubscriberClosed
from gateway.core.paging import SortKey, fingerprint, paginate
from gateway.core.views import Change, DeviceQuery, RequestQuery, Views, incident_sort_key, request_sort_key
from smartcity.codec import to_timestamp
from smartcity.ids import request_id_for
from smartcity.v1 import camera_pb2, gateway_pb2, requests_pb2, wifi_pb2

# Time kept back from the caller's deadline so the gateway answers DEADLINE_EXCEEDED itself,
# with a useful message, instead of the call being cut off.
DEADLINE_MARGIN_S = 0.05


@dataclass
class ApiLimits:
    command_timeout_s: float = 10.0
    max_streams_per_client: int = 20
    snapshot_interval_s: float = 2.0
    snapshot_min_interval_s: float = 1.0
    # A computed city snapshot is reused while the views are unchanged, for at most this long
    # (only the clock-driven parts, as_of and overdue counts, can be older than the views).
    snapshot_cache_s: float = 1.0
    # A request id this replica has not seen yet may have just been submitted through another
    # one: read the request topics up to now, at most this long, before answering NOT_FOUND.
    catch_up_s: float = 3.0


def _filter_fp(request: Any) -> str:
    """Fingerprint of a listing request without its paging fields."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("page_token")
    copy.ClearField("page_size")
    return fingerprint(copy.SerializeToString(deterministic=True))


@dataclass
class Api:
    views: Views
    bus: CommandBus
    device_hub: Hub[Change]
    request_hub: Hub[Change]
    # Contact data: sealed on submit, opened for the routed OPD only, audited, erasable.
    contacts: ContactGate
    limits: ApiLimits = field(default_factory=ApiLimits)
    clock: Callable[[], float] = time.time
    # Reads the request topics up to their current end, for at most the given seconds (the
    # projector's read_up_to_now); None: the views are all there is.
    catch_up: Callable[[float], Awaitable[None]] | None = None
    ready: bool = False
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _streams: dict[str, int] = field(default_factory=dict)
    _snapshot_cache: tuple[int, float, Any] | None = None

    # ---------------- devices ----------------

    def get_access_point(self, p: Principal, req: Any) -> Any:
        p.require(DEVICES_READ, "GetAccessPoint")
        validation.identifier("ap_id", req.ap_id)
        status = self.views.access_points.get(req.ap_id)
        if status is None:
            raise not_found(f"access point {req.ap_id!r}")
        return gateway_pb2.GetAccessPointResponse(access_point=status)

    def list_access_points(self, p: Principal, req: Any) -> Any:
        p.require(DEVICES_READ, "ListAccessPoints")
        size = validation.list_devices(req)
        found = self.views.list_access_points(DeviceQuery.of(req.filter))
        page = paginate(found, _pair_key, size, req.page_token, filter_fp=_filter_fp(req))
        return gateway_pb2.ListAccessPointsResponse(
            access_points=[s for _, s in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    def get_camera(self, p: Principal, req: Any) -> Any:
        p.require(DEVICES_READ, "GetCamera")
        validation.identifier("camera_id", req.camera_id)
        status = self.views.cameras.get(req.camera_id)
        if status is None:
            raise not_found(f"camera {req.camera_id!r}")
        return gateway_pb2.GetCameraResponse(camera=status)

    def list_cameras(self, p: Principal, req: Any) -> Any:
        p.require(DEVICES_READ, "ListCameras")
        size = validation.list_devices(req)
        found = self.views.list_cameras(DeviceQuery.of(req.filter))
        page = paginate(found, _pair_key, size, req.page_token, filter_fp=_filter_fp(req))
        return gateway_pb2.ListCamerasResponse(
            cameras=[s for _, s in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    def list_incidents(self, p: Principal, req: Any) -> Any:
        p.require(DEVICES_READ, "ListIncidents")
        size = validation.list_incidents(req)
        found = self.views.list_incidents(req.camera_id, req.site_id, req.open_only)
        page = paginate(found, _incident_key, size, req.page_token, filter_fp=_filter_fp(req))
        return gateway_pb2.ListIncidentsResponse(
            incidents=page.items, next_page_token=page.next_page_token, total_size=page.total_size
        )

    async def watch_devices(self, p: Principal, req: Any) -> AsyncGenerator[Any, None]:
        p.require(DEVICES_READ, "WatchDevices")
        validation.watch_devices(req)

        def accept(change: Change) -> bool:
            return _device_matches(change, req.kind, req.site_id)

        def snapshot() -> list[Change]:
            devices: list[Change] = [
                *self.views.access_points.values(),
                *self.views.cameras.values(),
                *self.views.open_incidents(),
            ]
            return [d for d in devices if accept(d)]

        changes = self._watch(p, self.device_hub, accept, snapshot if req.send_snapshot else None)
        async with aclosing(changes):
            async for change in changes:
                yield _device_response(change)

    # ---------------- overview ----------------

    def get_city_snapshot(self, p: Principal, req: Any) -> Any:
        p.require(DEVICES_READ, "GetCitySnapshot")
        return gateway_pb2.GetCitySnapshotResponse(snapshot=self._city_snapshot(self.limits.snapshot_cache_s))

    def list_site_stats(self, p: Principal, req: Any) -> Any:
        p.require(DEVICES_READ, "ListSiteStats")
        validation.list_site_stats(req)
        return gateway_pb2.ListSiteStatsResponse(stats=self.views.list_site_stats(req.site_id, req.window))

    async def watch_city_snapshot(self, p: Principal, req: Any) -> AsyncGenerator[Any, None]:
        p.require(DEVICES_READ, "WatchCitySnapshot")
        interval = validation.snapshot_interval(
            req, self.limits.snapshot_interval_s, self.limits.snapshot_min_interval_s
        )
        with self._stream_slot(p):
            while True:
                # Each tick is fresh: a cached snapshot may serve it only if younger than half a tick.
                snapshot = self._city_snapshot(min(self.limits.snapshot_cache_s, interval / 2))
                yield gateway_pb2.WatchCitySnapshotResponse(snapshot=snapshot)
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=interval)
                except TimeoutError:
                    continue
                raise _shutting_down()

    # ---------------- citizen requests ----------------

    async def submit_request(self, p: Principal, req: Any, deadline_s: float | None) -> Any:
        p.require(REQUESTS_WRITE, "SubmitRequest")
        validation.submit(req)
        now = self.clock()
        command = new_command(p, request_id_for(p.client_id, req.idempotency_key), now)
        command.submit.CopyFrom(submit_action(req, now))
        sealed = await self.contacts.seal(req.reporter, command.request_id)
        if sealed is not None:
            command.submit.encrypted_reporter.CopyFrom(sealed.contact)
        try:
            event = await self.bus.execute(command, self._command_timeout(deadline_s))
        except ApiError as err:
            if sealed is not None and err.kind is not ErrorKind.DEADLINE_EXCEEDED:
                await self.contacts.discard(sealed, self.views.requests.values())
            raise
        request = event.request if event.HasField("request") else self.views.requests.get(command.request_id)
        if request is None:
            raise ApiError(ErrorKind.INTERNAL, f"the outcome of {command.request_id} carried no request")
        dedup = event.type == requests_pb2.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED
        shown = await self._shown(p, "SubmitRequest", request)
        return gateway_pb2.SubmitRequestResponse(request=shown, deduplicated=dedup)

    async def get_request(self, p: Principal, req: Any, deadline_s: float | None = None) -> Any:
        p.require(REQUESTS_READ, "GetRequest")
        validation.get_request(req)
        request = await self._request_seen_by_now(p, req.request_id, deadline_s)
        return gateway_pb2.GetRequestResponse(request=await self._shown(p, "GetRequest", request))

    async def list_requests(self, p: Principal, req: Any) -> Any:
        p.require(REQUESTS_READ, "ListRequests")
        size = validation.list_requests(req)
        self._check_opd_filter(p, req.opd_code, "ListRequests")
        query = RequestQuery(req.opd_code, req.category, req.status, req.open_only, req.overdue_only)
        now = self.clock()
        found = [
            r
            for r in self.views.list_requests(query, now)
            if can_see_request(p, r.opd_code, r.submitted_by_client)
        ]
        page = paginate(found, _request_key, size, req.page_token, filter_fp=_filter_fp(req))
        return gateway_pb2.ListRequestsResponse(
            requests=await self.contacts.shown(p, "ListRequests", page.items),
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def transition_request(self, p: Principal, req: Any, deadline_s: float | None) -> Any:
        p.require(REQUESTS_WRITE, "TransitionRequest")
        validation.transition(req)
        current = await self._request_seen_by_now(p, req.request_id, deadline_s)
        action = gateway_pb2.RequestAction.Name(req.action)
        if not can_transition(p, current.opd_code):
            raise denied(
                f"request {req.request_id} is routed to {current.opd_code or 'no OPD'}; only that "
                f"OPD (or an admin) may {action.removeprefix('REQUEST_ACTION_')} it"
            )
        command = new_command(p, req.request_id, self.clock(), req.expected_version)
        set_transition(command, req)
        event = await self.bus.execute(command, self._command_timeout(deadline_s))
        [shown_event] = await self.contacts.shown_events(p, "TransitionRequest", [event])
        return gateway_pb2.TransitionRequestResponse(request=shown_event.request, event=shown_event)

    async def comment_on_request(self, p: Principal, req: Any, deadline_s: float | None) -> Any:
        p.require(REQUESTS_WRITE, "CommentOnRequest")
        validation.comment(req)
        await self._request_seen_by_now(p, req.request_id, deadline_s)
        command = new_command(p, req.request_id, self.clock())
        command.comment.text = req.text
        event = await self.bus.execute(command, self._command_timeout(deadline_s))
        return gateway_pb2.CommentOnRequestResponse(
            request=await self._shown(p, "CommentOnRequest", event.request))

    async def list_request_events(self, p: Principal, req: Any) -> Any:
        p.require(REQUESTS_READ, "ListRequestEvents")
        size = validation.list_request_events(req)
        self._visible_request(p, req.request_id)
        trail = list(enumerate(self.views.events.get(req.request_id, [])))
        page = paginate(trail, _index_key, size, req.page_token, filter_fp=_filter_fp(req))
        events = await self.contacts.shown_events(p, "ListRequestEvents", [e for _, e in page.items])
        return gateway_pb2.ListRequestEventsResponse(events=events, next_page_token=page.next_page_token)

    def list_request_stats(self, p: Principal, req: Any) -> Any:
        p.require(REQUESTS_READ, "ListRequestStats")
        validation.list_request_stats(req)
        return gateway_pb2.ListRequestStatsResponse(
            stats=self.views.list_request_stats(req.scope), as_of=to_timestamp(self.clock())
        )

    async def watch_requests(self, p: Principal, req: Any) -> AsyncGenerator[Any, None]:
        p.require(REQUESTS_READ, "WatchRequests")
        validation.watch_requests(req)
        self._check_opd_filter(p, req.opd_code, "WatchRequests")

        def accept(change: Change) -> bool:
            return (
                isinstance(change, requests_pb2.ServiceRequest)
                and can_see_request(p, change.opd_code, change.submitted_by_client)
                and (not req.opd_code or change.opd_code == req.opd_code)
                and (not req.category or change.category == req.category)
            )

        def snapshot() -> list[Change]:
            return [r for r in self.views.list_requests(RequestQuery(), self.clock()) if accept(r)]

        changes = self._watch(p, self.request_hub, accept, snapshot if req.send_snapshot else None)
        async with aclosing(changes):
            async for change in changes:
                if change is None:
                    yield gateway_pb2.WatchRequestsResponse(snapshot_end=gateway_pb2.SnapshotEnd())
                else:
                    shown = await self._shown(p, "WatchRequests", change)
                    yield gateway_pb2.WatchRequestsResponse(request=shown)

    # ---------------- personal data ----------------

    async def erase_contact_data(self, p: Principal, req: Any, deadline_s: float | None = None) -> Any:
        """Destroys the data keys of a request's reporter (every request with the same contact)."""
        p.require(DATA_PROTECTION, "EraseContactData")
        validation.erase_contact_data(req)
        if req.WhichOneof("target") == "request_id":
            # Any request, whatever OPD: erasure is not reading (the caller sees no request).
            if req.request_id not in self.views.requests and self.catch_up is not None:
                await self.catch_up(self.limits.catch_up_s if deadline_s is None
                                    else min(self.limits.catch_up_s, deadline_s))
            request = self.views.requests.get(req.request_id)
            if request is None:
                raise not_found(f"request {req.request_id!r}")
            subject = self.contacts.subject_of_request(request)
        else:
            subject = self.contacts.subject_of_contact(req.reporter)
        if subject is None:
            return gateway_pb2.EraseContactDataResponse(erased=False, erased_time=to_timestamp(self.clock()))
        erased, request_ids = await self.contacts.erase(
            p, subject, self.views.requests.values(), req.reason, "EraseContactData")
        return gateway_pb2.EraseContactDataResponse(request_ids=request_ids, erased=erased,
                                                    erased_time=to_timestamp(self.clock()))

    # ---------------- helpers ----------------

    def _city_snapshot(self, max_age_s: float) -> Any:
        """The snapshot of the views, reused while they are unchanged and it is younger than max_age_s."""
        now = self.clock()
        cached = self._snapshot_cache
        if cached and cached[0] == self.views.generation and 0 <= now - cached[1] < max_age_s:
            return cached[2]
        snapshot = self.views.city_snapshot(now)
        self._snapshot_cache = (self.views.generation, now, snapshot)
        return snapshot

    async def _request_seen_by_now(self, p: Principal, request_id: str, deadline_s: float | None) -> Any:
        """`_visible_request`, after reading the request topics up to now if the id is unknown.

        Read-your-writes across replicas: a client that submitted through one gateway replica
        and calls another right away gets its request, not NOT_FOUND. Known ids cost nothing."""
        if request_id not in self.views.requests and self.catch_up is not None:
            budget = self.limits.catch_up_s if deadline_s is None else min(self.limits.catch_up_s, deadline_s)
            await self.catch_up(max(0.0, budget))
        return self._visible_request(p, request_id)

    def _visible_request(self, p: Principal, request_id: str) -> Any:
        request = self.views.requests.get(request_id)
        if request is None:
            raise not_found(f"request {request_id!r}")
        if not can_see_request(p, request.opd_code, request.submitted_by_client):
            raise denied(
                f"request {request_id} is routed to {request.opd_code or 'no OPD'}; client "
                f"{p.client_id} sees only its own OPD's requests without scope {REQUESTS_READ_ALL}"
            )
        return request

    def _check_opd_filter(self, p: Principal, opd_code: str, action: str) -> None:
        if opd_code and opd_code != p.opd_code and not p.has(REQUESTS_READ_ALL):
            raise denied(
                f"{action} of OPD {opd_code} needs scope {REQUESTS_READ_ALL}; "
                f"client {p.client_id} belongs to {p.opd_code or 'no OPD'}"
            )

    async def _shown(self, p: Principal, method: str, request: Any) -> Any:
        """The request as this caller may see it (contact data for the routed OPD only)."""
        [shown] = await self.contacts.shown(p, method, [request])
        return shown

    def _command_timeout(self, deadline_s: float | None) -> float:
        if deadline_s is None:
            return self.limits.command_timeout_s
        return min(self.limits.command_timeout_s, deadline_s - DEADLINE_MARGIN_S)

    def _stream_slot(self, p: Principal) -> _StreamSlot:
        return _StreamSlot(self._streams, p.client_id, self.limits.max_streams_per_client)

    async def _watch(
        self,
        p: Principal,
        hub: Hub[Change],
        accept: Callable[[Change], bool],
        snapshot: Callable[[], Iterable[Change]] | None,
    ) -> AsyncGenerator[Change | None, None]:
        """Snapshot (then None as its end marker) and live changes, without gap or repeat."""
        with self._stream_slot(p), hub.subscribe(accept) as sub:
            # Subscribing and reading the snapshot happen without an await in between, so every
            # change is either in the snapshot or queued for this subscriber, never both.
            if snapshot is not None:
                for item in list(snapshot()):
                    yield item
                yield None
            while True:
                try:
                    yield await sub.next()
                except SubscriberClosed:
                    raise _shutting_down() from None


class _StreamSlot:
    """Counts a client's open watch streams; RESOURCE_EXHAUSTED past the limit."""

    def __init__(self, counts: dict[str, int], client_id: str, limit: int) -> None:
        self._counts, self._client, self._limit = counts, client_id, limit

    def __enter__(self) -> _StreamSlot:
        if self._counts.get(self._client, 0) >= self._limit:
            raise ApiError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"client {self._client} already has {self._limit} watch streams open",
            )
        self._counts[self._client] = self._counts.get(self._client, 0) + 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._counts[self._client] -= 1
        if not self._counts[self._client]:
            del self._counts[self._client]


def _shutting_down() -> ApiError:
    return ApiError(ErrorKind.UNAVAILABLE, "the gateway is shutting down; reconnect to another replica")


def _pair_key(pair: tuple[Any, Any]) -> SortKey:
    key: SortKey = pair[0]
    return key


def _incident_key(incident: Any) -> SortKey:
    return incident_sort_key(incident)


def _request_key(request: Any) -> SortKey:
    return request_sort_key(request)


def _index_key(pair: tuple[int, Any]) -> SortKey:
    return (pair[0],)


def _device_matches(change: Change, kind: int, site_id: str) -> bool:
    if site_id and change.site_id != site_id:
        return False
    if isinstance(change, wifi_pb2.AccessPointStatus):
        return kind in (gateway_pb2.DEVICE_KIND_UNSPECIFIED, gateway_pb2.DEVICE_KIND_ACCESS_POINT)
    if isinstance(change, (camera_pb2.CameraStatus, camera_pb2.CameraIncident)):
        return kind in (gateway_pb2.DEVICE_KIND_UNSPECIFIED, gateway_pb2.DEVICE_KIND_CAMERA)
    return False


def _device_response(change: Change | None) -> Any:
    if change is None:
        return gateway_pb2.WatchDevicesResponse(snapshot_end=gateway_pb2.SnapshotEnd())
    if isinstance(change, wifi_pb2.AccessPointStatus):
        return gateway_pb2.WatchDevicesResponse(access_point=change)
    if isinstance(change, camera_pb2.CameraStatus):
        return gateway_pb2.WatchDevicesResponse(camera=change)
    return gateway_pb2.WatchDevicesResponse(incident=change)

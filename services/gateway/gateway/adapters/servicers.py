"""The gRPC servicers: each method hands the caller and the request to `gateway.core.api.Api`.

Authentication, rate limits, readiness, metrics and the mapping of errors to status codes
happen in `gateway.adapters.interceptors`; nothing here decides anything.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from gateway.adapters.interceptors import current_principal
from gateway.core.api import Api
from smartcity.v1 import gateway_pb2_grpc

Context = Any  # grpc.aio.ServicerContext (grpc has no type stubs)


def deadline_of(context: Context) -> float | None:
    """Seconds left until the caller's deadline (None when the caller set none)."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e9 else float(remaining)


class DeviceServicer(gateway_pb2_grpc.DeviceServiceServicer):  # type: ignore[misc]
    def __init__(self, api: Api) -> None:
        self._api = api

    async def GetAccessPoint(self, request: Any, context: Context) -> Any:
        return self._api.get_access_point(current_principal(), request)

    async def ListAccessPoints(self, request: Any, context: Context) -> Any:
        return self._api.list_access_points(current_principal(), request)

    async def GetCamera(self, request: Any, context: Context) -> Any:
        return self._api.get_camera(current_principal(), request)

    async def ListCameras(self, request: Any, context: Context) -> Any:
        return self._api.list_cameras(current_principal(), request)

    async def ListIncidents(self, request: Any, context: Context) -> Any:
        return self._api.list_incidents(current_principal(), request)

    async def WatchDevices(self, request: Any, context: Context) -> AsyncGenerator[Any, None]:
        async with aclosing(self._api.watch_devices(current_principal(), request)) as responses:
            async for response in responses:
                yield response


class OverviewServicer(gateway_pb2_grpc.OverviewServiceServicer):  # type: ignore[misc]
    def __init__(self, api: Api) -> None:
        self._api = api

    async def GetCitySnapshot(self, request: Any, context: Context) -> Any:
        return self._api.get_city_snapshot(current_principal(), request)

    async def ListSiteStats(self, request: Any, context: Context) -> Any:
        return self._api.list_site_stats(current_principal(), request)

    async def WatchCitySnapshot(self, request: Any, context: Context) -> AsyncGenerator[Any, None]:
        async with aclosing(self._api.watch_city_snapshot(current_principal(), request)) as responses:
            async for response in responses:
                yield response


class RequestServicer(gateway_pb2_grpc.RequestServiceServicer):  # type: ignore[misc]
    def __init__(self, api: Api) -> None:
        self._api = api

    async def SubmitRequest(self, request: Any, context: Context) -> Any:
        return await self._api.submit_request(current_principal(), request, deadline_of(context))

    async def GetRequest(self, request: Any, context: Context) -> Any:
        return await self._api.get_request(current_principal(), request, deadline_of(context))

    async def ListRequests(self, request: Any, context: Context) -> Any:
        return await self._api.list_requests(current_principal(), request)

    async def TransitionRequest(self, request: Any, context: Context) -> Any:
        return await self._api.transition_request(current_principal(), request, deadline_of(context))

    async def CommentOnRequest(self, request: Any, context: Context) -> Any:
        return await self._api.comment_on_request(current_principal(), request, deadline_of(context))

    async def ListRequestEvents(self, request: Any, context: Context) -> Any:
        return await self._api.list_request_events(current_principal(), request)

    async def ListRequestStats(self, request: Any, context: Context) -> Any:
        return self._api.list_request_stats(current_principal(), request)

    async def WatchRequests(self, request: Any, context: Context) -> AsyncGenerator[Any, None]:
        async with aclosing(self._api.watch_requests(current_principal(), request)) as responses:
            async for response in responses:
                yield response


class DataProtectionServicer(gateway_pb2_grpc.DataProtectionServiceServicer):  # type: ignore[misc]
    def __init__(self, api: Api) -> None:
        self._api = api

    async def EraseContactData(self, request: Any, context: Context) -> Any:
        return await self._api.erase_contact_data(current_principal(), request, deadline_of(context))

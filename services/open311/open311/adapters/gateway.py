"""The gateway's RequestService over grpc.aio: every call with a deadline and a bearer token.

Submits carry the citizen app's api_key as their bearer token, so the gateway authenticates,
scopes, rate-limits, validates and deduplicates them exactly as for any OPD system. Reads carry
the facade's own read-only token (requests:read:all, no OPD: the gateway never shows it
reporter contact data). gRPC status codes become GeoReport errors here; the trace context of
the HTTP request rides along in the call's metadata.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from open311.adapters import metrics
from open311.core.errors import (
    BAD_GATEWAY,
    BAD_REQUEST,
    CONFLICT,
    FORBIDDEN,
    GATEWAY_TIMEOUT,
    NOT_FOUND,
    SERVICE_UNAVAILABLE,
    TOO_MANY_REQUESTS,
    Open311Error,
)
from open311.core.submit import NewRequest
from smartcity.tracing import inject_headers
from smartcity.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, requests_pb2

MAX_PAGE_SIZE = 1000
# Largest gateway answer: a page of 1,000 requests with their histories.
MAX_RECEIVE_BYTES = 32 * 1024 * 1024

_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: BAD_REQUEST,
    grpc.StatusCode.FAILED_PRECONDITION: BAD_REQUEST,
    # A known idempotency key with another body (a retry must repeat its request).
    grpc.StatusCode.ALREADY_EXISTS: CONFLICT,
    grpc.StatusCode.UNAUTHENTICATED: FORBIDDEN,
    grpc.StatusCode.PERMISSION_DENIED: FORBIDDEN,
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED: TOO_MANY_REQUESTS,
    grpc.StatusCode.DEADLINE_EXCEEDED: GATEWAY_TIMEOUT,
    grpc.StatusCode.UNAVAILABLE: SERVICE_UNAVAILABLE,
}


@dataclass(frozen=True)
class Submitted:
    """A submit's outcome: the request, or None when its outcome was not seen in time."""

    request: Any | None
    deduplicated: bool = False


def translate(err: grpc.aio.AioRpcError, action: str) -> Open311Error:
    """A gateway error as the GeoReport error the caller gets."""
    code = err.code()
    details = err.details() or code.name
    status = _STATUS.get(code, BAD_GATEWAY)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        details = "invalid api_key: the gateway does not know it"
    elif code == grpc.StatusCode.UNAVAILABLE:
        details = f"the platform is not available right now ({details}); retry shortly"
    elif status == BAD_GATEWAY:
        details = f"the gateway failed ({code.name}): {details}"
    retry = 1.0 if status in (TOO_MANY_REQUESTS, SERVICE_UNAVAILABLE) else None
    return Open311Error(status, f"{action}: {details}", retry_after_s=retry)


class GatewayClient:
    def __init__(
        self,
        address: str,
        read_token: str,
        read_timeout_s: float,
        submit_timeout_s: float,
        tls_ca: bytes | None = None,
    ) -> None:
        options = [
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.keepalive_time_ms", 30000),
            ("grpc.keepalive_permit_without_calls", 0),
        ]
        if tls_ca is None:
            self.channel = grpc.aio.insecure_channel(address, options=options)
        else:
            self.channel = grpc.aio.secure_channel(
                address, grpc.ssl_channel_credentials(tls_ca), options=options
            )
        self._stub = gateway_pb2_grpc.RequestServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self._read_token = read_token
        self.read_timeout_s, self.submit_timeout_s = read_timeout_s, submit_timeout_s

    async def close(self) -> None:
        await self.channel.close()

    async def serving(self, timeout_s: float = 2.0) -> bool:
        """Whether the gateway's health service says SERVING (its views have caught up)."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def submit(self, new: NewRequest) -> Submitted:
        message = gateway_pb2.SubmitRequestRequest(
            idempotency_key=new.idempotency_key,
            category=new.service_code,
            title=new.title,
            description=new.description,
            address=new.address,
            media_url=new.media_url,
            reporter=requests_pb2.Reporter(
                name=new.reporter.name, phone=new.reporter.phone, email=new.reporter.email
            ),
        )
        if new.lat is not None and new.long is not None:
            message.location.CopyFrom(common_pb2.GeoPoint(latitude=new.lat, longitude=new.long))
        try:
            reply = await self._call("SubmitRequest", message, new.api_key, self.submit_timeout_s)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return Submitted(None)  # it may still be applied: the caller answers a token
            raise translate(err, "creating the service request") from None
        return Submitted(reply.request, reply.deduplicated)

    async def get(self, request_id: str) -> Any | None:
        """The request as the public sees it, None when the gateway does not know it."""
        try:
            reply = await self._call(
                "GetRequest",
                gateway_pb2.GetRequestRequest(request_id=request_id),
                self._read_token,
                self.read_timeout_s,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise translate(err, f"reading service request {request_id}") from None
        return reply.request

    async def pages(
        self, category: str = "", open_only: bool = False, max_pages: int = 20
    ) -> AsyncGenerator[list[Any], None]:
        """Pages of the public listing, newest first, at most `max_pages` of 1,000."""
        token = ""
        for _ in range(max_pages):
            message = gateway_pb2.ListRequestsRequest(
                category=category, open_only=open_only, page_size=MAX_PAGE_SIZE, page_token=token
            )
            try:
                reply = await self._call("ListRequests", message, self._read_token, self.read_timeout_s)
            except grpc.aio.AioRpcError as err:
                raise translate(err, "listing service requests") from None
            yield list(reply.requests)
            token = reply.next_page_token
            if not token:
                return

    async def _call(self, rpc: str, message: Any, token: str, timeout_s: float) -> Any:
        metadata = [("authorization", f"Bearer {token}")]
        metadata += [(k, v.decode("ascii")) for k, v in inject_headers()]
        start = time.perf_counter()
        code = "OK"
        try:
            return await getattr(self._stub, rpc)(message, metadata=metadata, timeout=timeout_s)
        except grpc.aio.AioRpcError as err:
            code = err.code().name
            raise
        finally:
            metrics.GATEWAY_CALLS.labels(rpc, code).observe(time.perf_counter() - start)

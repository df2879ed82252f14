"""The one gRPC interceptor: authentication, readiness, rate limits, tracing, metrics, errors.

Every RPC of the gateway's own services passes through it; the standard health and reflection
services do not (probes and tools call them without a token).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from contextvars import ContextVar
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.adapters import metrics
from gateway.core.api import Api
from gateway.core.auth import Principal, RateLimiter, TokenStore
from gateway.core.errors import ApiError, ErrorKind
from smartcity.tracing import rpc_server_span, set_rpc_status

log = logging.getLogger(__name__)

PRINCIPAL: ContextVar[Principal] = ContextVar("principal")
EXEMPT_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Streaming = Callable[[Any, grpc.aio.ServicerContext], AsyncGenerator[Any, None]]


def current_principal() -> Principal:
    return PRINCIPAL.get()


def _metadata(details: grpc.HandlerCallDetails) -> list[tuple[str, str]]:
    pairs = []
    for key, value in details.invocation_metadata or ():
        if isinstance(value, bytes):
            continue  # binary metadata carries nothing the gateway reads
        pairs.append((key.lower(), value))
    return pairs


class GatewayInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self, tokens: TokenStore, limiter: RateLimiter, api: Api, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._tokens = tokens
        self._limiter = limiter
        self._api = api
        self._clock = clock

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(EXEMPT_PREFIXES):
            return handler
        # Metrics carry the full method name ("/smartcity.v1.DeviceService/GetAccessPoint").
        call = _Call(details.method, _metadata(details), handler.request_deserializer)
        # Requests arrive as bytes and are parsed after authentication, so that bytes which are
        # not a message of the method become INVALID_ARGUMENT (grpc itself would say INTERNAL).
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, call), response_serializer=handler.response_serializer
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, call), response_serializer=handler.response_serializer
            )
        return handler

    def _admit(self, method: str, metadata: Sequence[tuple[str, str]]) -> Principal:
        """Who is calling, or why they may not: UNAUTHENTICATED, RESOURCE_EXHAUSTED, UNAVAILABLE."""
        principal = self._tokens.authenticate_metadata(metadata)
        try:
            self._limiter.check(principal, self._clock())
        except ApiError:
            metrics.RATE_LIMITED.labels(principal.client_id).inc()
            raise
        if not self._api.ready:
            raise ApiError(
                ErrorKind.UNAVAILABLE,
                f"the gateway's views are still catching up with Kafka ({self._api.not_ready_reason()}); "
                "retry shortly",
            )
        return principal

    def _unary(self, inner: Unary, template: _Call) -> Unary:
        async def behavior(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            call = template.start()
            with call.span():
                try:
                    token = PRINCIPAL.set(self._admit(call.method, call.metadata))
                    try:
                        return await inner(call.parse(raw), context)
                    finally:
                        PRINCIPAL.reset(token)
                except BaseException as exc:
                    await call.fail(exc, context)
                    raise
                finally:
                    call.record()

        return behavior

    def _streaming(self, inner: Streaming, template: _Call) -> Streaming:
        async def behavior(raw: bytes, context: grpc.aio.ServicerContext) -> AsyncGenerator[Any, None]:
            call = template.start()
            with call.span():
                try:
                    PRINCIPAL.set(self._admit(call.method, call.metadata))
                    request = call.parse(raw)
                    metrics.WATCHERS.labels(call.method).inc()
                    try:
                        async with aclosing(inner(request, context)) as items:
                            async for item in items:
                                yield item
                    finally:
                        metrics.WATCHERS.labels(call.method).dec()
                except BaseException as exc:
                    await call.fail(exc, context)
                    raise
                finally:
                    call.record()

        return behavior


class _Call:
    """Bookkeeping of one RPC: its span, its status code, its duration."""

    def __init__(self, method: str, metadata: list[tuple[str, str]], parser: Callable[[bytes], Any]) -> None:
        self.method = method
        self.metadata = metadata
        self.code = "OK"
        self.message = ""
        self._parser = parser
        self._start = time.perf_counter()

    def start(self) -> _Call:
        """A fresh record for one invocation (the template is built per incoming call)."""
        return _Call(self.method, self.metadata, self._parser)

    def parse(self, raw: bytes) -> Any:
        try:
            return self._parser(raw)
        except Exception as exc:
            raise ApiError(
                ErrorKind.INVALID_ARGUMENT, f"the request is not a valid message for {self.method}: {exc}"
            ) from None

    def span(self) -> Any:
        # The status is set by record() (an abort is an exception but not always an error).
        return rpc_server_span(self.method, self.metadata)

    async def fail(self, exc: BaseException, context: grpc.aio.ServicerContext) -> None:
        """Turns an exception into the call's status; aborts the call (which raises)."""
        if isinstance(exc, ApiError):
            self.code = exc.kind.name
            self._mark_error(exc.message)
            await context.abort(grpc.StatusCode[exc.kind.name], exc.message, status_details(exc))
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            self.code = "CANCELLED"
        elif isinstance(exc, Exception) and not _is_abort(exc):
            incident = uuid.uuid4().hex[:12]
            log.exception("internal error %s in %s", incident, self.method)
            self.code = "INTERNAL"
            self._mark_error(f"internal error {incident}")
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error {incident}; see the gateway log")

    def _mark_error(self, message: str) -> None:
        self.message = message

    def record(self) -> None:
        set_rpc_status(self.code, self.message)
        metrics.count_rpc(self.method, self.code, time.perf_counter() - self._start)


def status_details(error: ApiError) -> tuple[tuple[str, bytes], ...]:
    """The rich status of an error with field violations, as the `grpc-status-details-bin` trailer.

    A `google.rpc.Status` (same code and message as the call's status) whose details hold one
    `google.rpc.BadRequest`; clients read it with grpc_status.rpc_status.from_call. Errors
    without a field (unparseable bytes, a domain rejection) carry the message only."""
    if not error.violations:
        return ()
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.violations
        ]
    )
    detail = any_pb2.Any()
    detail.Pack(bad_request)
    code = grpc.StatusCode[error.kind.name].value[0]
    status = status_pb2.Status(code=code, message=error.message, details=[detail])
    return ((rpc_status.GRPC_DETAILS_METADATA_KEY, status.SerializeToString()),)


def _is_abort(exc: BaseException) -> bool:
    return type(exc).__name__ in {"AbortError", "InternalError", "UsageError"}

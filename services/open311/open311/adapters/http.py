"""The HTTP side (aiohttp): GeoReport v2 routes, CORS, limits, errors, metrics, tracing.

    GET  /discovery.{json,xml}                 service discovery
    GET  /services.{json,xml}                  the services (categories)
    GET  /services/{service_code}.{fmt}        a service definition
    POST /requests.{fmt}                       create (form-encoded, api_key)
    GET  /requests.{fmt}                       search (public)
    GET  /requests/{service_request_id}.{fmt}  one request (public)
    GET  /tokens/{token}.{fmt}                 the id behind a POST's token
    GET  /openapi.json, /healthz, /readyz

Every answer, errors included, is in the format the path asks for; an error is GeoReport's
list of {code, description} with the HTTP status as its code. Browsers get CORS headers on
every answer and a preflight answer on OPTIONS. Each request is charged to its client
address's rate-limit bucket, a POST also to its api_key's.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiMapping
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from open311.adapters import metrics
from open311.adapters.gateway import GatewayClient
from open311.core.cache import ListingCache
from open311.core.catalogue import Catalogue
from open311.core.documents import CONTENT_TYPES, FORMATS, discovery, render
from open311.core.errors import NOT_FOUND, PAYLOAD_TOO_LARGE, Open311Error, bad_request, not_found
from open311.core.openapi import openapi_document
from open311.core.query import RequestsQuery, check_request_id, parse_query
from open311.core.ratelimit import RateLimiter, caller_of
from open311.core.submit import check_jurisdiction, is_token, parse_submission
from open311.core.views import created, pending, to_open311, token_answer

log = logging.getLogger("open311")
tracer = trace.get_tracer("open311")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Content-Type, Idempotency-Key, traceparent"
CORS_MAX_AGE_S = "600"
# Concurrent GetRequest calls of one GET /requests?service_request_id=a,b,c...
ID_LOOKUP_CONCURRENCY = 16
UNPROBED_PATHS = frozenset({"/healthz", "/readyz"})
TOKEN_SCAN_PAGES = 2


@dataclass
class Open311Api:
    catalogue: Catalogue
    gateway: GatewayClient
    limiter: RateLimiter
    public_url: str
    cors_origins: tuple[str, ...] = ("*",)
    max_results: int = 1000
    max_scan_pages: int = 20
    utc_offset_h: float = 7.0
    trust_forwarded_for: bool = False
    max_body_bytes: int = 65536
    listings: ListingCache = field(default_factory=lambda: ListingCache(1.0))
    clock: Callable[[], float] = time.time
    ready: bool = False
    _openapi: bytes = field(default=b"", init=False)

    # ---------------- discovery and services ----------------

    async def get_discovery(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        return _answer(discovery(self.catalogue, self.public_url), "discovery", fmt)

    async def get_services(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        check_jurisdiction(request.query.get("jurisdiction_id", ""), self.catalogue)
        return _answer(self.catalogue.service_list(), "services", fmt)

    async def get_service_definition(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        check_jurisdiction(request.query.get("jurisdiction_id", ""), self.catalogue)
        code = request.match_info["service_code"]
        service = self.catalogue.service(code)
        if service is None:
            raise not_found(f"service_code {code!r} is not a service here (GET /services lists them)")
        return _answer(service.definition(), "service_definition", fmt)

    # ---------------- requests ----------------

    async def post_request(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        pairs = await _form_pairs(request)
        new = parse_submission(pairs, self.catalogue, request.headers.get("Idempotency-Key", ""))
        self._charge(caller_of(new.api_key, ""), "api_key")
        outcome = await self.gateway.submit(new)
        if outcome.request is None:
            metrics.SUBMITS.labels("token").inc()
            return _answer([pending(new.idempotency_key)], "service_requests", fmt)
        metrics.SUBMITS.labels("deduplicated" if outcome.deduplicated else "created").inc()
        self.listings.clear()  # the caller's next listing (through this replica) shows its request
        document = created(outcome.request, self.catalogue, self.utc_offset_h)
        return _answer([document], "service_requests", fmt)

    async def get_requests(self, request: web.Request) -> web.Response:
        fmt, params, now = _format(request), _joined(request.query), self.clock()
        query = parse_query(params, self.catalogue, now, self.max_results, self.utc_offset_h)
        if query.ids:
            return _answer(self._views(await self._by_ids(query)), "service_requests", fmt)
        key = (fmt, tuple(sorted(params.items())))
        body = self.listings.get(key, now)
        if body is None:
            body = render(self._views(await self._search(query, request)), "service_requests", fmt)
            self.listings.put(key, body, now)
        return _raw(body, fmt)

    def _views(self, found: list[Any]) -> list[dict[str, Any]]:
        return [to_open311(r, self.catalogue, self.utc_offset_h) for r in found]

    async def get_request(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        check_jurisdiction(request.query.get("jurisdiction_id", ""), self.catalogue)
        request_id = request.match_info["request_id"]
        check_request_id(request_id)
        found = await self.gateway.get(request_id)
        if found is None:
            raise not_found(f"service_request_id {request_id!r} not found")
        return _answer([to_open311(found, self.catalogue, self.utc_offset_h)], "service_requests", fmt)

    async def get_token(self, request: web.Request) -> web.Response:
        fmt = _format(request)
        check_jurisdiction(request.query.get("jurisdiction_id", ""), self.catalogue)
        token = request.match_info["token"]
        if not is_token(token):
            raise not_found(f"token {token!r} is not a token of this endpoint")
        # A token is issued for a submit of the last seconds: it is on the first pages, newest first.
        pages = self.gateway.pages(max_pages=TOKEN_SCAN_PAGES)
        async with aclosing(self._charged(pages, request)) as charged:
            async for page in charged:
                for found in page:
                    if found.idempotency_key == token:
                        return _answer([token_answer(found.request_id, token)], "service_requests", fmt)
        raise not_found(
            f"token {token}: no service request for it yet; it may still be on its way, "
            "ask again shortly, or POST the same form again"
        )

    async def _by_ids(self, query: RequestsQuery) -> list[Any]:
        gate = asyncio.Semaphore(ID_LOOKUP_CONCURRENCY)

        async def one(request_id: str) -> Any | None:
            async with gate:
                return await self.gateway.get(request_id)

        results = await asyncio.gather(*(one(i) for i in query.ids))
        return [r for r in results if r is not None]

    async def _search(self, query: RequestsQuery, request: web.Request) -> list[Any]:
        """Newest first through the gateway's pages, until the limit or the window's start."""
        found: list[Any] = []
        pages = self.gateway.pages(query.gateway_category, query.gateway_open_only, self.max_scan_pages)
        async with aclosing(self._charged(pages, request)) as charged:
            async for page in charged:
                for candidate in page:
                    if query.older_than_window(candidate):
                        return found
                    if query.matches(candidate):
                        found.append(candidate)
                        if len(found) >= query.limit:
                            return found
        return found

    async def _charged(
        self, pages: AsyncGenerator[list[Any], None], request: web.Request
    ) -> AsyncGenerator[list[Any], None]:
        """The pages, each one after the first charged to the caller's rate-limit bucket: a query
        that makes the gateway read many pages costs its caller as many requests."""
        first = True
        async with aclosing(pages):
            async for page in pages:
                if not first:
                    self._charge(caller_of("", self.client_address(request)), "address")
                first = False
                yield page

    # ---------------- the rest ----------------

    async def get_openapi(self, request: web.Request) -> web.Response:
        if not self._openapi:
            self._openapi = render(openapi_document(self.catalogue, self.public_url), "openapi", "json")
        return web.Response(body=self._openapi, content_type="application/json", charset="utf-8")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n") if self.ready else web.Response(status=503, text="unavailable\n")

    def _charge(self, caller: str, kind: str) -> None:
        try:
            self.limiter.check(caller, time.monotonic())
        except Open311Error:
            metrics.RATE_LIMITED.labels(kind).inc()
            raise

    def client_address(self, request: web.Request) -> str:
        """The caller's address: the one the trusted proxy appended last to X-Forwarded-For (the
        entries before it are whatever the client sent, so they cannot pick their own bucket)."""
        forwarded = request.headers.get("X-Forwarded-For", "") if self.trust_forwarded_for else ""
        if forwarded.strip():
            return forwarded.rsplit(",", 1)[-1].strip()
        return request.remote or "unknown"

    # ---------------- middleware: CORS, limits, errors, metrics, traces ----------------

    @web.middleware
    async def edge(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        route = _route_of(request)
        parent = propagate.extract(dict(request.headers))
        with tracer.start_as_current_span(f"{request.method} {route}", context=parent, kind=SpanKind.SERVER):
            response = await self._answer_or_error(request, handler, route)
        self._cors(request, response)
        metrics.HTTP_REQUESTS.labels(route, request.method, str(response.status)).inc()
        metrics.HTTP_LATENCY.labels(route, request.method).observe(time.perf_counter() - start)
        return response

    async def _answer_or_error(
        self, request: web.Request, handler: Handler, route: str
    ) -> web.StreamResponse:
        try:
            if request.method == "OPTIONS":
                return web.Response(status=204)
            size, limit = request.content_length, self.max_body_bytes
            if size is not None and size > limit:
                raise Open311Error(
                    PAYLOAD_TOO_LARGE, f"the request body ({size} bytes) is larger than {limit}"
                )
            if request.path not in UNPROBED_PATHS:
                self._charge(caller_of("", self.client_address(request)), "address")
            return await handler(request)
        except Open311Error as exc:
            return _error(exc, request)
        except web.HTTPException as exc:  # no route, method not allowed, body too large
            return _error(_http_error(exc), request)
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("internal error %s on %s %s", incident, request.method, route)
            return _error(Open311Error(500, f"internal error {incident}"), request)

    def _cors(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin", "")
        if not origin:
            return
        if "*" in self.cors_origins:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin in self.cors_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        else:
            return
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE_S


def build_app(api: Open311Api) -> web.Application:
    app = web.Application(middlewares=[api.edge], client_max_size=api.max_body_bytes)
    fmt = "{fmt:[a-z]+}"
    app.router.add_get(f"/discovery.{fmt}", api.get_discovery)
    app.router.add_get(f"/services.{fmt}", api.get_services)
    app.router.add_get(f"/services/{{service_code:[^/]+?}}.{fmt}", api.get_service_definition)
    app.router.add_get(f"/requests.{fmt}", api.get_requests)
    app.router.add_post(f"/requests.{fmt}", api.post_request)
    app.router.add_get(f"/requests/{{request_id:[^/]+?}}.{fmt}", api.get_request)
    app.router.add_get(f"/tokens/{{token:[^/]+?}}.{fmt}", api.get_token)
    app.router.add_get("/openapi.json", api.get_openapi)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    return app


def _format(request: web.Request) -> str:
    fmt = request.match_info.get("fmt", "json")
    if fmt not in FORMATS:
        raise Open311Error(NOT_FOUND, f"format {fmt!r} is not served; use .json or .xml")
    return fmt


def _format_of_path(request: web.Request) -> str:
    """The format an error is written in: the path's, else JSON."""
    suffix = request.path.rsplit(".", 1)[-1] if "." in request.path.rsplit("/", 1)[-1] else ""
    return suffix if suffix in FORMATS else "json"


def _answer(document: Any, root: str, fmt: str, status: int = 200) -> web.Response:
    return _raw(render(document, root, fmt), fmt, status)


def _raw(body: bytes, fmt: str, status: int = 200) -> web.Response:
    response = web.Response(status=status, body=body)
    response.headers["Content-Type"] = CONTENT_TYPES[fmt]
    return response


def _error(exc: Open311Error, request: web.Request) -> web.Response:
    response = _answer(exc.document(), "errors", _format_of_path(request), exc.status)
    if exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s + 0.5)))
    return response


def _http_error(exc: web.HTTPException) -> Open311Error:
    if exc.status == PAYLOAD_TOO_LARGE:
        return Open311Error(PAYLOAD_TOO_LARGE, f"the request body is too large: {exc.text or exc.reason}")
    if exc.status == NOT_FOUND:
        return Open311Error(NOT_FOUND, "no such resource; GET /discovery.json lists the endpoint")
    return Open311Error(exc.status, exc.reason)


def _route_of(request: web.Request) -> str:
    """A bounded metrics label: the route's pattern, never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _joined(query: MultiMapping[str]) -> dict[str, str]:
    """Query parameters, a repeated one joined with commas (GeoReport lists may come either way)."""
    return {name: ",".join(query.getall(name)) for name in query}


async def _form_pairs(request: web.Request) -> list[tuple[str, str]]:
    content_type = request.content_type
    if content_type not in FORM_TYPES:
        raise bad_request(f"POST a form ({FORM_TYPES[0]}), not {content_type or 'an empty body'}")
    form = await request.post()
    pairs: list[tuple[str, str]] = []
    for name, value in form.items():
        if not isinstance(value, str):
            raise bad_request(f"{name}: file uploads are not accepted; send the file's address as media_url")
        pairs.append((name, value))
    # GeoReport clients sometimes put api_key and jurisdiction_id in the query string of a POST.
    present = {name for name, _ in pairs}
    for name in ("api_key", "jurisdiction_id"):
        if name in request.query and name not in present:
            pairs.append((name, request.query[name]))
    return pairs

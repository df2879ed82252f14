"""Wiring of the facade process: catalogue, gateway channel, HTTP server, readiness, shutdown.

Life of the process:
1. the HTTP server starts at once; /readyz answers 503 until the gateway's health service says
   SERVING (checked every 2 s), then "open311 ready on <address>" is logged;
   readiness follows the gateway from then on, so a pod without a gateway leaves the Service;
2. SIGTERM/SIGINT: /readyz 503, no new connections, in-flight requests get
   OPEN311_SHUTDOWN_GRACE_S to finish, the gRPC channel closes, the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from aiohttp import web

from open311.adapters import metrics
from open311.adapters.gateway import GatewayClient
from open311.adapters.http import Open311Api, build_app
from open311.config import DEV_GATEWAY_TOKEN, Open311Config
from open311.core.cache import ListingCache
from open311.core.catalogue import Catalogue
from open311.core.ratelimit import RateLimiter
from smartcity.observability import configure_logging, start_observability
from smartcity.tracing import setup_tracing

log = logging.getLogger("open311")
READY_CHECK_S = 2.0


def make_api(config: Open311Config) -> Open311Api:
    token = config.gateway_token()
    if token == DEV_GATEWAY_TOKEN:
        log.warning("OPEN311_GATEWAY_TOKEN_FILE not set: reading with the public DEVELOPMENT token")
    tls_ca = Path(config.gateway_tls_ca_file).read_bytes() if config.gateway_tls_ca_file else None
    gateway = GatewayClient(
        config.gateway_address, token, config.read_timeout_s, config.submit_timeout_s, tls_ca
    )
    return Open311Api(
        catalogue=Catalogue.load(config.services_file),
        gateway=gateway,
        limiter=RateLimiter(config.rate_limit_rps, config.rate_limit_burst, config.rate_limit_callers),
        public_url=config.public_url,
        cors_origins=config.cors_origins,
        max_results=config.max_results,
        max_scan_pages=config.max_scan_pages,
        utc_offset_h=config.utc_offset_h,
        trust_forwarded_for=config.trust_forwarded_for,
        max_body_bytes=config.max_body_bytes,
        listings=ListingCache(config.list_cache_s),
    )


async def follow_gateway(api: Open311Api, address: str) -> None:
    """Keeps api.ready equal to the gateway's health (logs the first time it is ready)."""
    announced = False
    while True:
        api.ready = await api.gateway.serving()
        metrics.READY.set(1 if api.ready else 0)
        if api.ready and not announced:
            log.info("open311 ready on %s", address)
            announced = True
        await asyncio.sleep(READY_CHECK_S)


async def serve(config: Open311Config) -> int:
    """Runs the facade until SIGTERM/SIGINT; exit 0."""
    configure_logging(config.platform)
    setup_tracing(config.platform)
    metrics.initialise()
    api = make_api(config)
    runner = web.AppRunner(build_app(api), shutdown_timeout=config.shutdown_grace_s, access_log=None)
    await runner.setup()
    host, port = config.host_port
    await web.TCPSite(runner, host, port).start()
    log.info("HTTP listening on %s, waiting for the gateway at %s", config.address, config.gateway_address)
    observability = start_observability(config.platform, ready=lambda: api.ready)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    follower = asyncio.create_task(follow_gateway(api, config.address))
    try:
        await stop.wait()
    finally:
        log.info("shutting down: finishing in-flight requests within %.1f s", config.shutdown_grace_s)
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        api.ready = False
        await runner.cleanup()
        await api.gateway.close()
        if observability is not None:
            observability.stop()
        log.info("open311 stopped")
    return 0

"""Wiring of the gateway process: views, projector, commands, gRPC server, health, shutdown.

Life of the process:
1. the gRPC server starts at once and answers health checks NOT_SERVING (and every API call
   UNAVAILABLE) while the projector rebuilds the views from Kafka;
   Before that, the data keys are read (requests.data-keys.v1) and checked against the KEK
   keyring: a wrong or missing KEK stops the process with an error naming it;
2. once caught up: health SERVING, "gateway ready on <address>" in the log, /readyz 200; the
   retention sweep (docs/personal-data.md) runs from then on;
3. SIGTERM/SIGINT: health NOT_SERVING, watch streams end with UNAVAILABLE, no new calls are
   accepted, in-flight calls get GATEWAY_SHUTDOWN_GRACE_S to finish (commands still receive
   their outcomes meanwhile), then Kafka clients close and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from gateway.adapters import metrics
from gateway.adapters.history_store import HistoryStore
from gateway.adapters.interceptors import GatewayInterceptor
from gateway.adapters.projector import VIEW_TOPICS, Projector, stored_topics
from gateway.adapters.publisher import CommandPublisher
from gateway.adapters.request_history import RequestHistory
from gateway.adapters.servicers import (
    DataProtectionServicer,
    DeviceServicer,
    OverviewServicer,
    RequestServicer,
)
from gateway.config import GatewayConfig
from gateway.core.api import Api
from gateway.core.auth import RateLimiter, TokenStore
from gateway.core.command_bus import CommandBus
from gateway.core.contacts import ContactGate
from gateway.core.errors import ApiError, ErrorKind
from gateway.core.fanout import Hub
from gateway.core.views import Change, Views
from smartcity.kafka import wait_for_broker
from smartcity.observability import configure_logging, start_observability
from smartcity.personal_data.audit_topic import AuditLog, AuditUnavailable
from smartcity.personal_data.keystore import DataKeyStore
from smartcity.personal_data.keytopic import DataKeyTopic
from smartcity.personal_data.sweeper import RetentionSweeper
from smartcity.personal_data.vault import ContactVault
from smartcity.request_rules import OPEN_STATUSES
from smartcity.tracing import setup_tracing
from smartcity.v1 import gateway_pb2, gateway_pb2_grpc

log = logging.getLogger("gateway")

SERVICE_NAMES = tuple(
    gateway_pb2.DESCRIPTOR.services_by_name[s].full_name
    for s in ("DeviceService", "OverviewService", "RequestService", "DataProtectionService")
)
_DEVICE_VIEWS = {"access_points", "cameras", "incidents"}


class Gateway:
    """One gateway process's parts, started and stopped in order."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.views = Views(max_resolved_incidents=config.max_resolved_incidents)
        self.store = HistoryStore(
            config.store_path,
            stored_topics(config.platform.topic_prefix),
            config.store_cache_mib,
            config.store_check_at_open_mib,
        )
        self.history = RequestHistory(self.store, self.views, OPEN_STATUSES)
        self.device_hub: Hub[Change] = Hub(config.watch_queue_size)
        self.request_hub: Hub[Change] = Hub(config.watch_queue_size)
        self.publisher = CommandPublisher(config.platform)
        self.bus = CommandBus(self.publisher.send, metrics.count_command)
        personal = config.personal_data
        self.data_keys = DataKeyTopic(
            config.platform,
            DataKeyStore(personal.keyring()),
            follow_wait_ms=config.data_key_follow_wait_ms or None,
        )
        self.audit = AuditLog(config.platform)
        vault = ContactVault(self.data_keys, personal.hasher())
        self.contacts = ContactGate(
            vault,
            self._record_audit,
            metrics.count_contact_reads,
            lambda reason: metrics.CONTACT_ERASURES.labels(reason).inc(),
            actor=config.platform.service_name,
        )
        # The rule reads only subjects that still have a data key: their requests are found
        # through the store's subject index, not by reading every request.
        self.sweeper = RetentionSweeper(
            vault,
            self._record_audit,
            lambda: self.history.contact_uses(vault.store.subjects()),
            personal,
            actor=config.platform.service_name,
        )
        self.api = Api(
            self.views,
            self.bus,
            self.device_hub,
            self.request_hub,
            self.history,
            self.contacts,
            config.api_limits(),
        )
        self.projector = Projector(
            config.platform,
            self.views,
            self.history,
            self._route_change,
            self.bus.on_event,
            rebuild_workers=config.rebuild_workers,
        )
        self.api.catch_up = self._read_requests_up_to_now
        self.api.not_ready_reason = lambda: self.projector.catching_up
        self.health = HealthServicer()
        tokens = TokenStore.load(config.tokens_file)
        metrics.initialise(tokens.client_ids(), VIEW_TOPICS)
        self.server = self._grpc_server(tokens)
        self.port = 0
        self._verifying: asyncio.Task[None] | None = None

    async def _record_audit(self, events: Any) -> None:
        try:
            await self.audit.record(events)
        except AuditUnavailable as exc:
            # Contact data is shown only once its reading is on the audit trail.
            raise ApiError(ErrorKind.UNAVAILABLE, f"{exc}; retry") from exc

    async def _read_requests_up_to_now(self, timeout_s: float) -> None:
        await self.projector.read_up_to_now(timeout_s)

    def _route_change(self, view: str, change: Change) -> None:
        (self.device_hub if view in _DEVICE_VIEWS else self.request_hub).publish(change)

    def _grpc_server(self, tokens: TokenStore) -> grpc.aio.Server:
        return grpc_server(self.config, tokens, self.api, self.health)

    def _bind(self) -> int:
        address = self.config.address
        if not self.config.tls:
            return int(self.server.add_insecure_port(address))
        credentials = grpc.ssl_server_credentials(
            [(Path(self.config.tls_key_file).read_bytes(), Path(self.config.tls_cert_file).read_bytes())]
        )
        return int(self.server.add_secure_port(address, credentials))

    async def _set_health(self, status: Any) -> None:
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)

    async def start(self) -> None:
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.port = self._bind()
        if not self.port:
            raise RuntimeError(f"cannot listen on {self.config.address}")
        await self.server.start()
        log.info(
            "gRPC listening on %s (%s), catching up with Kafka",
            self.config.address,
            "TLS" if self.config.tls else "plaintext",
        )
        # The integrity check reads the whole file: off the event loop, health keeps answering.
        await asyncio.to_thread(self.store.open)
        if self.store.set_aside:
            metrics.STORE_SET_ASIDE.inc()
        if self.store.unverified:
            self._verifying = asyncio.create_task(self._verify_store(), name="store-check")
        await wait_for_broker(self.config.platform)
        # The keyring is checked against the data keys before anything is served.
        await self.data_keys.start()
        if self.config.personal_data.rewrap_on_start:
            log.info("rewrapped %d data keys with the active KEK", await self.data_keys.rewrap_old_keys())
        await self.audit.start()
        await self.publisher.start()
        await self.projector.start()

    async def _verify_store(self) -> None:
        """A large store resumed warm is page-checked while the gateway catches up and serves
        (reads of a damaged page fail, they do not answer wrong). Damage found: the store is set
        aside and the gateway stops (exit 1), so its restart rebuilds from the topics."""
        began = time.monotonic()
        problem = await asyncio.to_thread(self.store.verify)
        if not problem:
            log.info("history store %s checked in %.1f s", self.store.path, time.monotonic() - began)
            return
        log.error(
            "history store %s is damaged: %s; stopping so that a restart rebuilds it",
            self.store.path,
            problem,
        )
        self.store.condemn(problem)
        metrics.STORE_SET_ASIDE.inc()
        if not self.projector.failed.done():
            self.projector.failed.set_result(RuntimeError(f"the history store is damaged: {problem}"))

    async def become_ready(self) -> None:
        await self.projector.caught_up.wait()
        self.api.ready = True
        metrics.READY.set(1)
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        host = self.config.address.rpartition(":")[0]
        log.info("gateway ready on %s:%d", host, self.port)

    async def stop(self) -> None:
        log.info("shutting down: finishing in-flight calls within %.1f s", self.config.shutdown_grace_s)
        metrics.READY.set(0)
        await self.health.enter_graceful_shutdown()
        self.api.stopping.set()
        self.device_hub.close_all()
        self.request_hub.close_all()
        await self.server.stop(self.config.shutdown_grace_s)
        await self.projector.stop()
        await self.publisher.stop()
        await self.audit.stop()
        await self.data_keys.stop()
        if self._verifying is not None:
            self._verifying.cancel()
            await asyncio.gather(self._verifying, return_exceptions=True)
        self.store.close()
        log.info("gateway stopped")

    async def run_retention(self) -> None:
        """The retention sweep and the data-key topic's periodic write, once the views are whole."""
        every_s = self.config.personal_data.sweep_interval_s
        await self.projector.caught_up.wait()
        while True:
            await asyncio.sleep(every_s)
            try:
                expired = await self.sweeper.sweep()
                await self.data_keys.touch()
            except Exception as exc:  # the next round retries; nothing is lost by waiting
                log.warning("retention sweep failed: %r", exc)
                continue
            for expiry in expired:
                metrics.CONTACT_ERASURES.labels("retention" if expiry.request_ids else "orphan").inc()
            if expired:
                log.info("retention: destroyed the data keys of %d subject(s)", len(expired))

    async def refresh_gauges(self, every_s: float = 5.0) -> None:
        while True:
            for view, size in self.projector.sizes().items():
                metrics.VIEW_SIZE.labels(view).set(size)
            metrics.COMMANDS_WAITING.set(self.bus.waiting)
            metrics.WATCHERS_DROPPED.labels("devices")._value.set(self.device_hub.dropped)
            metrics.WATCHERS_DROPPED.labels("requests")._value.set(self.request_hub.dropped)
            await asyncio.sleep(every_s)


def grpc_server(
    config: GatewayConfig, tokens: TokenStore, api: Api, health: HealthServicer
) -> grpc.aio.Server:
    """The gateway's gRPC server, not yet bound: its services, the interceptor, the options."""
    limiter = RateLimiter(config.rate_limit_rps, config.rate_limit_burst)
    server = grpc.aio.server(
        interceptors=[GatewayInterceptor(tokens, limiter, api)], options=config.grpc_options()
    )
    gateway_pb2_grpc.add_DeviceServiceServicer_to_server(DeviceServicer(api), server)
    gateway_pb2_grpc.add_OverviewServiceServicer_to_server(OverviewServicer(api), server)
    gateway_pb2_grpc.add_RequestServiceServicer_to_server(RequestServicer(api), server)
    gateway_pb2_grpc.add_DataProtectionServiceServicer_to_server(DataProtectionServicer(api), server)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (
            *SERVICE_NAMES,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    return server


async def serve(config: GatewayConfig) -> int:
    """Runs the gateway until SIGTERM/SIGINT (exit 0) or a fatal projector error (exit 1)."""
    configure_logging(config.platform)
    setup_tracing(config.platform)
    if config.uses_dev_tokens:
        log.warning(
            "GATEWAY_TOKENS_FILE not set: using the public DEVELOPMENT tokens (%s)", config.tokens_file
        )
    gateway = Gateway(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    observability = start_observability(config.platform, ready=lambda: gateway.api.ready)
    gauges = asyncio.create_task(gateway.refresh_gauges())
    retention = asyncio.create_task(gateway.run_retention())
    exit_code = 0
    try:
        starting: asyncio.Future[Any] = asyncio.create_task(_start(gateway))
        stopping: asyncio.Future[Any] = asyncio.create_task(stop.wait())
        failed: asyncio.Future[Any] = gateway.projector.failed
        keys_failed: asyncio.Future[Any] = gateway.data_keys.failed
        done, _ = await asyncio.wait(
            {starting, stopping, failed, keys_failed}, return_when=asyncio.FIRST_COMPLETED
        )
        if starting in done and starting.exception() is None:
            done, _ = await asyncio.wait({stopping, failed, keys_failed}, return_when=asyncio.FIRST_COMPLETED)
        if failed in done or keys_failed in done or (starting.done() and starting.exception() is not None):
            exit_code = 1
        starting.cancel()
        stopping.cancel()
    finally:
        gauges.cancel()
        retention.cancel()
        await gateway.stop()
        if observability is not None:
            observability.stop()
    return exit_code


async def _start(gateway: Gateway) -> None:
    try:
        await gateway.start()
        await gateway.become_ready()
    except Exception:
        log.exception("gateway failed to start")
        raise

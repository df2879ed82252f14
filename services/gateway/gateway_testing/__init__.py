"""Helpers for the gateway's tests and benchmark: message builders and a fake requests service.

`FakeRequestsService` reads requests.commands.v1 for real and answers on requests.events.v1 and
requests.state.v1 the way the real service's contract says (requests.proto): the lifecycle,
SUBMIT_DEDUPLICATED for a retried submit, COMMAND_REJECTED with a code and reason. Commands for
the category "blackhole" are never answered; those for "slow" are answered after `slow_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from grpc_health.v1 import health_pb2, health_pb2_grpc

from smartcity.codec import to_timestamp
from smartcity.testing import ServiceProcess, free_port
from smartcity.topics import load_catalogue
from smartcity.v1 import camera_pb2, common_pb2, gateway_pb2_grpc, requests_pb2, wifi_pb2

OK = common_pb2.HEALTH_STATE_OK
PROBLEM = common_pb2.HEALTH_STATE_PROBLEM
CRITICAL = common_pb2.HEALTH_STATE_CRITICAL
RS = requests_pb2
ROUTING = {
    "permits": "DPMPTSP",
    "health_info": "DINKES",
    "emergency": "BPBD",
    "fire": "DAMKAR",
    "roads": "PUPR",
    "waste": "DLH",
    "street_lights": "DISHUB",
    "wifi_cctv": "DINKOMINFO",
    "other": "COMMAND_CENTER",
    "blackhole": "DLH",
    "slow": "DLH",
}


def topic(prefix: str, name: str) -> str:
    return load_catalogue()[name].full_name(prefix)


def reason(check: str, severity: Any = PROBLEM, detail: str = "") -> Any:
    return common_pb2.HealthReason(check=check, severity=severity, detail=detail or f"{check} failing")


def ap(
    ap_id: str,
    *,
    site_id: str = "alun-alun",
    health: Any = OK,
    clients: int = 0,
    lat: float = -7.3883,
    lon: float = 109.3639,
    reasons: tuple[Any, ...] = (),
    seq: int = 1,
) -> Any:
    return wifi_pb2.AccessPointStatus(
        ap_id=ap_id,
        site_id=site_id,
        name=f"AP {ap_id}",
        health=health,
        clients_now=clients,
        location=common_pb2.GeoPoint(latitude=lat, longitude=lon),
        reasons=list(reasons),
        last_seq=seq,
        updated_time=to_timestamp(time.time()),
    )


def camera(
    camera_id: str,
    *,
    site_id: str = "alun-alun",
    health: Any = OK,
    lat: float = -7.3883,
    lon: float = 109.3639,
    open_incident_id: str = "",
    reasons: tuple[Any, ...] = (),
) -> Any:
    return camera_pb2.CameraStatus(
        camera_id=camera_id,
        site_id=site_id,
        name=f"CCTV {camera_id}",
        health=health,
        location=common_pb2.GeoPoint(latitude=lat, longitude=lon),
        open_incident_id=open_incident_id,
        reasons=list(reasons),
        recording=health != CRITICAL,
        updated_time=to_timestamp(time.time()),
    )


def incident(
    incident_id: str,
    camera_id: str,
    *,
    site_id: str = "alun-alun",
    resolved: bool = False,
    opened: float | None = None,
    cause: str = "heartbeat",
) -> Any:
    opened = time.time() if opened is None else opened
    msg = camera_pb2.CameraIncident(
        incident_id=incident_id,
        camera_id=camera_id,
        site_id=site_id,
        cause=cause,
        phase=camera_pb2.INCIDENT_PHASE_RESOLVED if resolved else camera_pb2.INCIDENT_PHASE_OPENED,
        severity=CRITICAL,
        opened_time=to_timestamp(opened),
    )
    if resolved:
        msg.resolved_time.CopyFrom(to_timestamp(opened + 60))
    return msg


def site_stats(site_id: str, window: Any = common_pb2.STATS_WINDOW_DAY, unique_users: int = 0) -> Any:
    now = time.time()
    return wifi_pb2.SiteWifiStats(
        site_id=site_id,
        window=window,
        unique_users=unique_users,
        window_start=to_timestamp(now - 60),
        window_end=to_timestamp(now + 3600),
    )


def request_stats(scope: Any, key: str, open_: int = 0, overdue: int = 0) -> Any:
    return requests_pb2.RequestStats(scope=scope, key=key, open=open_, overdue=overdue, total=open_)


def service_request(
    request_id: str,
    *,
    opd_code: str = "DPMPTSP",
    category: str = "permits",
    status: Any = RS.REQUEST_STATUS_SUBMITTED,
    version: int = 1,
    requested: float | None = None,
    submitted_by: str = "citizen-portal",
    reporter: bool = True,
    ack_due: float = 0.0,
) -> Any:
    msg = requests_pb2.ServiceRequest(
        request_id=request_id,
        category=category,
        service_code=category,
        opd_code=opd_code,
        status=status,
        version=version,
        title=f"title of {request_id}",
        description="a description",
        submitted_by_client=submitted_by,
        requested_time=to_timestamp(time.time() if requested is None else requested),
    )
    if reporter:
        msg.reporter.CopyFrom(
            requests_pb2.Reporter(name="Siti", phone="+62 812 0000", email="siti@example.id")
        )
    if ack_due:
        msg.sla.acknowledge_due.CopyFrom(to_timestamp(ack_due))
    return msg


async def produce(producer: AIOKafkaProducer, prefix: str, name: str, key: str, message: Any) -> None:
    value = message.SerializeToString() if message is not None else None
    await producer.send_and_wait(topic(prefix, name), key=key.encode(), value=value)


# ---------------- the fake citizen-requests service ----------------

_TRANSITIONS: dict[str, tuple[set[Any], Any, Any]] = {
    # action: (allowed from, to, event type)
    "acknowledge": (
        {RS.REQUEST_STATUS_SUBMITTED},
        RS.REQUEST_STATUS_ACKNOWLEDGED,
        RS.REQUEST_EVENT_TYPE_ACKNOWLEDGED,
    ),
    "assign": (
        {RS.REQUEST_STATUS_ACKNOWLEDGED, RS.REQUEST_STATUS_ASSIGNED},
        RS.REQUEST_STATUS_ASSIGNED,
        RS.REQUEST_EVENT_TYPE_ASSIGNED,
    ),
    "start": ({RS.REQUEST_STATUS_ASSIGNED}, RS.REQUEST_STATUS_IN_PROGRESS, RS.REQUEST_EVENT_TYPE_STARTED),
    "resolve": ({RS.REQUEST_STATUS_IN_PROGRESS}, RS.REQUEST_STATUS_RESOLVED, RS.REQUEST_EVENT_TYPE_RESOLVED),
    "close": ({RS.REQUEST_STATUS_RESOLVED}, RS.REQUEST_STATUS_CLOSED, RS.REQUEST_EVENT_TYPE_CLOSED),
    "reject": (
        {RS.REQUEST_STATUS_SUBMITTED, RS.REQUEST_STATUS_ACKNOWLEDGED},
        RS.REQUEST_STATUS_REJECTED,
        RS.REQUEST_EVENT_TYPE_REJECTED,
    ),
    "reopen": ({RS.REQUEST_STATUS_RESOLVED}, RS.REQUEST_STATUS_IN_PROGRESS, RS.REQUEST_EVENT_TYPE_REOPENED),
}


class FakeRequestsService:
    def __init__(self, bootstrap: str, prefix: str, slow_s: float = 2.0) -> None:
        self._bootstrap, self._prefix, self.slow_s = bootstrap, prefix, slow_s
        self.requests: dict[str, Any] = {}
        self.commands: list[tuple[Any, list[tuple[str, bytes]]]] = []
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> FakeRequestsService:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True, linger_ms=0
        )
        await self._consumer.start()
        await self._producer.start()
        commands = topic(self._prefix, "requests.commands.v1")
        parts = [
            TopicPartition(commands, p) for p in range(load_catalogue()["requests.commands.v1"].partitions)
        ]
        self._consumer.assign(parts)
        await self._consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the position now: commands sent from here on are all seen
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        for task in [self._task, *self._background]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._consumer.stop()
        await self._producer.stop()

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    command = requests_pb2.RequestCommand.FromString(record.value)
                    self.commands.append((command, list(record.headers or [])))
                    await self._handle(command)

    async def _handle(self, command: Any) -> None:
        category = (
            command.submit.category
            if command.WhichOneof("action") == "submit"
            else (self.requests[command.request_id].category if command.request_id in self.requests else "")
        )
        if category == "blackhole":
            return
        if category == "slow":
            task = asyncio.create_task(self._answer_later(command))
            self._background.add(task)
            return
        await self._answer(command)

    async def _answer_later(self, command: Any) -> None:
        await asyncio.sleep(self.slow_s)
        await self._answer(command)

    async def _answer(self, command: Any) -> None:
        event, state = self.decide(command, time.time())
        key = command.request_id.encode()
        if state is not None:
            self.requests[state.request_id] = state
            await self._producer.send_and_wait(
                topic(self._prefix, "requests.state.v1"), key=key, value=state.SerializeToString()
            )
        await self._producer.send_and_wait(
            topic(self._prefix, "requests.events.v1"), key=key, value=event.SerializeToString()
        )

    def decide(self, command: Any, now: float) -> tuple[Any, Any]:
        """(outcome event, new state or None) of a command."""
        event = requests_pb2.RequestEvent(
            event_id=uuid.uuid4().hex,
            request_id=command.request_id,
            correlation_id=command.correlation_id,
            command_id=command.command_id,
            actor=command.actor,
            event_time=to_timestamp(now),
        )
        current = self.requests.get(command.request_id)
        action = command.WhichOneof("action")
        if action == "submit":
            return self._submit(command, current, event, now)
        if current is None:
            return _rejected(event, RS.REJECTION_CODE_NOT_FOUND, f"no request {command.request_id}"), None
        event.request.CopyFrom(current)
        event.version = current.version
        if command.expected_version and command.expected_version != current.version:
            return _rejected(
                event,
                RS.REJECTION_CODE_VERSION_CONFLICT,
                f"request is at version {current.version}, not {command.expected_version}",
            ), None
        state = requests_pb2.ServiceRequest()
        state.CopyFrom(current)
        if action == "comment":
            state.comment_count += 1
            event.type, event.note = RS.REQUEST_EVENT_TYPE_COMMENTED, command.comment.text
        else:
            allowed, to, event_type = _TRANSITIONS[action]
            if current.status not in allowed:
                name = RS.RequestStatus.Name(current.status)
                return _rejected(
                    event, RS.REJECTION_CODE_INVALID_TRANSITION, f"cannot {action} a {name} request"
                ), None
            state.status, event.type = to, event_type
            if action == "assign":
                state.assignee = command.assign.assignee
        state.version += 1
        state.updated_time.CopyFrom(to_timestamp(now))
        state.history.append(
            requests_pb2.HistoryEntry(
                version=state.version,
                type=event.type,
                status=state.status,
                actor=command.actor,
                time=to_timestamp(now),
            )
        )
        event.status_before, event.status_after, event.version = current.status, state.status, state.version
        event.request.CopyFrom(state)
        return event, state

    def _submit(self, command: Any, current: Any, event: Any, now: float) -> tuple[Any, Any]:
        if current is not None:
            event.type, event.version = RS.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED, current.version
            event.request.CopyFrom(current)
            return event, None
        submit = command.submit
        if submit.category not in ROUTING:
            return _rejected(
                event, RS.REJECTION_CODE_INVALID_COMMAND, f"unknown category {submit.category!r}"
            ), None
        state = requests_pb2.ServiceRequest(
            request_id=command.request_id,
            category=submit.category,
            service_code=submit.category,
            opd_code=ROUTING[submit.category],
            priority=submit.priority or RS.PRIORITY_NORMAL,
            status=RS.REQUEST_STATUS_SUBMITTED,
            version=1,
            title=submit.title,
            description=submit.description,
            address=submit.address,
            media_url=submit.media_url,
            idempotency_key=submit.idempotency_key,
            submitted_by_client=command.client_id,
            requested_time=submit.requested_time,
            updated_time=to_timestamp(now),
        )
        for name in ("location", "reporter"):
            if submit.HasField(name):
                getattr(state, name).CopyFrom(getattr(submit, name))
        state.history.append(
            requests_pb2.HistoryEntry(
                version=1,
                type=RS.REQUEST_EVENT_TYPE_SUBMITTED,
                status=state.status,
                actor=command.actor,
                time=to_timestamp(now),
            )
        )
        event.type, event.version = RS.REQUEST_EVENT_TYPE_SUBMITTED, 1
        event.status_after = RS.REQUEST_STATUS_SUBMITTED
        event.request.CopyFrom(state)
        return event, state


def _rejected(event: Any, code: Any, reason: str) -> Any:
    event.type, event.rejection_code, event.rejection_reason = (
        RS.REQUEST_EVENT_TYPE_COMMAND_REJECTED,
        code,
        reason,
    )
    return event


# ---------------- the gateway as a child process ----------------


async def eventually(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Polls `check` until it holds (True) or the time is up (False)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval_s)


# Test tokens: token -> (client_id, opd_code, scopes, extra)
TEST_TOKENS: dict[str, tuple[str, str, list[str], dict[str, Any]]] = {
    "t-dpmptsp": ("dpmptsp-app", "DPMPTSP", ["devices:read", "requests:read", "requests:write"], {}),
    "t-bpbd": ("bpbd-app", "BPBD", ["devices:read", "requests:read", "requests:write"], {}),
    "t-dlh": ("dlh-app", "DLH", ["requests:read", "requests:write"], {}),
    "t-cc": (
        "command-center",
        "COMMAND_CENTER",
        ["devices:read", "requests:read", "requests:read:all", "requests:write"],
        {"actor_kind": "command_center"},
    ),
    "t-portal": ("citizen-portal", "", ["requests:read", "requests:write"], {"actor_kind": "citizen"}),
    "t-devices": ("devices-dashboard", "", ["devices:read"], {}),
    "t-admin": ("admin", "", ["admin"], {"actor_kind": "system"}),
    "t-none": ("nobody", "", [], {}),
    "t-slow": ("slow-client", "", ["devices:read"], {"rate_limit_rps": 0.5, "rate_limit_burst": 3}),
}


def auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def write_tokens(path: Path) -> Path:
    tokens = {}
    for token, (client_id, opd, scopes, extra) in TEST_TOKENS.items():
        tokens[hashlib.sha256(token.encode()).hexdigest()] = {
            "client_id": client_id,
            "opd_code": opd,
            "scopes": scopes,
            **extra,
        }
    path.write_text(yaml.safe_dump({"tokens": tokens}))
    return path


@dataclass
class GatewayProcess:
    proc: ServiceProcess
    address: str
    metrics_port: int
    # The certificate to trust when the gateway serves TLS.
    tls_ca: bytes | None = None

    def channel(self, **options: Any) -> grpc.aio.Channel:
        if self.tls_ca is None:
            return grpc.aio.insecure_channel(self.address, **options)
        target = self.address.replace("127.0.0.1", "localhost")
        return grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(self.tls_ca), **options)

    def signal(self, signum: int) -> None:
        """Sends a signal without waiting (the test's event loop keeps running meanwhile)."""
        assert self.proc._proc is not None
        os.killpg(self.proc._proc.pid, signum)

    async def wait_exit(self, timeout_s: float = 30.0) -> None:
        assert await eventually(lambda: not self.proc.running, timeout_s), "the gateway did not exit"

    async def wait_serving(self, timeout_s: float = 40.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with self.channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if not self.proc.running:
                    raise AssertionError(f"gateway exited:\n{self.proc.log_tail()}")
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"gateway not SERVING within {timeout_s}s:\n{self.proc.log_tail()}")


GatewayStarter = Callable[..., GatewayProcess]


def make_starter(bootstrap: str, logs: Path, started: list[ServiceProcess]) -> GatewayStarter:
    def start(
        prefix: str, tokens_file: Path | None = None, port: int | None = None, **env: str
    ) -> GatewayProcess:
        port = port or free_port()
        metrics_port = free_port()
        full_env = (
            os.environ
            | {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "SMARTCITY_TOPIC_PREFIX": prefix,
                "LOG_FORMAT": "text",
                "PYTHONUNBUFFERED": "1",
                "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
                "METRICS_PORT": str(metrics_port),
                "GATEWAY_SHUTDOWN_GRACE_S": "5",
            }
            | ({"GATEWAY_TOKENS_FILE": str(tokens_file)} if tokens_file else {})
            | env
        )
        proc = ServiceProcess(
            [sys.executable, "-m", "gateway"],
            full_env,
            logs / f"gateway-{len(started)}-{uuid.uuid4().hex[:6]}.log",
        ).start()
        started.append(proc)
        cert = full_env.get("GATEWAY_TLS_CERT_FILE")
        ca = Path(cert).read_bytes() if cert else None
        return GatewayProcess(proc, f"127.0.0.1:{port}", metrics_port, ca)

    return start


class Stubs:
    """The gateway's services on one channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.devices = gateway_pb2_grpc.DeviceServiceStub(channel)
        self.overview = gateway_pb2_grpc.OverviewServiceStub(channel)
        self.requests = gateway_pb2_grpc.RequestServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    """The error a call ends with (fails the test if it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err
    raise AssertionError("the call succeeded; an error was expected")

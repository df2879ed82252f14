"""Message builders of the gateway's tests and benchmark: device statuses, incidents, stats,
requests, and `produce` to put one on a topic of the catalogue."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from smartcity.codec import to_timestamp
from smartcity.personal_data.config import ACTIVE_KEK_VAR, KEYRING_VAR, SALT_VAR, PersonalDataSettings
from smartcity.personal_data.keystore import DataKeyStore
from smartcity.personal_data.keytopic import DataKeyTopic
from smartcity.personal_data.local import write_local_secrets
from smartcity.personal_data.vault import ContactVault
from smartcity.settings import PlatformSettings
from smartcity.topics import load_catalogue
from smartcity.v1 import camera_pb2, common_pb2, gateway_pb2, requests_pb2, wifi_pb2

OK = common_pb2.HEALTH_STATE_OK
PROBLEM = common_pb2.HEALTH_STATE_PROBLEM
CRITICAL = common_pb2.HEALTH_STATE_CRITICAL
RS = requests_pb2


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


def submit_request(category: str = "permits", **fields: Any) -> Any:
    """A SubmitRequestRequest both the gateway and citizen-requests accept (a new idempotency
    key each time, a location and an address, a reporter); `fields` replace any of it."""
    req = gateway_pb2.SubmitRequestRequest(
        idempotency_key=f"key-{uuid.uuid4().hex}",
        category=category,
        title="Izin usaha mikro",
        description="Mohon bantuan pengurusan izin",
        address="Jl. Jend. Sudirman 1",
        location=common_pb2.GeoPoint(latitude=-7.3883, longitude=109.3639),
        reporter=requests_pb2.Reporter(name="Siti", phone="+62 812 1111", email="siti@example.id"),
    )
    for name, value in fields.items():
        setattr(req, name, value)
    return req


async def produce(producer: AIOKafkaProducer, prefix: str, name: str, key: str, message: Any) -> None:
    value = message.SerializeToString() if message is not None else None
    await producer.send_and_wait(topic(prefix, name), key=key.encode(), value=value)


async def seal_as_the_gateway(bootstrap: str, prefix: str, logs: Path, reporter: Any,
                              request_id: str) -> Any:
    """The EncryptedContact a gateway started by `make_starter(..., logs, ...)` would make: the
    data key goes on the prefix's key topic under that gateway's keyring (give its follower a
    moment before the request that carries the envelope)."""
    secrets = write_local_secrets(logs / "personal-data")
    settings = PersonalDataSettings(Path(secrets[KEYRING_VAR]), secrets[ACTIVE_KEK_VAR],
                                    Path(secrets[SALT_VAR]))
    keys = DataKeyTopic(PlatformSettings("gateway-test", kafka_bootstrap=bootstrap, topic_prefix=prefix),
                        DataKeyStore(settings.keyring()))
    await keys.start(timeout_s=30)
    try:
        sealed = await ContactVault(keys, settings.hasher()).seal(reporter, request_id)
    finally:
        await keys.stop()
    assert sealed is not None
    return sealed.contact

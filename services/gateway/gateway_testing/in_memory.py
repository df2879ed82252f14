"""The gateway's API in memory: its views, command bus and hubs, commands decided by the real
request ledger (through `FakeRequestsService.decide`) without Kafka."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig
from gateway.core.api import Api, ApiLimits
from gateway.core.command_bus import CommandBus
from gateway.core.contacts import ContactGate
from gateway.core.fanout import Hub
from gateway.core.views import Views
from gateway_testing.fake_requests import FakeRequestsService
from gateway_testing.messages import service_request
from smartcity.personal_data.config import ACTIVE_KEK_VAR, KEYRING_VAR, SALT_VAR, PersonalDataSettings
from smartcity.personal_data.keystore import record_key
from smartcity.personal_data.local import InMemoryKeys, random_keyring, write_local_secrets
from smartcity.personal_data.subjects import SubjectHasher
from smartcity.personal_data.vault import ContactVault
from smartcity.settings import PlatformSettings
from smartcity.v1 import requests_pb2 as RS

# What the audit topic would have received, per Api (make_api).
TRAILS: dict[int, list[Any]] = {}
SIT = RS.Reporter(name="Siti", phone="+62 812 0000", email="siti@example.id")


def contact_gate() -> tuple[ContactGate, list[Any]]:
    """The contact gate over an in-memory key topic, and the list its audit events go to."""
    trail: list[Any] = []

    async def record(events: Any) -> None:
        trail.extend(events)

    vault = ContactVault(InMemoryKeys(random_keyring()), SubjectHasher(b"test-salt-of-enough-length"))
    return ContactGate(vault, record), trail


def sealed_request(api: Api, request_id: str, **fields: Any) -> Any:
    """A request as citizen-requests writes it: the reporter sealed by this Api's vault."""
    request = service_request(request_id, reporter=False, **fields)
    vault = api.contacts.vault
    subject = vault.subject_of(SIT)
    assert subject is not None
    if subject not in vault.store:  # what keytopic.ensure_key does, without awaiting
        key = vault.store.new_key(subject)
        vault.store.apply(record_key(subject, key.data_key_id), key)
    request.encrypted_reporter.CopyFrom(vault.store.seal(SIT, subject, request_id))
    return request


def make_api(send_delay: float = 0.0, max_streams_per_client: int = 2) -> tuple[Api, FakeRequestsService]:
    """A ready Api whose commands are answered `send_delay` seconds after they are sent."""
    fake = FakeRequestsService("unused", "unused")
    views = Views()
    gate, trail = contact_gate()

    async def send(request_id: str, command: Any) -> None:
        events, _ = fake.decide(command)

        def deliver() -> None:
            for event in events:
                views.apply_event(event)
                bus.on_event(event)

        asyncio.get_running_loop().call_later(send_delay, deliver)

    bus = CommandBus(send)
    api = Api(
        views,
        bus,
        Hub(capacity=10),
        Hub(capacity=10),
        gate,
        ApiLimits(command_timeout_s=1.0, max_streams_per_client=max_streams_per_client),
    )
    api.ready = True
    TRAILS[id(api)] = trail
    return api, fake


def in_memory_config(**settings: Any) -> GatewayConfig:
    """A gateway config for an in-process server over `make_api`, with throwaway local secrets
    (the in-memory Api brings its own vault, `contact_gate`; the config must still be valid)."""
    env = write_local_secrets(Path(tempfile.mkdtemp(prefix="gateway-secrets-")))
    return GatewayConfig(
        platform=PlatformSettings.from_env("gateway", 0),
        personal_data=PersonalDataSettings(
            keyring_path=Path(env[KEYRING_VAR]), active_kek_id=env.get(ACTIVE_KEK_VAR, ""),
            salt_file=Path(env[SALT_VAR]),
        ),
        **settings,
    )

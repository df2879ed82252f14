"""The Faust app of a stream service and its catalogue topics (raw bytes on the wire)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
from faust.auth import Credentials, SASLCredentials, SSLCredentials
from faust.tables import TableManager

from smartcity.kafka import client_security
from smartcity.partitioning import KeyPartitioner
from smartcity.settings import PlatformSettings, env_str
from smartcity.streams import transport as _transport  # noqa: F401  (registers smartcity://)
from smartcity.topics import load_catalogue


def faust_credentials(settings: PlatformSettings) -> Credentials | None:
    """Faust's `broker_credentials` for the settings, built from smartcity.kafka.client_security
    (the same SSL context and SASL arguments every other client gets). None for PLAINTEXT."""
    security = client_security(settings)
    protocol = security.get("security_protocol", "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(security["ssl_context"])
    # SASL_SSL when an ssl_context is given, SASL_PLAINTEXT otherwise (SASLCredentials).
    return SASLCredentials(username=security["sasl_plain_username"],
                           password=security["sasl_plain_password"],
                           mechanism=security["sasl_mechanism"],
                           ssl_context=security.get("ssl_context"))


# Static group membership (KIP-345): a stable name of this worker within its consumer group
# (the pod's name in Kubernetes, through the downward API). A worker that restarts under the
# same name takes its partitions back at once instead of waiting for the broker to expire the
# dead member's session and rebalance. Unset: dynamic membership (tests, several workers that
# share a host).
GROUP_INSTANCE_ID_ENV = "KAFKA_GROUP_INSTANCE_ID"


def group_instance_id() -> str | None:
    """The worker's static member name from KAFKA_GROUP_INSTANCE_ID, or None (dynamic)."""
    return env_str(GROUP_INSTANCE_ID_ENV, "").strip() or None


class PromptTableManager(TableManager):  # type: ignore[misc]
    """Faust's table manager without its fixed one-second pause at start.

    Faust's waits a second before registering the tables, so that tables declared late (after
    the app started) still make it; the consumer subscribes only after that, so every start and
    restart of a worker lost that second. A StreamService declares every table in `__init__`,
    before `serve`: nothing to wait for (a table added after the start still fails loudly).
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


def create_app(settings: PlatformSettings, **overrides: Any) -> faust.App:
    """A Faust app named after the service (isolated by the topic prefix), raw bytes on the wire,
    connecting with the settings' Kafka security (TLS, SASL) like every other client, a static
    group member when KAFKA_GROUP_INSTANCE_ID names it."""
    brokers = ";".join(f"smartcity://{b.strip()}" for b in settings.kafka_bootstrap.split(","))
    config: dict[str, Any] = {
        "broker": brokers,
        "broker_credentials": faust_credentials(settings),
        "store": "memory://",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "producer_acks": -1,
        # Kafka's default placement by key, with a cheaper murmur2 (smartcity.partitioning).
        "producer_partitioner": KeyPartitioner(),
        "web_enabled": False,
        "topic_disable_leader": True,
        "broker_commit_interval": 1.0,
        "consumer_auto_offset_reset": "earliest",
        "consumer_group_instance_id": group_instance_id(),
        "table_cleanup_interval": 30.0,
        "TableManager": PromptTableManager,
        # Changelogs are the tables' only durable copy: as many replicas as the cluster wants.
        "topic_replication_factor": settings.topic_replication_factor,
        # Faust keeps a small local directory even with memory stores; its default is
        # "<app id>-data" in the working directory, which litters whatever directory a worker
        # or a test happens to start in.
        "datadir": str(Path(tempfile.gettempdir()) / "smartcity-faust" / settings.group_id),
    }
    return faust.App(settings.group_id, **(config | overrides))


def raw_topic(app: faust.App, name: str, prefix: str = "") -> faust.TopicT:
    """A catalogue topic (bytes in, bytes out) with its catalogue partition count."""
    spec = load_catalogue()[name]
    return app.topic(
        spec.full_name(prefix),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
    )


def bytes_topic(app: faust.App, full_name: str) -> faust.TopicT:
    """A topic by full name for raw bytes (dead-letter topics)."""
    return app.topic(full_name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw")


def topics_of(names: Sequence[str], prefix: str) -> list[str]:
    """The full names of catalogue topics under a prefix."""
    catalogue = load_catalogue()
    return [catalogue[n].full_name(prefix) for n in names]


def internal_topic(app: faust.App, name: str, partitions: int, **options: Any) -> faust.TopicT:
    """A topic the app owns (raw bytes), created by `run_worker` before the worker starts."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", partitions=partitions, internal=True, **options)

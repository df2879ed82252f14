"""The topic catalogue (topics.yaml beside this module) and idempotent topic creation.

    python -m smartcity.topics create   # create missing topics, raise partitions, align configs
    python -m smartcity.topics list     # print the catalogue
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

CATALOGUE_PATH = Path(__file__).with_name("topics.yaml")
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the catalogue; `name` is the catalogue name, without any prefix."""

    name: str
    key: str
    value: str
    kind: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    has_dlq: bool = False
    replicas: int = 1
    # What personal data its records may hold: "" none, "contact" (reporter contact fields,
    # encrypted), "client-mac" (client identifiers that must be hashed; a bad record may hold a
    # raw MAC). Dead letters of such topics never keep readable personal data.
    personal_data: str = ""

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def dlq_name(self, prefix: str = "") -> str:
        if not self.has_dlq:
            raise KeyError(f"topic {self.name} has no dead-letter topic in the catalogue")
        return f"{prefix}{self.name}{DLQ_SUFFIX}"


@dataclass(frozen=True)
class Catalogue:
    topics: tuple[TopicSpec, ...]

    def __getitem__(self, name: str) -> TopicSpec:
        for spec in self.topics:
            if spec.name == name:
                return spec
        raise KeyError(f"topic {name!r} is not in the catalogue {CATALOGUE_PATH.name}")

    def all_topics(self) -> list[TopicSpec]:
        """Every topic to create, dead-letter topics included."""
        return list(self.topics) + [self._dlq_spec(spec) for spec in self.topics if spec.has_dlq]

    def _dlq_spec(self, spec: TopicSpec) -> TopicSpec:
        defaults = _raw_catalogue().get("defaults", {}).get("dlq", {})
        return TopicSpec(
            name=spec.name + DLQ_SUFFIX,
            key=spec.key,
            value="bytes (the original message)",
            kind="stream",
            partitions=int(defaults.get("partitions", 1)),
            config={"cleanup.policy": "delete", "retention.ms": str(defaults.get("retention_ms", -1))},
            replicas=spec.replicas,
        )


@cache
def _raw_catalogue() -> dict[str, Any]:
    with CATALOGUE_PATH.open() as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


@cache
def load_catalogue() -> Catalogue:
    raw = _raw_catalogue()
    replicas = int(raw.get("defaults", {}).get("replicas", 1))
    specs = tuple(
        TopicSpec(
            name=item["name"],
            key=item["key"],
            value=item["value"],
            kind=item["kind"],
            partitions=int(item["partitions"]),
            config={str(k): str(v) for k, v in (item.get("config") or {}).items()},
            has_dlq=bool(item.get("dlq", False)),
            replicas=replicas,
            personal_data=str(item.get("personal_data", "")),
        )
        for item in raw["topics"]
    )
    return Catalogue(specs)


def admin_client(bootstrap: str, security: Mapping[str, Any] | None = None) -> AIOKafkaAdminClient:
    """An admin client (not yet started); `security` is smartcity.kafka.client_security(...)."""
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="smartcity-topics",
                               **dict(security or {}))


async def ensure_topics(bootstrap: str, prefix: str = "", replicas: int | None = None, *,
                        security: Mapping[str, Any] | None = None) -> list[str]:
    """Create missing catalogue topics, add partitions, align configs. Returns what changed.

    `security`: the client arguments of smartcity.kafka.client_security (none = plaintext)."""
    specs = load_catalogue().all_topics()
    admin = admin_client(bootstrap, security)
    await admin.start()
    changes: list[str] = []
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.full_name(prefix) not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=s.full_name(prefix),
                        num_partitions=s.partitions,
                        replication_factor=replicas or s.replicas,
                        topic_configs=s.config,
                    )
                    for s in missing
                ]
            )
            changes += [f"created {s.full_name(prefix)} ({s.partitions} partitions)" for s in missing]
        present = [s for s in specs if s.full_name(prefix) in existing]
        if present:
            changes += await _align_existing(admin, present, prefix)
        await wait_until_visible(admin, {s.full_name(prefix): s.partitions for s in specs})
    finally:
        await admin.close()
    return changes


@dataclass(frozen=True)
class InternalTopic:
    """A topic a service owns and the catalogue does not list: a Faust table's changelog, a
    repartition topic, a timer's ticks. Its partition count is part of the service's design
    (co-partitioning with its source), so an existing topic with another count is an error."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1


async def ensure_internal_topics(bootstrap: str, topics: Sequence[InternalTopic],
                                 timeout_s: float = 60.0, *,
                                 security: Mapping[str, Any] | None = None) -> list[str]:
    """Creates the missing ones and waits until the cluster metadata shows every one.

    Why before the worker starts: a topic Faust creates while its consumer joins the group can
    be missing from the metadata the assignment is computed from (a young broker is slow to
    propagate it). The table's changelog then counts 0 partitions and its agent crashes on
    every event until the next rebalance, which never comes in a steady group.
    """
    admin = admin_client(bootstrap, security)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica was quicker
                await admin.create_topics([NewTopic(t.name, t.partitions, t.replicas,
                                                    topic_configs=dict(t.config)) for t in missing])
        await wait_until_visible(admin, {t.name: t.partitions for t in topics}, timeout_s, exact=True)
    finally:
        await admin.close()
    return [f"created {t.name} ({t.partitions} partitions)" for t in missing]


async def wait_until_visible(admin: AIOKafkaAdminClient, wanted: Mapping[str, int],
                             timeout_s: float = 60.0, exact: bool = False) -> None:
    """Waits until every topic of `wanted` (name -> partitions) has a leader per partition.

    With `exact`, a topic with another partition count raises TopicLayoutError at once;
    without, a topic may have more (the catalogue only ever raises counts). TimeoutError when
    the broker does not show them all within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        pending = await _not_yet_visible(admin, wanted, exact)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not visible after {timeout_s:.0f}s: {', '.join(sorted(pending))}")
        await asyncio.sleep(0.2)


class TopicLayoutError(RuntimeError):
    """A topic exists with a partition count other than the one the platform needs."""


async def _not_yet_visible(admin: AIOKafkaAdminClient, wanted: Mapping[str, int], exact: bool) -> set[str]:
    pending = set(wanted)
    for described in await admin.describe_topics(sorted(wanted)):
        name, partitions = described["topic"], described.get("partitions") or []
        if described.get("error_code") or not partitions:
            continue
        if exact and len(partitions) != wanted[name]:
            raise TopicLayoutError(
                f"topic {name} has {len(partitions)} partitions, the service needs {wanted[name]} "
                "to stay co-partitioned with its source: restore the configured partition count "
                "or migrate the topic")
        if len(partitions) >= wanted[name] and all(p.get("leader", -1) >= 0 for p in partitions):
            pending.discard(name)
    return pending


async def delete_topics(bootstrap: str, prefix: str, *,
                        security: Mapping[str, Any] | None = None) -> list[str]:
    """Deletes every topic under `prefix` (catalogue and Faust internal ones alike)."""
    if not prefix:
        raise ValueError("refusing to delete every topic of the cluster: give a prefix")
    admin = admin_client(bootstrap, security)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
    return doomed


async def _align_existing(admin: AIOKafkaAdminClient, specs: list[TopicSpec], prefix: str) -> list[str]:
    changes: list[str] = []
    described = await admin.describe_topics([s.full_name(prefix) for s in specs])
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    grow = {
        s.full_name(prefix): NewPartitions(total_count=s.partitions)
        for s in specs
        if partitions.get(s.full_name(prefix), s.partitions) < s.partitions
    }
    if grow:
        await admin.create_partitions(grow)
        changes += [f"raised partitions of {name}" for name in grow]
    for spec in specs:
        if spec.config:
            # Incremental-free alter: set exactly the catalogue's keys, the rest stay default.
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, spec.full_name(prefix), configs=spec.config)]
            )
    return changes


def main(argv: list[str] | None = None) -> int:
    """The CLI; the broker's security comes from the KAFKA_SECURITY_* environment like services'."""
    from smartcity.kafka import client_security
    from smartcity.settings import LOCAL_BOOTSTRAP, KafkaSecurity, env_str

    parser = argparse.ArgumentParser(prog="python -m smartcity.topics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["create", "list"])
    parser.add_argument("--bootstrap", default=env_str("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP))
    parser.add_argument("--prefix", default=env_str("SMARTCITY_TOPIC_PREFIX", ""))
    args = parser.parse_args(argv)
    if args.command == "list":
        for spec in load_catalogue().all_topics():
            print(f"{spec.full_name(args.prefix):40} {spec.kind:10} {spec.partitions:>3}  {spec.value}")
        return 0
    security = client_security(KafkaSecurity.from_env())
    changes = asyncio.run(ensure_topics(args.bootstrap, args.prefix, security=security))
    for change in changes:
        print(change)
    print(f"{len(load_catalogue().all_topics())} catalogue topics present on {args.bootstrap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

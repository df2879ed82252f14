"""The topic catalogue (topics.yaml beside this module) and idempotent topic creation.

    python -m smartcity.topics create   # create missing topics, raise partitions, align configs
    python -m smartcity.topics list     # print the catalogue
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

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
        )
        for item in raw["topics"]
    )
    return Catalogue(specs)


async def ensure_topics(bootstrap: str, prefix: str = "", replicas: int | None = None) -> list[str]:
    """Create missing catalogue topics, add partitions, align configs. Returns what changed."""
    specs = load_catalogue().all_topics()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="smartcity-topics")
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
    finally:
        await admin.close()
    return changes


async def delete_topics(bootstrap: str, prefix: str) -> list[str]:
    """Deletes every topic under `prefix` (catalogue and Faust internal ones alike)."""
    if not prefix:
        raise ValueError("refusing to delete every topic of the cluster: give a prefix")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="smartcity-topics")
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
    from smartcity.settings import LOCAL_BOOTSTRAP, env_str

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
    changes = asyncio.run(ensure_topics(args.bootstrap, args.prefix))
    for change in changes:
        print(change)
    print(f"{len(load_catalogue().all_topics())} catalogue topics present on {args.bootstrap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

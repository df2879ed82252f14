"""The topics a Faust app owns (changelogs, internal agent topics), as the broker must have them
before the worker starts."""

from __future__ import annotations

from collections.abc import Iterable

import faust
from mode.utils.times import want_seconds

from smartcity.topics import InternalTopic

# A worker whose tables live in memory replays its changelogs at every restart, and Kafka never
# compacts a log's active segment (nor one the cleaner has not reached yet). Short segments keep
# the replay near one record per key plus the last few seconds of writes: a wifi worker
# restarted after a minute at 3,000 APs replayed for 18.3 s with 8 MiB segments, 7.0 s with
# 1 MiB (the broker's default segment, 1 GiB, would hold minutes of writes at city scale).
# A table's own extra_topic_configs win.
CHANGELOG_DEFAULTS: dict[str, str] = {"segment.bytes": str(1 * 1024 * 1024),
                                      "min.cleanable.dirty.ratio": "0.2"}


def internal_topics_of(app: faust.App, extra: Iterable[faust.TopicT] = ()) -> list[InternalTopic]:
    """The topics the app owns: every table's changelog, internal agent sources, and `extra`.

    `extra` is for topics an agent reads among catalogue topics (a timer's ticks merged into
    its source stream), which Faust cannot tell apart as internal.
    """
    changelogs = [table.changelog_topic for table in app.tables.values()]
    topics = [agent.channel for agent in app.agents.values()
              if isinstance(agent.channel, faust.TopicT) and agent.channel.internal]
    found: dict[str, InternalTopic] = {}
    for topic, defaults in [*((t, CHANGELOG_DEFAULTS) for t in changelogs),
                            *((t, {}) for t in [*topics, *extra])]:
        for name in topic.topics:
            found.setdefault(name, InternalTopic(
                name=name,
                partitions=topic.partitions or app.conf.topic_partitions,
                config=defaults | _faust_topic_config(topic),
                replicas=topic.replicas or app.conf.topic_replication_factor,
            ))
    return list(found.values())


def _faust_topic_config(topic: faust.TopicT) -> dict[str, str]:
    """The broker config Faust itself would create the topic with."""
    policies = [name for name, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on]
    config = {"cleanup.policy": ",".join(policies)} if policies else {}
    if topic.retention:
        config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
    return config | {k: str(v) for k, v in (topic.config or {}).items()}

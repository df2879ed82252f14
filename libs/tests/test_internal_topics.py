"""Which topics a service owns, as `smartcity.streams` reads them off its Faust app (no broker)."""

from __future__ import annotations

import faust

from smartcity.settings import PlatformSettings
from smartcity.streams import create_app, internal_topics_of


def _app() -> faust.App:
    return create_app(PlatformSettings(service_name="svc", kafka_bootstrap="127.0.0.1:1",
                                       topic_prefix="p."))


def test_changelogs_internal_sources_and_extras_with_faust_s_own_configs() -> None:
    app = _app()
    app.Table("state", partitions=6, extra_topic_configs={"segment.ms": "600000"})
    repartitioned = app.topic("p.svc-by-site", partitions=3, internal=True)
    catalogue_source = app.topic("p.events.v1", partitions=6)
    ticks = app.topic("p.svc-ticks", partitions=6, internal=True, deleting=True, retention=3600.0)

    @app.agent(repartitioned)
    async def by_site(stream: faust.StreamT) -> None:
        async for _ in stream:
            pass

    @app.agent(catalogue_source)
    async def events(stream: faust.StreamT) -> None:
        async for _ in stream:
            pass

    found = {t.name: t for t in internal_topics_of(app, extra=[ticks])}

    assert set(found) == {"p.svc-state-changelog", "p.svc-by-site", "p.svc-ticks"}
    changelog = found["p.svc-state-changelog"]
    assert changelog.partitions == 6
    assert changelog.config == {"cleanup.policy": "compact", "segment.ms": "600000"}
    assert found["p.svc-by-site"].partitions == 3 and found["p.svc-by-site"].config == {}
    assert found["p.svc-ticks"].config == {"cleanup.policy": "delete", "retention.ms": "3600000"}


def test_a_table_without_partitions_gets_the_app_default_as_faust_would() -> None:
    app = _app()
    app.Table("counts")
    (changelog,) = internal_topics_of(app)
    assert changelog.partitions == app.conf.topic_partitions

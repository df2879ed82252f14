"""The shared Faust wiring without a broker: the topics a service owns, its agents' crashes."""

from __future__ import annotations

import faust
import pytest
from prometheus_client import REGISTRY

from smartcity.settings import PlatformSettings
from smartcity.streams import AgentCrashes, create_app, internal_topics_of


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
    # The platform's changelog defaults (short segments, so restarts replay little), the
    # table's own settings over them.
    assert changelog.config == {"cleanup.policy": "compact", "segment.ms": "600000",
                                "segment.bytes": str(1 * 1024 * 1024), "min.cleanable.dirty.ratio": "0.2"}
    assert found["p.svc-by-site"].partitions == 3 and found["p.svc-by-site"].config == {}
    assert found["p.svc-ticks"].config == {"cleanup.policy": "delete", "retention.ms": "3600000"}


def test_a_table_s_own_changelog_settings_win_over_the_platform_s() -> None:
    app = _app()
    app.Table("state", partitions=6, extra_topic_configs={"segment.bytes": "1048576"})
    (changelog,) = internal_topics_of(app)
    assert changelog.config["segment.bytes"] == "1048576"
    assert changelog.config["min.cleanable.dirty.ratio"] == "0.2"


def test_internal_topics_get_the_platform_s_replication_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPIC_REPLICATION_FACTOR", "3")
    app = create_app(PlatformSettings.from_env("svc"))
    app.Table("state", partitions=6)
    (changelog,) = internal_topics_of(app)
    assert changelog.replicas == 3


def test_a_table_without_partitions_gets_the_app_default_as_faust_would() -> None:
    app = _app()
    app.Table("counts")
    (changelog,) = internal_topics_of(app)
    assert changelog.partitions == app.conf.topic_partitions


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _crashes_counted(service: str, agent: str) -> float | None:
    return REGISTRY.get_sample_value("smartcity_agent_crashes_total", {"service": service, "agent": agent})


async def test_agent_crashes_are_counted_from_zero_and_faust_s_handler_still_runs() -> None:
    app = _app()
    seen: list[str] = []

    async def own_handler(agent: object, exc: BaseException) -> None:
        seen.append(str(exc))

    @app.agent(app.topic("p.events.v1"), name="svc.events")
    async def events(stream: faust.StreamT) -> None:
        async for _ in stream:
            pass

    events._on_error = own_handler  # stands for Faust's own (the consumer's on_task_error)

    crashes = AgentCrashes("svc-crash-test")
    crashes.watch(app)
    assert _crashes_counted("svc-crash-test", "svc.events") == 0.0

    await events._on_error(events, RuntimeError("boom"))

    assert _crashes_counted("svc-crash-test", "svc.events") == 1.0
    assert seen == ["boom"]


def test_a_crash_loop_is_three_crashes_within_the_window_and_ends_with_it() -> None:
    clock = FakeClock()
    crashes = AgentCrashes("svc-loop-test", limit=3, window_s=300.0, clock=clock)
    for _ in range(2):
        crashes.record("svc.events", RuntimeError("again"))
        clock.now += 5
    assert not crashes.crash_looping()  # two crashes: Faust's restart may have fixed it
    crashes.record("svc.events", RuntimeError("again"))
    assert crashes.crash_looping()
    clock.now += 301
    assert not crashes.crash_looping()
    # Crashes spread out over more than the window never add up to a loop.
    for _ in range(5):
        crashes.record("svc.events", RuntimeError("rare"))
        clock.now += 200
    assert not crashes.crash_looping()


def test_a_named_worker_is_a_static_group_member(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_GROUP_INSTANCE_ID", "wifi-telemetry-7f9c-x2")
    assert _app().conf.consumer_group_instance_id == "wifi-telemetry-7f9c-x2"
    monkeypatch.setenv("KAFKA_GROUP_INSTANCE_ID", "  ")
    assert _app().conf.consumer_group_instance_id is None
    monkeypatch.delenv("KAFKA_GROUP_INSTANCE_ID")
    assert _app().conf.consumer_group_instance_id is None

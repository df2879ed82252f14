"""The life of a stream worker: internal topics first, then Faust's worker, with logging,
tracing, /metrics and the probes around it.

A restarted worker logs its start-up timeline, each step in seconds since the process started
("startup: ..."): modules imported and app declared, broker reachable and internal topics
ready, partitions assigned, tables recovered (their changelogs replayed). That is where a slow
restart shows its cause.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import faust

from smartcity.kafka import client_security, wait_for_broker
from smartcity.settings import PlatformSettings
from smartcity.streams.internal_topics import internal_topics_of
from smartcity.streams.metrics import sample_consumer_lag
from smartcity.streams.readiness import AgentCrashes, assigned_and_recovered
from smartcity.topics import ensure_internal_topics

log = logging.getLogger(__name__)


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc, 10 ms resolution; 0 elsewhere)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime_s - start_ticks / os.sysconf("SC_CLK_TCK"))


def log_startup(step: str) -> None:
    log.info("startup: %s at %.2fs", step, process_age_s())


def watch_startup(app: faust.App, timeout_s: float = 300.0) -> None:
    """Logs when the worker got its partitions (Faust's signal, sent before the tables replay
    their changelogs: the replay keeps the event loop busy) and when its tables were recovered
    (looking every 20 ms, for at most `timeout_s`)."""
    assigned_once: list[int] = []

    @app.on_partitions_assigned.connect  # type: ignore[misc]
    async def _assigned(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        if not assigned_once:
            assigned_once.append(len(assigned))
            log_startup(f"{len(assigned)} partitions assigned")

    @app.task
    async def _startup_timeline() -> None:
        deadline = time.monotonic() + timeout_s
        while not (assigned_once and assigned_and_recovered(app)):
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.02)
        log_startup("tables recovered, processing")


def run_worker(app: faust.App, settings: PlatformSettings,
               extra_internal_topics: Iterable[faust.TopicT] = ()) -> None:
    """Creates the app's internal topics, then runs it as a Faust worker until SIGTERM/SIGINT.

    Not through Faust's CLI: it would force its web server on (port 6066) and its own logging;
    the platform serves /metrics itself and logs JSON (see smartcity.observability).
    """
    from faust.worker import Worker

    # Faust runs the worker on the thread's current event loop: prepare the topics on that same
    # loop (asyncio.run would close it and leave the worker without one).
    loop = asyncio.get_event_loop_policy().get_event_loop()
    # Refused credentials stop the worker here with a clear error instead of a retry loop.
    loop.run_until_complete(wait_for_broker(settings))
    created = loop.run_until_complete(
        ensure_internal_topics(settings.kafka_bootstrap, internal_topics_of(app, extra_internal_topics),
                               security=client_security(settings)))
    for line in created:
        log.info("internal topic %s", line)
    log_startup("broker reachable, internal topics ready")
    worker = Worker(app, loglevel=settings.log_level, override_logging=False,
                    redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()


def serve(app: faust.App, settings: PlatformSettings, lag_interval_s: float = 5.0, *,
          extra_internal_topics: Iterable[faust.TopicT] = (),
          ready: Callable[[], bool] | None = None) -> None:
    """The whole life of a stream service: logging, tracing, /metrics and probes, the worker
    (internal topics first). `ready` replaces the default readiness (assigned and recovered)."""
    from smartcity.observability import configure_logging, start_observability
    from smartcity.tracing import setup_tracing

    configure_logging(settings)
    log_startup("modules imported, app declared")
    setup_tracing(settings)
    # Readiness is judged on the event loop and only read by the probe thread: touching Faust's
    # lazily created services (app.tables, its recovery) from the HTTP thread first can bind
    # them to that thread's event loop, and the worker then hangs at startup.
    readiness = {"ready": False}
    crashes = AgentCrashes(settings.service_name)
    crashes.watch(app)
    start_observability(settings, live=lambda: not crashes.crash_looping(),
                        ready=lambda: readiness["ready"])

    @app.timer(min(1.0, lag_interval_s))
    async def _judge_readiness() -> None:
        base = ready() if ready is not None else assigned_and_recovered(app)
        readiness["ready"] = base and not crashes.crash_looping()

    @app.timer(lag_interval_s)
    async def _sample_lag() -> None:
        sample_consumer_lag(app, settings.service_name)

    watch_startup(app)

    run_worker(app, settings, extra_internal_topics)

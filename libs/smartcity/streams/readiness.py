"""Liveness and readiness of a stream worker: assigned and recovered, agents not crash-looping."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import faust

from smartcity.streams.metrics import AGENT_CRASHES

log = logging.getLogger(__name__)


def assigned_and_recovered(app: faust.App) -> bool:
    """Partitions assigned and tables recovered from their changelogs: the base of readiness.

    Call it on the event loop only (see `serve`)."""
    try:
        recovered = app.tables.recovery.completed.is_set()
    except AttributeError:
        recovered = True
    return bool(recovered and not app.rebalancing)


class AgentCrashes:
    """The crashes of a worker's agents: counted, logged, and judged for liveness.

    Faust restarts a crashed agent, which then crashes again on the same cause (a table whose
    changelog layout does not match, a bug on a kind of event) while the process looks alive.
    A worker whose agents crashed `limit` times within `window_s` is not live any more: the
    orchestrator restarts it, which also redoes its partition assignment.
    """

    def __init__(self, service: str, limit: int = 3, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.service, self.limit, self.window_s, self._clock = service, limit, window_s, clock
        self._times: list[float] = []

    def watch(self, app: faust.App) -> None:
        """Hooks every agent of `app` (declared by now); their counters start at 0."""
        for agent in app.agents.values():
            AGENT_CRASHES.labels(self.service, agent.name)
            # Faust's per-agent error hook, which app.agent fills with the app's own handler
            # (it tells the consumer): ours counts first, then calls it.
            agent._on_error = self._chain(agent._on_error)

    def record(self, agent_name: str, exc: BaseException) -> None:
        AGENT_CRASHES.labels(self.service, agent_name).inc()
        now = self._clock()
        self._times = [t for t in self._times if now - t < self.window_s] + [now]
        log.error("agent %s crashed (%d in the last %.0fs): %r", agent_name, len(self._times),
                  self.window_s, exc)

    def crash_looping(self) -> bool:
        now = self._clock()
        return sum(1 for t in self._times if now - t < self.window_s) >= self.limit

    def _chain(self, previous: Any) -> Callable[[Any, BaseException], Any]:
        async def on_error(agent: Any, exc: BaseException) -> None:
            self.record(agent.name, exc)
            if previous is not None:
                await previous(agent, exc)
        return on_error

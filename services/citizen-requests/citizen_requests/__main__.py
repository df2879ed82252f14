"""Entry point: `python -m citizen_requests` (console script `citizen-requests`).

Runs the Faust worker in this process with /metrics, /healthz and /readyz on METRICS_PORT
(default 9103); ready once its tables are recovered and it has read the open requests.
"""

from __future__ import annotations

import asyncio

from citizen_requests.streams import SERVICE, build_worker
from smartcity.observability import configure_logging, start_observability
from smartcity.streams import run_worker, sample_consumer_lag
from smartcity.tracing import setup_tracing


def main() -> None:
    worker = build_worker()
    settings = worker.settings
    configure_logging(settings)
    setup_tracing(settings)
    # The worker runs on this loop afterwards (asyncio.run would leave none behind).
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(worker.ensure_internal_topics())
    start_observability(settings, ready=worker.ready)

    async def sample_lag() -> None:
        sample_consumer_lag(worker.app, SERVICE)

    worker.app.timer(5.0)(sample_lag)
    run_worker(worker.app, settings)


if __name__ == "__main__":
    main()

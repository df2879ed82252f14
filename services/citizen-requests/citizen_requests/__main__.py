"""Entry point: `python -m citizen_requests` (console script `citizen-requests`).

Runs the Faust worker in this process with /metrics, /healthz and /readyz on METRICS_PORT
(default 9103); ready once its tables are recovered and it has read the open requests.
"""

from __future__ import annotations

from citizen_requests.adapters.streams import build_worker
from smartcity.streams import serve


def main() -> None:
    worker = build_worker()
    # The ticks and summaries topics are agent sources Faust knows as internal: serve creates
    # them (and the tables' changelogs) before the worker joins its group.
    serve(worker.app, worker.settings, ready=worker.ready_now)


if __name__ == "__main__":
    main()

"""Entry point: `python -m citizen_requests` (console script `citizen-requests`).

Runs the Faust worker in this process with /metrics, /healthz and /readyz on METRICS_PORT
(default 9103); ready once its tables are recovered and it has read the open requests.
"""

from __future__ import annotations

from citizen_requests.adapters.streams import build_worker
from citizen_requests.config import ServiceSettings
from smartcity.event_loop import use_event_loop
from smartcity.gc_thresholds import gc_thresholds_from_env, use_gc_thresholds


def main() -> None:
    # Before Faust is built: its worker runs on the loop the policy gives.
    use_event_loop(ServiceSettings.from_env().event_loop, current=True)
    use_gc_thresholds(gc_thresholds_from_env())  # see smartcity.gc_thresholds
    # The ticks and summaries topics are agent sources Faust knows as internal: serve creates
    # them (and the tables' changelogs) before the worker joins its group.
    build_worker().serve()


if __name__ == "__main__":
    main()

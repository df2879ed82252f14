"""Entry point: `python -m open311` (or the `open311` console script)."""

from __future__ import annotations

import asyncio
import sys

from open311.adapters.server import serve
from open311.config import Open311Config
from smartcity.event_loop import use_event_loop
from smartcity.gc_thresholds import gc_thresholds_from_env, use_gc_thresholds


def main() -> None:
    config = Open311Config.from_env()
    use_event_loop(config.event_loop)  # the loop asyncio.run makes
    use_gc_thresholds(gc_thresholds_from_env())  # see smartcity.gc_thresholds
    sys.exit(asyncio.run(serve(config)))


if __name__ == "__main__":
    main()

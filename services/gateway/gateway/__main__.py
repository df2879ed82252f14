"""Entry point: `python -m gateway` (or the `gateway` console script).

The gateway's imports are made in `main`: the rebuild's worker processes are spawned, and a
spawned process imports this module again (as `__mp_main__`) before its own work. With the
server imported here, each worker would first load gRPC and every servicer (about half a
second of CPU per worker, twice per rebuild) for nothing."""

from __future__ import annotations

import asyncio
import sys


def main() -> None:
    from gateway.adapters.server import serve  # (see the module doc)
    from gateway.config import GatewayConfig
    from smartcity.event_loop import use_event_loop
    from smartcity.gc_thresholds import gc_thresholds_from_env, use_gc_thresholds
    from smartcity.settings import SettingsError

    try:
        config = GatewayConfig.from_env()
        thresholds = gc_thresholds_from_env()
    except SettingsError as exc:
        # A setting or secret that cannot work (e.g. no KEK keyring): say which, and stop.
        print(f"gateway: cannot start: {exc}", file=sys.stderr)
        sys.exit(2)
    use_event_loop(config.event_loop)
    use_gc_thresholds(thresholds)  # see smartcity.gc_thresholds
    sys.exit(asyncio.run(serve(config)))


if __name__ == "__main__":
    main()

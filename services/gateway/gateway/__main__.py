"""Entry point: `python -m gateway` (or the `gateway` console script)."""

from __future__ import annotations

import asyncio
import sys

from gateway.adapters.server import serve
from gateway.config import GatewayConfig
from smartcity.event_loop import use_event_loop
from smartcity.settings import SettingsError


def main() -> None:
    try:
        config = GatewayConfig.from_env()
    except SettingsError as exc:
        # A setting or secret that cannot work (e.g. no KEK keyring): say which, and stop.
        print(f"gateway: cannot start: {exc}", file=sys.stderr)
        sys.exit(2)
    use_event_loop(config.event_loop)
    sys.exit(asyncio.run(serve(config)))


if __name__ == "__main__":
    main()

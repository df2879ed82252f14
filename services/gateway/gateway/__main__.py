"""Entry point: `python -m gateway` (or the `gateway` console script)."""

from __future__ import annotations

import asyncio
import sys

from gateway.adapters.server import serve
from gateway.config import GatewayConfig


def main() -> None:
    sys.exit(asyncio.run(serve(GatewayConfig.from_env())))


if __name__ == "__main__":
    main()

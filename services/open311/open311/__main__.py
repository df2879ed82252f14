"""Entry point: `python -m open311` (or the `open311` console script)."""

from __future__ import annotations

import asyncio
import sys

from open311.adapters.server import serve
from open311.config import Open311Config


def main() -> None:
    sys.exit(asyncio.run(serve(Open311Config.from_env())))


if __name__ == "__main__":
    main()

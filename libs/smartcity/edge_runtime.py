"""What every edge collector process shares: it runs until SIGTERM or SIGINT, and polls in rounds
on a cadence (a round that overruns its interval is followed by the next one at once)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable


def run_until_signalled(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Runs `serve(stop)` in a fresh event loop; SIGTERM/SIGINT set `stop` for a clean exit."""

    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await serve(stop)

    asyncio.run(run())


async def every(interval_s: float, stop: asyncio.Event, one_round: Callable[[], Awaitable[object]]) -> None:
    """Awaits `one_round()` every `interval_s` seconds (start to start) until `stop` is set."""
    while not stop.is_set():
        started = time.monotonic()
        await one_round()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, interval_s - (time.monotonic() - started)))

"""The event loop a process runs on: uvloop (libuv, in C) or the standard library's.

    __main__ ─► use_event_loop(EVENT_LOOP) ─► asyncio's policy ─► asyncio.run / Faust's worker
                                                                   get their loop from it

Why: a submit through the gateway is mostly event-loop work (socket reads and writes of the
gRPC call and of three Kafka requests, callbacks, task steps): under the gateway's and
citizen-requests' load the standard loop's own Python was about a third of their CPU. uvloop
runs the same coroutines (grpc.aio, aiokafka, Faust) with that part in C.

EVENT_LOOP names the loop (`uvloop` or `asyncio`, default `DEFAULT_EVENT_LOOP`), read by each
service's config.py. `asyncio` is the way back when uvloop misbehaves somewhere.
"""

from __future__ import annotations

import asyncio

from smartcity.settings import SettingsError, env_str

EVENT_LOOPS = ("uvloop", "asyncio")
# Every service's default (its config.py names it): the stream workers gain about as much as
# the gateway (camera-health and wifi-telemetry too: bench/ pairs in the commit).
DEFAULT_EVENT_LOOP = "uvloop"


def event_loop_from_env(default: str) -> str:
    """EVENT_LOOP (one of EVENT_LOOPS), `default` when unset; SettingsError for anything else."""
    name = env_str("EVENT_LOOP", default).strip().lower()
    if name not in EVENT_LOOPS:
        raise SettingsError(f"EVENT_LOOP={name!r}: use one of {', '.join(EVENT_LOOPS)}")
    return name


def use_event_loop(name: str, *, current: bool = False) -> None:
    """Makes `name` the loop that asyncio.run creates from now on; with `current`, a new loop
    of it also becomes this thread's current loop (Faust's worker runs on the current loop, and
    uvloop's policy, unlike asyncio's, makes none when asked for it)."""
    if name == "uvloop":
        import uvloop  # only where chosen: the standard loop needs nothing of it

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    elif name == "asyncio":
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    else:
        raise SettingsError(f"unknown event loop {name!r}: use one of {', '.join(EVENT_LOOPS)}")
    if current:
        asyncio.set_event_loop(asyncio.new_event_loop())

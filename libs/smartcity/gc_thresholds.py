"""How often Python's cycle collector runs in a service process: far less often than its default.

    __main__ ─► use_gc_thresholds(gc_thresholds_from_env()) ─► gc.set_threshold, before the work

Why: the collector runs a young collection whenever allocations outnumber deallocations by the
first threshold (700 by default), scans the middle generation every 10th time and everything
every 100th (when enough survived). A stream worker makes and frees tens of thousands of objects
per batch (records, readings, states, outputs), nearly all freed by reference counting the
moment they are dropped, so the collector mostly scans live state for nothing. Measured with
a collector callback, one run each, `GC_THRESHOLDS=python` against the default here:
wifi-telemetry (`bench/bench_wifi_telemetry.py --batch 200 --events 400000`) spent 0.81 s of
its 13.0 CPU seconds in 935 collections, the longest pausing its event loop 145 ms, against
0.20 s in 156 (longest 62 ms; most of them while importing, before `main` sets these);
citizen-requests (`bench/bench_citizen_requests.py --commands 30000`) 0.61 s of 9.2 in 935
(longest 74 ms) against 0.09 s in 149 (longest 33 ms). Cycles (asyncio's, exceptions') are
still collected: a young collection every 50,000 net allocations, a full one at most every
1,000 young ones.

GC_THRESHOLDS: the three thresholds (`gc.set_threshold`'s, comma-separated), default
DEFAULT_GC_THRESHOLDS; `python` for Python's own (700,10,10).
"""

from __future__ import annotations

import gc

from smartcity.settings import SettingsError, env_str

DEFAULT_GC_THRESHOLDS = (50_000, 20, 50)
PYTHON_GC_THRESHOLDS = (700, 10, 10)


def gc_thresholds_from_env() -> tuple[int, int, int]:
    """GC_THRESHOLDS as three non-negative integers; SettingsError for anything else."""
    raw = env_str("GC_THRESHOLDS", "").strip().lower()
    if not raw:
        return DEFAULT_GC_THRESHOLDS
    if raw == "python":
        return PYTHON_GC_THRESHOLDS
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise SettingsError(
            f"GC_THRESHOLDS={raw!r}: three non-negative integers (e.g. 50000,20,50) or 'python'"
        )
    first, second, third = (int(part) for part in parts)
    return first, second, third


def use_gc_thresholds(thresholds: tuple[int, int, int]) -> None:
    """Makes the collector run at `thresholds` from now on (0 as the first: never, by itself)."""
    gc.set_threshold(*thresholds)

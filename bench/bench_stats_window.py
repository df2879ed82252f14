"""Size of the citizen-requests statistics book with and without the rolling window (no Kafka).

    uv run python bench/bench_stats_window.py [--requests 200000] [--days 365] [--window-days 90]

Generates N requests submitted evenly over D days (6 categories; 97% acknowledged after up to 2 h
and finished after up to 10 days, resolved, closed or rejected; 3% still open), feeds their
versions in event-time order to two StatsBooks and runs an eviction pass every simulated hour,
like the worker's flush timer. One book has the window, the other never evicts (the behaviour
before the window; it still carries the eviction heap, so it slightly overstates the old book).
Prints requests held (the figures' total), evictions and the memory the book allocated (tracemalloc).
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from collections.abc import Iterator

from citizen_requests.core.stats import StatsBook
from smartcity.codec import to_timestamp
from smartcity.v1 import requests_pb2 as pb

START = 1_767_236_400.0  # 2026-01-01 10:00 WIB
HOUR, DAY = 3600.0, 86400.0
CATEGORIES = [("permits", "DPMPTSP"), ("roads", "PUPR"), ("waste", "DLH"), ("health_info", "DINKES"),
              ("emergency", "BPBD"), ("wifi_cctv", "DINKOMINFO")]


def versions(n: int, days: float, seed: int = 7) -> list[tuple[float, pb.ServiceRequest]]:
    """(time of change, version) of every request, in event-time order."""
    rng = random.Random(seed)
    out: list[tuple[float, pb.ServiceRequest]] = []
    for i in range(n):
        category, opd = CATEGORIES[i % len(CATEGORIES)]
        submitted = START + rng.uniform(0, days * DAY)
        base = pb.ServiceRequest(request_id=f"req-{i:07d}", category=category, opd_code=opd, version=1,
                                 status=pb.REQUEST_STATUS_SUBMITTED, requested_time=to_timestamp(submitted),
                                 updated_time=to_timestamp(submitted))
        base.sla.acknowledge_due.CopyFrom(to_timestamp(submitted + 4 * HOUR))
        base.sla.resolve_due.CopyFrom(to_timestamp(submitted + 5 * DAY))
        out.append((submitted, base))
        if rng.random() < 0.03:
            continue  # still open
        acked = submitted + rng.uniform(60, 2 * HOUR)
        done = acked + rng.uniform(HOUR, 10 * DAY)
        final = pb.ServiceRequest()
        final.CopyFrom(base)
        final.version = 6
        final.acknowledged_time.CopyFrom(to_timestamp(acked))
        final.updated_time.CopyFrom(to_timestamp(done))
        final.status = rng.choice([pb.REQUEST_STATUS_RESOLVED, pb.REQUEST_STATUS_CLOSED,
                                   pb.REQUEST_STATUS_REJECTED])
        if final.status != pb.REQUEST_STATUS_REJECTED:
            final.resolved_time.CopyFrom(to_timestamp(done))
        final.sla.resolve_breached = done > submitted + 5 * DAY
        out.append((done, final))
    out.sort(key=lambda item: item[0])
    return out


def hours(stream: list[tuple[float, pb.ServiceRequest]]) -> Iterator[tuple[float, list[pb.ServiceRequest]]]:
    """The versions grouped by simulated hour, with the hour's end (the eviction pass's `now`)."""
    batch: list[pb.ServiceRequest] = []
    hour_end = START + HOUR
    for at, version in stream:
        while at >= hour_end:
            yield hour_end, batch
            batch, hour_end = [], hour_end + HOUR
        batch.append(version)
    yield hour_end, batch


def measure(stream: list[tuple[float, pb.ServiceRequest]], window_days: float,
            evict: bool) -> dict[str, float]:
    tracemalloc.start()
    started = time.perf_counter()
    book = StatsBook(window_days=window_days)
    evicted, now = 0, START
    for now, batch in hours(stream):
        book.update_all(batch)
        if evict:
            evicted += len(book.evict(now).request_ids)
    elapsed = time.perf_counter() - started
    memory, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    total = sum(book.stats(scope, now).total for scope in book.scopes()
                if scope[0] == pb.STATS_SCOPE_CATEGORY)
    return {"held": len(book), "evicted": evicted, "total": total,
            "remembered": book.remembered_evictions, "mib": memory / 2**20, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--window-days", type=float, default=90.0)
    args = parser.parse_args()
    stream = versions(args.requests, args.days)
    print(f"{args.requests} requests over {args.days:.0f} days, {len(stream)} versions")
    for label, evict in ((f"window {args.window_days:g} d", True), ("no window", False)):
        r = measure(stream, args.window_days, evict)
        print(f"{label:>12}: {r['held']:>7} requests held, {r['evicted']:>7} evicted, "
              f"total {r['total']:>7}, {r['remembered']:>6} evictions remembered, "
              f"{r['mib']:6.1f} MiB, fed in {r['seconds']:.1f} s")


if __name__ == "__main__":
    main()

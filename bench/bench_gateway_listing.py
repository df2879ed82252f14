"""Benchmark: the gateway's in-memory ListRequests path (open requests), without Kafka or gRPC.

    uv run python bench/bench_gateway_listing.py [--requests 10000 50000 200000] [--rounds 5]

Offers the gateway's live view (gateway.core.views.Views) that many requests spread over six
OPDs, half of them closed (which the view does not keep: closed requests are listed from the
history store, see bench/bench_gateway_history.py), then times what an open-request listing
does per call before paging: the city's, one OPD's, and one OPD's open requests. Prints the
mean milliseconds per call. Single-threaded, deterministic input (seeded).
"""

from __future__ import annotations

import argparse
import json
import random
import time

from gateway.core.views import RequestQuery, Views
from smartcity.v1 import requests_pb2 as pb

OPDS = ["PUPR", "DLH", "DINKES", "BPBD", "DPMPTSP", "DINKOMINFO"]
STATUSES = [pb.REQUEST_STATUS_SUBMITTED, pb.REQUEST_STATUS_IN_PROGRESS, pb.REQUEST_STATUS_CLOSED,
            pb.REQUEST_STATUS_CLOSED]


def city_of(n: int, seed: int = 1) -> Views:
    rng = random.Random(seed)
    views = Views()
    for i in range(n):
        request = pb.ServiceRequest(request_id=f"req-{i:07d}", version=1, category="roads",
                                    opd_code=rng.choice(OPDS), status=rng.choice(STATUSES))
        request.requested_time.FromSeconds(1_790_000_000 + rng.randrange(365 * 86400))
        views.place_request(request.request_id, request)
    return views


def mean_ms(views: Views, query: RequestQuery, rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        views.list_open_requests(query, time.time())
    return (time.perf_counter() - started) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'requests':>9}  {'city':>9}  {'one OPD':>9}  {'OPD open':>9}   (ms per call)")
    rows = {}
    for n in args.requests:
        views = city_of(n)
        figures = [mean_ms(views, q, args.rounds) for q in (
            RequestQuery(), RequestQuery(opd_code="PUPR"), RequestQuery(opd_code="PUPR", open_only=True))]
        print(f"{n:>9}  " + "  ".join(f"{f:>9.1f}" for f in figures))
        rows[n] = dict(zip(("city_ms", "opd_ms", "opd_open_ms"), (round(f, 2) for f in figures), strict=True))
    print(json.dumps({"rounds": args.rounds, "requests": rows}))


if __name__ == "__main__":
    main()

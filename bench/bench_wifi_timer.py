"""The wifi publishing timer's cost per stats pass against the fleet, with few or many sites changed.

    uv run python bench/bench_wifi_timer.py [--sites 500] [--aps-per-site 20] [--minutes 12]
                                            [--changed 0,10,100,500] [--rounds 3]

No broker: builds the decoded state of a city (sites x APs, a reading per AP every 30 s of event
time over `--minutes`, some client sessions) in one `SiteProcessor`, then, for each number of
changed sites, repeats: one new reading for every AP of that many sites, then one stats pass
(`Publisher.tick`), in three ways on the same state, one after the other:

    full, as before   every AP and site, each site's windows found size by size (`site_windows`),
                      availability without its never-down shortcut (`Availability._ratio`): the
                      code before this bench, the in-run ceiling the others are judged by
    full              every AP and site, the windows of every size found at once (`kept_windows`)
    incremental       the APs due and the sites changed (core/publishing.py)

Each figure is the median CPU time of a pass (process time: the box may be busy), with what the
pass published (the full and incremental passes publish the same: a property test holds them
to it). The heartbeat tolerance and the statuses' cadence are set beyond the run: the statuses
they make due (and the statistics of the sites of APs falling silent) are the same work in every
way of passing, and would land all at once on one of them.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

from benchkit import print_figures  # a sibling module (bench/ is on sys.path)

from smartcity.health import Availability
from wifi_telemetry.config import WINDOWS, HealthConfig, WifiConfig
from wifi_telemetry.core import publishing
from wifi_telemetry.core.domain import Sample
from wifi_telemetry.core.processor import CONNECT, SessionEvent, SiteProcessor
from wifi_telemetry.core.published import ApView, kept_windows, site_windows
from wifi_telemetry.core.publishing import Publisher
from wifi_telemetry.core.windows import SiteState

T0 = 1_764_000_000.0
RATIO = Availability.ratio
OWNED = {0}


def windows_size_by_size(site: SiteState, views: Mapping[str, ApView],
                         lateness_s: float) -> dict[str, list[str]]:
    """`kept_windows` as the timer found them before: one scan of every AP's buckets per size."""
    return {window: site_windows(site, views, window, lateness_s) for window, _ in WINDOWS}


class City:
    """A processor holding the city's state, and the clock of its readings."""

    def __init__(self, sites: int, per_site: int, minutes: int) -> None:
        # No status falls due during the run, by its cadence or a silence (the sites not changed
        # stop reporting): those statuses, and the statistics of their sites, are the same work
        # whichever way the pass goes, and would land all at once on one of them.
        config = WifiConfig(health=HealthConfig(heartbeat_tolerance_s=1e9), status_interval_s=1e9)
        self.processor = SiteProcessor(config, {}, write_behind=True)
        self.sites = [f"site-{n:04d}" for n in range(sites)]
        self.aps = {site: [f"{site}-ap-{n:02d}" for n in range(per_site)] for site in self.sites}
        self.seq: dict[str, int] = {}
        self.t = T0
        steps = minutes * 2
        for step in range(steps):
            self.t = T0 + 30.0 * step
            for site in self.sites:
                self.readings(site, sessions=step % 4 == 0)
            self.processor.flush()

    def readings(self, site: str, *, sessions: bool = False) -> None:
        for n, ap in enumerate(self.aps[site]):
            seq = self.seq[ap] = self.seq.get(ap, 0) + 1
            t = self.t + n * 0.01
            self.processor.on_telemetry(Sample(ap, site, seq, t, int(t - T0) + 1000, 20.0, 40.0,
                                               3 + seq % 4, seq * 50_000, seq * 150_000), 0)
            if sessions:
                who = hashlib.sha256(f"{ap}-{seq}".encode()).hexdigest()
                self.processor.on_session(SessionEvent(ap, site, CONNECT, who, t, f"s-{seq}"), 0)

    def all_ids(self) -> tuple[list[str], list[str]]:
        aps, sites = self.processor.decoded_partitions()
        return [a for a, p in aps.items() if p in OWNED], [s for s, p in sites.items() if p in OWNED]


def one_pass(city: City, publisher: Publisher, changed: int, *, incremental: bool,
             windows: Callable[..., dict[str, list[str]]], before: bool = False) -> tuple[float, int, int]:
    """New readings for `changed` sites, then one stats pass: (CPU s, statuses, statistics)."""
    city.t += 5.0
    for site in city.sites[:changed]:
        city.readings(site)
    city.processor.flush()
    publisher.incremental = incremental
    publishing.kept_windows = windows  # type: ignore[attr-defined]
    if before:  # availability without its never-down shortcut, as before
        Availability.ratio = Availability._ratio  # type: ignore[method-assign]
    now = city.t + 1.0
    started = time.process_time()
    out = publisher.tick(now, True, OWNED, 1, city.all_ids)
    took = time.process_time() - started
    publishing.kept_windows = kept_windows  # type: ignore[attr-defined]
    Availability.ratio = RATIO  # type: ignore[method-assign]
    assert out.stats_pass
    return took, len(out.statuses), len(out.stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--aps-per-site", type=int, default=20)
    parser.add_argument("--minutes", type=int, default=12)
    parser.add_argument("--changed", default="0,10,100,500")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    city = City(args.sites, args.aps_per_site, args.minutes)
    built = time.monotonic() - started
    aps = args.sites * args.aps_per_site
    print(f"state of {args.sites} sites, {aps} APs built in {built:.1f}s")
    publisher = Publisher(city.processor.config, city.processor)
    one_pass(city, publisher, len(city.sites), incremental=False, windows=kept_windows)  # all published once
    ways: dict[str, dict[str, Any]] = {
        "full_before": {"incremental": False, "windows": windows_size_by_size, "before": True},
        "full": {"incremental": False, "windows": kept_windows},
        "incremental": {"incremental": True, "windows": kept_windows},
    }
    figures: dict[str, Any] = {"bench": "wifi_timer", "sites": args.sites, "aps": aps,
                               "minutes_of_state": args.minutes, "rounds": args.rounds}
    for changed in [int(c) for c in args.changed.split(",")]:
        taken: dict[str, list[float]] = {name: [] for name in ways}
        published: dict[str, tuple[int, int]] = {}
        for _ in range(args.rounds):
            for name, way in ways.items():
                took, statuses, stats = one_pass(city, publisher, changed, **way)
                taken[name].append(took)
                published[name] = (statuses, stats)
        row = {name: round(1000 * statistics.median(times), 2) for name, times in taken.items()}
        ceiling = row["full_before"]
        print(f"{changed:4d} sites changed: " + ", ".join(
            f"{name} {ms:.1f} ms ({published[name][0]} statuses, {published[name][1]} stats)"
            for name, ms in row.items()))
        for name, ms in row.items():
            figures[f"ms_per_pass_{name}_changed_{changed}"] = ms
        figures[f"incremental_over_full_before_changed_{changed}"] = round(row["incremental"] / ceiling, 4)
        figures[f"stats_published_incremental_changed_{changed}"] = published["incremental"][1]
    print_figures(figures)


if __name__ == "__main__":
    main()

"""The camera simulator at city scale: copies of the inventory's cameras at copies of their sites."""

from __future__ import annotations

from collections import Counter

from camera_health.sim.fleet import Fleet
from camera_health.sim.simulator import messages, scaled_cameras
from smartcity.inventory import COPIES_PER_SITE, cameras


def test_no_count_keeps_the_inventory_and_a_smaller_one_takes_its_first_cameras() -> None:
    assert scaled_cameras(cameras(), 0) == list(cameras())
    assert scaled_cameras(cameras(), 2) == list(cameras()[:2])


def test_copies_are_unique_and_one_batch_per_copied_site() -> None:
    chosen = scaled_cameras(cameras(), 2_000)

    assert len({c.camera_id for c in chosen}) == 2_000
    per_site = Counter(c.site_id for c in chosen)
    assert max(per_site.values()) == COPIES_PER_SITE * max(Counter(c.site_id for c in cameras()).values())
    beats = Fleet(chosen, seed=1).heartbeats(1_000_000.0, 1.0)
    assert len(messages(beats, batches=True)) == len(per_site)

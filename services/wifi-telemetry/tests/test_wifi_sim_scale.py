"""The wifi simulator at city scale: copies of the inventory's APs at copies of their sites."""

from __future__ import annotations

from collections import Counter

from smartcity.inventory import COPIES_PER_SITE, access_points, inventory_site
from wifi_telemetry.sim.simulator import WifiCity, scaled_access_points


def test_no_count_keeps_the_inventory_and_a_smaller_one_takes_its_first_aps() -> None:
    assert scaled_access_points(access_points(), 0) == list(access_points())
    assert scaled_access_points(access_points(), 3) == list(access_points()[:3])


def test_copies_are_unique_and_grouped_in_sites_of_a_controller_s_size() -> None:
    aps = scaled_access_points(access_points(), 10_000)

    assert len({ap.ap_id for ap in aps}) == 10_000
    per_site = Counter(ap.site_id for ap in aps)
    inventory_per_site = Counter(ap.site_id for ap in access_points())
    # A copied site holds COPIES_PER_SITE copies of its inventory site's APs (the last fewer).
    assert max(per_site.values()) == COPIES_PER_SITE * max(inventory_per_site.values())
    assert all(inventory_site(site) in inventory_per_site for site in per_site)


def test_a_copied_site_names_its_inventory_site_and_a_real_one_itself() -> None:
    assert inventory_site("alun-alun-x12") == "alun-alun"
    assert inventory_site("taman-usman-janatin") == "taman-usman-janatin"
    assert inventory_site("goa-lawa-xy") == "goa-lawa-xy"


def test_the_city_steps_copies_like_the_inventory_s_aps() -> None:
    city = WifiCity(scaled_access_points(access_points(), 200), seed=1, start=1_000_000.0, load=0.05)
    telemetry, _ = city.step(1_000_001.0)
    assert len(telemetry) == 200
    assert {r["site_id"] for r in telemetry} >= {"alun-alun", "alun-alun-x0"}

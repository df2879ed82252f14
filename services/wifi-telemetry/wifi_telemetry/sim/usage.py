"""How busy a Purbalingga site's WiFi is at a given local time (for the simulator).

Hourly demand profiles (share of AP capacity in use) by kind of site, from how the places are
used: Alun-Alun and the Pendopo fill up in the evening and at weekends (night markets, car-free
day on Sunday morning), the public service mall and the hospital follow office hours, tourist
sites peak late morning to afternoon and at weekends, the bus terminal at commuting hours.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

WIB = timedelta(hours=7)

def _percent(hours: str) -> tuple[float, ...]:
    values = tuple(int(v) / 100 for v in hours.split())
    assert len(values) == 24
    return values


#                                  00 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20 21 22 23
_PROFILES: dict[str, tuple[float, ...]] = {
    "civic": _percent(            "10 05 03 02 02 05 15 20 20 20 22 25 30 28 25 30 40 55 75 90 95 85 55 25"),
    "public_service": _percent(   "01 01 01 01 01 01 03 20 60 80 85 80 60 70 75 50 20 05 02 01 01 01 01 01"),
    "park": _percent(             "05 02 01 01 01 05 20 25 20 15 15 15 15 15 20 35 55 70 65 55 40 25 12 06"),
    "tourism": _percent(          "01 01 01 01 01 01 02 10 35 60 80 85 80 80 75 60 35 10 03 02 01 01 01 01"),
    "health": _percent(           "15 10 08 08 10 15 30 55 75 80 80 70 55 50 45 40 40 45 50 45 35 30 25 20"),
    "transport": _percent(        "05 03 03 05 20 45 70 75 50 35 30 30 35 35 45 65 75 60 40 30 20 15 10 06"),
    "market": _percent(           "02 02 05 25 55 75 80 70 60 50 45 40 30 25 20 15 10 08 05 04 03 02 02 02"),
}
# Saturday and Sunday multipliers (weekdays are 1.0).
_WEEKEND: dict[str, float] = {"civic": 1.5, "park": 1.6, "tourism": 2.0, "public_service": 0.15,
                              "health": 0.6, "transport": 1.2, "market": 1.2}


def local_time(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC) + WIB


def demand(kind: str, epoch_s: float) -> float:
    """Share of capacity in use (0..1) at a site of this kind at that moment."""
    profile = _PROFILES.get(kind, _PROFILES["civic"])
    local = local_time(epoch_s)
    hour = local.hour + local.minute / 60 + local.second / 3600
    low = math.floor(hour) % 24
    share = profile[low] + (profile[(low + 1) % 24] - profile[low]) * (hour - math.floor(hour))
    if local.weekday() >= 5:
        share *= _WEEKEND.get(kind, 1.0)
    return min(1.0, share)

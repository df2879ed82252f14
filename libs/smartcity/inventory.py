"""The regency's sites and the devices installed at them (approximate public coordinates).

One list for the simulators, the gateway (site names, locations) and the end-to-end tests, so
the simulated city and what the platform is expected to show never drift apart. A real
deployment replaces it with its asset register; the services themselves do not depend on it
(every event names its site and carries its location).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, TypeVar


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    latitude: float
    longitude: float
    kind: str  # "civic", "public_service", "park", "tourism", "health", "transport", "market", "junction"


@dataclass(frozen=True)
class AccessPointInfo:
    ap_id: str
    site_id: str
    name: str
    latitude: float
    longitude: float
    # Peak simultaneous clients this AP sees on a busy evening.
    capacity: int


@dataclass(frozen=True)
class CameraInfo:
    camera_id: str
    site_id: str
    name: str
    latitude: float
    longitude: float
    configured_fps: float
    configured_bitrate_kbps: int


SITES: tuple[Site, ...] = (
    Site("alun-alun", "Alun-Alun Purbalingga", -7.38830, 109.36390, "civic"),
    Site("pendopo", "Pendopo Dipokusumo", -7.38790, 109.36330, "civic"),
    Site("mpp", "Mal Pelayanan Publik", -7.39050, 109.36150, "public_service"),
    Site("taman-usman-janatin", "Taman Usman Janatin", -7.39200, 109.36500, "park"),
    Site("owabong", "Owabong Waterpark", -7.35740, 109.36030, "tourism"),
    Site("goa-lawa", "Goa Lawa", -7.24030, 109.30310, "tourism"),
    Site("sanggaluri", "Sanggaluri Park", -7.33100, 109.33500, "tourism"),
    Site("rsud", "RSUD dr. R. Goeteng Taroenadibrata", -7.38720, 109.36020, "health"),
    Site("terminal", "Terminal Bus Purbalingga", -7.39970, 109.36580, "transport"),
    Site("pasar-segamas", "Pasar Segamas", -7.38670, 109.36550, "market"),
    Site("simpang-bancar", "Simpang Empat Bancar", -7.39420, 109.35890, "junction"),
)

# Access points per site: (count, capacity per AP).
_AP_PLAN: dict[str, tuple[int, int]] = {
    "alun-alun": (4, 120),
    "pendopo": (2, 60),
    "mpp": (3, 80),
    "taman-usman-janatin": (2, 70),
    "owabong": (3, 90),
    "goa-lawa": (1, 40),
    "sanggaluri": (2, 50),
    "rsud": (2, 80),
    "terminal": (2, 70),
}

# Cameras per site: Alun-Alun's four first, then junctions, terminal, market, tourist sites.
_CAMERA_PLAN: dict[str, int] = {
    "alun-alun": 4,
    "simpang-bancar": 1,
    "terminal": 1,
    "pasar-segamas": 1,
    "owabong": 1,
}


def site(site_id: str) -> Site:
    for candidate in SITES:
        if candidate.site_id == site_id:
            return candidate
    raise KeyError(f"unknown site {site_id!r}")


def _offset(base: Site, index: int, count: int) -> tuple[float, float]:
    """Spreads devices ~40 m around the site centre so 'near a point' queries mean something."""
    if count == 1:
        return base.latitude, base.longitude
    angle = 2 * math.pi * index / count
    return (round(base.latitude + 0.00036 * math.sin(angle), 6),
            round(base.longitude + 0.00036 * math.cos(angle), 6))


@cache
def access_points() -> tuple[AccessPointInfo, ...]:
    result: list[AccessPointInfo] = []
    for site_id, (count, capacity) in _AP_PLAN.items():
        base = site(site_id)
        for i in range(count):
            lat, lon = _offset(base, i, count)
            result.append(AccessPointInfo(f"ap-{site_id}-{i + 1:02d}", site_id,
                                          f"{base.name} AP {i + 1}", lat, lon, capacity))
    return tuple(result)


@cache
def cameras() -> tuple[CameraInfo, ...]:
    result: list[CameraInfo] = []
    for site_id, count in _CAMERA_PLAN.items():
        base = site(site_id)
        for i in range(count):
            lat, lon = _offset(base, i, count)
            result.append(CameraInfo(f"cam-{site_id}-{i + 1}", site_id, f"{base.name} CCTV {i + 1}",
                                     lat, lon, configured_fps=25.0 if site_id == "alun-alun" else 15.0,
                                     configured_bitrate_kbps=4096 if site_id == "alun-alun" else 2048))
    return tuple(result)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


# City scale on one box: copies of the inventory's devices at copies of their sites. One copied
# site (one controller or NVR, one batch message) holds this many copies of a site's devices.
COPIES_PER_SITE = 10
Device = TypeVar("Device", AccessPointInfo, CameraInfo)


def scaled_devices(devices: Sequence[Device], count: int, id_field: str) -> list[Device]:
    """`count` devices (0: `devices` as they are): `devices` first, then copies of them named
    `<id>-x<n>` at copies of their sites (`<site_id>-x<m>`, COPIES_PER_SITE copies each), so one
    box can be loaded like a city of thousands of devices behind hundreds of controllers."""
    if count <= 0:
        return list(devices)
    scaled = []
    for n in range(count):
        original, copy = devices[n % len(devices)], n // len(devices)
        if not copy:
            scaled.append(original)
            continue
        renamed: dict[str, Any] = {id_field: f"{getattr(original, id_field)}-x{copy}",
                                   "site_id": f"{original.site_id}-x{copy // COPIES_PER_SITE}"}
        scaled.append(replace(original, **renamed))
    return scaled


def inventory_site(site_id: str) -> str:
    """The inventory site a site of `scaled_devices` copies (itself when not a copy)."""
    base, mark, number = site_id.rpartition("-x")
    return base if mark and number.isdigit() else site_id

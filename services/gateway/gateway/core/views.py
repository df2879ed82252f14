"""The gateway's in-memory read model (CQRS): what is live, fed decoded messages. Pure.

Devices, site and request stats, open and recently resolved incidents, and the open requests:
their size follows the city, not its history (closed requests and audit trails are in the
history store, gateway.adapters.history_store). The projector feeds every record of the device
and stats topics through `apply_*`; each returns the change worth pushing to watch streams (or
None when nothing a watcher cares about changed).
Queries return protobuf messages; filtering, ordering and snapshot math live here, paging in
`gateway.core.paging`, and who may see what in `gateway.core.auth`.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from smartcity import inventory
from smartcity.codec import from_timestamp, to_timestamp
from smartcity.request_rules import is_open, is_overdue
from smartcity.v1 import camera_pb2, common_pb2, gateway_pb2, requests_pb2

OK = common_pb2.HEALTH_STATE_OK
PROBLEM = common_pb2.HEALTH_STATE_PROBLEM
CRITICAL = common_pb2.HEALTH_STATE_CRITICAL
OPENED, RESOLVED = camera_pb2.INCIDENT_PHASE_OPENED, camera_pb2.INCIDENT_PHASE_RESOLVED

# What a watch stream receives: a device whose health changed, an incident, a request version.
Change = Any  # AccessPointStatus | CameraStatus | CameraIncident | ServiceRequest


def health_signature(status: Any) -> tuple[int, tuple[tuple[str, int], ...]]:
    """What makes a device status worth pushing: its health and which checks fail."""
    return status.health, tuple(sorted((r.check, r.severity) for r in status.reasons))


def distance_to(point: Any, location: Any) -> float:
    return inventory.distance_m(point.latitude, point.longitude, location.latitude, location.longitude)


@dataclass
class DeviceQuery:
    """Filter of the device listings (DeviceFilter, validated)."""

    site_id: str = ""
    health: int = 0
    near: Any = None  # GeoPoint or None
    radius_m: float = 0.0

    @classmethod
    def of(cls, flt: Any) -> DeviceQuery:
        near = flt.near if flt.HasField("near") else None
        return cls(flt.site_id, flt.health, near, flt.radius_meters)

    def matches(self, status: Any) -> bool:
        if self.site_id and status.site_id != self.site_id:
            return False
        if self.health and status.health != self.health:
            return False
        if self.near is not None and self.radius_m > 0:
            return distance_to(self.near, status.location) <= self.radius_m
        return True

    def sort_key(self, status: Any, device_id: str) -> tuple[float, str] | tuple[str]:
        """Nearest first when a point is given, else by id."""
        if self.near is not None:
            return round(distance_to(self.near, status.location), 3), device_id
        return (device_id,)


@dataclass
class RequestQuery:
    opd_code: str = ""
    category: str = ""
    status: int = 0
    open_only: bool = False
    overdue_only: bool = False

    def matches(self, request: Any, now: float) -> bool:
        if self.opd_code and request.opd_code != self.opd_code:
            return False
        if self.category and request.category != self.category:
            return False
        if self.status and request.status != self.status:
            return False
        if self.open_only and not is_open(request):
            return False
        return not (self.overdue_only and not is_overdue(request, now))


def request_sort_key(request: Any) -> tuple[float, str]:
    """Newest first, ties by id."""
    return -from_timestamp(request.requested_time), request.request_id


class RequestOrder:
    """Request ids in listing order (newest first), for the whole city and per OPD.

    Kept as requests arrive, so a listing walks an already sorted index (of the OPD asked for,
    when it asks for one) instead of filtering and sorting every request on each call.
    """

    def __init__(self) -> None:
        self._all: list[tuple[float, str]] = []
        self._by_opd: dict[str, list[tuple[float, str]]] = {}
        self._placed: dict[str, tuple[tuple[float, str], str]] = {}  # id -> (sort key, opd)

    def place(self, request: Any) -> None:
        key, opd = request_sort_key(request), request.opd_code
        known = self._placed.get(request.request_id)
        if known == (key, opd):
            return  # the usual case: a new version of a request already placed
        if known is not None:
            self.remove(request.request_id)
        bisect.insort(self._all, key)
        bisect.insort(self._by_opd.setdefault(opd, []), key)
        self._placed[request.request_id] = (key, opd)

    def remove(self, request_id: str) -> None:
        known = self._placed.pop(request_id, None)
        if known is None:
            return
        key, opd = known
        for keys in (self._all, self._by_opd[opd]):
            index = bisect.bisect_left(keys, key)
            if index < len(keys) and keys[index] == key:
                keys.pop(index)

    def ids(self, opd_code: str = "") -> Iterator[str]:
        """Request ids in listing order: every request, or those routed to `opd_code`."""
        keys = self._by_opd.get(opd_code, []) if opd_code else self._all
        return (request_id for _, request_id in keys)


def incident_sort_key(incident: Any) -> tuple[float, str]:
    return -from_timestamp(incident.opened_time), incident.incident_id


@dataclass
class Views:
    """Everything the gateway serves, keyed by entity id."""

    max_resolved_incidents: int = 10000
    # Bumped by every change: lets readers cache what they computed from the views.
    generation: int = 0
    access_points: dict[str, Any] = field(default_factory=dict)
    cameras: dict[str, Any] = field(default_factory=dict)
    site_stats: dict[str, Any] = field(default_factory=dict)
    incidents: dict[str, Any] = field(default_factory=dict)
    # Resolved incidents in the order they were resolved: the oldest go first when over the cap.
    _resolved: OrderedDict[str, None] = field(default_factory=OrderedDict)
    # The open requests only: they are what is live (snapshots, open and overdue listings). Every
    # request, open or not, and every audit trail live in the history store, whose batch rules
    # decide which version is the newest (gateway.core.history) and hand it to `place_request`.
    open_requests: dict[str, Any] = field(default_factory=dict)
    request_stats: dict[str, Any] = field(default_factory=dict)
    _request_order: RequestOrder = field(default_factory=RequestOrder)

    # ---------------- feeding ----------------

    def apply_access_point(self, status: Any) -> Change | None:
        self.generation += 1
        before = self.access_points.get(status.ap_id)
        self.access_points[status.ap_id] = status
        if before is None or health_signature(before) != health_signature(status):
            return status
        return None

    def apply_camera(self, status: Any) -> Change | None:
        self.generation += 1
        before = self.cameras.get(status.camera_id)
        self.cameras[status.camera_id] = status
        if before is None or health_signature(before) != health_signature(status):
            return status
        return status if before.open_incident_id != status.open_incident_id else None

    def apply_site_stats(self, key: str, stats: Any) -> None:
        """Keyed by the record key ("<site_id>:<window>"), so tombstones find their entry."""
        self.generation += 1
        self.site_stats[key or f"{stats.site_id}:{stats.window}"] = stats

    def apply_incident(self, incident: Any) -> Change | None:
        self.generation += 1
        known = self.incidents.get(incident.incident_id)
        if known is not None and known.phase == RESOLVED and incident.phase != RESOLVED:
            return None  # a redelivered "opened" after its resolution
        if known is not None and known == incident:
            return None
        self.incidents[incident.incident_id] = incident
        if incident.phase == RESOLVED:
            self._resolved[incident.incident_id] = None
            while len(self._resolved) > self.max_resolved_incidents:
                old, _ = self._resolved.popitem(last=False)
                self.incidents.pop(old, None)
        return incident

    def place_request(self, request_id: str, request: Any | None) -> None:
        """The newest version of a request: kept while open, forgotten once closed or deleted."""
        self.generation += 1
        if request is not None and is_open(request):
            self.open_requests[request_id] = request
            self._request_order.place(request)
        else:
            self.open_requests.pop(request_id, None)
            self._request_order.remove(request_id)

    def apply_request_stats(self, key: str, stats: Any) -> None:
        self.generation += 1
        self.request_stats[key or f"{stats.scope}:{stats.key}"] = stats

    def delete(self, view: str, key: str) -> None:
        """A tombstone on a compacted topic."""
        self.generation += 1
        table: dict[str, Any] = getattr(self, view)
        table.pop(key, None)

    # ---------------- devices ----------------

    def list_access_points(self, query: DeviceQuery) -> list[tuple[Any, Any]]:
        """(sort key, status) of matching APs, sorted."""
        return _sorted_devices(self.access_points, query)

    def list_cameras(self, query: DeviceQuery) -> list[tuple[Any, Any]]:
        return _sorted_devices(self.cameras, query)

    def list_incidents(self, camera_id: str, site_id: str, open_only: bool) -> list[Any]:
        found = [
            i
            for i in self.incidents.values()
            if (not camera_id or i.camera_id == camera_id)
            and (not site_id or i.site_id == site_id)
            and (not open_only or i.phase == OPENED)
        ]
        return sorted(found, key=incident_sort_key)

    def open_incidents(self) -> list[Any]:
        return self.list_incidents("", "", open_only=True)

    def list_site_stats(self, site_id: str, window: int) -> list[Any]:
        found = [
            s
            for s in self.site_stats.values()
            if (not site_id or s.site_id == site_id) and (not window or s.window == window)
        ]
        return sorted(found, key=lambda s: (s.site_id, s.window))

    # ---------------- requests ----------------

    def list_open_requests(self, query: RequestQuery, now: float) -> list[Any]:
        """Matching open requests, newest first (walks the OPD's own index when the query names one)."""
        candidates = [self.open_requests[rid] for rid in self._request_order.ids(query.opd_code)]
        if replace(query, opd_code="") == RequestQuery():
            return candidates  # the index already is the answer
        return [r for r in candidates if query.matches(r, now)]

    def list_request_stats(self, scope: int) -> list[Any]:
        found = [s for s in self.request_stats.values() if not scope or s.scope == scope]
        return sorted(found, key=lambda s: (s.scope, s.key))

    # ---------------- overview ----------------

    def city_snapshot(self, now: float) -> Any:
        snap = gateway_pb2.CitySnapshot(as_of=to_timestamp(now))
        _count_health(snap, "access_points", self.access_points.values())
        _count_health(snap, "cameras", self.cameras.values())
        snap.people_online = sum(a.clients_now for a in self.access_points.values() if a.health != CRITICAL)
        snap.open_incidents = len(self.open_incidents())
        snap.requests_open = len(self.open_requests)
        snap.requests_overdue = sum(1 for r in self.open_requests.values() if is_overdue(r, now))
        snap.requests_by_category.extend(self.list_request_stats(requests_pb2.STATS_SCOPE_CATEGORY))
        snap.requests_by_opd.extend(self.list_request_stats(requests_pb2.STATS_SCOPE_OPD))
        snap.sites.extend(self.site_summaries())
        return snap

    def site_summaries(self) -> list[Any]:
        """Every site of the inventory plus any other site devices report, by site id."""
        known = {s.site_id: s for s in inventory.SITES}
        site_ids = (
            set(known)
            | {a.site_id for a in self.access_points.values()}
            | {c.site_id for c in self.cameras.values()}
        )
        return [self._site_summary(sid, known.get(sid)) for sid in sorted(site_ids) if sid]

    def _site_summary(self, site_id: str, site: inventory.Site | None) -> Any:
        aps = [a for a in self.access_points.values() if a.site_id == site_id]
        cams = [c for c in self.cameras.values() if c.site_id == site_id]
        summary = gateway_pb2.SiteSummary(
            site_id=site_id,
            name=site.name if site else site_id,
            access_points_total=len(aps),
            access_points_up=sum(1 for a in aps if a.health != CRITICAL),
            cameras_total=len(cams),
            cameras_up=sum(1 for c in cams if c.health != CRITICAL),
            clients_now=sum(a.clients_now for a in aps if a.health != CRITICAL),
        )
        if site is not None:
            summary.location.CopyFrom(common_pb2.GeoPoint(latitude=site.latitude, longitude=site.longitude))
        days = [
            s
            for s in self.site_stats.values()
            if s.site_id == site_id and s.window == common_pb2.STATS_WINDOW_DAY
        ]
        if days:
            summary.unique_users_today = max(days, key=lambda s: from_timestamp(s.window_start)).unique_users
        return summary


def _sorted_devices(table: dict[str, Any], query: DeviceQuery) -> list[tuple[Any, Any]]:
    found = [(query.sort_key(s, device_id), s) for device_id, s in table.items() if query.matches(s)]
    found.sort(key=lambda pair: pair[0])
    return found


def _count_health(snap: Any, prefix: str, devices: Iterable[Any]) -> None:
    total = ok = problem = critical = 0
    for device in devices:
        total += 1
        ok += device.health == OK
        problem += device.health == PROBLEM
        critical += device.health == CRITICAL
    setattr(snap, f"{prefix}_total", total)
    setattr(snap, f"{prefix}_ok", ok)
    setattr(snap, f"{prefix}_problem", problem)
    setattr(snap, f"{prefix}_critical", critical)

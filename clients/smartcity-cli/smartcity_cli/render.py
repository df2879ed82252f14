"""Human-readable rendering of the gateway's messages (tables) and JSON. Pure.

Used by the command-line client; kept apart from the RPC calls so other views (the live
`smartcity top`, a future dashboard export) reuse the same functions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict

from smartcity.codec import from_timestamp
from smartcity.v1 import camera_pb2, requests_pb2

HEALTH = {0: "-", 1: "OK", 2: "PROBLEM", 3: "CRITICAL"}
WINDOWS = {0: "-", 1: "minute", 2: "hour", 3: "day"}


def to_json(message: Any) -> str:
    return json.dumps(MessageToDict(message, preserving_proto_field_name=True), indent=2, ensure_ascii=False)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; numbers right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    if len(cells) == 1:
        return "(none)"
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric, strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def ago(stamp: Any, now: float | None = None) -> str:
    """ "3m ago" for a Timestamp ("-" when unset)."""
    seconds = from_timestamp(stamp)
    if seconds <= 0:
        return "-"
    delta = (time.time() if now is None else now) - seconds
    if delta < 0:
        return f"in {duration(-delta)}"
    return f"{duration(delta)} ago"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def reasons(items: Iterable[Any]) -> str:
    return "; ".join(r.detail or r.check for r in items) or "-"


def enum_name(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return str(value)


def status_name(value: int) -> str:
    if not value:
        return "-"
    return enum_name(requests_pb2.RequestStatus, value, "REQUEST_STATUS_")


def event_name(value: int) -> str:
    return enum_name(requests_pb2.RequestEventType, value, "REQUEST_EVENT_TYPE_")


# ---------------- devices ----------------


def access_points(items: Iterable[Any], now: float | None = None) -> str:
    return table(
        ["AP", "SITE", "HEALTH", "CLIENTS", "LAST SEEN", "REASONS"],
        [
            (
                a.ap_id,
                a.site_id,
                HEALTH.get(a.health, a.health),
                a.clients_now,
                ago(a.last_seen, now),
                reasons(a.reasons),
            )
            for a in items
        ],
    )


def cameras(items: Iterable[Any], now: float | None = None) -> str:
    return table(
        ["CAMERA", "SITE", "HEALTH", "FPS", "REC", "INCIDENT", "REASONS"],
        [
            (
                c.camera_id,
                c.site_id,
                HEALTH.get(c.health, c.health),
                f"{c.fps:.1f}/{c.configured_fps:.0f}",
                "yes" if c.recording else "NO",
                c.open_incident_id or "-",
                reasons(c.reasons),
            )
            for c in items
        ],
    )


def incidents(items: Iterable[Any], now: float | None = None) -> str:
    return table(
        ["INCIDENT", "CAMERA", "SITE", "PHASE", "SEVERITY", "CAUSE", "OPENED", "RESOLVED"],
        [
            (
                i.incident_id,
                i.camera_id,
                i.site_id,
                enum_name(camera_pb2.IncidentPhase, i.phase, "INCIDENT_PHASE_"),
                HEALTH.get(i.severity, i.severity),
                i.cause or "-",
                ago(i.opened_time, now),
                ago(i.resolved_time, now),
            )
            for i in items
        ],
    )


def site_stats(items: Iterable[Any]) -> str:
    return table(
        ["SITE", "WINDOW", "UNIQUE USERS", "PEAK", "NOW", "APS UP", "AVAILABILITY", "RX MB", "TX MB"],
        [
            (
                s.site_id,
                WINDOWS.get(s.window, s.window),
                s.unique_users,
                s.peak_clients,
                s.clients_now,
                f"{s.access_points_up}/{s.access_points_total}",
                f"{s.availability_ratio * 100:.1f}%",
                s.rx_bytes // 1_000_000,
                s.tx_bytes // 1_000_000,
            )
            for s in items
        ],
    )


def device_change(change: Any, now: float | None = None) -> str:
    """One line per WatchDevicesResponse."""
    kind = change.WhichOneof("change")
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    if kind == "access_point":
        a = change.access_point
        return f"{stamp}  AP      {a.ap_id:<24} {HEALTH.get(a.health, a.health):<8} {reasons(a.reasons)}"
    if kind == "camera":
        c = change.camera
        return f"{stamp}  CAMERA  {c.camera_id:<24} {HEALTH.get(c.health, c.health):<8} {reasons(c.reasons)}"
    if kind == "incident":
        i = change.incident
        phase = enum_name(camera_pb2.IncidentPhase, i.phase, "INCIDENT_PHASE_")
        return f"{stamp}  INCIDENT {i.incident_id} {phase} on {i.camera_id} ({i.cause or '-'})"
    return f"{stamp}  -- end of snapshot, live changes follow --"


# ---------------- overview ----------------


def snapshot(snap: Any, now: float | None = None) -> str:
    aps_up = snap.access_points_total - snap.access_points_critical
    lines = [
        f"Purbalingga city snapshot  (as of {ago(snap.as_of, now)})",
        f"  access points  {aps_up}/{snap.access_points_total} up   ok {snap.access_points_ok}"
        f"  problem {snap.access_points_problem}  critical {snap.access_points_critical}",
        f"  people online  {snap.people_online}",
        f"  cameras        {snap.cameras_total - snap.cameras_critical}/{snap.cameras_total} up"
        f"   ok {snap.cameras_ok}  problem {snap.cameras_problem}  critical {snap.cameras_critical}",
        f"  open incidents {snap.open_incidents}",
        f"  requests       {snap.requests_open} open, {snap.requests_overdue} overdue",
        "",
        table(
            ["SITE", "NAME", "APS UP", "CAMERAS UP", "ONLINE", "USERS TODAY"],
            [
                (
                    s.site_id,
                    s.name,
                    f"{s.access_points_up}/{s.access_points_total}",
                    f"{s.cameras_up}/{s.cameras_total}",
                    s.clients_now,
                    s.unique_users_today,
                )
                for s in snap.sites
            ],
        ),
    ]
    if snap.requests_by_opd:
        lines += ["", request_stats(snap.requests_by_opd)]
    return "\n".join(lines)


# ---------------- requests ----------------


def requests(items: Iterable[Any], now: float | None = None) -> str:
    return table(
        ["REQUEST", "CATEGORY", "OPD", "STATUS", "V", "SUBMITTED", "TITLE"],
        [
            (
                r.request_id,
                r.category,
                r.opd_code,
                status_name(r.status) + (" !" if _breached(r) else ""),
                r.version,
                ago(r.requested_time, now),
                _short(r.title, 40),
            )
            for r in items
        ],
    )


def request_detail(r: Any, now: float | None = None) -> str:
    lines = [
        f"{r.request_id}  {status_name(r.status)}  (version {r.version})",
        f"  category   {r.category} -> {r.opd_code}   priority "
        f"{enum_name(requests_pb2.Priority, r.priority, 'PRIORITY_')}",
        f"  title      {r.title}",
        f"  describe   {r.description}",
        f"  where      {r.address or '-'}"
        + (f" ({r.location.latitude:.5f}, {r.location.longitude:.5f})" if r.HasField("location") else ""),
        f"  submitted  {ago(r.requested_time, now)} by {r.submitted_by_client or '-'}",
        f"  assignee   {r.assignee or '-'}   comments {r.comment_count}",
    ]
    if r.contact_data == requests_pb2.CONTACT_DATA_STATE_ERASED:
        lines.append("  reporter   (erased)")
    if r.reporter.name or r.reporter.phone or r.reporter.email:
        lines.append(
            f"  reporter   {r.reporter.name or '-'}  {r.reporter.phone or '-'}  {r.reporter.email or '-'}"
        )
    if r.HasField("sla"):
        lines.append(
            f"  SLA        acknowledge due {ago(r.sla.acknowledge_due, now)}"
            f"{' BREACHED' if r.sla.acknowledge_breached else ''}, resolve due "
            f"{ago(r.sla.resolve_due, now)}{' BREACHED' if r.sla.resolve_breached else ''}"
        )
    if r.history:
        lines += [
            "",
            table(
                ["V", "EVENT", "STATUS", "BY", "WHEN", "NOTE"],
                [
                    (
                        h.version,
                        event_name(h.type),
                        status_name(h.status),
                        h.actor.id,
                        ago(h.time, now),
                        _short(h.note, 50),
                    )
                    for h in r.history
                ],
            ),
        ]
    return "\n".join(lines)


def request_events(items: Iterable[Any], now: float | None = None) -> str:
    return table(
        ["V", "EVENT", "BEFORE", "AFTER", "BY", "WHEN", "NOTE / REASON"],
        [
            (
                e.version,
                event_name(e.type),
                status_name(e.status_before),
                status_name(e.status_after),
                e.actor.id or "-",
                ago(e.event_time, now),
                _short(e.rejection_reason or e.note, 50),
            )
            for e in items
        ],
    )


def request_stats(items: Iterable[Any]) -> str:
    return table(
        ["SCOPE", "KEY", "OPEN", "OVERDUE", "TODAY IN", "TODAY DONE", "MEDIAN ACK", "MEDIAN RESOLVE"],
        [
            (
                enum_name(requests_pb2.StatsScope, s.scope, "STATS_SCOPE_").lower(),
                s.key,
                s.open,
                s.overdue,
                s.submitted_today,
                s.resolved_today,
                _dur(s.median_time_to_acknowledge),
                _dur(s.median_time_to_resolve),
            )
            for s in items
        ],
    )


def request_change(change: Any, now: float | None = None) -> str:
    if change.WhichOneof("change") != "request":
        return "-- end of snapshot, live changes follow --"
    r = change.request
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    status = status_name(r.status)
    return f"{stamp}  {r.request_id}  v{r.version}  {status:<12} {r.opd_code:<10} {_short(r.title, 50)}"


def _breached(r: Any) -> bool:
    return bool(r.sla.acknowledge_breached or r.sla.resolve_breached)


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _dur(d: Any) -> str:
    seconds = d.seconds + d.nanos / 1e9
    return duration(seconds) if seconds > 0 else "-"


# ---------------- the live view (smartcity top, drawn by smartcity_cli.top) ----------------


@dataclass
class TopState:
    """What `smartcity top` shows, fed by the watch streams."""

    snapshot: Any = None
    access_points: dict[str, Any] = field(default_factory=dict)
    cameras: dict[str, Any] = field(default_factory=dict)
    incidents: dict[str, Any] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)
    requests_visible: bool = True

    def apply_device(self, change: Any) -> None:
        kind = change.WhichOneof("change")
        if kind == "access_point":
            self.access_points[change.access_point.ap_id] = change.access_point
        elif kind == "camera":
            self.cameras[change.camera.camera_id] = change.camera
        elif kind == "incident":
            incident = change.incident
            if incident.phase == camera_pb2.INCIDENT_PHASE_RESOLVED:
                self.incidents.pop(incident.incident_id, None)
            else:
                self.incidents[incident.incident_id] = incident

    def apply_request(self, change: Any) -> None:
        if change.WhichOneof("change") == "request":
            self.requests[change.request.request_id] = change.request


def erasure(request_id: str, reply: Any) -> str:
    """What EraseContactData did, for the operator."""
    if not reply.erased:
        return f"nothing to erase: the contact data of {request_id} was already erased (or never given)"
    ids = ", ".join(reply.request_ids) or request_id
    return f"contact data erased for {len(reply.request_ids)} request(s): {ids}"

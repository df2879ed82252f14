"""`smartcity top`: one frame of the live city view as a `rich` renderable, plain or coloured.

rich does the terminal work: tables shrink to the console's width (long cells end in "…"),
rows are coloured by health only when the console is a terminal, and a console that is not one
(stdout piped or redirected, NO_COLOR, TERM=dumb) gets plain text without any escape code.
The frame is built from a `render.TopState` the watch streams feed; drawing it is cli.py's.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from smartcity.codec import from_timestamp
from smartcity.request_rules import is_open, is_overdue
from smartcity.v1 import common_pb2
from smartcity_cli.render import HEALTH, TopState, ago, reasons

# Row styles by health; rich drops them on a console without colour.
HEALTH_STYLES = {
    common_pb2.HEALTH_STATE_OK: "green",
    common_pb2.HEALTH_STATE_PROBLEM: "yellow",
    common_pb2.HEALTH_STATE_CRITICAL: "bold red",
}


def _table(*columns: str, free_text_last: bool = True) -> Table:
    """A borderless table that fits the width, one line per row: short columns keep their width
    (cut with "…" only when the terminal is very narrow), the last one (reasons) takes what is
    left and is cut with "…" (see `_cut`)."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", expand=False)
    for index, name in enumerate(columns):
        wraps = free_text_last and index == len(columns) - 1
        table.add_column(
            name,
            no_wrap=not wraps,
            overflow="ellipsis",
            min_width=min(len(name), 8),
            ratio=1 if wraps else None,
        )
    return table


def _cut(text: str) -> Text:
    """A cell that stays on one line, cut with "…" at whatever width its column gets."""
    return Text(text, no_wrap=True, overflow="ellipsis")


def _worst_first(devices: Iterable[Any], key: str) -> list[Any]:
    return sorted(devices, key=lambda d: (-d.health, getattr(d, key)))


def _not_ok(devices: Iterable[Any], key: str) -> list[Any]:
    return [d for d in _worst_first(devices, key) if d.health != common_pb2.HEALTH_STATE_OK]


def _summary(snap: Any) -> Text:
    ap_up = snap.access_points_total - snap.access_points_critical
    cam_up = snap.cameras_total - snap.cameras_critical
    parts = [
        f"APs {ap_up}/{snap.access_points_total} up (problem {snap.access_points_problem}, "
        f"critical {snap.access_points_critical})",
        f"people online {snap.people_online}",
        f"cameras {cam_up}/{snap.cameras_total} up",
        f"open incidents {snap.open_incidents}",
        f"requests {snap.requests_open} open / {snap.requests_overdue} overdue",
    ]
    critical = snap.access_points_critical or snap.cameras_critical
    return Text("   ".join(parts), style="bold red" if critical else "")


def _access_points(items: list[Any], now: float) -> Table:
    table = _table("AP", "SITE", "HEALTH", "CLIENTS", "LAST SEEN", "REASONS")
    for a in items:
        table.add_row(
            a.ap_id, a.site_id, HEALTH.get(a.health, str(a.health)), str(a.clients_now),
            ago(a.last_seen, now), _cut(reasons(a.reasons)), style=HEALTH_STYLES.get(a.health),
        )
    return table


def _cameras(items: list[Any], now: float) -> Table:
    table = _table("CAMERA", "SITE", "HEALTH", "FPS", "REC", "INCIDENT", "REASONS")
    for c in items:
        table.add_row(
            c.camera_id, c.site_id, HEALTH.get(c.health, str(c.health)),
            f"{c.fps:.1f}/{c.configured_fps:.0f}", "yes" if c.recording else "NO",
            c.open_incident_id or "-", _cut(reasons(c.reasons)), style=HEALTH_STYLES.get(c.health),
        )
    return table


def _incidents(items: list[Any], now: float) -> Table:
    table = _table("INCIDENT", "CAMERA", "SITE", "SEVERITY", "CAUSE", "OPENED", free_text_last=False)
    for i in items:
        table.add_row(
            i.incident_id, i.camera_id, i.site_id, HEALTH.get(i.severity, str(i.severity)),
            i.cause or "-", ago(i.opened_time, now), style=HEALTH_STYLES.get(i.severity),
        )
    return table


def _requests_per_opd(state: TopState, now: float) -> RenderableType:
    per_opd: dict[str, list[int]] = {}
    for r in state.requests.values():
        if is_open(r):
            counts = per_opd.setdefault(r.opd_code or "-", [0, 0])
            counts[0] += 1
            counts[1] += is_overdue(r, now)
    if not per_opd:
        return Text("  no open requests")
    table = _table("OPD", "OPEN", "OVERDUE", free_text_last=False)
    for opd, (open_count, overdue) in sorted(per_opd.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0])):
        table.add_row(opd, str(open_count), str(overdue), style="yellow" if overdue else None)
    return table


def view(state: TopState, now: float | None = None, rows: int = 10) -> Group:
    """One frame: totals, the worst devices, open incidents, open and overdue requests per OPD."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    title = Text(f"smartcity top — Purbalingga command center — {stamp}", style="bold")
    parts: list[RenderableType] = [title]
    if state.snapshot is not None:
        parts.append(_summary(state.snapshot))
    aps = _not_ok(state.access_points.values(), "ap_id")
    cams = _not_ok(state.cameras.values(), "camera_id")
    incidents = sorted(state.incidents.values(), key=lambda i: -from_timestamp(i.opened_time))
    panels: list[tuple[str, RenderableType]] = [
        (f"ACCESS POINTS not OK ({len(aps)} of {len(state.access_points)})",
         _access_points(aps[:rows], now) if aps else Text("  all OK", style="green")),
        (f"CAMERAS not OK ({len(cams)} of {len(state.cameras)})",
         _cameras(cams[:rows], now) if cams else Text("  all OK", style="green")),
        (f"OPEN INCIDENTS ({len(incidents)})",
         _incidents(incidents[:rows], now) if incidents else Text("  none", style="green")),
        ("REQUESTS PER OPD",
         _requests_per_opd(state, now) if state.requests_visible
         else Text("  (this token cannot read requests)")),
    ]
    for heading, body in panels:
        parts += [Text(""), Text(heading, style="bold underline"), body]
    return Group(*parts)


def frame(state: TopState, now: float | None = None, rows: int = 10, width: int = 100) -> str:
    """The frame as plain text `width` columns wide (what a pipe gets), for tests and exports."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(view(state, now, rows))
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()

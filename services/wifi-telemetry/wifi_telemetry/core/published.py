"""What the service publishes, computed from the stored state (pure Python).

The stored state only ever reflects the input events, so a replay rebuilds it exactly. What
depends on the wall clock is added here, when publishing, and only to the fields the contract
marks so (protos/smartcity/v1/wifi.proto): an AP whose last heartbeat is older than the
heartbeat tolerance is shown CRITICAL ("no heartbeat for ...") with no clients and no traffic.
Availability is not among them: it is measured up to the AP's last heartbeat (event time), so
a silence counts once a later heartbeat shows it (domain.py records it then), and the same
input always gives the same ratios whenever they are published. Publishing is idempotent: the
outputs go to compacted topics keyed by entity, so publishing the same view again is harmless.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from smartcity.health import DAY, HOUR, WEEK, Availability, DeviceHealth, Health, HealthChange, Reason
from wifi_telemetry.config import WINDOW_SIZES
from wifi_telemetry.core.domain import AccessPointModel, AccessPointState
from wifi_telemetry.core.windows import SiteState, bucket_end, kept_for, split_bucket_key


@dataclass(frozen=True)
class ApView:
    """An AP as published: its stored state plus the live silence check."""

    state: AccessPointState
    health: Health
    reasons: tuple[Reason, ...]
    health_since: float
    silent: bool
    clients: int
    rx_bps: float
    tx_bps: float
    availability: Availability
    # The event time availability is measured up to: the last heartbeat (never the clock).
    as_of: float

    def availability_ratios(self) -> tuple[float, float, float]:
        return tuple(self.availability.ratio(self.as_of, w) for w in (HOUR, DAY, WEEK))  # type: ignore[return-value]

    def up_seconds(self, start: float, end: float) -> tuple[float, float]:
        """(seconds up, seconds observed) of this AP inside [start, end)."""
        first = self.state.first_seen
        if first is None:
            return 0.0, 0.0
        hi, lo = min(end, self.as_of), max(start, first)
        if hi <= lo:
            return 0.0, 0.0
        return self.availability.ratio(hi, hi - start) * (hi - lo), hi - lo


def ap_view(model: AccessPointModel, state: AccessPointState, now: float | None = None) -> ApView:
    """The view of `state`; with `now` (wall clock) a long silence shows as CRITICAL.

    Only health, reasons, health_since, clients and traffic follow the clock; the availability
    is the stored one, as of the last heartbeat.
    """
    seen = state.last_seen
    tolerance = model.health.heartbeat_tolerance_s
    if now is None or seen is None or now - seen <= tolerance:
        # No check firing (the common case): no reasons, without sorting the checks to say so.
        reasons = state.health.reasons() if any(c.firing for c in state.health.checks.values()) else ()
        return ApView(state, state.health.health, reasons, state.health.health_since,
                      False, state.clients, state.rx_bps, state.tx_bps, state.availability,
                      seen if seen is not None else 0.0)
    health = DeviceHealth.from_dict(state.health.to_dict(), model.specs, tolerance)
    health.check_silence(now)
    return ApView(state, health.health, health.reasons(), health.health_since, True, 0, 0.0, 0.0,
                  state.availability, seen)


def view_as_of_now(model: AccessPointModel, view: ApView, now: float | None) -> ApView:
    """`view` if its state has not moved on since it was made, else the view of the state as it
    is now: a view's health and health_since must not be published with a later state's seq
    (the state object goes on taking readings while earlier statuses are being sent)."""
    if view.as_of == view.state.last_seen:
        return view
    return ap_view(model, view.state, now)


def change_view(state: AccessPointState, change: HealthChange) -> ApView:
    """The view right after one health change (several can come from one heartbeat)."""
    return ApView(state, change.after, change.reasons, change.at, False, state.clients, state.rx_bps,
                  state.tx_bps, state.availability, state.last_seen or change.at)


@dataclass(frozen=True)
class SiteStats:
    site_id: str
    window: str
    start: int
    end: int
    unique_users: int
    peak_clients: int
    clients_now: int
    rx_bytes: int
    tx_bytes: int
    availability_ratio: float
    access_points_total: int
    access_points_up: int
    sessions_started: int

    @property
    def key(self) -> str:
        return f"{self.site_id}:{self.window}"


def site_windows(site: SiteState, views: Mapping[str, ApView], window: str, lateness_s: float) -> list[str]:
    """The site's windows of one size still kept, oldest first (the last is the current one)."""
    keys = {k for k in site.windows() if k.startswith(window + ":")}
    for view in views.values():
        keys |= {k for k in view.state.buckets if k.startswith(window + ":")}
    now = max((v.state.last_seen or 0.0 for v in views.values()), default=0.0)
    return sorted((k for k in keys if kept_for(k, now, lateness_s)), key=lambda k: split_bucket_key(k)[1])


def kept_windows(site: SiteState, views: Mapping[str, ApView], lateness_s: float) -> dict[str, list[str]]:
    """`site_windows` of every window size at once (name -> keys, oldest first): the keys of the
    site and of its APs' buckets gathered in one set (a set update per AP, in C), then split by
    size, instead of one scan of every AP's buckets per size."""
    keys = site.windows()
    now = 0.0
    for view in views.values():
        state = view.state
        keys.update(state.buckets)
        seen = state.last_seen or 0.0
        now = max(now, seen)
    by_size: dict[str, list[tuple[int, str]]] = {window: [] for window in WINDOW_SIZES}
    for key in keys:
        if kept_for(key, now, lateness_s):
            window, start = split_bucket_key(key)
            starts = by_size.get(window)
            if starts is not None:
                starts.append((start, key))
    return {window: [key for _, key in sorted(found)] for window, found in by_size.items()}


def site_stats(site: SiteState, views: Mapping[str, ApView], key: str, unique_users: int,
               sessions_started: int) -> SiteStats:
    """The statistics of window `key` of a site from its state and its APs' views."""
    return combined_stats(site, key, window_part(site, views, key, unique_users, sessions_started),
                          now_part(site, views))


class WindowPart(NamedTuple):
    """What a site's statistics of one window take from the stored state of that window: the
    same until a reading or session for it (or a change of the site's APs) comes."""

    rx: int
    tx: int
    up: float
    observed: float
    unique_users: int
    sessions_started: int


class NowPart(NamedTuple):
    """What the statistics of every window of a site take from its APs as they are now."""

    clients_now: int
    access_points_total: int
    access_points_up: int


def window_part(site: SiteState, views: Mapping[str, ApView], key: str, unique_users: int,
                sessions_started: int) -> WindowPart:
    window, start = split_bucket_key(key)
    end = start + WINDOW_SIZES[window]
    rx = tx = 0
    up = observed = 0.0
    for ap_id in site.aps:
        view = views.get(ap_id)
        totals = view.state.buckets.get(key) if view is not None else None
        if totals is None:
            totals = site.closed.get(key, {}).get(ap_id)
        if totals:
            rx, tx = rx + int(totals[0]), tx + int(totals[1])
        if view is not None:
            ap_up, ap_observed = view.up_seconds(start, end)
            up, observed = up + ap_up, observed + ap_observed
    return WindowPart(rx, tx, up, observed, unique_users, sessions_started)


def now_part(site: SiteState, views: Mapping[str, ApView]) -> NowPart:
    present = [views[a] for a in site.aps if a in views]
    return NowPart(sum(v.clients for v in present), len(present),
                   sum(1 for v in present if v.health != Health.CRITICAL))


def combined_stats(site: SiteState, key: str, part: WindowPart, now: NowPart) -> SiteStats:
    window, start = split_bucket_key(key)
    return SiteStats(
        site_id=site.site_id, window=window, start=start, end=start + WINDOW_SIZES[window],
        unique_users=part.unique_users, peak_clients=site.peaks.get(key, 0), clients_now=now.clients_now,
        rx_bytes=part.rx, tx_bytes=part.tx,
        availability_ratio=part.up / part.observed if part.observed > 0 else 1.0,
        access_points_total=now.access_points_total, access_points_up=now.access_points_up,
        sessions_started=part.sessions_started,
    )


# What a window's published statistics said of the window itself, and of the site now.
Said = tuple[tuple[int | float, ...], tuple[int, int, int]]


def changed_stats(said: dict[int, Said], current: Sequence[SiteStats | None],
                  kept: Sequence[int] | None = None) -> list[SiteStats]:
    """Of the statistics of a site's kept windows of one size (oldest first), those to publish:
    the ones whose numbers changed since `said` (window start -> what was published, updated
    here), always ending with the newest one, so the compacted topic keeps the current window
    under "<site>:<window>".

    The newest one also when only what it says of the site now (clients now, APs up) changed;
    an older one only when its own numbers did. Each message says the site's numbers "now" as of
    its publishing (updated_time): republishing every kept window for them (a dozen per site and
    size at the default lateness, thousands for a backlog of sessions read ahead of the
    heartbeats) cost more than all the rest of the pass.

    None in `current`: a window not made again because nothing of it changed since it was last
    compared here (`SiteStatsCache.stats` with `always`; never the newest), its start in `kept`
    (every kept window's start, in `current`'s order; by default those of `current`)."""
    changed = []
    newest = current[-1] if current else None
    for stats in current:
        if stats is None:
            continue
        own = (stats.unique_users, stats.peak_clients, stats.rx_bytes, stats.tx_bytes,
               stats.availability_ratio, stats.sessions_started, stats.start, stats.end)
        now = (stats.clients_now, stats.access_points_total, stats.access_points_up)
        before = said.get(stats.start)
        if before is None or before[0] != own or (stats is newest and before[1] != now):
            said[stats.start] = (own, now)
            changed.append(stats)
    if changed and changed[-1] is not newest and newest is not None:
        changed.append(newest)
    starts = {s.start for s in current if s is not None} if kept is None else set(kept)
    for start in [start for start in said if start not in starts]:
        del said[start]
    return changed


@dataclass
class WindowChanges:
    """What changed in a site's stored state since its statistics were last made: every window
    ending at or after `since` (an event time: the readings applied, and what their APs had
    seen before them), the windows in `keys`, or, with `everything`, all of them."""

    since: float = math.inf
    keys: set[str] = field(default_factory=set)
    everything: bool = False

    def touches(self, key: str) -> bool:
        return self.everything or bucket_end(key) >= self.since or key in self.keys


class SiteStatsCache:
    """The window parts of each site's statistics, made again only for the windows that changed
    (`WindowChanges`): a pass over every kept window of every site would otherwise recompute
    the same numbers (summed over the site's APs, counted over up to 32 shards) every time.
    `stats` gives exactly what `site_stats` gives (a property test holds them equal)."""

    def __init__(self) -> None:
        # site -> (the APs its parts were made with, key -> part)
        self._parts: dict[str, tuple[frozenset[str], dict[str, WindowPart]]] = {}
        self.made = 0  # window parts made (again), for the pass's log line

    def clear(self) -> None:
        self._parts.clear()

    def stats(self, site: SiteState, views: Mapping[str, ApView], keys: Sequence[str],
              changes: WindowChanges | None, counts: Callable[[str], tuple[int, int]], *,
              always: set[str] | None = None) -> list[SiteStats | None]:
        """The statistics of the site's windows `keys`; `changes` None: nothing changed since
        the last call for this site; `counts(key)`: its unique users and sessions started.

        With `always` (the windows whose statistics also say what the site is now: the newest
        of each size), a window outside it whose part is kept and unchanged gives None: its
        own numbers are those it had at the last call (peaks only rise through readings, which
        note the windows they touch), so `changed_stats` would find nothing to publish."""
        present = frozenset(views)
        held = self._parts.get(site.site_id)
        # An AP reporting for another site than this one (it moved) changes this one's numbers
        # without a note here: then every window is made again, as before notes.
        if (held is None or held[0] != present
                or any(view.state.site_id != site.site_id for view in views.values())):
            held = self._parts[site.site_id] = (present, {})
            changes = WindowChanges(everything=True)
        parts = held[1]
        now = now_part(site, views)
        # A window starting after every AP's last heartbeat has no bytes and no time observed
        # (no bucket, no closed totals): only its sessions count. Such windows are the ones a
        # backlog of sessions read ahead of the heartbeats keeps, thousands of them, each
        # "changed" by every heartbeat that moves the site on.
        seen = max((view.as_of for view in views.values()), default=-math.inf)
        out: list[SiteStats | None] = []
        for key in keys:
            part = parts.get(key)
            if part is None or (changes is not None and changes.touches(key)):
                if split_bucket_key(key)[1] > seen and key not in site.closed:
                    part = parts[key] = WindowPart(0, 0, 0.0, 0.0, *counts(key))
                else:
                    part = parts[key] = window_part(site, views, key, *counts(key))
                self.made += 1
            elif always is not None and key not in always:
                out.append(None)
                continue
            out.append(combined_stats(site, key, part, now))
        if len(parts) > len(keys):  # windows no longer kept
            wanted = set(keys)
            for key in [k for k in parts if k not in wanted]:
                del parts[key]
        return out

    def forget_site(self, site_id: str) -> None:
        self._parts.pop(site_id, None)

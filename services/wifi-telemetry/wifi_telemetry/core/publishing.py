"""What the publishing timer publishes at a tick, worked out from what changed since the last one.

    readings, sessions ──► SiteProcessor.take_changes() ──► sites whose windows changed ─┐
    statuses published ──► an AP fell silent, came back, changed health ──► its site ────┤
    status_due (Deadlines): an AP's cadence, the moment its silence begins               │
          │                                                                              │
    tick(now) ──► the APs due ──► AccessPointStatus to publish                           │
              └─► every stats interval: the sites named above ──► SiteWifiStats ◄────────┘

The statistics of a site take from its stored state (the window parts: bytes, time up, users,
sessions, peaks) and from its APs' views now (clients now, APs up: the fields the contract
marks "wall clock while silent"). The stored state changes only through events, which the
processor notes per site; the views change otherwise only when an AP's silence begins, and
then its status is due (its deadline is that moment) and says so. So a site neither named by
the processor nor holding an AP whose published health or silence moved since the last pass
would publish nothing in a pass over every site (`changed_stats` finds nothing changed), and
is not looked at. Within a site looked at, only the windows the processor noted, and the newest
of each size (it also says what the site is now), are made again and compared: the others'
numbers are those they had when last compared. A site listing an AP that now reports for
another site (it moved) sees that AP's silence without being named: such sites are looked at on
every pass.

Every AP and every site is looked at (a full pass, the way before) only when the deadlines may
not hold: after a rebalance (`generation`), once the processor read its records again
(`take_changes` gives None) and after the worker's caught-up state flipped (only while caught
up does silence show, and only then are silences scheduled). `incremental=False` makes every
stats pass a full one: the reference the property tests hold the shortcut to, output for output.

Everything here is synchronous: what a tick returns is of the state at the tick. The caller
sends it afterwards, a status made again (and recorded again) if its AP took readings meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from smartcity.deadlines import Deadlines
from wifi_telemetry.config import WINDOWS, WifiConfig
from wifi_telemetry.core.processor import SiteProcessor
from wifi_telemetry.core.published import (
    ApView,
    Said,
    SiteStats,
    SiteStatsCache,
    WindowChanges,
    ap_view,
    changed_stats,
    kept_windows,
)
from wifi_telemetry.core.windows import SESSIONS, USERS, split_bucket_key

# A deadline is set this much before the moment it is for: a status is due when
# `now - published >= interval` or silent when `now - seen > tolerance`, the deadline pops when
# `deadline < now`; the two sides round differently, so the deadline comes a little early (a
# look too early finds the AP not due and sets the same deadline again).
DEADLINE_EARLY_S = 0.01


@dataclass
class Published:
    """What was last published, to publish changes only (memory: a restart republishes all)."""

    # ap_id -> (health, silent, last seq, when): what the AP's last status said.
    health: dict[str, tuple[int, bool, int | None, float]] = field(default_factory=dict)
    # (site, window) -> window start -> what its statistics said (per site and window, so a
    # site's pass looks at its own windows, not at every site's).
    stats: dict[tuple[str, str], dict[int, Said]] = field(default_factory=dict)
    stats_at: float = 0.0


@dataclass
class TickOutput:
    """What one tick publishes, and the figures of its statistics pass."""

    statuses: list[ApView] = field(default_factory=list)
    stats: list[SiteStats] = field(default_factory=list)
    stats_pass: bool = False  # whether this tick made the sites' statistics
    full: bool = False  # ... of every AP and site (see the module's text)
    # The views of the APs of the sites looked at (per-site gauges), each AP once.
    gauge_views: list[ApView] = field(default_factory=list)
    sites: int = 0
    windows: int = 0
    widest: int = 0
    made: int = 0


# Every owned AP and site id (a full pass's), for the set of owned partitions.
AllIds = Callable[[], tuple[Sequence[str], Sequence[str]]]


class Publisher:
    """The publishing timer's decisions over a processor's decoded state (see the module's text)."""

    def __init__(self, config: WifiConfig, processor: SiteProcessor, *, incremental: bool = True) -> None:
        self.config = config
        self.processor = processor
        self.model = processor.model
        self.incremental = incremental
        self.published = Published()
        # When each AP's status must next be looked at (its cadence, or when it falls silent).
        self.status_due = Deadlines()
        # The site statistics' window parts, made again only for the windows that changed.
        self.stats_cache = SiteStatsCache()
        self.live = False  # caught up as of the last tick: only then does silence show
        self._generation: int | None = None  # of the last stats pass
        self._full_due = True  # the next stats pass looks at everything
        # Sites whose APs' published health or silence moved since the last stats pass.
        self._touched: dict[str, None] = {}
        # Sites listing an AP that reports for another site (looked at on every pass).
        self._mixed: set[str] = set()

    # -- between ticks -------------------------------------------------------------------------

    def batch_published(self, changes: Sequence[ApView], aps: Iterable[str], now: float) -> None:
        """After a batch of events: `changes` (its health changes' views) are being published
        at `now`; the other APs of the batch (`aps`) are looked at on the next tick if they
        were never published, or published silent (this may be their backlog)."""
        for view in changes:
            self.record_status(view, now)
        for ap_id in aps:
            last = self.published.health.get(ap_id)
            if last is None or last[1]:
                self.status_due.set(ap_id, 0.0)

    def record_status(self, view: ApView, now: float) -> None:
        """`view` is published at `now`: remembered, and its next look scheduled."""
        ap_id = view.state.ap_id
        last = self.published.health.get(ap_id)
        health = int(view.health)
        if last is None or last[0] != health or last[1] != view.silent:  # its site's "now" moved
            self._touched[view.state.site_id] = None
        self.published.health[ap_id] = (health, view.silent, view.state.last_seq, now)
        self._schedule(view, now)

    def _schedule(self, view: ApView, published_at: float) -> None:
        """When the AP's status must next be looked at: its cadence, or the moment it falls
        silent (while caught up; else the full pass after catching up shows the silence)."""
        due = published_at + self.config.status_interval_s
        seen = view.state.last_seen
        if self.live and not view.silent and seen is not None:
            due = min(due, seen + self.model.health.heartbeat_tolerance_s)
        self.status_due.set(view.state.ap_id, due - DEADLINE_EARLY_S)

    # -- a tick --------------------------------------------------------------------------------

    def tick(self, now: float, live: bool, owned: set[int], generation: int, all_ids: AllIds) -> TickOutput:
        """The statuses due at `now`, and every stats interval (or after a rebalance) the site
        statistics that changed. `live`: the worker is caught up; `owned`: its partitions;
        `generation`: the consumer group's (a new one is a rebalance)."""
        if live != self.live:
            self._full_due = True  # deadlines set before lack silences, or show ones no longer shown
        self.live = live
        clock = now if live else None
        out = TickOutput()
        out.stats_pass = (now - self.published.stats_at >= self.config.stats_interval_s
                          or generation != self._generation)
        changes: dict[str, WindowChanges] | None = None
        if out.stats_pass:
            self.published.stats_at = now
            changes = self.processor.take_changes()
            out.full = (not self.incremental or self._full_due or changes is None
                        or generation != self._generation)
            self._generation = generation
        site_ids: Sequence[str] = ()
        if out.full:
            self._full_due = False
            self._mixed.clear()
            ap_ids, site_ids = all_ids()
        else:
            ap_ids = self.status_due.pop_due(now)
        views = self._views(ap_ids, owned, clock)
        out.statuses = self._due_statuses(views, now)
        if not out.stats_pass:
            return out
        if changes is None:  # the records were read again: nothing of the cache holds
            self.stats_cache.clear()
        if not out.full:
            named = dict.fromkeys(changes or ())
            named.update(self._touched)
            named.update(dict.fromkeys(sorted(self._mixed)))
            site_ids = list(named)
        self._touched.clear()
        self._site_stats(out, site_ids, views, owned=owned, clock=clock, changes=changes)
        return out

    def _views(self, ap_ids: Iterable[str], owned: set[int], clock: float | None) -> dict[str, ApView]:
        """The views of those APs of the owned partitions, from the processor's decoded records
        (equal to the table's between batches: decoding every AP's record on every tick would
        cost more than the readings themselves)."""
        model, processor = self.model, self.processor
        return {state.ap_id: ap_view(model, state, clock) for ap_id in ap_ids
                if (state := processor.ap_state(ap_id)) is not None and state.partition in owned}

    def _due_statuses(self, views: Mapping[str, ApView], now: float) -> list[ApView]:
        due_views = []
        interval = self.config.status_interval_s
        for ap_id, view in views.items():
            last = self.published.health.get(ap_id)
            # A silent AP's status is not republished by its heartbeats (they stopped) but by a
            # backlog of them, read after it went silent: its last status must carry them.
            if (last is None or last[0] != int(view.health) or last[1] != view.silent
                    or (view.silent and last[2] != view.state.last_seq) or now - last[3] >= interval):
                due_views.append(view)
                self.record_status(view, now)
            else:
                self._schedule(view, last[3])
        return due_views

    def _site_stats(self, out: TickOutput, site_ids: Sequence[str], views: dict[str, ApView], *,
                    owned: set[int], clock: float | None,
                    changes: Mapping[str, WindowChanges] | None) -> None:
        made = self.stats_cache.made
        gauges: dict[str, ApView] = {}
        looked_at: set[str] = set()
        for site_id in site_ids:
            site = self.processor.site_state(site_id)
            if site is None or site.partition not in owned:
                continue
            looked_at.add(site_id)
            missing = [ap for ap in site.aps if ap not in views]
            if missing:
                views.update(self._views(missing, owned, clock))
            site_views = {ap: views[ap] for ap in site.aps if ap in views}
            if any(view.state.site_id != site_id for view in site_views.values()):
                self._mixed.add(site_id)
            gauges.update(site_views)
            kept, due = self._site_stats_due(site_id, site_views, changes)
            out.windows, out.widest = out.windows + kept, max(out.widest, kept)
            out.stats.extend(due)
        out.sites = len(looked_at)
        out.made = self.stats_cache.made - made
        # A site's gauges count the APs reporting for it: only for sites whose APs all are here.
        out.gauge_views = [view for view in gauges.values() if view.state.site_id in looked_at]

    def _site_stats_due(self, site_id: str, site_views: Mapping[str, ApView],
                        changes: Mapping[str, WindowChanges] | None) -> tuple[int, list[SiteStats]]:
        """How many windows the site keeps, and the statistics of those to publish now."""
        site = self.processor.site_state(site_id)
        if site is None:
            return 0, []
        keys = kept_windows(site, site_views, self.config.allowed_lateness_s)
        # The shortcut makes only the windows that changed and the newest of each size (the
        # others would publish nothing); the reference makes every kept window, as before.
        always = {window_keys[-1] for window_keys in keys.values() if window_keys}
        current = self.stats_cache.stats(
            site, site_views, [key for window, _ in WINDOWS for key in keys[window]],
            None if changes is None else changes.get(site_id), self._distinct_counts(site_id),
            always=always if self.incremental else None)
        kept, due = len(current), []
        for window, _ in WINDOWS:
            window_keys = keys[window]
            window_stats, current = current[:len(window_keys)], current[len(window_keys):]
            said = self.published.stats.setdefault((site_id, window), {})
            due.extend(changed_stats(said, window_stats, [split_bucket_key(key)[1] for key in window_keys]))
        return kept, due

    def _distinct_counts(self, site_id: str) -> Callable[[str], tuple[int, int]]:
        def counts(key: str) -> tuple[int, int]:
            return (self.processor.distinct_count(site_id, USERS, key),
                    self.processor.distinct_count(site_id, SESSIONS, key))
        return counts


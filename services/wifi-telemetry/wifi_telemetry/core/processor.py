"""Applies telemetry and sessions of one site to its state in a key-value store.

The store is a Faust table in the service and a dict in tests (and in the tests' expectation),
so the same code decides both. Records, all keyed by entity:

    site/<site_id>                      SiteState (windows.py), and under "ap" the states of the
                                        APs reporting for the site (AccessPointState.to_list)
    i/<ap_id>                           the site whose record holds the AP (written when the AP
                                        first appears or moves to another site)
    d/<site>/<u|s>/<window:start>/<n>   one shard of a distinct-member set
    w/<site_id>                         per AP of the site, the newest session event time

A site's APs live inside its record: a batch of a site's readings (the common input: one edge
batch per site per interval, every AP in it) writes one changelog record, not one per AP.
Before, each AP had a record of its own, `ap/<ap_id>` (a dict, `AccessPointState.to_dict`), and
the site record had no "ap": those are still read (a site record without "ap" is of that
layout, an AP not in its site's record is looked up there), and an AP read from one is deleted
once its site's new record is written (after it, so a crash in between leaves it in one place
or both, never in neither). An AP that moved to another site leaves a stale copy in its old
site's record (dropping it there could reach the changelog before the new site's record, on
another partition): when both are read, the one with the newer seq wins, and an AP's state is
taken only once the record its index names was read too (its old site's alone holds the copy).

Crash safety without transactions: all records of a site live in one changelog partition (the
input is keyed by site), Kafka keeps a partition's writes in order and the worker commits an
input offset only after its writes are flushed. Each event therefore writes in an order where
any prefix that survives a crash is consistent, and a replay of the event finds either nothing
or its effect already there:

- telemetry: the site record holds the AP's new state (which carries the applied seq) and
  what the site made of it (only max/replace updates, the per-minute client counts of every AP
  included, so a peak never depends on which APs' data happened to be in the table when another
  AP's arrived), in one record. A replay of a seq whose record survived is a duplicate; one
  whose record was lost recomputes the same values;
- sessions: the site record (window index) first, then set additions, which are idempotent,
  then the session watermarks (which only grow: a replay sees the same or a later one, and a
  later one survived only if the additions before it did).

A session is late when its window closed (the allowed lateness after its end) before the newest
session its own AP reported earlier: a function of that AP's sessions in log order (one
partition), not of how far the site's heartbeats, another topic, happened to be read by then.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from smartcity.health import HealthChange
from smartcity.ordering import Arrival
from wifi_telemetry.config import WifiConfig
from wifi_telemetry.core.domain import AccessPointModel, AccessPointState, Sample
from wifi_telemetry.core.published import WindowChanges
from wifi_telemetry.core.windows import (
    SESSIONS,
    USERS,
    SiteState,
    distinct_keys,
    minute_parents,
    session_member,
    user_member,
    window_bounds,
)

AP_PREFIX = "ap/"  # an AP's own record: the layout before APs moved into their site's record
SITE_PREFIX = "site/"
INDEX_PREFIX = "i/"
DISTINCT_PREFIX = "d/"
WATERMARK_PREFIX = "w/"

# How long (event time, beyond the allowed lateness) an AP that fell silent in the data still
# holds its site's per-minute client counts open (see `_forget_minutes`).
MINUTES_HOLD_S = 3600.0

CONNECT = "connect"
DISCONNECT = "disconnect"


class Store(Protocol):
    """The part of a mapping the processor uses (a Faust table or a dict)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def __setitem__(self, key: str, value: Any) -> None: ...

    def __delitem__(self, key: str) -> None: ...

    def __contains__(self, key: object) -> bool: ...


@runtime_checkable
class PartitionedStore(Store, Protocol):
    """A store that writes each key to a partition: the one `partition` names at the write."""

    partition: int


def write_rank(key: str) -> int:
    """The order a batch's writes must reach the changelog in (lower first), so that any prefix
    surviving a crash stays consistent: site records before distinct-member shards and AP
    records (which mark a seq as applied), as one event writes them (see the module's text)."""
    if key.startswith(SITE_PREFIX):
        return 0
    return 2 if key.startswith((AP_PREFIX, WATERMARK_PREFIX, INDEX_PREFIX)) else 1


def ap_key(ap_id: str) -> str:
    return AP_PREFIX + ap_id


def site_key(site_id: str) -> str:
    return SITE_PREFIX + site_id


def watermark_key(site_id: str) -> str:
    return WATERMARK_PREFIX + site_id


def index_key(ap_id: str) -> str:
    return INDEX_PREFIX + ap_id


def newer(state: AccessPointState, other: AccessPointState) -> bool:
    """Whether `state` is a later state of the AP than `other` (a seq is applied once, in order:
    the copy with the higher one saw more)."""
    seq, other_seq = state.last_seq, other.last_seq
    return seq is not None and (other_seq is None or seq > other_seq)


def stored_ids(items: Iterable[tuple[Any, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """The ids of the APs and the sites a store's (key, value) items hold, each with its
    record's partition (an AP's is its site record's), in either layout."""
    aps: dict[str, int] = {}
    sites: dict[str, int] = {}
    for key, value in items:
        if not isinstance(key, str) or value is None:
            continue
        if key.startswith(SITE_PREFIX):
            partition = value.get("p", -1)
            sites[str(value["id"])] = partition
            for ap_id in value.get("ap", ()):
                aps[str(ap_id)] = partition
        elif key.startswith(AP_PREFIX):
            aps.setdefault(str(value["id"]), value.get("p", -1))
    return aps, sites


def stored_aps(model: AccessPointModel, items: Iterable[tuple[Any, Any]]) -> dict[str, AccessPointState]:
    """Every AP state a store's (key, value) items hold, the newest copy of each (either layout)."""
    out: dict[str, AccessPointState] = {}
    for key, value in items:
        if not isinstance(key, str) or value is None:
            continue
        if key.startswith(SITE_PREFIX):
            states = [AccessPointState.from_list(entry, model) for entry in value.get("ap", {}).values()]
        elif key.startswith(AP_PREFIX):
            states = [model.load(value)]
        else:
            continue
        for state in states:
            known = out.get(state.ap_id)
            if known is None or newer(state, known):
                out[state.ap_id] = state
    return out


class SessionEvent(NamedTuple):
    """A client joining or leaving an AP, its client already hashed (a named tuple: one is
    made per session event)."""

    ap_id: str
    site_id: str
    kind: str
    client_hash: str
    t: float
    session_id: str
    rx: int = 0
    tx: int = 0


@dataclass(slots=True)
class TelemetryResult:
    outcome: Arrival
    state: AccessPointState
    changes: list[HealthChange] = field(default_factory=list)
    reboots: int = 0
    skipped_gaps: int = 0
    # Traffic the applied heartbeats reported (bytes received, sent).
    rx_bytes: int = 0
    tx_bytes: int = 0


@dataclass
class SessionResult:
    outcome: str  # "applied", "duplicate" or "late"
    late_windows: int = 0


class SiteProcessor:
    """The event handlers of the by-site stage, over any `Store`."""

    def __init__(self, config: WifiConfig, store: Store, *, write_behind: bool = False) -> None:
        self.config = config
        self.model = AccessPointModel(config)
        self.store = store
        # write_behind: site records (with their APs) reach the store only on `flush` (once per
        # site, for a batch of events), not on every event; the store's own order of writes
        # must then keep the crash-safe order (`write_rank`). Without: written at every event.
        self.write_behind = write_behind
        # The sites whose record changed since the last flush (write-behind only).
        self._unwritten: dict[str, None] = {}
        # The AP and site records decoded, as the store holds them: decoding a record costs
        # more than applying a reading to it. Every write through this processor keeps them
        # equal; whoever changes the store otherwise (a rebalance, a table recovery) calls
        # `forget`.
        self._aps: dict[str, AccessPointState] = {}
        # The APs whose state above is the newest the store holds: the record of the site their
        # index names was read too (or they were written since). One read of another site's
        # record may hold the stale copy an AP that moved left there (see `_ap`).
        self._settled: set[str] = set()
        self._sites: dict[str, SiteState] = {}
        # Per site, the APs whose state its record holds (those reporting for it), and the
        # copies of APs that moved elsewhere it keeps (see the module's text).
        self._members: dict[str, dict[str, None]] = {}
        self._departed: dict[str, dict[str, list[Any]]] = {}
        # Each AP's encoding inside its site's record, while it did not change: a site record
        # carries all its APs, a batch may have changed only some.
        self._encoded: dict[str, list[Any]] = {}
        # APs read from a record of their own (the layout before), with its partition: deleted
        # once their site's record holds them.
        self._legacy: dict[str, int] = {}
        # Written since the last flush (write-behind only), each with its partition: AP index
        # records, and legacy AP records to delete.
        self._unwritten_index: dict[str, tuple[str, int]] = {}
        self._unwritten_legacy: dict[str, int] = {}
        self._marks: dict[str, dict[str, float]] = {}
        # Per site, the newest and the oldest newest-heartbeat of its APs (see `_SiteClock`).
        self._clocks: dict[str, _SiteClock] = {}
        # Distinct-member shards written since the last flush (write-behind only), with a set of
        # their members: a batch copies a shard once, not once per session.
        self._shards: dict[str, tuple[list[str], set[str]]] = {}
        # Sites whose session watermarks changed since the last flush (write-behind only), with
        # the partition of the last session that moved them.
        self._unwritten_marks: dict[str, int] = {}
        # The shard keys of each (site, kind, window): made once, not per member added.
        self._shard_names: dict[tuple[str, str, str], list[str]] = {}
        # (site, kind, window) -> members of its distinct set, once counted (`distinct_count`).
        self._distinct_counts: dict[tuple[str, str, str], int] = {}
        # What changed in each site's windows since `take_changes` (every site: after `forget`).
        self._changes: dict[str, WindowChanges] = {}
        self._changed_all = True

    def forget(self) -> None:
        """Drops the decoded records (and what was not written yet): the store changed under
        the processor, or an event failed half-way."""
        for held in (self._aps, self._settled, self._sites, self._members, self._departed, self._encoded,
                     self._legacy, self._unwritten_index, self._unwritten_legacy, self._marks, self._clocks,
                     self._shards, self._unwritten, self._unwritten_marks, self._shard_names, self._changes,
                     self._distinct_counts):
            held.clear()
        self._changed_all = True

    def _give_up(self) -> None:
        """After an event failed half-way: what the events before it changed is written (with
        whatever the failed one had changed, as writing at every event would have left it), and
        the decoded records are read again from the store."""
        self.flush()
        self.forget()

    def flush(self) -> int:
        """Writes the records changed since the last flush (write-behind); returns how many.

        Each on its own partition: a store that places writes by partition (its `partition`,
        set by the caller for the event at hand, see `PartitionedStore`) is told the record's.
        A batch spans partitions, and a record written to another partition's changelog is
        recovered from there: an old value of it may then win over the newest (a restarted
        worker took a long-gone AP state for its current one: a silence that never was).

        A site record written here shares its APs' buckets and availability points with their
        states (copying them cost more than the rest of the write): the store must encode what
        it was given before the next event changes them, as the service's table writer does
        (its flush follows this one, before the next batch).
        """
        placed = self.store if isinstance(self.store, PartitionedStore) else None
        current = placed.partition if placed is not None else -1
        for site_id in self._unwritten:
            site = self._sites[site_id]
            if placed is not None:
                placed.partition = site.partition
            self.store[site_key(site_id)] = self._record(site)
        self._write_extras(placed)
        for site_id, partition in self._unwritten_marks.items():
            if placed is not None:
                placed.partition = partition
            marks = dict(self._marks[site_id])
            self.store[watermark_key(site_id)] = {"id": site_id, "t": marks, "p": partition}
        if placed is not None:
            placed.partition = current
        written = len(self._unwritten) + len(self._unwritten_marks)
        self._unwritten.clear()
        self._unwritten_marks.clear()
        self._shards.clear()  # the store holds them now: the next batch copies before changing
        return written

    def _write_extras(self, placed: PartitionedStore | None) -> None:
        """The AP index records and the deletions of legacy AP records: after the site records
        that hold those APs (write_rank)."""
        for ap_id, (site_id, partition) in self._unwritten_index.items():
            if placed is not None:
                placed.partition = partition
            self.store[index_key(ap_id)] = {"s": site_id, "p": partition}
        for ap_id, partition in self._unwritten_legacy.items():
            if placed is not None:
                placed.partition = partition
            if ap_key(ap_id) in self.store:
                del self.store[ap_key(ap_id)]
        self._unwritten_index.clear()
        self._unwritten_legacy.clear()

    def _record(self, site: SiteState) -> dict[str, Any]:
        """The site's record: its state, and under "ap" its APs' (and the copies it keeps)."""
        record = site.to_dict()
        entries = dict(self._departed.get(site.site_id, {}))
        encoded = self._encoded
        for ap_id in self._members.get(site.site_id, ()):
            entry = encoded.get(ap_id)
            if entry is None:  # write-behind: shared with the state (see `flush`)
                entry = encoded[ap_id] = self._aps[ap_id].to_list(shared=self.write_behind)
            entries[ap_id] = entry
            if self._legacy and ap_id in self._legacy:  # from now on here, found through its index
                self._unwritten_legacy[ap_id] = self._legacy.pop(ap_id)
                self._unwritten_index[ap_id] = (site.site_id, site.partition)
        record["ap"] = entries
        return record

    def take_changes(self) -> dict[str, WindowChanges] | None:
        """What changed in the sites' windows since the last call (a site not named: nothing),
        or None when anything may have (the records were read again since)."""
        changes, self._changes = self._changes, {}
        if self._changed_all:
            self._changed_all = False
            return None
        return changes

    def _note(self, site_id: str, since: float = math.inf, keys: Iterable[str] = (),
              everything: bool = False) -> None:
        changes = self._changes.get(site_id)
        if changes is None:
            changes = self._changes[site_id] = WindowChanges()
        changes.since = min(changes.since, since)
        changes.keys.update(keys)
        changes.everything |= everything

    def ap_state(self, ap_id: str) -> AccessPointState | None:
        """The processor's own record of the AP (read it, do not change it), or None."""
        return self._ap(ap_id)

    def site_state(self, site_id: str) -> SiteState | None:
        """The processor's own record of the site (read it, do not change it), or None."""
        if site_id not in self._sites and self.store.get(site_key(site_id)) is None:
            return None
        return self._site(site_id)

    def decoded_partitions(self) -> tuple[dict[str, int], dict[str, int]]:
        """The APs and the sites decoded since the last `forget` (every one written since is
        among them), each id with its record's partition."""
        return ({ap_id: state.partition for ap_id, state in self._aps.items()},
                {site_id: site.partition for site_id, site in self._sites.items()})

    def _ap(self, ap_id: str, site_id: str | None = None) -> AccessPointState | None:
        """The AP's newest state among the records read, its site's (`site_id`, when known)
        read first; else looked up through its index record, else in the layout before.

        A state held from a record other than the one its index names may be the stale copy an
        AP that moved left in its old site's record (read for another AP of that site): the
        record the index names is read too, once, before the state is taken (else a pass after
        a re-read published, and a reading was applied to, a state many seqs old)."""
        if site_id is not None and site_id not in self._sites:
            self._site(site_id)
        state = self._aps.get(ap_id)
        if state is not None and ap_id in self._settled:
            return state
        index = self.store.get(index_key(ap_id))
        if index is not None and str(index["s"]) not in self._sites:
            self._site(str(index["s"]))
            state = self._aps.get(ap_id)
        if state is not None:
            self._settled.add(ap_id)
            return state
        raw = self.store.get(ap_key(ap_id))
        if raw is None:
            return None
        state = self.model.load(raw)
        self._legacy[ap_id] = int(raw.get("p", -1))
        self._site(state.site_id)
        self._hold(self._aps.get(ap_id) or state)
        self._settled.add(ap_id)
        return self._aps[ap_id]

    def _hold(self, state: AccessPointState) -> None:
        """Keeps `state` as the AP's own, in its site's record."""
        self._aps[state.ap_id] = state
        self._members.setdefault(state.site_id, {})[state.ap_id] = None

    def _site(self, site_id: str) -> SiteState:
        site = self._sites.get(site_id)
        if site is None:
            raw = self.store.get(site_key(site_id))
            site = self._sites[site_id] = SiteState(site_id) if raw is None else SiteState.from_dict(raw)
            self._members.setdefault(site_id, {})
            if raw is not None and raw.get("ap"):
                self._read_members(site_id, raw["ap"])
        return site

    def _read_members(self, site_id: str, entries: Mapping[str, list[Any]]) -> None:
        """Takes the APs of a site record just read; a copy older than one already read (an AP
        that moved) is kept, as it is, in the record it came from."""
        for ap_id, entry in entries.items():
            state = AccessPointState.from_list(entry, self.model)
            known = self._aps.get(ap_id)
            if known is not None and not newer(state, known):
                self._departed.setdefault(site_id, {})[ap_id] = entry
                continue
            if known is not None:  # the copy read before is the stale one
                self._members.get(known.site_id, {}).pop(ap_id, None)
                self._departed.setdefault(known.site_id, {})[ap_id] = known.to_list()
            self._hold(state)
            self._encoded[ap_id] = entry

    def _write_ap(self, state: AccessPointState, partition: int) -> None:
        ap_id = state.ap_id
        self._hold(state)
        self._settled.add(ap_id)
        self._encoded.pop(ap_id, None)
        site = self._site(state.site_id)
        site.partition = partition
        self._write_site(site)

    def _write_site(self, site: SiteState) -> None:
        self._sites[site.site_id] = site
        if self.write_behind:
            self._unwritten[site.site_id] = None
        else:
            self.store[site_key(site.site_id)] = self._record(site)
            self._write_extras(None)

    def _moved(self, state: AccessPointState, site_before: str | None, partition: int) -> None:
        """The AP is new, or reports for another site than before: its index record names the
        site whose record holds it now; the site before keeps a copy (see the module's text)."""
        if site_before is not None:
            self._members.get(site_before, {}).pop(state.ap_id, None)
            self._departed.setdefault(site_before, {})[state.ap_id] = state.to_list()
        self._hold(state)
        self._unwritten_index[state.ap_id] = (state.site_id, partition)

    # -- reading ------------------------------------------------------------------------------

    def load_ap(self, ap_id: str) -> AccessPointState | None:
        """The AP's state as the store holds it (not the processor's copy)."""
        index = self.store.get(index_key(ap_id))
        if index is not None:
            raw = self.store.get(site_key(str(index["s"])))
            entry = None if raw is None else raw.get("ap", {}).get(ap_id)
            if entry is not None:
                return AccessPointState.from_list(entry, self.model)
        raw = self.store.get(ap_key(ap_id))
        return None if raw is None else self.model.load(raw)

    def load_site(self, site_id: str) -> SiteState:
        raw = self.store.get(site_key(site_id))
        return SiteState(site_id) if raw is None else SiteState.from_dict(raw)

    def distinct_count(self, site_id: str, kind: str, key: str) -> int:
        """Members of a window's distinct set: summed over its shards once, then kept up to date
        by the additions (a day's set has 32 shards, counted on every statistics pass)."""
        total = self._distinct_counts.get((site_id, kind, key))
        if total is None:
            total = self.stored_distinct_count(site_id, kind, key)
            self._distinct_counts[(site_id, kind, key)] = total
        return total

    def stored_distinct_count(self, site_id: str, kind: str, key: str) -> int:
        """`distinct_count` from the store itself."""
        total = 0
        for shard in distinct_keys(site_id, kind, key):
            record = self.store.get(shard)
            if record is not None:
                total += len(record["m"])
        return total

    # -- telemetry -----------------------------------------------------------------------------

    def on_telemetry(self, sample: Sample, partition: int = -1) -> TelemetryResult:
        """Applies one heartbeat. The result's state is the processor's own record of the AP:
        read what is needed of it before the next event."""
        try:
            return self._on_telemetry(sample, partition)
        except Exception:
            self._give_up()
            raise

    def _on_telemetry(self, sample: Sample, partition: int) -> TelemetryResult:
        known = self._ap(sample.ap_id, sample.site_id)
        state = known or self.model.new_state(sample)
        state.partition = partition
        site_before, seen_before = state.site_id, state.last_seen
        offer = self.model.offer(state, sample)
        result = TelemetryResult(offer.outcome, state, offer.changes, offer.reboots, offer.skipped_gaps,
                                 offer.rx_bytes, offer.tx_bytes)
        if offer.outcome is Arrival.DUPLICATE:
            self._mend_index(state, partition)
            return result
        if known is None:
            self._moved(state, None, partition)
        elif state.site_id != site_before:
            self._clocks.clear()  # an AP that moved counts in both sites' lists: start over
            self._moved(state, site_before, partition)
            self._note(site_before, everything=True)
            self._note(state.site_id, everything=True)
        # The windows this can change: those of the samples applied, and, through the AP's
        # availability (its health changes, how far it was observed), those from what it had
        # seen before (see published.WindowChanges).
        since = sample.t if seen_before is None or seen_before > sample.t else seen_before
        for item in offer.applied:
            since = min(since, item.t)
        for change in offer.changes:
            since = min(since, change.at)
        self._note(state.site_id, -math.inf if seen_before is None else since)
        if offer.outcome is Arrival.APPLIED:
            self._update_site(state, offer.retired, offer.peak_minutes, partition)
        self._write_ap(state, partition)
        return result

    def _mend_index(self, state: AccessPointState, partition: int) -> None:
        """A heartbeat replayed after a crash whose site record survived and whose index record
        (written after it) did not: the index is written again, else the AP would stay found
        only through its site until the site's next read (`load_ap` would not find it)."""
        ap_id = state.ap_id
        if ap_id in self._unwritten_index or ap_id in self._legacy:
            return
        index = self.store.get(index_key(ap_id))
        if index is None or str(index["s"]) != state.site_id:
            self._unwritten_index[ap_id] = (state.site_id, partition)
            if not self.write_behind:
                self._write_extras(None)

    def _update_site(self, state: AccessPointState, retired: dict[str, list[int]],
                     peak_minutes: set[str], partition: int) -> None:
        site = self._site(state.site_id)
        changed = site.add_ap(state.ap_id)
        if changed:
            self._note(site.site_id, everything=True)
        if retired:
            changed |= site.keep_closed(state.ap_id, retired)
            self._note(site.site_id, keys=retired)
        for minute in sorted(peak_minutes) if len(peak_minutes) > 1 else peak_minutes:
            totals = state.buckets.get(minute)
            if not totals:
                continue
            total = site.note_minute_clients(minute, state.ap_id, int(totals[2]))
            changed = True
            for key in minute_parents(minute, self.config.tz_offset_s):
                site.raise_peak(key, total)
        changed |= self._forget_minutes(site, state)
        changed |= self._prune(site, state.last_seen)
        if changed or site.partition != partition:
            site.partition = partition
            self._write_site(site)

    def _forget_minutes(self, site: SiteState, current: AccessPointState) -> bool:
        """Forgets a minute's per-AP counts once none of the site's APs can take data for it.

        An AP takes data for a window while its own newest heartbeat is within the allowed
        lateness of the window's end (domain.py), so the oldest newest-heartbeat of the site's
        APs says which minutes may still grow. An AP silent for more than `MINUTES_HOLD_S`
        beyond the lateness (in the data) no longer holds minutes back: the record stays small.
        """
        clock = self._clock(site)
        clock.note(current.ap_id, current.last_seen)
        if clock.newest is None or not site.may_forget_minutes(clock.newest, self.config.allowed_lateness_s):
            return False  # the common case: not even the newest heartbeat closes a minute
        low = clock.oldest(self.config.allowed_lateness_s + MINUTES_HOLD_S)
        if low is None:
            return False
        return site.forget_minutes(low, self.config.allowed_lateness_s)

    def _clock(self, site: SiteState) -> _SiteClock:
        clock = self._clocks.get(site.site_id)
        if clock is None:
            clock = self._clocks[site.site_id] = _SiteClock(site, self._last_seen)
        return clock

    def _prune(self, site: SiteState, now: float | None) -> bool:
        if now is None:
            return False
        changed, gone = site.prune(now, self.config.allowed_lateness_s)
        if changed:  # a window still published from its APs' buckets may have lost its closed totals
            self._note(site.site_id, everything=True)
        for key in gone:
            self._distinct_counts.pop((site.site_id, USERS, key), None)
            self._distinct_counts.pop((site.site_id, SESSIONS, key), None)
            for shard in distinct_keys(site.site_id, USERS, key) + distinct_keys(site.site_id, SESSIONS, key):
                self._shards.pop(shard, None)
                if shard in self.store:
                    del self.store[shard]
        return changed

    # -- sessions ------------------------------------------------------------------------------

    def site_time(self, site: SiteState) -> float | None:
        """The newest event time the site's APs reported (the site's watermark)."""
        return self._clock(site).newest

    def _last_seen(self, ap_id: str, site_id: str) -> float | None:
        state = self._ap(ap_id, site_id)
        return None if state is None else state.last_seen

    def on_session(self, session: SessionEvent, partition: int = -1) -> SessionResult:
        try:
            return self._on_session(session, partition)
        except Exception:
            self._give_up()
            raise

    def _on_session(self, session: SessionEvent, partition: int) -> SessionResult:
        site = self._site(session.site_id)
        lateness = self.config.allowed_lateness_s
        marks = self._watermarks(session.site_id)
        t = session.t
        newest = max(marks.get(session.ap_id, t), t)
        # The site's heartbeats only say which windows the site no longer keeps (pruned, never
        # published again): a window kept at the end was kept at every moment before.
        seen = self.site_time(site)
        now = newest if seen is None else seen
        # open_for(key, newest) and kept_for(key, now), from the window's two bounds.
        keys = [key for key, end, kept_until in window_bounds(t, self.config.tz_offset_s)
                if end + lateness >= newest and kept_until + lateness >= now]
        late = 3 - len(keys)
        changed = any([site.note_distinct(k) for k in keys])
        changed |= self._prune(site, now)
        if changed or site.partition != partition:
            site.partition = partition
            self._write_site(site)
        added = 0
        user = user_member(session.client_hash)
        visit = session_member(session.ap_id, session.session_id) if session.kind == CONNECT else None
        for key in keys:
            added += self._add_member(site.site_id, USERS, key, user)
            if visit is not None:
                added += self._add_member(site.site_id, SESSIONS, key, visit)
        if added:
            self._note(site.site_id, keys=keys)
        if marks.get(session.ap_id) != newest:  # after the additions: see the module's text
            marks[session.ap_id] = newest
            self._write_watermarks(session.site_id, marks, partition)
        if not keys:
            return SessionResult("late", late)
        return SessionResult("applied" if added else "duplicate", late)

    def _watermarks(self, site_id: str) -> dict[str, float]:
        """Per AP of the site, the newest session event time applied (the processor's copy)."""
        marks = self._marks.get(site_id)
        if marks is None:
            raw = self.store.get(watermark_key(site_id))
            marks = {} if raw is None else {str(a): float(t) for a, t in dict(raw["t"]).items()}
            self._marks[site_id] = marks
        return marks

    def _write_watermarks(self, site_id: str, marks: dict[str, float], partition: int) -> None:
        # Written through the store's write order (rank 2, after the additions they follow);
        # write-behind: once per site per flush, not a copy of every AP's mark per session.
        if self.write_behind:
            self._unwritten_marks[site_id] = partition
        else:
            self.store[watermark_key(site_id)] = {"id": site_id, "t": dict(marks), "p": partition}

    def _add_member(self, site_id: str, kind: str, key: str, member: str) -> int:
        names = self._shard_names.get((site_id, kind, key))
        if names is None:
            names = self._shard_names[(site_id, kind, key)] = distinct_keys(site_id, kind, key)
        shard = names[int(member[:8], 16) % len(names)]  # shard_of(member, window)
        cached = self._shards.get(shard)
        if cached is None:
            record = self.store.get(shard)
            members: list[str] = [] if record is None else list(record["m"])
            cached = (members, set(members))
            if self.write_behind:  # the copy is the processor's until the flush
                self._shards[shard] = cached
        members, known = cached
        if member in known:
            return 0
        members.append(member)
        known.add(member)
        self.store[shard] = {"m": members}
        counted = (site_id, kind, key)
        if counted in self._distinct_counts:
            self._distinct_counts[counted] += 1
        return 1


class _SiteClock:
    """The newest heartbeat time of a site's APs, and the oldest of those newest ones among the
    APs not silent (in the data) for longer than a hold, kept per reading instead of looked up
    over every AP of the site at every reading.

    A min-heap of (time, AP) with lazy deletion: an AP's newest time only grows, so an entry
    is out of date once its AP has a newer one, and an AP held back too long stays out until it
    reports again (the newest time only grows too). Exact as long as the processor sees every
    change of its APs' states (it starts over with `forget`)."""

    def __init__(self, site: SiteState, last_seen: Callable[[str, str], float | None]) -> None:
        self.times: dict[str, float] = {}
        for ap_id in site.aps:
            t = last_seen(ap_id, site.site_id)
            if t is not None:
                self.times[ap_id] = t
        self.heap = [(t, ap_id) for ap_id, t in self.times.items()]
        heapq.heapify(self.heap)
        self.newest: float | None = max(self.times.values(), default=None)

    def note(self, ap_id: str, t: float | None) -> None:
        """AP `ap_id`'s newest heartbeat time is now `t`."""
        if t is None or self.times.get(ap_id) == t:
            return
        self.times[ap_id] = t
        heapq.heappush(self.heap, (t, ap_id))
        if self.newest is None or t > self.newest:
            self.newest = t

    def oldest(self, hold_s: float) -> float | None:
        """The oldest newest-heartbeat among the APs within `hold_s` of the site's newest."""
        if self.newest is None:
            return None
        floor, heap = self.newest - hold_s, self.heap
        while heap:
            t, ap_id = heap[0]
            if t >= floor and self.times.get(ap_id) == t:
                return t
            heapq.heappop(heap)
        return None

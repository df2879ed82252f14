"""The state of one access point, driven by its heartbeats (pure Python, no Kafka or Faust).

Ordering and idempotence (per AP, with the shared reorder buffer `smartcity.ordering`):

- heartbeats are applied strictly in `seq` order. A sample whose seq was already applied (or is
  already waiting) is a duplicate and changes nothing;
- a sample that arrives ahead of a gap waits in a small reorder buffer, kept in the AP's state,
  until the gap fills, or until the newest waiting sample is `reorder_window_s` (event time)
  past the oldest one, or more than `reorder_max_pending` samples wait: then the gap is taken
  as lost and the buffer drains in seq order. So any arrival order whose disorder stays inside
  that window gives exactly the in-order result. A sample arriving after its gap was given up
  is dropped like a duplicate. The first sample of an AP starts its sequence.

Health uses the shared model (`smartcity.health`): cpu and memory checks with threshold and
tolerance; a silence longer than the heartbeat tolerance seen *in the data* (a heartbeat
arriving after a gap) records the CRITICAL interval, so replays give the same availability. The
live "has gone quiet" view is computed when publishing (see `core/published.py`), not stored.

Traffic comes from the monotonic rx/tx counters: the difference between consecutive samples.
After a reboot (uptime went down) that happened since the previous sample (uptime no longer than
the interval), the counters themselves are the bytes since boot. A reset that cannot be placed
(a reboot inside a longer gap, counters that went down with uptime going on) only sets a new
baseline, like the first sample of an AP: better no bytes than invented ones. Bytes are
attributed to the windows of the sample that reported them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from smartcity.health import Availability, CheckResult, CheckSpec, DeviceHealth, Health, HealthChange
from smartcity.ordering import Arrival, SeqCursor, gaps_skipped
from wifi_telemetry.config import HealthConfig, WifiConfig
from wifi_telemetry.core.windows import bucket_end, open_for, window_ends

CPU_CHECK = "cpu"
MEMORY_CHECK = "memory"
_PASSING = CheckResult(False)


class Sample(NamedTuple):
    """One heartbeat of an AP (ApTelemetry without the parts the processor does not use).

    A named tuple, not a dataclass: one is made per reading, and a tuple costs a fraction of a
    frozen dataclass to build."""

    ap_id: str
    site_id: str
    seq: int
    t: float
    uptime_s: int
    cpu: float
    mem: float
    clients: int
    rx: int
    tx: int
    name: str = ""
    lat: float = 0.0
    lon: float = 0.0
    firmware: str = ""

    @property
    def event_time(self) -> float:
        return self.t

    def to_list(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_list(cls, data: list[Any]) -> Sample:
        return cls(str(data[0]), str(data[1]), int(data[2]), float(data[3]), int(data[4]),
                   float(data[5]), float(data[6]), int(data[7]), int(data[8]), int(data[9]),
                   str(data[10]), float(data[11]), float(data[12]), str(data[13]))


# A check that is not failing, not recovering and not firing, as `encoded_checks` writes it
# (one list shared by every such check: nothing changes an encoded state, `from_list` copies).
_QUIET_CHECK: list[Any] = [None, None, False, ""]


def encoded_checks(health: DeviceHealth) -> dict[str, list[Any]]:
    """The health's checks as lists (failing since, clear since, firing, detail), by name.

    Nearly always every check is quiet: then the lists are the one shared quiet list, not two
    made per AP per write (a property test compares this with the lists made one by one)."""
    checks = health.checks
    for check in checks.values():
        if check.failing_since is not None or check.clear_since is not None or check.firing or check.detail:
            return {name: [c.failing_since, c.clear_since, c.firing, c.detail] for name, c in checks.items()}
    return dict.fromkeys(checks, _QUIET_CHECK)


@dataclass
class AccessPointState:
    """Everything the processor keeps per AP; `to_dict` is what the Faust table holds."""

    ap_id: str
    site_id: str
    health: DeviceHealth
    availability: Availability = field(default_factory=Availability)
    name: str = ""
    lat: float = 0.0
    lon: float = 0.0
    firmware: str = ""
    # The seq reorder buffer (smartcity.ordering), without restart detection: an AP's seq
    # is persistent across reboots (see edge/readings.py).
    order: SeqCursor[Sample] = field(default_factory=SeqCursor)
    uptime_s: int = 0
    rx_counter: int = 0
    tx_counter: int = 0
    rx_bps: float = 0.0
    tx_bps: float = 0.0
    clients: int = 0
    cpu: float = 0.0
    mem: float = 0.0
    first_seen: float | None = None
    reboots: int = 0
    # "<window>:<start>" -> [rx bytes, tx bytes, max clients] reported in that window.
    buckets: dict[str, list[int]] = field(default_factory=dict)
    partition: int = -1
    # The earliest event time at which one of `buckets` closes, or earlier (never later): until
    # the AP's newest heartbeat passes it, no bucket needs retiring. Not stored.
    open_until: float = field(default=-math.inf, repr=False, compare=False)

    @property
    def last_seen(self) -> float | None:
        return self.health.last_seen

    @property
    def last_seq(self) -> int | None:
        return self.order.last_seq

    @property
    def pending(self) -> dict[int, Sample]:
        return self.order.pending

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.ap_id, "site": self.site_id, "name": self.name, "lat": self.lat,
            "lon": self.lon, "fw": self.firmware, "seq": self.last_seq,
            "pend": [s.to_list() for _, s in sorted(self.pending.items())],
            "h": self.health.to_dict(), "av": self.availability.to_dict(),
            "up": self.uptime_s, "rxc": self.rx_counter, "txc": self.tx_counter,
            "rxr": self.rx_bps, "txr": self.tx_bps, "cl": self.clients, "cpu": self.cpu,
            "mem": self.mem, "fs": self.first_seen, "rb": self.reboots,
            "b": {k: list(v) for k, v in self.buckets.items()}, "p": self.partition,
        }

    def to_list(self, *, shared: bool = False) -> list[Any]:
        """`to_dict` without the field names (the AP inside its site's record, see processor.py):
        the same values, positionally (as JSON gives them back); `from_list` reads it back.

        `shared`: the buckets and the availability's change points are the state's own, not
        copies (copying them was most of the cost of writing an AP): encode the list before the
        state changes again, as the processor's flush does."""
        health, availability = self.health, self.availability
        return [
            self.ap_id, self.site_id, self.name, self.lat, self.lon, self.firmware, self.last_seq,
            [s.to_list() for _, s in sorted(self.pending.items())] if self.pending else [],
            [int(health.health), health.health_since, health.last_seen, encoded_checks(health)],
            [availability.first_seen,
             availability.changes if shared else [[t, d] for t, d in availability.changes]],
            self.uptime_s, self.rx_counter, self.tx_counter, self.rx_bps, self.tx_bps, self.clients,
            self.cpu, self.mem, self.first_seen, self.reboots,
            self.buckets if shared else {k: list(v) for k, v in self.buckets.items()}, self.partition,
        ]

    @classmethod
    def from_list(cls, data: list[Any], model: AccessPointModel) -> AccessPointState:
        (ap_id, site_id, name, lat, lon, firmware, seq, pending, health, availability, uptime_s,
         rx_counter, tx_counter, rx_bps, tx_bps, clients, cpu, mem, first_seen, reboots, buckets,
         partition) = data
        level, since, last_seen, checks = health
        return cls.from_dict({
            "id": ap_id, "site": site_id, "name": name, "lat": lat, "lon": lon, "fw": firmware,
            "seq": seq, "pend": pending,
            "h": {"id": ap_id, "h": level, "hs": since, "ls": last_seen,
                  "c": {n: {"fs": c[0], "cs": c[1], "f": c[2], "d": c[3]} for n, c in dict(checks).items()}},
            "av": {"fs": availability[0], "c": availability[1]},
            "up": uptime_s, "rxc": rx_counter, "txc": tx_counter, "rxr": rx_bps, "txr": tx_bps,
            "cl": clients, "cpu": cpu, "mem": mem, "fs": first_seen, "rb": reboots, "b": buckets,
            "p": partition,
        }, model)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], model: AccessPointModel) -> AccessPointState:
        pending = [Sample.from_list(item) for item in data.get("pend", [])]
        return cls(
            ap_id=str(data["id"]), site_id=str(data["site"]),
            health=DeviceHealth.from_dict(data["h"], model.specs, model.health.heartbeat_tolerance_s),
            availability=Availability.from_dict(data.get("av", {})),
            name=str(data.get("name", "")), lat=float(data.get("lat", 0.0)),
            lon=float(data.get("lon", 0.0)), firmware=str(data.get("fw", "")),
            order=SeqCursor(None if data.get("seq") is None else int(data["seq"]), None,
                            {s.seq: s for s in pending}),
            uptime_s=int(data.get("up", 0)), rx_counter=int(data.get("rxc", 0)),
            tx_counter=int(data.get("txc", 0)), rx_bps=float(data.get("rxr", 0.0)),
            tx_bps=float(data.get("txr", 0.0)), clients=int(data.get("cl", 0)),
            cpu=float(data.get("cpu", 0.0)), mem=float(data.get("mem", 0.0)),
            first_seen=None if data.get("fs") is None else float(data["fs"]),
            reboots=int(data.get("rb", 0)),
            buckets={str(k): [int(x) for x in v] for k, v in dict(data.get("b", {})).items()},
            partition=int(data.get("p", -1)),
        )


@dataclass(slots=True)
class OfferResult:
    outcome: Arrival
    applied: list[Sample] = field(default_factory=list)
    changes: list[HealthChange] = field(default_factory=list)
    # Window buckets that fell out of the AP's retention (the site keeps their totals).
    retired: dict[str, list[int]] = field(default_factory=dict)
    # Minute buckets whose max clients went up (the site's peak may have gone up).
    peak_minutes: set[str] = field(default_factory=set)
    # Bytes the applied samples reported (counter differences), received and sent.
    rx_bytes: int = 0
    tx_bytes: int = 0
    reboots: int = 0
    skipped_gaps: int = 0


class AccessPointModel:
    """Applies heartbeats to `AccessPointState` under one configuration."""

    def __init__(self, config: WifiConfig, *, shortcut: bool = True) -> None:
        self.config = config
        # shortcut: a sample that is the common case (`_offer_next`) skips the general path;
        # off only to compare the two (property tests).
        self.shortcut = shortcut
        self.health: HealthConfig = config.health
        self.specs: dict[str, CheckSpec] = {
            CPU_CHECK: CheckSpec(CPU_CHECK, Health.PROBLEM, self.health.cpu_tolerance_s,
                                 self.health.cpu_recovery_s),
            MEMORY_CHECK: CheckSpec(MEMORY_CHECK, Health.PROBLEM, self.health.memory_tolerance_s,
                                    self.health.memory_recovery_s),
        }

    def new_state(self, sample: Sample) -> AccessPointState:
        health = DeviceHealth(sample.ap_id, self.specs, self.health.heartbeat_tolerance_s)
        return AccessPointState(ap_id=sample.ap_id, site_id=sample.site_id, health=health)

    def load(self, data: Mapping[str, Any]) -> AccessPointState:
        return AccessPointState.from_dict(data, self)

    # -- ordering -------------------------------------------------------------------------

    def offer(self, state: AccessPointState, sample: Sample) -> OfferResult:
        """Takes one arriving heartbeat: ignores duplicates, buffers, applies in seq order."""
        if self.shortcut:
            result = self._offer_next(state, sample)
            if result is not None:
                return result
        previous_seq = state.order.last_seq
        arrival, ready = state.order.accept(sample, self.config.reorder_window_s,
                                            self.config.reorder_max_pending, restarts=False)
        # For the AP, APPLIED means "its state moved": also when the arrival, still waiting
        # itself, released older waiting samples (the site must then be updated too).
        if ready and arrival is Arrival.BUFFERED:
            arrival = Arrival.APPLIED
        result = OfferResult(arrival, skipped_gaps=gaps_skipped(previous_seq, ready))
        for item in ready:
            self._apply(state, item, result)
        return result

    def _offer_next(self, state: AccessPointState, sample: Sample) -> OfferResult | None:
        """`offer` for the common case, or None (and nothing changed) for any other sample.

        The common case: the next seq with nothing waiting, no older than the AP's newest
        heartbeat and within the heartbeat tolerance of it, the AP OK with no check firing and
        both checks passing, uptime and counters going on. Then the cursor only moves on, the
        health only takes the time (a passing check that is not firing only forgets when it
        started failing), and the traffic is the counters' difference: what the general path
        does for such a sample, without its verdicts, lists and loops (a property test checks
        that both give the same states and results)."""
        order, health, cfg = state.order, state.health, self.health
        last_seq, previous_t, t = order.last_seq, health.last_seen, sample.t
        if (last_seq is None or sample.seq != last_seq + 1 or order.pending or previous_t is None
                or not previous_t <= t <= previous_t + cfg.heartbeat_tolerance_s
                or health.health is not Health.OK
                or not sample.cpu <= cfg.cpu_threshold_percent
                or not sample.mem <= cfg.memory_threshold_percent
                or sample.uptime_s < state.uptime_s or sample.rx < state.rx_counter
                or sample.tx < state.tx_counter or state.first_seen is None):
            return None
        checks = health.checks
        cpu_check, memory_check = checks.get(CPU_CHECK), checks.get(MEMORY_CHECK)
        if cpu_check is None or memory_check is None or any(c.firing for c in checks.values()):
            return None
        order.last_seq = sample.seq
        order.newest_at = t if order.newest_at is None or t > order.newest_at else order.newest_at
        self._update_identity(state, sample)
        health.last_seen = t
        cpu_check.failing_since = memory_check.failing_since = None
        drx, dtx = sample.rx - state.rx_counter, sample.tx - state.tx_counter
        state.rx_counter, state.tx_counter = sample.rx, sample.tx
        span = t - previous_t
        if span > 0:
            state.rx_bps, state.tx_bps = drx * 8 / span, dtx * 8 / span
        state.clients, state.cpu, state.mem = sample.clients, sample.cpu, sample.mem
        state.uptime_s = sample.uptime_s
        result = OfferResult(Arrival.APPLIED, [sample], rx_bytes=drx, tx_bytes=dtx)
        self._add_to_buckets(state, sample, drx, dtx, result)
        return result

    # -- applying one sample in order -----------------------------------------------------

    def _apply(self, state: AccessPointState, sample: Sample, result: OfferResult) -> None:
        previous_t = state.health.last_seen
        self._update_identity(state, sample)
        self._update_health(state, sample, result)
        drx, dtx = self._update_traffic(state, sample, previous_t, result)
        result.rx_bytes += drx
        result.tx_bytes += dtx
        state.clients, state.cpu, state.mem = sample.clients, sample.cpu, sample.mem
        state.uptime_s = sample.uptime_s
        if state.first_seen is None:
            state.first_seen = sample.t
        self._add_to_buckets(state, sample, drx, dtx, result)
        result.applied.append(sample)

    @staticmethod
    def _update_identity(state: AccessPointState, sample: Sample) -> None:
        state.site_id = sample.site_id or state.site_id
        state.name = sample.name or state.name
        state.firmware = sample.firmware or state.firmware
        if sample.lat or sample.lon:
            state.lat, state.lon = sample.lat, sample.lon

    def _update_health(self, state: AccessPointState, sample: Sample, result: OfferResult) -> None:
        health = state.health
        changes: list[HealthChange] = []
        if health.last_seen is not None and sample.t - health.last_seen > self.health.heartbeat_tolerance_s:
            # The data itself shows a silence: record it whether or not a timer saw it live.
            silence = health.check_silence(sample.t)
            if silence is not None:
                changes.append(silence)
        first = health.last_seen is None
        change = health.observe(sample.t, self.evaluate(sample))
        if first:
            state.availability.record(sample.t, health.health)
        if change is not None:
            changes.append(change)
        for item in changes:
            state.availability.record(item.at, item.after)
        result.changes.extend(changes)

    def evaluate(self, sample: Sample) -> dict[str, CheckResult]:
        # A passing check's detail is never shown (only a failing one's is kept): the text is
        # only made for a failing check, and a passing one is the one shared verdict.
        cfg = self.health
        cpu = (CheckResult(True, f"cpu {sample.cpu:.1f}% > {cfg.cpu_threshold_percent:g}%")
               if sample.cpu > cfg.cpu_threshold_percent else _PASSING)
        memory = (CheckResult(True, f"memory {sample.mem:.1f}% > {cfg.memory_threshold_percent:g}%")
                  if sample.mem > cfg.memory_threshold_percent else _PASSING)
        return {CPU_CHECK: cpu, MEMORY_CHECK: memory}

    @staticmethod
    def _update_traffic(state: AccessPointState, sample: Sample, previous_t: float | None,
                        result: OfferResult) -> tuple[int, int]:
        if previous_t is None:  # the first sample only sets the baseline
            state.rx_counter, state.tx_counter = sample.rx, sample.tx
            return 0, 0
        span = sample.t - previous_t
        rebooted = sample.uptime_s < state.uptime_s
        went_down = sample.rx < state.rx_counter or sample.tx < state.tx_counter
        if rebooted and sample.uptime_s <= max(span, 0.0) + 1:
            # Rebooted since the previous sample: the counters hold exactly the bytes since boot.
            drx, dtx = sample.rx, sample.tx
            span = min(span, float(sample.uptime_s)) if sample.uptime_s > 0 else span
        elif rebooted or went_down:
            # Counters restarted at a time we cannot place (a reboot inside a gap, a wrap, a
            # replaced device): no honest delta, so the sample is a new baseline.
            drx = dtx = 0
        else:
            drx, dtx = sample.rx - state.rx_counter, sample.tx - state.tx_counter
        if rebooted:
            state.reboots += 1
            result.reboots += 1
        state.rx_counter, state.tx_counter = sample.rx, sample.tx
        if span > 0:
            state.rx_bps, state.tx_bps = drx * 8 / span, dtx * 8 / span
        return drx, dtx

    def _add_to_buckets(self, state: AccessPointState, sample: Sample, drx: int, dtx: int,
                        result: OfferResult) -> None:
        tz, lateness = self.config.tz_offset_s, self.config.allowed_lateness_s
        newest = state.health.last_seen or sample.t
        buckets, clients = state.buckets, sample.clients
        minute = True  # the first of the windows is the minute
        for key, end in window_ends(sample.t, tz):  # minute, hour, day
            closes = end + lateness
            if closes < newest:
                minute = False
                continue  # a clock that jumped back: that window is closed for this AP
            totals = buckets.get(key)
            if totals is None:
                totals = buckets[key] = [0, 0, 0]
                state.open_until = min(state.open_until, closes)
            totals[0] += drx
            totals[1] += dtx
            if clients > totals[2]:
                totals[2] = clients
                if minute:
                    result.peak_minutes.add(key)
            minute = False
        if newest > state.open_until:  # some bucket closed: only then look at them all
            self._retire(state, newest, lateness, result)

    @staticmethod
    def _retire(state: AccessPointState, newest: float, lateness: float, result: OfferResult) -> None:
        for key in list(state.buckets):
            if not open_for(key, newest, lateness):
                result.retired[key] = state.buckets.pop(key)
        state.open_until = min((bucket_end(k) + lateness for k in state.buckets), default=math.inf)

"""AP readings from SNMP values: octet counters across wraps and reboots, CPU, memory, clients.

Plain functions, no SNMP library: the poller hands them what the agent answered.

Octet counters. ApTelemetry's rx/tx are bytes since the AP booted; IF-MIB's ifHCIn/OutOctets
are per interface and 64-bit. `advance` keeps, per AP, a running total since boot:
  - sysUpTime went down (or first sight of the AP): the AP rebooted, the total restarts as
    the sum of the interface counters (they count from zero since boot);
  - an interface counter went down while sysUpTime went up: either a wrap (the counter passed
    its modulus: 2^64 for the HC counters, 2^32 for the old ones) or a discontinuity (the
    interface was re-created, a driver reset it). A wrap adds value + modulus - previous;
    when that is more than the link could carry in the elapsed time (`max_bytes_per_s`), it
    was a discontinuity and adds the new value only;
  - an interface seen for the first time adds its value (it counts from its creation).
sysUpTime is TimeTicks (1/100 s, 32 bits): it wraps after 497 days, which reads as a reboot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

COUNTER64_MODULUS = 2**64
COUNTER32_MODULUS = 2**32
# 100 Gbit/s: no AP interface carries more, so a larger "wrap" is a counter discontinuity.
DEFAULT_MAX_BYTES_PER_S = 100e9 / 8
HR_STORAGE_RAM = (1, 3, 6, 1, 2, 1, 25, 2, 1, 2)
IF_TYPE_SOFTWARE_LOOPBACK = 24


@dataclass
class CounterState:
    """What `advance` remembers of one counter family (rx or tx) of one AP."""

    uptime_ticks: int
    per_interface: dict[int, int] = field(default_factory=dict)
    total: int = 0


def advance(state: CounterState | None, uptime_ticks: int, values: Mapping[int, int], *,
            modulus: int = COUNTER64_MODULUS,
            max_bytes_per_s: float = DEFAULT_MAX_BYTES_PER_S) -> CounterState:
    """The state after a poll that read `values` (ifIndex → counter) at `uptime_ticks`."""
    if state is None or uptime_ticks < state.uptime_ticks:
        return CounterState(uptime_ticks, dict(values), sum(values.values()))
    elapsed_s = (uptime_ticks - state.uptime_ticks) / 100
    total = state.total
    for index, value in values.items():
        total += counter_delta(state.per_interface.get(index), value, elapsed_s, modulus, max_bytes_per_s)
    return CounterState(uptime_ticks, dict(values), total)


def counter_delta(previous: int | None, value: int, elapsed_s: float, modulus: int = COUNTER64_MODULUS,
                  max_bytes_per_s: float = DEFAULT_MAX_BYTES_PER_S) -> int:
    """Bytes counted between two readings of one interface counter (see the module doc)."""
    if previous is None:
        return value
    if value >= previous:
        return value - previous
    wrapped = value + modulus - previous
    if wrapped <= max(elapsed_s, 1.0) * max_bytes_per_s:
        return wrapped
    return value  # a discontinuity: the counter restarted from zero


def counted_interfaces(values: Mapping[int, int], if_types: Mapping[int, int]) -> dict[int, int]:
    """The counters of the interfaces that carry client traffic (the loopback does not)."""
    return {i: v for i, v in values.items() if if_types.get(i) != IF_TYPE_SOFTWARE_LOOPBACK}


def cpu_percent(processor_loads: Iterable[int]) -> float | None:
    """HOST-RESOURCES-MIB hrProcessorLoad: the mean over the processors, None without any."""
    loads = list(processor_loads)
    return round(sum(loads) / len(loads), 2) if loads else None


@dataclass(frozen=True)
class StorageRow:
    storage_type: tuple[int, ...]
    allocation_units: int
    size: int
    used: int


def memory_percent(rows: Iterable[StorageRow]) -> float | None:
    """Share of RAM in use from hrStorageTable's hrStorageRam rows, None when it has none."""
    ram = [r for r in rows if r.storage_type == HR_STORAGE_RAM and r.size > 0]
    size = sum(r.size * r.allocation_units for r in ram)
    if not size:
        return None
    used = sum(r.used * r.allocation_units for r in ram)
    return round(100.0 * used / size, 2)


def client_count(values: Iterable[object]) -> int | None:
    """The vendor's client count: the sum of a per-radio column, or one scalar (an integer, or a
    net-snmp `extend` output line holding one). None when the agent had nothing usable."""
    total, seen = 0, False
    for value in values:
        text = value.decode() if isinstance(value, bytes) else str(value)
        text = text.strip()
        if text.lstrip("-").isdigit():
            total, seen = total + max(0, int(text)), True
    return total if seen else None


def next_seq(last: int, now_ms: int) -> int:
    """Strictly increasing per AP across collector restarts: the clock in ms, or last + 1."""
    return max(last + 1, now_ms)

"""SNMP readings → AP figures: counter wraps, reboots, discontinuities, CPU, memory, clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.settings import SettingsError
from wifi_telemetry.core import snmp_counters as sc
from wifi_telemetry.edge.snmp import VENDORS_FILE, load_targets, load_vendors


def test_counters_add_up_between_polls() -> None:
    state = sc.advance(None, 1000, {1: 500, 2: 100})
    assert state.total == 600
    state = sc.advance(state, 4000, {1: 800, 2: 150})
    assert state.total == 950


def test_a_64_bit_wrap_counts_the_bytes_across_it() -> None:
    state = sc.advance(None, 1000, {1: 2**64 - 100})
    state = sc.advance(state, 1100, {1: 50})
    assert state.total == 2**64 - 100 + 150


def test_a_32_bit_counter_wraps_at_its_own_modulus() -> None:
    state = sc.advance(None, 1000, {1: 2**32 - 10}, modulus=sc.COUNTER32_MODULUS)
    state = sc.advance(state, 1100, {1: 5}, modulus=sc.COUNTER32_MODULUS)
    assert state.total == 2**32 + 5


def test_an_uptime_decrease_is_a_reboot_and_restarts_the_total() -> None:
    state = sc.advance(None, 900_000, {1: 10**9})
    state = sc.advance(state, 3_000, {1: 4_000})
    assert state.total == 4_000 and state.uptime_ticks == 3_000


def test_a_counter_reset_without_reboot_is_a_discontinuity_not_a_wrap() -> None:
    state = sc.advance(None, 1000, {1: 10**12})
    state = sc.advance(state, 4000, {1: 7})  # 30 s: no link carries 2^64 bytes in 30 s
    assert state.total == 10**12 + 7


def test_a_new_interface_adds_what_it_counted_since_it_appeared() -> None:
    state = sc.advance(None, 1000, {1: 10})
    state = sc.advance(state, 2000, {1: 20, 7: 5})
    assert state.total == 25


def test_the_loopback_is_not_client_traffic() -> None:
    assert sc.counted_interfaces({1: 99, 2: 5}, {1: sc.IF_TYPE_SOFTWARE_LOOPBACK, 2: 6}) == {2: 5}


def test_cpu_is_the_mean_processor_load_and_none_without_processors() -> None:
    assert sc.cpu_percent([10, 30]) == 20.0
    assert sc.cpu_percent([]) is None


def test_memory_is_ram_used_over_size_in_allocation_units() -> None:
    rows = [sc.StorageRow(sc.HR_STORAGE_RAM, 1024, 1000, 250),
            sc.StorageRow((1, 3, 6, 1, 2, 1, 25, 2, 1, 4), 4096, 10**6, 10**6)]  # a disk: not RAM
    assert sc.memory_percent(rows) == 25.0
    assert sc.memory_percent(rows[1:]) is None


@pytest.mark.parametrize("values, clients", [([3, 4], 7), (["17"], 17), ([b" 5\n"], 5), ([], None),
                                             (["n/a"], None)])
def test_client_count_sums_a_column_or_reads_one_value(values: list[object], clients: int | None) -> None:
    assert sc.client_count(values) == clients


def test_seq_follows_the_clock_and_never_goes_back() -> None:
    assert sc.next_seq(0, 1_000) == 1_000
    assert sc.next_seq(1_000, 900) == 1_001


def test_the_vendor_file_names_mikrotik_unifi_and_openwrt() -> None:
    vendors = load_vendors(VENDORS_FILE)
    assert {"mikrotik", "unifi", "openwrt", "net-snmp"} <= set(vendors)
    assert vendors["mikrotik"].walk and vendors["unifi"].walk and not vendors["openwrt"].walk


def test_targets_take_defaults_and_a_community_file(tmp_path: Path) -> None:
    (tmp_path / "community").write_text("s3cret\n")
    (tmp_path / "aps.yaml").write_text(
        "defaults: {vendor: mikrotik, community_file: community}\n"
        "access_points:\n  - {ap_id: ap-1, site_id: alun-alun, host: 127.0.0.1, port: 1161}\n")
    [target] = load_targets(tmp_path / "aps.yaml", load_vendors(VENDORS_FILE))
    assert (target.ap_id, target.port, target.community, target.vendor.name) == ("ap-1", 1161, "s3cret",
                                                                                  "mikrotik")
    assert "s3cret" not in repr(target)


def test_an_unknown_vendor_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / "aps.yaml").write_text(
        "access_points:\n  - {ap_id: a, site_id: s, host: h, vendor: acme, community: c}\n")
    with pytest.raises(SettingsError, match="acme"):
        load_targets(tmp_path / "aps.yaml", load_vendors(VENDORS_FILE))

"""The SNMP poller against Debian's real net-snmp agent on loopback, into real Kafka."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from smartcity.edge_testing import SnmpAgent, free_udp_port
from smartcity.testing import consume
from smartcity.v1 import wifi_pb2
from wifi_telemetry.edge.snmp import POLLS, VENDORS_FILE, PollLoop, SnmpConfig, load_targets, load_vendors

pytestmark = [pytest.mark.kafka,
              pytest.mark.skipif(shutil.which("snmpd") is None and not Path("/usr/sbin/snmpd").exists(),
                                 reason="snmpd missing: scripts/install_edge_tools.sh installs it")]


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[SnmpAgent]:
    snmpd = SnmpAgent(tmp_path, community="pbg-test").start()
    try:
        yield snmpd
    finally:
        snmpd.stop()


def walk_sum(agent: SnmpAgent, column: str) -> int:
    """The sum of a counter column over the non-loopback interfaces, read with net-snmp's snmpwalk."""
    def walk(oid: str) -> dict[str, str]:
        lines = subprocess.run(["snmpwalk", "-v2c", "-c", agent.community, "-On", "-OQ",
                                f"udp:127.0.0.1:{agent.port}", oid], capture_output=True, text=True,
                               check=True).stdout.splitlines()
        return {ln.split(" = ")[0].rsplit(".", 1)[1]: ln.split(" = ")[1] for ln in lines if " = " in ln}

    types = walk("1.3.6.1.2.1.2.2.1.3")
    return sum(int(v) for i, v in walk(column).items() if types.get(i) != "24")


def targets_file(tmp_path: Path, agent: SnmpAgent) -> Path:
    path = tmp_path / "aps.yaml"
    path.write_text(
        "defaults: {host: 127.0.0.1, vendor: net-snmp}\n"
        "access_points:\n"
        f"  - {{ap_id: ap-live, site_id: alun-alun, port: {agent.port}, community: {agent.community}}}\n"
        f"  - {{ap_id: ap-wrong-community, site_id: alun-alun, port: {agent.port}, community: nope}}\n"
        f"  - {{ap_id: ap-nobody-home, site_id: alun-alun, port: {free_udp_port()}, community: x}}\n")
    return path


async def test_live_counters_clients_and_silence_when_the_agent_stops(
        kafka_bootstrap: str, topic_prefix: str, agent: SnmpAgent, producer: AIOKafkaProducer,
        tmp_path: Path) -> None:
    config = SnmpConfig(targets_file=str(targets_file(tmp_path, agent)), interval_s=1, timeout_s=0.5,
                        retries=1)
    targets = load_targets(config.targets_file, load_vendors(VENDORS_FILE))
    topic = f"{topic_prefix}wifi.ap-telemetry.v1"
    loop = PollLoop(config, targets, producer, topic)
    unreachable_before = POLLS.labels("unreachable")._value.get()
    try:
        agent.clients_file.write_text("17\n")
        rx_before = walk_sum(agent, "1.3.6.1.2.1.31.1.1.1.6")
        assert await loop.round() == 1  # the wrong community and the closed port: no heartbeat
        rx_after = walk_sum(agent, "1.3.6.1.2.1.31.1.1.1.6")
        agent.clients_file.write_text("23\n")
        await asyncio.sleep(5.5)  # snmpd caches an `extend` output for 5 s
        assert await loop.round() == 1
        agent.stop()
        assert await loop.round() == 0
    finally:
        loop.poller.close()
    assert POLLS.labels("unreachable")._value.get() - unreachable_before == 2 + 2 + 3
    records = await consume(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 2, timeout_s=15)
    beats = [wifi_pb2.ApTelemetry.FromString(r.value) for r in records]
    assert [b.ap_id for b in beats] == ["ap-live", "ap-live"]
    first, second = beats
    assert (first.clients, second.clients) == (17, 23)
    assert second.seq > first.seq
    assert rx_before <= first.rx_bytes <= rx_after <= second.rx_bytes
    assert 0 < first.memory_percent < 100
    assert first.uptime_seconds <= second.uptime_seconds
    assert first.firmware.startswith("Linux")

"""The `smartcity` command-line client against a running gateway (as subprocesses, for real)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from gateway_testing import CRITICAL, FakeRequestsService, GatewayProcess, ap, incident, produce, reason
from smartcity import inventory

pytestmark = pytest.mark.kafka


@pytest_asyncio.fixture(scope="module")
async def gw(
    module_prefix: str, module_starter: Any, fake: FakeRequestsService, kafka_bootstrap: str
) -> GatewayProcess:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for info in inventory.access_points()[:5]:
            health = CRITICAL if info.ap_id == "ap-alun-alun-02" else 1
            await produce(
                producer,
                module_prefix,
                "wifi.ap-status.v1",
                info.ap_id,
                ap(
                    info.ap_id,
                    site_id=info.site_id,
                    health=health,
                    clients=4,
                    lat=info.latitude,
                    lon=info.longitude,
                ),
            )
        await produce(
            producer,
            module_prefix,
            "camera.incidents.v1",
            "cam-terminal-1",
            incident("inc-cli-1", "cam-terminal-1", site_id="terminal"),
        )
    finally:
        await producer.stop()
    # The dev token file: the CLI is tried with the documented development tokens.
    process: GatewayProcess = module_starter(module_prefix)
    await process.wait_serving()
    return process


async def smartcity(
    gw: GatewayProcess, *args: str, token: str = "dev-command-center"
) -> tuple[int, str, str]:
    env = os.environ | {"SMARTCITY_GATEWAY": gw.address, "SMARTCITY_TOKEN": token}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smartcity_cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_snapshot_and_devices(gw: GatewayProcess) -> None:
    code, out, _ = await smartcity(gw, "snapshot")
    assert code == 0 and "Alun-Alun Purbalingga" in out and "people online  16" in out
    code, out, _ = await smartcity(gw, "aps", "--health", "critical")
    assert code == 0 and "ap-alun-alun-02" in out and "CRITICAL" in out and "ap-alun-alun-01" not in out
    code, out, _ = await smartcity(gw, "--json", "aps", "--page-size", "2", "--all")
    assert code == 0 and len(json.loads(out)) == 5
    code, out, _ = await smartcity(gw, "aps", "--near=-7.3883,109.3639", "--radius", "45", "--json")
    assert code == 0 and sorted(a["ap_id"] for a in json.loads(out)) == [
        f"ap-alun-alun-0{i}" for i in range(1, 5)
    ]
    code, out, _ = await smartcity(gw, "incidents", "--open")
    assert code == 0 and "inc-cli-1" in out


async def test_request_workflow(gw: GatewayProcess) -> None:
    submit = [
        "submit",
        "--category",
        "emergency",
        "--title",
        "Pohon tumbang",
        "--description",
        "Menutup jalan",
        "--street",  # citizen-requests needs a location or an address
        "Jl. Jend. Sudirman",
        "--phone",
        "+62 811 1",
        "--idempotency-key",
        "cli-test-key-1",
    ]
    code, out, _ = await smartcity(gw, *submit, token="dev-citizen-portal")
    assert code == 0 and out.startswith("submitted") and "emergency -> BPBD" in out
    code, out, _ = await smartcity(gw, "--json", *submit, token="dev-citizen-portal")
    reply = json.loads(out)
    assert code == 0 and reply["deduplicated"] is True
    rid = reply["request"]["request_id"]
    code, out, err = await smartcity(gw, "transition", rid, "acknowledge", token="dev-dpmptsp")
    assert code == 1 and "PERMISSION_DENIED" in err and out == ""
    code, out, _ = await smartcity(
        gw, "transition", rid, "acknowledge", "--note", "tim berangkat", token="dev-bpbd"
    )
    assert code == 0 and "ACKNOWLEDGED  (version 2)" in out and "+62 811 1" in out
    code, _, err = await smartcity(gw, "transition", rid, "resolve", token="dev-bpbd")
    assert code == 1 and "FAILED_PRECONDITION" in err and "cannot resolve" in err
    code, out, _ = await smartcity(gw, "comment", rid, "dipantau", token="dev-command-center")
    assert code == 0 and "1 comments" in out
    code, out, _ = await smartcity(gw, "events", rid, token="dev-bpbd")
    assert code == 0 and [line.split()[1] for line in out.splitlines()[1:]] == [
        "SUBMITTED",
        "SUBMIT_DEDUPLICATED",
        "ACKNOWLEDGED",
        "COMMAND_REJECTED",
        "COMMENTED",
    ]
    code, out, _ = await smartcity(gw, "request", rid, token="dev-command-center")
    assert code == 0 and "+62 811 1" not in out and "Pohon tumbang" in out
    code, out, _ = await smartcity(gw, "--json", "requests", "--opd", "BPBD", "--open")
    assert code == 0 and rid in [r["request_id"] for r in json.loads(out)]
    # Erasure: the data protection officer's token only, not the admin's.
    code, _, err = await smartcity(gw, "erase-contact", rid, "--reason", "uji", token="dev-admin")
    assert code == 1 and "PERMISSION_DENIED" in err and "data-protection" in err
    code, out, _ = await smartcity(gw, "erase-contact", rid, "--reason", "uji", token="dev-data-protection")
    assert code == 0 and out.strip() == f"contact data erased for 1 request(s): {rid}"
    code, out, _ = await smartcity(gw, "erase-contact", rid, "--reason", "uji", token="dev-data-protection")
    assert code == 0 and out.startswith("nothing to erase")
    code, out, _ = await smartcity(gw, "request", rid, token="dev-bpbd")
    assert code == 0 and "+62 811 1" not in out and "reporter   (erased)" in out


async def test_watch_prints_live_changes(
    gw: GatewayProcess, producer: AIOKafkaProducer, module_prefix: str
) -> None:
    watch = asyncio.create_task(
        smartcity(gw, "watch", "devices", "--snapshot", "--count", "1", "--duration", "30")
    )
    await asyncio.sleep(3)  # the CLI starts and subscribes; the change below arrives after its snapshot
    await produce(
        producer,
        module_prefix,
        "wifi.ap-status.v1",
        "ap-alun-alun-01",
        ap("ap-alun-alun-01", health=CRITICAL, reasons=(reason("heartbeat", CRITICAL, "no heartbeat 2m"),)),
    )
    code, out, _ = await watch
    lines = out.splitlines()
    assert code == 0 and "-- end of snapshot" in out
    assert "ap-alun-alun-01" in lines[-1] and "no heartbeat 2m" in lines[-1]


async def test_top_once(gw: GatewayProcess) -> None:
    code, out, _ = await smartcity(gw, "top", "--once")
    assert code == 0
    for panel in ("ACCESS POINTS not OK", "CAMERAS not OK", "OPEN INCIDENTS (1)", "REQUESTS PER OPD"):
        assert panel in out
    code, out, _ = await smartcity(gw, "top", "--once", token="dev-devices")
    assert code == 0 and "cannot read requests" in out


async def test_errors_and_token_hash(gw: GatewayProcess) -> None:
    code, _, err = await smartcity(gw, "snapshot", token="")
    assert code == 1 and "UNAUTHENTICATED" in err
    code, _, err = await smartcity(gw, "ap", "ap-none")
    assert code == 1 and "NOT_FOUND" in err
    code, out, _ = await smartcity(gw, "token-hash", "s3cret")
    assert code == 0 and out.splitlines()[0] == hashlib.sha256(b"s3cret").hexdigest()

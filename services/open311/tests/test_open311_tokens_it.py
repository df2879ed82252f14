"""A POST whose outcome comes after its deadline answers a token; GET /tokens resolves it later.

The real citizen-requests answers too fast to miss a deadline on purpose, so this module puts
the gateway's stand-in requests service (gateway_testing.FakeRequestsService, real Kafka) behind
the real gateway: it answers the category "slow" after `SLOW_S`. Also: a facade whose gateway
is unreachable is not ready and answers 503 in the spec's error format.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from aiohttp import ClientSession

from gateway_testing import FakeRequestsService, GatewayProcess
from open311.core.catalogue import DEFAULT_SERVICES_FILE
from open311_testing import Facade, FacadeStarter, assert_error, get, http_ok, post
from smartcity.testing import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]
SLOW_S = 3.0
FORM = {
    "api_key": "t-app",
    "service_code": "slow",
    "address_string": "Jl. Jend. Sudirman 1",
    "description": "Laporan yang lambat diproses",
}


@pytest_asyncio.fixture(scope="module")
async def fake(kafka_bootstrap: str, module_prefix: str) -> AsyncIterator[FakeRequestsService]:
    service = await FakeRequestsService(kafka_bootstrap, module_prefix, slow_s=SLOW_S).start()
    yield service
    await service.stop()


@pytest_asyncio.fixture(scope="module")
async def facade(
    fake: FakeRequestsService, gw: GatewayProcess, start_facade: FacadeStarter, module_logs: Path
) -> Facade:
    catalogue = yaml.safe_load(DEFAULT_SERVICES_FILE.read_text())
    catalogue["services"]["slow"] = {"name": "Lambat", "description": "answered after a few seconds"}
    services_file = module_logs / "services.yaml"
    services_file.write_text(yaml.safe_dump(catalogue))
    started = start_facade(gw.address, OPEN311_SERVICES_FILE=str(services_file), OPEN311_SUBMIT_TIMEOUT_S="1")
    await started.wait_ready()
    return started


async def test_a_late_outcome_answers_a_token_that_resolves_to_the_request(facade: Facade) -> None:
    async with ClientSession() as http:
        status, body = await post(http, f"{facade.url}/requests.json", FORM)
        assert status == 200 and set(body[0]) == {"token"}, body
        token = body[0]["token"]
        status, early, _ = await get(http, f"{facade.url}/tokens/{token}.json")
        assert_error(status, early, 404, "no service request for it yet")
        deadline = time.monotonic() + 30
        while status != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            status, found, _ = await get(http, f"{facade.url}/tokens/{token}.json")
        assert status == 200 and found[0]["token"] == token, found
        request_id = found[0]["service_request_id"]
        status, xml, _ = await get(http, f"{facade.url}/tokens/{token}.xml")
        assert status == 200 and xml.tag == "service_requests"
        assert (xml[0].findtext("service_request_id"), xml[0].findtext("token")) == (request_id, token)
        status, request, _ = await get(http, f"{facade.url}/requests/{request_id}.json")
        assert status == 200 and request[0]["service_code"] == "slow"
        # Sending the same form again is the same request: the stand-in is slow for it too, so the
        # answer is the same token again (the real service would answer the id at once).
        status, again = await post(http, f"{facade.url}/requests.json", FORM)
        assert status == 200 and again == [{"token": token}]


async def test_without_a_gateway_the_facade_is_not_ready_and_answers_503(start_facade: FacadeStarter) -> None:
    unreachable = start_facade(f"127.0.0.1:{free_port()}", OPEN311_READ_TIMEOUT_S="1")
    deadline = time.monotonic() + 30
    while not await asyncio.to_thread(http_ok, f"{unreachable.url}/healthz"):
        assert unreachable.proc.running and time.monotonic() < deadline, unreachable.proc.log_tail()
        await asyncio.sleep(0.2)
    async with ClientSession() as http:
        assert (await get(http, f"{unreachable.url}/readyz"))[0] == 503
        status, body, _ = await get(http, f"{unreachable.url}/requests.xml")
        assert_error(status, body, 503, "not available")
        status, services, _ = await get(http, f"{unreachable.url}/services.json")
        assert status == 200 and services, "the catalogue needs no gateway"

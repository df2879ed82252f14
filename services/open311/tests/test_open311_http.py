"""Parts of the HTTP adapter that need no server: page charging and the client address."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from open311.adapters.gateway import GatewayClient
from open311.adapters.http import Open311Api
from open311.core.catalogue import Catalogue
from open311.core.errors import Open311Error
from open311.core.ratelimit import RateLimiter


def api(burst: float, trust_forwarded_for: bool = False) -> Open311Api:
    # A client of a gateway that is never called here (grpc connects lazily).
    gateway = GatewayClient("127.0.0.1:9", "t-read", 1.0, 1.0)
    return Open311Api(
        Catalogue.load(),
        gateway,
        RateLimiter(rate=0.001, burst=burst),
        "http://127.0.0.1:8311",
        trust_forwarded_for=trust_forwarded_for,
    )


async def pages(n: int) -> AsyncGenerator[list[Any], None]:
    for number in range(n):
        yield [number]


async def test_every_page_after_the_first_costs_the_caller_a_request() -> None:
    facade = api(burst=3)
    request = make_mocked_request("GET", "/requests.json")
    assert [p async for p in facade._charged(pages(4), request)] == [[0], [1], [2], [3]]
    with pytest.raises(Open311Error) as refused:
        _ = [p async for p in facade._charged(pages(2), request)]
    assert refused.value.status == 429, "three pages after the first emptied the bucket of 3"
    await facade.gateway.close()


async def test_the_client_address_is_the_one_the_trusted_proxy_appended() -> None:
    headers = {"X-Forwarded-For": "6.6.6.6, 10.1.2.3"}
    trusting, not_trusting = api(1, trust_forwarded_for=True), api(1)
    request = make_mocked_request("GET", "/services.json", headers=headers)
    assert trusting.client_address(request) == "10.1.2.3", "not the entry the client wrote itself"
    assert not_trusting.client_address(request) != "10.1.2.3"
    await trusting.gateway.close()
    await not_trusting.gateway.close()

"""The facade against the real platform: broker, citizen-requests and the gateway as processes.

Every endpoint in JSON and XML, submit then read back, the error cases with the spec's error
bodies and status codes, CORS, limits, and the public view's privacy (no contact data).
"""

from __future__ import annotations

import asyncio
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession

from gateway_testing import GatewayProcess, Stubs, auth
from open311_testing import Facade, FacadeStarter, assert_error, get, post
from smartcity.v1 import gateway_pb2

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]
ORIGIN = "https://lapor.purbalinggakab.go.id"
AGENCY_PUPR = "Dinas Pekerjaan Umum dan Penataan Ruang Kabupaten Purbalingga"


@pytest_asyncio.fixture(scope="module")
async def facade(citizen_requests: None, gw: GatewayProcess, start_facade: FacadeStarter) -> Facade:
    # Every test calls from 127.0.0.1 with one api_key: the limits are the strict facade's subject.
    started = start_facade(gw.address, OPEN311_RATE_LIMIT_RPS="1000", OPEN311_RATE_LIMIT_BURST="2000")
    await started.wait_ready()
    return started


@pytest_asyncio.fixture(scope="module")
async def strict(citizen_requests: None, gw: GatewayProcess, start_facade: FacadeStarter) -> Facade:
    """A facade with a tight rate limit, a small body limit and one allowed browser origin."""
    started = start_facade(
        gw.address,
        OPEN311_RATE_LIMIT_RPS="0.2",
        OPEN311_RATE_LIMIT_BURST="3",
        OPEN311_MAX_BODY_BYTES="2048",
        OPEN311_CORS_ORIGINS=ORIGIN,
    )
    await started.wait_ready()
    return started


@pytest_asyncio.fixture
async def stubs(gw: GatewayProcess) -> AsyncIterator[Stubs]:
    async with gw.channel() as channel:
        yield Stubs(channel)


def road_form(**extra: str) -> dict[str, str]:
    return {
        "api_key": "t-app",
        "service_code": "roads",
        "lat": "-7.38830",
        "long": "109.36390",
        "attribute[damage]": "pothole",
        "description": f"Jalan berlubang dalam {uuid.uuid4().hex[:8]}",
        "first_name": "Siti",
        "last_name": "Aminah",
        "phone": "+62 812 1111",
        "email": "siti@example.id",
        "device_id": "phone-17",
        "media_url": "https://img.example/lubang.jpg",
        **extra,
    }


async def submit(http: ClientSession, facade: Facade, **extra: str) -> str:
    status, body = await post(http, f"{facade.url}/requests.json", road_form(**extra))
    assert status == 200, body
    return str(body[0]["service_request_id"])


# ---------------------------------------------------------------- discovery and services


async def test_discovery_and_services_in_json_and_xml(http: ClientSession, facade: Facade) -> None:
    status, found, headers = await get(http, f"{facade.url}/discovery.json")
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    endpoint = found["endpoints"][0]
    assert endpoint["url"] == facade.url and "application/json" in endpoint["formats"]
    status, xml, headers = await get(http, f"{facade.url}/discovery.xml")
    assert status == 200 and headers["Content-Type"] == "text/xml; charset=utf-8"
    assert xml.tag == "discovery" and xml.findtext("endpoints/endpoint/url") == facade.url

    status, services, _ = await get(
        http, f"{facade.url}/services.json", jurisdiction_id="purbalinggakab.go.id"
    )
    codes = {s["service_code"]: s for s in services}
    assert status == 200 and set(codes) >= {"permits", "health_info", "emergency", "roads", "waste", "other"}
    assert codes["roads"]["service_name"] == "Jalan Rusak" and codes["roads"]["metadata"] is True
    status, xml, _ = await get(http, f"{facade.url}/services.xml")
    assert status == 200 and xml.tag == "services"
    assert {s.findtext("service_code") for s in xml.iterfind("service")} == set(codes)

    status, definition, _ = await get(http, f"{facade.url}/services/roads.json")
    assert status == 200 and definition["service_code"] == "roads"
    assert definition["attributes"][0]["code"] == "damage" and definition["attributes"][0]["required"] is True
    status, xml, _ = await get(http, f"{facade.url}/services/emergency.xml")
    assert status == 200 and xml.tag == "service_definition"
    assert [a.findtext("code") for a in xml.iterfind("attributes/attribute")] == [
        "people_at_risk",
        "people_count",
    ]


# ---------------------------------------------------------------- submit and read back


async def test_submit_then_read_back_in_json_and_xml(
    http: ClientSession, facade: Facade, stubs: Stubs
) -> None:
    status, created = await post(http, f"{facade.url}/requests.json", road_form())
    assert status == 200 and set(created[0]) == {"service_request_id", "service_notice", "account_id"}
    request_id = created[0]["service_request_id"]
    assert request_id.startswith("req-") and AGENCY_PUPR in created[0]["service_notice"]

    status, found, _ = await get(http, f"{facade.url}/requests/{request_id}.json")
    assert status == 200 and len(found) == 1
    view = found[0]
    assert view["service_request_id"] == request_id and view["status"] == "open"
    assert view["service_code"] == "roads" and view["service_name"] == "Jalan Rusak"
    assert view["agency_responsible"] == AGENCY_PUPR
    assert view["description"].endswith("Jenis kerusakan: Berlubang")
    assert (view["lat"], view["long"]) == (-7.3883, 109.3639) and view[
        "media_url"
    ] == "https://img.example/lubang.jpg"
    for stamp in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert view[stamp].endswith("+07:00"), stamp
    assert view["expected_datetime"] > view["requested_datetime"], "expected = the SLA's resolve due time"
    text = json.dumps(found)
    assert "Siti" not in text and "812" not in text and "siti@" not in text, "no contact data in public reads"

    status, xml, _ = await get(http, f"{facade.url}/requests/{request_id}.xml")
    assert status == 200 and xml.tag == "service_requests" and xml[0].tag == "request"
    assert xml[0].findtext("service_request_id") == request_id and xml[0].findtext("status") == "open"
    assert b"siti@" not in ET.tostring(xml)

    # The contact data did reach the platform, for the OPD the request is routed to only.
    routed = await stubs.requests.GetRequest(
        gateway_pb2.GetRequestRequest(request_id=request_id), metadata=auth("t-pupr")
    )
    assert (
        routed.request.reporter.name == "Siti Aminah" and routed.request.reporter.email == "siti@example.id"
    )
    assert routed.request.submitted_by_client == "citizen-app", "submitted as the api_key's client"


async def test_post_answers_xml_when_asked(http: ClientSession, facade: Facade) -> None:
    status, xml = await post(http, f"{facade.url}/requests.xml", road_form())
    assert status == 200 and xml.tag == "service_requests"
    assert (xml[0].findtext("service_request_id") or "").startswith("req-")
    assert xml[0].find("account_id") is not None


async def test_a_retried_post_is_the_same_request(http: ClientSession, facade: Facade) -> None:
    form = road_form()
    first, second = await asyncio.gather(*(post(http, f"{facade.url}/requests.json", form) for _ in range(2)))
    assert first[0] == second[0] == 200
    assert first[1][0]["service_request_id"] == second[1][0]["service_request_id"]
    key, keyed_form = f"retry-{uuid.uuid4().hex}", road_form()
    one = await post(http, f"{facade.url}/requests.json", keyed_form, **{"Idempotency-Key": key})
    two = await post(http, f"{facade.url}/requests.json", keyed_form, **{"Idempotency-Key": key})
    assert one[1][0]["service_request_id"] == two[1][0]["service_request_id"], "the client's key decides"
    assert one[1][0]["service_request_id"] != first[1][0]["service_request_id"]
    # The same key with another report is the client's bug: refused, not answered with the first.
    status, body = await post(http, f"{facade.url}/requests.xml", road_form(), **{"Idempotency-Key": key})
    assert_error(status, body, 409, "idempotency key")


async def test_search_by_ids_service_status_and_dates(
    http: ClientSession, facade: Facade, stubs: Stubs
) -> None:
    kept, rejected = await submit(http, facade), await submit(http, facade)
    await stubs.requests.TransitionRequest(
        gateway_pb2.TransitionRequestRequest(
            request_id=rejected, action=gateway_pb2.REQUEST_ACTION_REJECT, note="bukan jalan kabupaten"
        ),
        metadata=auth("t-admin"),
        timeout=30,
    )

    status, found, _ = await get(
        http, f"{facade.url}/requests.json", service_request_id=f"{kept},{rejected},req-00000000000000000000"
    )
    assert status == 200 and [r["service_request_id"] for r in found] == [kept, rejected], (
        "unknown ids skipped"
    )
    closed = next(r for r in found if r["service_request_id"] == rejected)
    assert closed["status"] == "closed" and closed["status_notes"] == "bukan jalan kabupaten"

    _, open_roads, _ = await get(http, f"{facade.url}/requests.json", service_code="roads", status="open")
    ids = [r["service_request_id"] for r in open_roads]
    assert kept in ids and rejected not in ids
    assert all(r["status"] == "open" for r in open_roads)
    _, closed_roads, _ = await get(
        http, f"{facade.url}/requests.json", service_code="roads,waste", status="closed"
    )
    assert rejected in [r["service_request_id"] for r in closed_roads] and kept not in str(closed_roads)
    _, none_other, _ = await get(http, f"{facade.url}/requests.json", service_code="permits")
    assert kept not in str(none_other)
    _, long_ago, _ = await get(
        http,
        f"{facade.url}/requests.json",
        start_date="2025-01-01T00:00:00+07:00",
        end_date="2025-03-01T00:00:00+07:00",
    )
    assert long_ago == []
    status, xml, _ = await get(http, f"{facade.url}/requests.xml", service_code="roads")
    assert status == 200 and xml.tag == "service_requests"
    assert kept in [r.findtext("service_request_id") for r in xml.iterfind("request")]
    requested = [r["requested_datetime"] for r in open_roads]
    assert requested == sorted(requested, reverse=True), "newest first"


async def test_a_listing_shows_the_callers_new_request_at_once(http: ClientSession, facade: Facade) -> None:
    """Listings are cached for a second, but a POST through the facade clears that cache."""
    before = await get(http, f"{facade.url}/requests.json", service_code="roads")
    again = await get(http, f"{facade.url}/requests.json", service_code="roads")
    assert before[1] == again[1]
    created = await submit(http, facade)
    after = await get(http, f"{facade.url}/requests.json", service_code="roads")
    assert after[1][0]["service_request_id"] == created, "newest first, and not the cached listing"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("change", "expected", "says"),
    [
        ({"api_key": ""}, 403, "api_key is required"),
        ({"api_key": "not-a-key"}, 403, "invalid api_key"),
        ({"api_key": "t-devices"}, 403, "requests:write"),
        ({"service_code": ""}, 400, "service_code is required"),
        ({"service_code": "parking"}, 400, "'parking' is not a service"),
        ({"lat": "", "long": ""}, 400, "a location is required"),
        ({"lat": "minus seven"}, 400, "lat must be a number"),
        ({"attribute[damage]": ""}, 400, "attribute[damage] is required"),
        ({"attribute[damage]": "sinkhole"}, 400, "is not one of its values"),
        ({"email": "not-an-email"}, 400, "e-mail"),
        ({"media_url": "ftp://img.example/x.jpg"}, 400, "media_url"),
        ({"jurisdiction_id": "banyumaskab.go.id"}, 400, "is not served here"),
    ],
)
async def test_a_bad_post_gets_the_specs_error(
    http: ClientSession, facade: Facade, change: dict[str, str], expected: int, says: str
) -> None:
    form = {k: v for k, v in (road_form() | change).items() if v or k not in ("lat", "long")}
    for fmt in ("json", "xml"):
        status, body = await post(http, f"{facade.url}/requests.{fmt}", form)
        assert_error(status, body, expected, says)


@pytest.mark.parametrize(
    "case",
    [
        ("/requests/req-00000000000000000000.json", {}, 404, "not found"),
        ("/requests/req-00000000000000000000.xml", {}, 404, "not found"),
        ("/services/parking.json", {}, 404, "'parking' is not a service"),
        ("/services/parking.xml", {}, 404, "'parking' is not a service"),
        (
            "/tokens/o311-0000000000000000000000000000000000000000.json",
            {},
            404,
            "no service request for it yet",
        ),
        ("/tokens/abc.xml", {}, 404, "not a token"),
        ("/requests.html", {}, 404, "format 'html'"),
        ("/nothing-here", {}, 404, "no such resource"),
        ("/requests.json", {"status": "pending"}, 400, "status must be"),
        (
            "/requests.xml",
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-12-01T00:00:00Z"},
            400,
            "more than 90 days",
        ),
        ("/requests.json", {"start_date": "last week"}, 400, "W3C date-time"),
        ("/services.json", {"jurisdiction_id": "cilacapkab.go.id"}, 400, "is not served here"),
    ],
)
async def test_a_bad_read_gets_the_specs_error(
    http: ClientSession, facade: Facade, case: tuple[str, dict[str, str], int, str]
) -> None:
    path, params, expected, says = case
    status, body, _ = await get(http, facade.url + path, **params)
    assert_error(status, body, expected, says)


async def test_a_body_over_the_limit_is_413(http: ClientSession, strict: Facade) -> None:
    status, body = await post(http, f"{strict.url}/requests.xml", road_form(description="x" * 4000))
    assert_error(status, body, 413, "larger than 2048")


async def test_too_many_requests_is_429_with_retry_after(http: ClientSession, strict: Facade) -> None:
    replies = [await get(http, f"{strict.url}/services.json") for _ in range(6)]
    assert {r[0] for r in replies} <= {200, 429} and replies[-1][0] == 429, "burst 3, then 1 per 5 s"
    status, body, headers = replies[-1]
    assert_error(status, body, 429, "rate limit")
    assert int(headers["Retry-After"]) >= 1
    probe, _, _ = await get(http, f"{strict.url}/readyz")
    assert probe == 200, "probes are not rate limited"


# ---------------------------------------------------------------- browsers, operations


async def test_cors_preflight_and_answers(http: ClientSession, facade: Facade, strict: Facade) -> None:
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    async with http.options(f"{facade.url}/requests.json", headers=preflight) as reply:
        assert reply.status == 204
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in reply.headers["Access-Control-Allow-Methods"]
        assert "Content-Type" in reply.headers["Access-Control-Allow-Headers"]
    async with http.get(f"{facade.url}/services.json", headers={"Origin": ORIGIN}) as reply:
        assert reply.status == 200 and reply.headers["Access-Control-Allow-Origin"] == "*"
    async with http.get(
        f"{facade.url}/requests/req-00000000000000000000.json", headers={"Origin": ORIGIN}
    ) as reply:
        assert reply.status == 404 and reply.headers["Access-Control-Allow-Origin"] == "*", "errors too"
    async with http.options(f"{strict.url}/requests.json", headers=preflight) as reply:
        assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN and reply.headers["Vary"] == "Origin"
    async with http.options(
        f"{strict.url}/requests.json", headers=preflight | {"Origin": "https://evil.example"}
    ) as reply:
        assert "Access-Control-Allow-Origin" not in reply.headers


async def test_openapi_health_and_metrics(http: ClientSession, facade: Facade) -> None:
    status, document, _ = await get(http, f"{facade.url}/openapi.json")
    assert (
        status == 200 and document["openapi"].startswith("3.") and "/requests.{format}" in document["paths"]
    )
    assert (await get(http, f"{facade.url}/healthz"))[0] == 200
    assert (await get(http, f"{facade.url}/readyz"))[0] == 200
    metrics_url = f"http://127.0.0.1:{facade.metrics_port}"
    status, text, _ = await get(http, f"{metrics_url}/metrics")
    assert status == 200 and 'method="GET",route="/openapi.json",status="200"' in text
    assert (
        "smartcity_open311_gateway_call_duration_seconds_bucket" in text
        and "smartcity_open311_ready 1.0" in text
    )
    assert (await get(http, f"{metrics_url}/readyz"))[0] == 200


# ---------------------------------------------------------------- a citizen app with a PyPI client


def citizen_app(root: str) -> dict[str, Any]:
    """What a citizen's app does with `georeport` (PyPI), an Open311 client nobody here wrote.

    georeport reads only; the app posts the report with `requests`, the HTTP library georeport
    itself uses, as a GeoReport form."""
    import requests
    from georeport import GeoReport

    seen: dict[str, Any] = {}
    for fmt in ("json", "xml"):
        client = GeoReport(root, jurisdiction="purbalinggakab.go.id", api_key="t-app", output_format=fmt)
        services = client.get_service_list()
        definition = client.get_service_definition("roads")
        reply = requests.post(
            f"{root}/requests.json",
            timeout=30,
            data={
                "api_key": client.api_key,
                "jurisdiction_id": client.jurisdiction,
                "service_code": "roads",
                "lat": "-7.4246",
                "long": "109.2306",
                "attribute[damage]": "crack",
                "description": f"Retak memanjang di Jl. Letjend S. Parman ({fmt} {uuid.uuid4().hex[:6]})",
                "email": "budi@example.id",
                "first_name": "Budi",
            },
        )
        reply.raise_for_status()
        request_id = reply.json()[0]["service_request_id"]
        seen[fmt] = {
            "services": services,
            "definition": definition,
            "request_id": request_id,
            "one": client.get_service_request(request_id),
            "listed": client.get_service_requests(service_code="roads", status="open"),
        }
    return seen


async def test_a_citizen_app_with_an_open311_client_library(facade: Facade) -> None:
    seen = await asyncio.to_thread(citizen_app, facade.url)
    as_json, as_xml = seen["json"], seen["xml"]
    assert {s["service_code"] for s in as_json["services"]} == {s["service_code"] for s in as_xml["services"]}
    assert as_json["definition"]["attributes"][0]["code"] == "damage"
    assert as_xml["definition"]["attributes"]["attribute"]["code"] == "damage"  # xmltodict: one item, no list
    one = as_json["one"]
    assert one["service_request_id"] == as_json["request_id"] and one["status"] == "open"
    assert one["agency_responsible"] == AGENCY_PUPR and one["description"].endswith("Jenis kerusakan: Retak")
    xml_one = as_xml["one"]
    assert xml_one["service_request_id"] == as_xml["request_id"] and xml_one["lat"] == "-7.4246"
    listed_ids = [r["service_request_id"] for r in as_json["listed"]]
    assert as_json["request_id"] in listed_ids
    assert as_xml["request_id"] in [r["service_request_id"] for r in as_xml["listed"]]
    assert "budi@" not in json.dumps(seen), "no contact data reaches other citizens"

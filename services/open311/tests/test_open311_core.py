"""The GeoReport rules without a server: catalogue, POST forms, GET queries, views, documents."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from citizen_requests.config import load_config
from open311.core.cache import ListingCache
from open311.core.catalogue import Catalogue, CatalogueError
from open311.core.documents import discovery, render
from open311.core.errors import Open311Error
from open311.core.openapi import openapi_document
from open311.core.query import SPAN_S, parse_query
from open311.core.ratelimit import RateLimiter, caller_of
from open311.core.submit import idempotency_key, is_token, parse_submission
from open311.core.views import service_notice, to_open311, w3c_datetime
from smartcity.codec import to_timestamp
from smartcity.v1 import common_pb2
from smartcity.v1 import requests_pb2 as pb

CATALOGUE = Catalogue.load()
NOW = 1_796_083_200.0  # 2026-12-01T00:00:00Z
ROAD_FORM = [
    ("api_key", "k-app"),
    ("service_code", "roads"),
    ("lat", "-7.3883"),
    ("long", "109.3639"),
    ("attribute[damage]", "pothole"),
    ("description", "Jalan berlubang dalam di depan pasar"),
    ("first_name", "Siti"),
    ("last_name", "Aminah"),
    ("phone", "+62 812 1111"),
    ("email", "siti@example.id"),
    ("device_id", "phone-1"),
    ("media_url", "https://img.example/1.jpg"),
]


def error_of(call: object, *args: object, **kwargs: object) -> Open311Error:
    with pytest.raises(Open311Error) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


# ---------------------------------------------------------------- catalogue


def test_the_catalogue_offers_exactly_the_categories_citizen_requests_routes() -> None:
    routed = load_config().categories
    assert set(CATALOGUE.services) == set(routed)
    for code, category in routed.items():
        assert CATALOGUE.agency_name(category.opd) != category.opd, (
            f"{code}: no agency name for {category.opd}"
        )


def test_services_list_and_definitions_follow_georeport() -> None:
    listed = {s["service_code"]: s for s in CATALOGUE.service_list()}
    assert set(listed["roads"]) == {
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    }
    assert listed["roads"]["metadata"] is True and listed["permits"]["metadata"] is False
    assert listed["roads"]["type"] == "realtime" and "lubang" in listed["roads"]["keywords"]
    definition = CATALOGUE.services["roads"].definition()
    damage = definition["attributes"][0]
    assert definition["service_code"] == "roads"
    assert damage["code"] == "damage" and damage["datatype"] == "singlevaluelist" and damage["required"]
    assert {"key": "pothole", "name": "Berlubang"} in damage["values"] and damage["order"] == 1
    assert CATALOGUE.services["permits"].definition() == {"service_code": "permits", "attributes": []}


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        ({"services": {}}, "non-empty 'services'"),
        ({"jurisdiction_id": "x", "services": {"a b": {"name": "n", "description": "d"}}}, "letters, digits"),
        ({"jurisdiction_id": "x", "services": {"a": {"name": "n"}}}, "name and a description"),
        (
            {
                "jurisdiction_id": "x",
                "services": {
                    "a": {
                        "name": "n",
                        "description": "d",
                        "attributes": [{"code": "c", "description": "q", "datatype": "colour"}],
                    }
                },
            },
            "datatype must be one of",
        ),
        (
            {
                "jurisdiction_id": "x",
                "services": {
                    "a": {
                        "name": "n",
                        "description": "d",
                        "attributes": [{"code": "c", "description": "q", "datatype": "singlevaluelist"}],
                    }
                },
            },
            "values go with",
        ),
    ],
)
def test_a_broken_catalogue_is_refused_with_the_reason(broken: dict[str, object], says: str) -> None:
    with pytest.raises(CatalogueError, match=says):
        Catalogue.from_mapping(broken)


def test_a_catalogue_file_that_cannot_be_read_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("services: [")
    with pytest.raises(CatalogueError, match=r"bad\.yaml"):
        Catalogue.load(tmp_path / "bad.yaml")


# ---------------------------------------------------------------- POST forms


def test_a_complete_form_becomes_the_gateways_submit() -> None:
    new = parse_submission(ROAD_FORM, CATALOGUE)
    assert (new.api_key, new.service_code, new.lat, new.long) == ("k-app", "roads", -7.3883, 109.3639)
    assert new.title == "Jalan berlubang dalam di depan pasar"
    assert new.description.splitlines() == [
        "Jalan berlubang dalam di depan pasar",
        "",
        "Jenis kerusakan: Berlubang",
    ]
    assert (new.reporter.name, new.reporter.phone, new.reporter.email) == (
        "Siti Aminah",
        "+62 812 1111",
        "siti@example.id",
    )
    assert new.media_url == "https://img.example/1.jpg" and is_token(new.idempotency_key)
    assert "phone-1" not in repr(new), "device_id is not kept"


def test_the_idempotency_key_is_the_same_for_a_resent_form_and_differs_per_api_key() -> None:
    again = parse_submission(list(reversed(ROAD_FORM)), CATALOGUE)
    assert again.idempotency_key == parse_submission(ROAD_FORM, CATALOGUE).idempotency_key
    other_app = [("api_key", "k-other"), *ROAD_FORM[1:]]
    assert parse_submission(other_app, CATALOGUE).idempotency_key != again.idempotency_key
    edited = [*ROAD_FORM[:-1], ("media_url", "https://img.example/2.jpg")]
    assert parse_submission(edited, CATALOGUE).idempotency_key != again.idempotency_key
    keyed = idempotency_key("k-app", ROAD_FORM, "client-key-1")
    assert keyed == idempotency_key("k-app", edited, "client-key-1") != again.idempotency_key


def test_address_alone_is_a_location_and_the_service_name_titles_an_empty_description() -> None:
    new = parse_submission(
        [("api_key", "k"), ("service_code", "permits"), ("address_string", "Jl. Mayjen Sungkono")], CATALOGUE
    )
    assert new.lat is None and new.address == "Jl. Mayjen Sungkono"
    assert new.title == "Perizinan" and new.description == "Laporan Perizinan"
    by_id = parse_submission(
        [("api_key", "k"), ("service_code", "permits"), ("address_id", "A-17")], CATALOGUE
    )
    assert by_id.address == "address_id A-17"


def test_multivaluelist_answers_are_all_kept() -> None:
    form = [
        ("api_key", "k"),
        ("service_code", "waste"),
        ("address_string", "TPS Bancar"),
        ("attribute[waste_kinds][]", "household"),
        ("attribute[waste_kinds][]", "hazardous"),
    ]
    assert parse_submission(form, CATALOGUE).description.endswith(
        "Jenis sampah (boleh lebih dari satu): Rumah tangga, Bahan berbahaya"
    )


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ([("service_code", "roads")], 403, "api_key is required"),
        ([("api_key", "kunci rahasia"), ("service_code", "roads")], 403, "invalid api_key"),
        ([("api_key", "kunci-é"), ("service_code", "roads")], 403, "invalid api_key"),
        ([("api_key", "k"), ("address_string", "x")], 400, "service_code is required"),
        (
            [("api_key", "k"), ("service_code", "parking"), ("address_string", "x")],
            400,
            "'parking' is not a service",
        ),
        ([("api_key", "k"), ("service_code", "permits")], 400, "a location is required"),
        ([("api_key", "k"), ("service_code", "permits"), ("lat", "-7.3")], 400, "lat and long go together"),
        (
            [("api_key", "k"), ("service_code", "permits"), ("lat", "x"), ("long", "1")],
            400,
            "lat must be a number",
        ),
        ([("api_key", "k"), ("service_code", "permits"), ("lat", "-97"), ("long", "1")], 400, "not a WGS84"),
        (
            [("api_key", "k"), ("service_code", "permits"), ("lat", "nan"), ("long", "1")],
            400,
            "lat must be a number",
        ),
        (
            [("api_key", "k"), ("service_code", "roads"), ("address_string", "x")],
            400,
            "attribute[damage] is required",
        ),
        (
            [
                ("api_key", "k"),
                ("service_code", "roads"),
                ("address_string", "x"),
                ("attribute[damage]", "big"),
            ],
            400,
            "'big' is not one of its values",
        ),
        (
            [
                ("api_key", "k"),
                ("service_code", "permits"),
                ("address_string", "x"),
                ("attribute[colour]", "red"),
            ],
            400,
            "not an attribute of service permits",
        ),
        (
            [
                ("api_key", "k"),
                ("service_code", "waste"),
                ("address_string", "x"),
                ("attribute[waste_kinds]", "household"),
            ],
            400,
            "is sent as attribute[waste_kinds][]",
        ),
        (
            [
                ("api_key", "k"),
                ("service_code", "emergency"),
                ("address_string", "x"),
                ("attribute[people_at_risk]", "yes"),
                ("attribute[people_count]", "many"),
            ],
            400,
            "attribute[people_count] must be a number",
        ),
        (
            [("api_key", "k"), ("service_code", "permits"), ("address_string", "x"), ("address_string", "y")],
            400,
            "more than once",
        ),
        (
            [
                ("api_key", "k"),
                ("service_code", "permits"),
                ("address_string", "x"),
                ("jurisdiction_id", "kebumenkab.go.id"),
            ],
            400,
            "is not served here",
        ),
        (
            [
                ("api_key", "k"),
                ("service_code", "permits"),
                ("address_string", "x"),
                ("device_id", "d" * 129),
            ],
            400,
            "device_id is longer",
        ),
    ],
)
def test_a_wrong_form_is_refused_with_what_is_wrong(
    form: list[tuple[str, str]], status: int, says: str
) -> None:
    error = error_of(parse_submission, form, CATALOGUE)
    assert error.status == status and says in error.description
    assert error.document() == [{"code": status, "description": error.description}]


def test_a_client_idempotency_key_with_spaces_is_refused() -> None:
    assert error_of(idempotency_key, "k", [], "has spaces").status == 400


# ---------------------------------------------------------------- GET queries


def test_the_default_window_is_the_last_90_days_with_1000_results() -> None:
    query = parse_query({}, CATALOGUE, NOW, 1000, 7.0)
    assert (query.start_s, query.end_s, query.limit) == (NOW - SPAN_S, NOW, 1000)
    assert not query.ids and not query.statuses and not query.service_codes


def test_filters_and_their_gateway_share() -> None:
    query = parse_query(
        {
            "service_code": "roads",
            "status": "open",
            "start_date": "2026-11-01T00:00:00+07:00",
            "end_date": "2026-11-30",
        },
        CATALOGUE,
        NOW,
        1000,
        7.0,
    )
    assert query.gateway_category == "roads" and query.gateway_open_only
    assert query.start_s == 1_793_466_000.0  # 2026-10-31T17:00:00Z
    assert query.end_s == 1_795_971_600.0  # 2026-11-30T00:00:00+07:00, a date alone is its midnight, WIB
    both = parse_query({"service_code": "roads,waste", "status": "open,closed"}, CATALOGUE, NOW, 1000, 7.0)
    assert both.gateway_category == "" and not both.gateway_open_only
    only_start = parse_query({"start_date": "2026-09-01T00:00:00Z"}, CATALOGUE, NOW, 1000, 7.0)
    assert only_start.end_s - only_start.start_s == SPAN_S
    ids = parse_query(
        {"service_request_id": "req-1, req-2,req-1", "status": "bogus"}, CATALOGUE, NOW, 1000, 7.0
    )
    assert ids.ids == ("req-1", "req-2"), "ids override every other filter, repeats once"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"status": "pending"}, "status must be open, closed"),
        ({"service_code": "roads,parking"}, "service_code parking"),
        ({"start_date": "yesterday"}, "start_date must be a W3C date-time"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, "more than 90 days"),
        ({"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "after end_date"),
        ({"service_request_id": "req-1,../etc"}, "is not a service_request_id"),
        ({"service_request_id": ",".join(f"req-{i}" for i in range(101))}, "at most 100"),
        ({"jurisdiction_id": "other"}, "is not served here"),
    ],
)
def test_a_wrong_query_is_a_400(params: dict[str, str], says: str) -> None:
    error = error_of(parse_query, params, CATALOGUE, NOW, 1000, 7.0)
    assert error.status == 400 and says in error.description


def service_request(
    status: Any = pb.REQUEST_STATUS_SUBMITTED, requested: float = NOW - 3600
) -> pb.ServiceRequest:
    request = pb.ServiceRequest(
        request_id="req-0123456789abcdef0123",
        category="roads",
        service_code="roads",
        opd_code="PUPR",
        status=status,
        version=2,
        title="Jalan berlubang",
        description="Jalan berlubang\n\nJenis kerusakan: Berlubang",
        address="Jl. Jend. Sudirman",
        media_url="https://img.example/1.jpg",
        location=common_pb2.GeoPoint(latitude=-7.3883, longitude=109.3639),
        reporter=pb.Reporter(name="Siti Aminah", phone="+62 812 1111", email="siti@example.id"),
        requested_time=to_timestamp(requested),
        updated_time=to_timestamp(requested + 60),
        idempotency_key="o311-" + "0" * 40,
    )
    request.sla.acknowledge_due.CopyFrom(to_timestamp(requested + 86400))
    request.sla.resolve_due.CopyFrom(to_timestamp(requested + 14 * 86400))
    request.history.add(version=1, note="routed to PUPR")
    return request


def test_matching_a_listed_request() -> None:
    query = parse_query({"status": "open", "service_code": "roads"}, CATALOGUE, NOW, 1000, 7.0)
    assert query.matches(service_request())
    assert not query.matches(service_request(status=pb.REQUEST_STATUS_RESOLVED))
    old = service_request(requested=NOW - SPAN_S - 1)
    assert not query.matches(old) and query.older_than_window(old)


# ---------------------------------------------------------------- views and documents


def test_the_public_view_has_georeports_fields_and_no_contact_data() -> None:
    view = to_open311(service_request(), CATALOGUE)
    assert view == {
        "service_request_id": "req-0123456789abcdef0123",
        "status": "open",
        "status_notes": "routed to PUPR",
        "service_name": "Jalan Rusak",
        "service_code": "roads",
        "description": "Jalan berlubang\n\nJenis kerusakan: Berlubang",
        "agency_responsible": "Dinas Pekerjaan Umum dan Penataan Ruang Kabupaten Purbalingga",
        "service_notice": "Dinas Pekerjaan Umum dan Penataan Ruang Kabupaten Purbalingga menanggapi paling "
        "lambat 2026-12-02T06:00:00+07:00",
        "requested_datetime": "2026-12-01T06:00:00+07:00",
        "updated_datetime": "2026-12-01T06:01:00+07:00",
        "expected_datetime": "2026-12-15T06:00:00+07:00",
        "address": "Jl. Jend. Sudirman",
        "address_id": None,
        "zipcode": None,
        "lat": -7.3883,
        "long": 109.3639,
        "media_url": "https://img.example/1.jpg",
    }
    text = json.dumps(view)
    assert "Siti" not in text and "812" not in text and "siti@" not in text and "o311-" not in text


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (pb.REQUEST_STATUS_SUBMITTED, "open"),
        (pb.REQUEST_STATUS_ACKNOWLEDGED, "open"),
        (pb.REQUEST_STATUS_ASSIGNED, "open"),
        (pb.REQUEST_STATUS_IN_PROGRESS, "open"),
        (pb.REQUEST_STATUS_RESOLVED, "closed"),
        (pb.REQUEST_STATUS_CLOSED, "closed"),
        (pb.REQUEST_STATUS_REJECTED, "closed"),
    ],
)
def test_georeport_status_follows_the_lifecycle(status: int, expected: str) -> None:
    assert to_open311(service_request(status), CATALOGUE)["status"] == expected


def test_the_notice_tells_the_next_sla_milestone_or_the_breach() -> None:
    acknowledged = service_request(pb.REQUEST_STATUS_ACKNOWLEDGED)
    assert "menargetkan selesai paling lambat 2026-12-15T06:00:00+07:00" in service_notice(
        acknowledged, CATALOGUE
    )
    acknowledged.sla.acknowledge_breached = True
    assert "batas waktu layanan terlewati" in service_notice(acknowledged, CATALOGUE)
    assert service_notice(service_request(pb.REQUEST_STATUS_CLOSED), CATALOGUE) == ""
    assert w3c_datetime(NOW, 0) == "2026-12-01T00:00:00+00:00"


def test_xml_documents_have_the_specs_roots_and_item_names() -> None:
    body = render([to_open311(service_request(), CATALOGUE)], "service_requests", "xml")
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(body)
    assert root.tag == "service_requests" and [c.tag for c in root] == ["request"]
    request = root[0]
    assert request.findtext("status") == "open" and request.findtext("lat") == "-7.3883"
    assert request.find("address_id") is not None and request.findtext("address_id") == ""
    definition = ET.fromstring(render(CATALOGUE.services["roads"].definition(), "service_definition", "xml"))
    assert definition.findtext("service_code") == "roads"
    assert [v.findtext("key") for v in definition.iterfind("attributes/attribute/values/value")] == [
        "pothole",
        "crack",
        "subsidence",
        "flooded",
    ]
    assert definition.findtext("attributes/attribute/required") == "true"
    errors = ET.fromstring(render(Open311Error(404, "a < b & c").document(), "errors", "xml"))
    assert (errors[0].tag, errors[0].findtext("code"), errors[0].findtext("description")) == (
        "error",
        "404",
        "a < b & c",
    )
    services = ET.fromstring(render(CATALOGUE.service_list(), "services", "xml"))
    assert {s.findtext("service_code") for s in services.iterfind("service")} == set(CATALOGUE.services)


def test_json_documents_are_the_values_themselves() -> None:
    assert json.loads(render(Open311Error(400, "x").document(), "errors", "json")) == [
        {"code": 400, "description": "x"}
    ]
    found = json.loads(render(discovery(CATALOGUE, "https://open311.example/v2/"), "discovery", "json"))
    endpoint = found["endpoints"][0]
    assert endpoint["url"] == "https://open311.example/v2" and endpoint["specification"].endswith(
        "GeoReport_v2"
    )
    assert endpoint["formats"] == ["text/xml", "application/json"]
    xml = ET.fromstring(render(found, "discovery", "xml"))
    assert [f.text for f in xml.iterfind("endpoints/endpoint/formats/format")] == [
        "text/xml",
        "application/json",
    ]


def test_the_openapi_document_names_every_route_and_service() -> None:
    document = openapi_document(CATALOGUE, "http://127.0.0.1:8311")
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/discovery.{format}",
        "/services.{format}",
        "/services/{service_code}.{format}",
        "/requests.{format}",
        "/requests/{service_request_id}.{format}",
        "/tokens/{token}.{format}",
    }
    assert set(document["paths"]["/requests.{format}"]) == {"get", "post"}
    codes = document["components"]["schemas"]["Services"]["items"]["properties"]["service_code"]["enum"]
    assert set(codes) == set(CATALOGUE.services)
    yaml.safe_dump(document)  # plain data all the way down
    validate(document)  # openapi-spec-validator: a valid OpenAPI 3.1 document
    broken = document | {"paths": {"/requests.{format}": {"get": {"responses": "none"}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


# ---------------------------------------------------------------- rate limits


def test_each_caller_has_its_own_bucket_and_the_map_stays_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=2, max_callers=3)
    limiter.check("a", 0.0)
    limiter.check("a", 0.0)
    refused = error_of(limiter.check, "a", 0.0)
    assert refused.status == 429 and refused.retry_after_s == pytest.approx(1.0)
    limiter.check("a", 1.0)  # refilled at 1/s
    for caller in ("b", "c", "d"):
        limiter.check(caller, 1.0)
    assert len(limiter) == 3, "the idlest caller was evicted"
    assert caller_of("secret-key", "10.0.0.1").startswith("key:") and "secret" not in caller_of(
        "secret-key", ""
    )
    assert caller_of("", "10.0.0.1") == "addr:10.0.0.1"


def test_the_listing_cache_expires_is_bounded_and_clears() -> None:
    cache = ListingCache(ttl_s=1.0, max_entries=2)
    cache.put("a", b"A", 10.0)
    assert cache.get("a", 10.5) == b"A"
    assert cache.get("a", 11.0) is None and len(cache) == 0, "expired at the ttl"
    for key in ("a", "b", "c"):
        cache.put(key, key.encode(), 20.0)
    assert len(cache) == 2 and cache.get("a", 20.0) is None, "the oldest entry went"
    assert cache.get("b", 19.0) is None, "a clock that went back does not serve the future"
    cache.clear()
    assert cache.get("c", 20.0) is None
    off = ListingCache(ttl_s=0)
    off.put("a", b"A", 0.0)
    assert off.get("a", 0.0) is None


def test_the_facades_dev_token_reads_every_request_but_no_contact_data_and_cannot_write() -> None:
    from gateway.config import DEV_TOKENS_FILE
    from gateway.core.auth import REQUESTS_READ_ALL, REQUESTS_WRITE, TokenStore, sees_reporter
    from open311.config import DEV_GATEWAY_TOKEN

    reader = TokenStore.load(DEV_TOKENS_FILE).authenticate(f"Bearer {DEV_GATEWAY_TOKEN}")
    assert reader.client_id == "open311-public" and reader.has(REQUESTS_READ_ALL)
    assert not reader.has(REQUESTS_WRITE) and reader.opd_code == ""
    assert not any(sees_reporter(reader, opd) for opd in ("PUPR", "DLH", "BPBD", "COMMAND_CENTER", ""))

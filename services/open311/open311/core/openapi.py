"""The OpenAPI 3.1 document of the endpoint (served as /openapi.json).

Written from the same names the handlers use: the service codes come from the catalogue, the
formats and statuses from the core modules, so the document cannot drift from what is served.
"""

from __future__ import annotations

from typing import Any

from open311.core.catalogue import Catalogue
from open311.core.documents import FORMATS
from open311.core.query import MAX_IDS, SPAN_DAYS, STATUSES
from open311.core.submit import SCALAR_FIELDS

_ERROR_CODES = {
    "400": "A parameter is missing or wrong (the description says which)",
    "403": "api_key missing, unknown or without the right to create requests",
    "404": "No such service_code, service_request_id or token",
    "409": "The Idempotency-Key was used for another request (a retry must repeat its form)",
    "413": "The request body is larger than the endpoint accepts",
    "429": "Too many requests from this api_key or address; see Retry-After",
    "503": "The platform is not ready (starting, or the gateway is unreachable)",
}
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}


def _errors() -> dict[str, Any]:
    return {
        code: {"description": text, "content": _content({"$ref": "#/components/schemas/Errors"})}
        for code, text in _ERROR_CODES.items()
    }


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}, "text/xml": {"schema": schema}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or _STRING,
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": _STRING}


def _get(summary: str, schema_ref: str, *parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [_path("format", "json or xml"), _query("jurisdiction_id", "optional"), *parameters],
        "responses": {"200": {"description": "OK", "content": _content({"$ref": schema_ref})}, **_errors()},
    }


def _read(summary: str, schema_ref: str, *parameters: dict[str, Any]) -> dict[str, Any]:
    """A path whose only operation is that GET."""
    return {"get": _get(summary, schema_ref, *parameters)}


def openapi_document(catalogue: Catalogue, base_url: str) -> dict[str, Any]:
    codes = sorted(catalogue.services)
    request_fields = {
        name: _NULLABLE_STRING
        for name in (
            "service_request_id",
            "status",
            "status_notes",
            "service_name",
            "service_code",
            "description",
            "agency_responsible",
            "service_notice",
            "requested_datetime",
            "updated_datetime",
            "expected_datetime",
            "address",
            "address_id",
            "zipcode",
            "media_url",
        )
    } | {"lat": {"type": ["number", "null"]}, "long": {"type": ["number", "null"]}}
    form_fields = {name: _STRING for name in SCALAR_FIELDS} | {
        "attribute[CODE]": {
            "type": "string",
            "description": "answer to attribute CODE; attribute[CODE][] once per value for a multivaluelist",
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Purbalingga Smart City: Open311 GeoReport v2",
            "version": "2.0",
            "description": "Citizen service requests of Kabupaten Purbalingga over GeoReport v2 "
            f"(http://wiki.open311.org/GeoReport_v2), jurisdiction {catalogue.jurisdiction_id}.",
        },
        "servers": [{"url": base_url.rstrip("/")}],
        "paths": {
            "/discovery.{format}": _read("Service discovery", "#/components/schemas/Discovery"),
            "/services.{format}": _read("The services (request types)", "#/components/schemas/Services"),
            "/services/{service_code}.{format}": _read(
                "A service definition (its attributes)",
                "#/components/schemas/ServiceDefinition",
                _path("service_code", f"one of {', '.join(codes)}"),
            ),
            "/requests.{format}": {
                "get": _get(
                    "Service requests, newest first (public: no reporter contact data)",
                    "#/components/schemas/ServiceRequests",
                    _query(
                        "service_request_id", f"comma list, at most {MAX_IDS}; overrides the other filters"
                    ),
                    _query("service_code", "comma list"),
                    _query("start_date", f"W3C date-time; with end_date at most {SPAN_DAYS} days apart"),
                    _query("end_date", f"W3C date-time; default: the most recent {SPAN_DAYS} days"),
                    _query("status", f"comma list of {', '.join(sorted(STATUSES))}"),
                ),
                "post": {
                    "summary": "Create a service request (needs an api_key)",
                    "parameters": [_path("format", "json or xml")],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": ["api_key", "service_code"],
                                    "properties": form_fields,
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Created (or the same request again on a retry)",
                            "content": _content({"$ref": "#/components/schemas/Created"}),
                        },
                        **_errors(),
                    },
                },
            },
            "/requests/{service_request_id}.{format}": _read(
                "One service request",
                "#/components/schemas/ServiceRequests",
                _path("service_request_id", "as POST answered it"),
            ),
            "/tokens/{token}.{format}": _read(
                "The service_request_id of a token a POST answered",
                "#/components/schemas/Tokens",
                _path("token", "as POST answered it"),
            ),
        },
        "components": {
            "schemas": {
                "Errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"code": {"type": "integer"}, "description": _STRING},
                    },
                },
                "Discovery": {
                    "type": "object",
                    "properties": {
                        "changeset": _STRING,
                        "contact": _STRING,
                        "key_service": _STRING,
                        "endpoints": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Services": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "service_code": {"type": "string", "enum": codes},
                            "service_name": _STRING,
                            "description": _STRING,
                            "metadata": {"type": "boolean"},
                            "type": _STRING,
                            "keywords": _STRING,
                            "group": _STRING,
                        },
                    },
                },
                "ServiceDefinition": {
                    "type": "object",
                    "properties": {
                        "service_code": _STRING,
                        "attributes": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "ServiceRequests": {
                    "type": "array",
                    "items": {"type": "object", "properties": request_fields},
                },
                "Created": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "service_request_id": _STRING,
                            "token": _STRING,
                            "service_notice": _STRING,
                            "account_id": _NULLABLE_STRING,
                        },
                    },
                },
                "Tokens": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"service_request_id": _STRING, "token": _STRING},
                    },
                },
            }
        },
        "x-formats": list(FORMATS),
    }

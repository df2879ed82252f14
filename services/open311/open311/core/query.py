"""GET /requests: the query parameters, GeoReport's defaults, and which requests match.

service_request_id (comma list) overrides every other filter. Otherwise: service_code and
status (comma lists; status open or closed), start_date and end_date (W3C date-times on
requested_datetime). GeoReport's defaults: the most recent 90 days, a span of at most 90 days,
at most 1,000 results (newest first, as the gateway lists them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from open311.core.catalogue import Catalogue
from open311.core.errors import bad_request
from open311.core.submit import check_jurisdiction
from open311.core.views import open311_status
from smartcity.codec import from_timestamp

SPAN_DAYS = 90
SPAN_S = SPAN_DAYS * 86400.0
STATUSES = frozenset({"open", "closed"})
MAX_IDS = 100
# The gateway's request ids: req-<hex>, at most 128 characters of these.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")


@dataclass(frozen=True)
class RequestsQuery:
    ids: tuple[str, ...] = ()
    service_codes: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    start_s: float = 0.0
    end_s: float = 0.0
    limit: int = 1000

    def matches(self, request: Any) -> bool:
        """Whether a ServiceRequest (as the gateway lists it) belongs in the answer."""
        if self.service_codes and request.service_code not in self.service_codes:
            return False
        if self.statuses and open311_status(request.status) not in self.statuses:
            return False
        return self.start_s <= from_timestamp(request.requested_time) <= self.end_s

    def older_than_window(self, request: Any) -> bool:
        """Past the window's start: nothing after it in a newest-first listing can match."""
        return from_timestamp(request.requested_time) < self.start_s

    @property
    def gateway_category(self) -> str:
        """A category the gateway can filter on itself (one service_code), else ""."""
        return next(iter(self.service_codes)) if len(self.service_codes) == 1 else ""

    @property
    def gateway_open_only(self) -> bool:
        return self.statuses == {"open"}


def parse_query(
    params: Mapping[str, str], catalogue: Catalogue, now_s: float, max_results: int, utc_offset_h: float
) -> RequestsQuery:
    check_jurisdiction(params.get("jurisdiction_id", ""), catalogue)
    ids = _list(params.get("service_request_id", ""))
    if ids:
        if len(ids) > MAX_IDS:
            raise bad_request(f"service_request_id names {len(ids)} requests; at most {MAX_IDS} at once")
        for request_id in ids:
            check_request_id(request_id)
        return RequestsQuery(ids=tuple(dict.fromkeys(ids)), limit=max_results)
    codes = frozenset(_list(params.get("service_code", "")))
    unknown = sorted(c for c in codes if catalogue.service(c) is None)
    if unknown:
        raise bad_request(f"service_code {', '.join(unknown)}: not a service here (GET /services lists them)")
    statuses = frozenset(s.lower() for s in _list(params.get("status", "")))
    if not statuses <= STATUSES:
        raise bad_request(f"status must be open, closed or both (comma separated), got {params['status']!r}")
    start_s, end_s = _window(params, now_s, utc_offset_h)
    return RequestsQuery(
        service_codes=codes, statuses=statuses, start_s=start_s, end_s=end_s, limit=max_results
    )


def check_request_id(request_id: str) -> None:
    if not _ID.match(request_id):
        raise bad_request(f"{request_id!r} is not a service_request_id of this endpoint")


def parse_datetime(name: str, raw: str, utc_offset_h: float) -> float:
    """Seconds of a W3C date-time (a date alone is its midnight; no offset = the city's)."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        example = "2026-12-01T08:00:00+07:00"
        raise bad_request(f"{name} must be a W3C date-time such as {example}, got {raw!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone(timedelta(hours=utc_offset_h)))
    return value.timestamp()


def _window(params: Mapping[str, str], now_s: float, utc_offset_h: float) -> tuple[float, float]:
    raw_start, raw_end = params.get("start_date", ""), params.get("end_date", "")
    start = parse_datetime("start_date", raw_start, utc_offset_h) if raw_start else None
    end = parse_datetime("end_date", raw_end, utc_offset_h) if raw_end else None
    if start is None and end is None:
        end = now_s
    if start is None:
        assert end is not None
        start = end - SPAN_S
    if end is None:
        end = start + SPAN_S
    if start > end:
        raise bad_request("start_date is after end_date")
    if end - start > SPAN_S:
        raise bad_request(f"start_date to end_date spans more than {SPAN_DAYS} days")
    return start, end


def _list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]

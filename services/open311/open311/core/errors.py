"""GeoReport errors: an HTTP status and a description, rendered as the spec's error list.

GeoReport v2 answers every failure with `[{"code": <status>, "description": "..."}]` (JSON) or
`<errors><error><code/><description/></error></errors>` (XML); the code is the HTTP status.
"""

from __future__ import annotations

BAD_REQUEST = 400
FORBIDDEN = 403
NOT_FOUND = 404
CONFLICT = 409
PAYLOAD_TOO_LARGE = 413
TOO_MANY_REQUESTS = 429
BAD_GATEWAY = 502
SERVICE_UNAVAILABLE = 503
GATEWAY_TIMEOUT = 504


class Open311Error(Exception):
    """A request that cannot be served: the HTTP status and what is wrong, for the caller."""

    def __init__(self, status: int, description: str, retry_after_s: float | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return f"Open311Error({self.status}, {self.description!r})"

    def document(self) -> list[dict[str, object]]:
        return [{"code": self.status, "description": self.description}]


def bad_request(description: str) -> Open311Error:
    return Open311Error(BAD_REQUEST, description)


def forbidden(description: str) -> Open311Error:
    return Open311Error(FORBIDDEN, description)


def not_found(description: str) -> Open311Error:
    return Open311Error(NOT_FOUND, description)

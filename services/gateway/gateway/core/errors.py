"""API errors of the gateway, independent of gRPC.

Domain code raises `ApiError(ErrorKind.X, "what is wrong")`; the gRPC layer turns the kind into
the status code of the same name, so the pure modules never import grpc. An INVALID_ARGUMENT
raised by `invalid(field, problem)` also carries the field: the gRPC layer sends it as a
`google.rpc.BadRequest` field violation in the status details, for clients to point at the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class ErrorKind(Enum):
    """Names equal `grpc.StatusCode` names."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: its path in the request ("filter.radius_meters") and what is wrong."""

    field: str
    description: str


class ApiError(Exception):
    """A call that cannot be served, with a message that says what is wrong."""

    def __init__(self, kind: ErrorKind, message: str, violations: Sequence[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.violations = tuple(violations)

    def __repr__(self) -> str:
        return f"ApiError({self.kind.name}, {self.message!r})"


def invalid(field: str, problem: str) -> ApiError:
    return ApiError(ErrorKind.INVALID_ARGUMENT, f"{field}: {problem}", (FieldViolation(field, problem),))


def not_found(what: str) -> ApiError:
    return ApiError(ErrorKind.NOT_FOUND, f"{what} not found")


def denied(message: str) -> ApiError:
    return ApiError(ErrorKind.PERMISSION_DENIED, message)

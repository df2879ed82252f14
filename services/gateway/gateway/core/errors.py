"""API errors of the gateway, independent of gRPC.

Domain code raises `ApiError(ErrorKind.X, "what is wrong")`; the gRPC layer turns the kind into
the status code of the same name, so the pure modules never import grpc.
"""

from __future__ import annotations

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


class ApiError(Exception):
    """A call that cannot be served, with a message that says what is wrong."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"ApiError({self.kind.name}, {self.message!r})"


def invalid(field: str, problem: str) -> ApiError:
    return ApiError(ErrorKind.INVALID_ARGUMENT, f"{field}: {problem}")


def not_found(what: str) -> ApiError:
    return ApiError(ErrorKind.NOT_FOUND, f"{what} not found")


def denied(message: str) -> ApiError:
    return ApiError(ErrorKind.PERMISSION_DENIED, message)

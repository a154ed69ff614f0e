"""Typed gateway errors and the one table that maps them to the OpenAI error envelope.

Every failure a client can see is one of these classes; routes and the pipeline raise them and
a single exception handler renders `{"error": {"message", "type", "param", "code"}}` with the
status and headers from the table below. The `type` strings and integer `code` follow vLLM's
server so clients that special-case one work with the other.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class GatewayError(Exception):
    """Base for errors rendered to clients. `message` must never contain patient text."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    error_type: str = "InternalServerError"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(GatewayError):
    status = HTTPStatus.BAD_REQUEST
    error_type = "BadRequestError"


class ModelNotFound(GatewayError):
    status = HTTPStatus.NOT_FOUND
    error_type = "NotFoundError"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model `{model}` does not exist.", param="model")


class RouteNotFound(GatewayError):
    status = HTTPStatus.NOT_FOUND
    error_type = "NotFoundError"


class MethodNotAllowed(GatewayError):
    status = HTTPStatus.METHOD_NOT_ALLOWED
    error_type = "MethodNotAllowedError"


class AuthenticationFailed(GatewayError):
    """No API key, or one that is malformed, unknown, revoked or expired (one message for
    all of them, so a caller cannot probe which keys exist)."""

    status = HTTPStatus.UNAUTHORIZED
    error_type = "AuthenticationError"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="clinserve"'}


class PermissionDenied(GatewayError):
    """A valid key without the scope this route needs."""

    status = HTTPStatus.FORBIDDEN
    error_type = "PermissionDeniedError"


class ObjectNotFound(GatewayError):
    """No such object for this tenant; another tenant's object looks exactly the same."""

    status = HTTPStatus.NOT_FOUND
    error_type = "NotFoundError"


class Conflict(GatewayError):
    """The request is valid but the object's current state forbids it (e.g. retiring the
    active adapter version)."""

    status = HTTPStatus.CONFLICT
    error_type = "ConflictError"


class PreconditionFailed(GatewayError):
    """CDS Hooks: the data a service needs was neither prefetched nor readable from the
    EMR's FHIR server (HL7 CDS Hooks 2.0 prescribes 412 for exactly this)."""

    status = HTTPStatus.PRECONDITION_FAILED
    error_type = "PreconditionFailedError"


class PayloadTooLarge(GatewayError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    error_type = "RequestEntityTooLargeError"


class _RetryLater(GatewayError):
    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class Overloaded(_RetryLater):
    """The gateway's admission queue is full: come back shortly."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    error_type = "RateLimitError"


class RateLimited(_RetryLater):
    """A key's requests-per-minute, tokens-per-minute or concurrency limit is spent."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    error_type = "RateLimitError"


class QueueTimeout(_RetryLater):
    """Waited in the admission queue for longer than allowed."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    error_type = "ServiceUnavailableError"


class ShuttingDown(_RetryLater):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    error_type = "ServiceUnavailableError"


class NoHealthyWorker(_RetryLater):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    error_type = "ServiceUnavailableError"


class EmbedderUnavailable(_RetryLater):
    """Retrieval is switched off, or the embedder could not be loaded."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    error_type = "ServiceUnavailableError"


class WorkerFailed(GatewayError):
    """The worker answered with a server error or broke the connection."""

    status = HTTPStatus.BAD_GATEWAY
    error_type = "BadGatewayError"


class UpstreamTimeout(GatewayError):
    status = HTTPStatus.GATEWAY_TIMEOUT
    error_type = "GatewayTimeoutError"


class UpstreamRejected(GatewayError):
    """A 4xx from the worker (prompt over the context window, a parameter it refuses).

    Passed through with the worker's status, message and param: the worker knows its
    tokenizer and limits, the gateway does not.
    """

    def __init__(self, status: int, body: object) -> None:
        inner = body.get("error") if isinstance(body, dict) else None
        inner = inner if isinstance(inner, dict) else {}
        message = inner.get("message")
        param = inner.get("param")
        super().__init__(
            message if isinstance(message, str) else "The worker rejected the request.",
            param=param if isinstance(param, str) else None,
        )
        self.status = HTTPStatus(status)
        error_type = inner.get("type")
        self.error_type = error_type if isinstance(error_type, str) else "BadRequestError"


def envelope(
    message: str, error_type: str, status: int, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": status}}


def render(error: GatewayError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, JSON body and headers for a typed error."""
    body = envelope(error.message, error.error_type, int(error.status), error.param)
    return int(error.status), body, error.headers()

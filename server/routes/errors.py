"""One place where every failure becomes the OpenAI error envelope; never HTML or a trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from server.errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    RouteNotFound,
    envelope,
    render,
)

log = logging.getLogger(__name__)


def error_response(error: GatewayError) -> JSONResponse:
    status, body, headers = render(error)
    return JSONResponse(body, status_code=status, headers=headers)


async def _gateway_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(RouteNotFound("Not found: no such route."))
    if exc.status_code == 405:
        return error_response(MethodNotAllowed("Method not allowed on this route."))
    body = envelope(str(exc.detail), "HTTPError", exc.status_code)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
    return error_response(InvalidRequest(str(first.get("msg", "Invalid request.")), param=loc))


async def _client_left(_: Request, __: Exception) -> Response:
    """The client hung up while sending its body: nobody to answer, nothing worth logging."""
    return Response(status_code=499)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception(
        "unhandled error on %s (request %s)",
        request.url.path,
        getattr(request.state, "request_id", "?"),
        exc_info=exc,
    )
    body = envelope("Internal server error.", "InternalServerError", 500)
    return JSONResponse(body, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_left)
    app.add_exception_handler(Exception, _unexpected)

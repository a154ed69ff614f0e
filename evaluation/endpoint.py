"""An async client for one OpenAI-compatible endpoint: bounded concurrency, honest retries.

An evaluation run sends thousands of requests to a gateway, a bare vLLM worker or a hosted
provider. Transient refusals (429 rate limits, 5xx from a restarting worker, dropped
connections, read timeouts) are retried with capped exponential backoff and full jitter, so
that many concurrent requests that failed together do not come back together; a server's
Retry-After wins when it sends one. A refusal retries cannot fix (a wrong key, an unknown
model, a malformed request) raises `EndpointError` at once.

Questions may be patient text, so no error message or log line carries the request body:
messages name the method, the URL path, the status and the endpoint's own error message,
cleaned of any echo of the request (vLLM's validation errors quote the offending input).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# Transport failures that are the caller's own mistake: the same request fails the same way.
_PERMANENT_TRANSPORT_ERRORS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 20.0
_RETRY_AFTER_CAP_S = 60.0
_MESSAGE_CHARS = 300
_ECHO_MIN_CHARS = 8  # shorter request strings ("user", a model name) are not worth hiding
# Validation errors that quote the request: pydantic's `input_value=..., input_type=` and the
# `'input': '...'` of FastAPI's error list (what vLLM returns for a malformed request).
_PYDANTIC_INPUT = re.compile(r"input_value=.*?(?=, input_type=)", re.DOTALL)
_FASTAPI_INPUT = re.compile(r"""(['"]input['"]:\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^,}]*)""")
_REDACTED = "[request text]"


@dataclass(frozen=True)
class Endpoint:
    """Where to send requests and how hard to try.

    `base_url` is the OpenAI SDK's base URL, up to and including `/v1`; a trailing slash is
    fine. `max_retries` counts further attempts after the first.
    """

    base_url: str
    api_key: str | None = field(repr=False)  # kept out of logs and tracebacks
    model: str
    timeout_s: float = 120.0
    max_retries: int = 4
    concurrency: int = 4

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://: {self.base_url!r}")
        if self.timeout_s <= 0 or self.max_retries < 0 or self.concurrency < 1:
            raise ValueError("timeout_s must be > 0, max_retries >= 0 and concurrency >= 1")


class EndpointError(Exception):
    """A request the endpoint refused for good, or that failed every retry.

    `status` is the last HTTP status, or None when no response came back (connection lost,
    timed out). The message never contains the request body.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EndpointClient:
    """Chat completions and the model list of one endpoint; use as `async with`.

    At most `endpoint.concurrency` requests are in progress at once, counting a request's
    backoff waits: a rate-limited endpoint is then not fed new work while it asks for less.
    `transport` replaces the network (tests pass an `httpx.MockTransport`); `sleep` replaces
    the backoff wait (tests record the delays instead of waiting).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.endpoint = endpoint
        self._transport = transport
        self._sleep = sleep
        self._limit = asyncio.Semaphore(endpoint.concurrency)
        self._random = random.Random()
        self._base = endpoint.base_url.rstrip("/")
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> EndpointClient:
        headers = {"Accept": "application/json"}
        if self.endpoint.api_key:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key}"
        self._client = httpx.AsyncClient(
            transport=self._transport, headers=headers, timeout=self.endpoint.timeout_s
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` to /chat/completions (with the endpoint's model unless it names one);
        the parsed chat completion, or `EndpointError`."""
        if "model" not in body:
            body = {"model": self.endpoint.model, **body}
        response = await self._request("POST", "/chat/completions", body)
        completion = response.get("choices")
        if not (
            isinstance(completion, list)
            and completion
            and isinstance(completion[0], dict)
            and isinstance(completion[0].get("message"), dict)
        ):
            raise EndpointError(
                f"POST {self._path('/chat/completions')}: HTTP 200 but not a chat completion "
                "(no choices[0].message)",
                status=200,
            )
        return response

    async def models(self) -> list[str]:
        """The ids the endpoint serves (GET /models), to check a model exists before a run."""
        response = await self._request("GET", "/models", None)
        cards = response.get("data")
        if not isinstance(cards, list) or not all(
            isinstance(card, dict) and isinstance(card.get("id"), str) for card in cards
        ):
            raise EndpointError(
                f"GET {self._path('/models')}: HTTP 200 but not a model list", status=200
            )
        return [card["id"] for card in cards]

    async def _request(
        self, method: str, route: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The JSON object of a 2xx answer, retrying what a retry can fix."""
        if self._client is None:
            raise RuntimeError("EndpointClient is used outside `async with`")
        url = self._base + route
        where = f"{method} {self._path(route)}"
        failure: str  # the last attempt's outcome, for the message when retries run out
        status: int | None
        async with self._limit:
            for attempt in range(self.endpoint.max_retries + 1):
                response: httpx.Response | None = None
                try:
                    response = await self._client.request(method, url, json=body)
                except _PERMANENT_TRANSPORT_ERRORS as exc:
                    raise EndpointError(f"{where}: {_describe(exc)}") from None
                except httpx.TransportError as exc:
                    failure, status = _describe(exc), None
                else:
                    status = response.status_code
                    if 200 <= status < 300:
                        return _json_object(response, where)
                    failure = f"HTTP {status}: {_error_message(response, body)}"
                    if status not in _RETRY_STATUSES:
                        raise EndpointError(f"{where}: {failure}", status=status)
                if attempt == self.endpoint.max_retries:
                    break
                delay = self._backoff(attempt, response)
                log.warning(
                    "endpoint: %s: %s; retry %d/%d in %.2f s",
                    where, failure, attempt + 1, self.endpoint.max_retries, delay,
                )  # fmt: skip
                await self._sleep(delay)
        attempts = self.endpoint.max_retries + 1
        raise EndpointError(f"{where}: {failure} (gave up after {attempts} attempts)", status)

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        """The server's Retry-After in seconds (capped), else full jitter over 0.5 s * 2^n."""
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after is not None:
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = math.nan  # an HTTP date: rarely sent by model servers
            if math.isfinite(seconds):
                return min(max(seconds, 0.0), _RETRY_AFTER_CAP_S)
        return self._random.uniform(0.0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt))

    def _path(self, route: str) -> str:
        return httpx.URL(self._base + route).path


def _describe(exc: httpx.TransportError) -> str:
    detail = str(exc)[:_MESSAGE_CHARS]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _json_object(response: httpx.Response, where: str) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise EndpointError(
            f"{where}: HTTP {response.status_code} but the body is not a JSON object",
            status=response.status_code,
        )
    return parsed


def _error_message(response: httpx.Response, body: dict[str, Any] | None) -> str:
    """The endpoint's own explanation (OpenAI envelope, FastAPI `detail`, or plain text),
    without any echo of the request, at most 300 characters."""
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    message: Any = response.text
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and error.get("message") is not None:
            message = error["message"]
        elif isinstance(error, str):
            message = error
        elif "detail" in parsed:
            message = parsed["detail"]
    text = _without_request_text(str(message), body).strip() or "(no message)"
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


def _without_request_text(message: str, body: dict[str, Any] | None) -> str:
    """`message` with quoted request input removed, verbatim or as JSON/Python literals."""
    message = _PYDANTIC_INPUT.sub("input_value=" + _REDACTED, message)
    message = _FASTAPI_INPUT.sub(lambda match: match.group(1) + _REDACTED, message)
    for text in sorted(set(_strings(body)), key=len, reverse=True):
        if len(text) >= _ECHO_MIN_CHARS:
            escaped = (json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1])
            for form in {text, repr(text)[1:-1], *escaped}:
                message = message.replace(form, _REDACTED)
    return message


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)

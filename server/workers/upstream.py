"""Send one request to the pool: pick a worker, retry elsewhere before the first byte.

The contract with the client is that nothing is retried once a byte of the answer has left
the gateway, so a stream is only handed back after its first upstream chunk has arrived;
until then a refused connection, a 5xx or a broken stream moves the request to another
worker. 4xx answers are the worker's verdict on the request itself and are passed through.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from server.errors import GatewayError, UpstreamRejected, UpstreamTimeout, WorkerFailed
from server.settings import LimitSettings
from server.workers.pool import Worker, WorkerPool

_JSON = {"Content-Type": "application/json"}


@dataclass
class UpstreamReply:
    """A complete non-streaming answer."""

    worker: Worker
    body: dict[str, Any]
    upstream_s: float


@dataclass
class UpstreamStream:
    """A stream whose first chunk has arrived; iterate `chunks()` exactly once."""

    worker: Worker
    first: bytes
    response: aiohttp.ClientResponse
    idle_timeout_s: float
    started: float
    release: Callable[[], None]
    upstream_s: float = 0.0
    _closed: bool = field(default=False, init=False)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            yield self.first
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout_s):
                        chunk = await self.response.content.readany()
                except TimeoutError as exc:
                    raise UpstreamTimeout("The worker stopped sending for too long.") from exc
                except aiohttp.ClientError as exc:
                    raise WorkerFailed("The worker broke off the stream.") from exc
                if not chunk:
                    break
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Drop the upstream connection: vLLM sees the disconnect and aborts generation."""
        if not self._closed:
            self._closed = True
            self.upstream_s = time.perf_counter() - self.started
            if self.response.content.at_eof():
                self.response.release()  # finished cleanly: the connection can be reused
            else:
                self.response.close()
            self.release()


class Upstream:
    """Forwards JSON requests to the pool's workers under the gateway's timeouts."""

    def __init__(self, pool: WorkerPool, limits: LimitSettings) -> None:
        self.pool = pool
        self.limits = limits

    async def post(
        self, path: str, body: dict[str, Any], model: str, *, stream: bool
    ) -> UpstreamReply | UpstreamStream:
        payload = json.dumps(body, separators=(",", ":")).encode()
        tried: set[str] = set()
        failure: GatewayError | None = None
        for _ in range(1 + self.limits.retry_attempts):
            try:
                worker = self.pool.choose(model, exclude=tried)
            except GatewayError:
                if failure is not None:
                    raise failure from None
                raise
            tried.add(worker.url)
            try:
                return await self._attempt(worker, path, payload, stream=stream)
            except _Retryable as retryable:
                failure = retryable.error
        assert failure is not None
        raise failure

    async def _attempt(
        self, worker: Worker, path: str, payload: bytes, *, stream: bool
    ) -> UpstreamReply | UpstreamStream:
        worker.in_flight += 1

        def release() -> None:
            worker.in_flight -= 1

        started = time.perf_counter()
        response: aiohttp.ClientResponse | None = None
        handed_over: UpstreamStream | None = None
        try:
            async with asyncio.timeout(self.limits.request_timeout_s):
                response = await self.pool.session.post(
                    worker.url + path, data=payload, headers={**_JSON, **worker.headers}
                )
                if response.status >= 500:
                    self.pool.record_failure(worker, reason=f"HTTP {response.status}")
                    raise _Retryable(WorkerFailed(f"The worker failed ({response.status})."))
                if response.status >= 400:
                    raise UpstreamRejected(response.status, _json_or_none(await response.read()))
                if stream:
                    first = await response.content.readany()
                    if not first:
                        raise _Retryable(WorkerFailed("The worker closed the stream at once."))
                    handed_over = UpstreamStream(
                        worker,
                        first,
                        response,
                        self.limits.stream_idle_timeout_s,
                        started,
                        release,
                    )
                    return handed_over
                reply = _json_or_none(await response.read())
                if not isinstance(reply, dict):
                    raise _Retryable(WorkerFailed("The worker answered with invalid JSON."))
                return UpstreamReply(worker, reply, time.perf_counter() - started)
        except TimeoutError as exc:
            raise UpstreamTimeout("The worker did not answer in time.") from exc
        except aiohttp.ClientConnectorError as exc:
            self.pool.record_failure(worker, reason=type(exc).__name__, fatal=True)
            raise _Retryable(WorkerFailed("Could not reach the worker.")) from exc
        except aiohttp.ClientError as exc:
            self.pool.record_failure(worker, reason=type(exc).__name__)
            raise _Retryable(WorkerFailed("The worker broke off the request.")) from exc
        finally:
            if handed_over is None:  # otherwise the stream closes and releases when done
                if response is not None:
                    response.close()
                release()


class _Retryable(Exception):
    """Internal: this attempt failed before any byte reached the client."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None

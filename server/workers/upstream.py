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

import httpx

from server.errors import GatewayError, UpstreamRejected, UpstreamTimeout, WorkerFailed
from server.settings import LimitSettings
from server.workers.pool import Worker, WorkerPool


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
    reader: AsyncIterator[bytes]
    response: httpx.Response
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
                        chunk = await anext(self.reader)
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    raise UpstreamTimeout("The worker stopped sending for too long.") from exc
                except httpx.HTTPError as exc:
                    raise WorkerFailed("The worker broke off the stream.") from exc
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the upstream connection: vLLM sees the disconnect and aborts generation."""
        if not self._closed:
            self._closed = True
            self.upstream_s = time.perf_counter() - self.started
            await self.response.aclose()
            self.release()


class Upstream:
    """Forwards JSON requests to the pool's workers under the gateway's timeouts."""

    def __init__(self, pool: WorkerPool, limits: LimitSettings) -> None:
        self.pool = pool
        self.limits = limits

    async def post(
        self, path: str, body: dict[str, Any], model: str, *, stream: bool
    ) -> UpstreamReply | UpstreamStream:
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
                return await self._attempt(worker, path, body, stream=stream)
            except _Retryable as retryable:
                failure = retryable.error
        assert failure is not None
        raise failure

    async def _attempt(
        self, worker: Worker, path: str, body: dict[str, Any], *, stream: bool
    ) -> UpstreamReply | UpstreamStream:
        worker.in_flight += 1

        def release() -> None:
            worker.in_flight -= 1

        started = time.perf_counter()
        response: httpx.Response | None = None
        handed_over: UpstreamStream | None = None
        try:
            async with asyncio.timeout(self.limits.request_timeout_s):
                request = self.pool.client.build_request(
                    "POST", worker.url + path, json=body, headers=worker.headers
                )
                response = await self.pool.client.send(request, stream=True)
                if response.status_code >= 500:
                    await response.aread()
                    self.pool.record_failure(worker, reason=f"HTTP {response.status_code}")
                    raise _Retryable(WorkerFailed(f"The worker failed ({response.status_code})."))
                if response.status_code >= 400:
                    raise UpstreamRejected(
                        response.status_code, _json_or_none(await response.aread())
                    )
                if stream:
                    reader = response.aiter_bytes()
                    first = await anext(reader, b"")
                    if not first:
                        raise _Retryable(WorkerFailed("The worker closed the stream at once."))
                    handed_over = UpstreamStream(
                        worker,
                        first,
                        reader,
                        response,
                        self.limits.stream_idle_timeout_s,
                        started,
                        release,
                    )
                    return handed_over
                payload = _json_or_none(await response.aread())
                if not isinstance(payload, dict):
                    raise _Retryable(WorkerFailed("The worker answered with invalid JSON."))
                return UpstreamReply(worker, payload, time.perf_counter() - started)
        except TimeoutError as exc:
            raise UpstreamTimeout("The worker did not answer in time.") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            self.pool.record_failure(worker, reason=type(exc).__name__, fatal=True)
            raise _Retryable(WorkerFailed("Could not reach the worker.")) from exc
        except httpx.HTTPError as exc:
            self.pool.record_failure(worker, reason=type(exc).__name__)
            raise _Retryable(WorkerFailed("The worker broke off the request.")) from exc
        finally:
            if handed_over is None:  # otherwise the stream closes and releases when done
                if response is not None:
                    await response.aclose()
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

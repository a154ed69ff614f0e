"""A minimal keep-alive HTTP/1.1 client for the load generator: asyncio protocol + httptools.

Why not httpx: the load generator shares two cores with the gateway and the mock, so every
microsecond it spends per request is taken from what it measures, and httpx's per-request
cost is several times higher (the benchmark's calibration phase measures both and records
the numbers). Timestamps here are also taken in the protocol callbacks, when the bytes are
read, not later when an awaiting task is resumed, so event-loop queueing in the generator
does not inflate latencies.

It sends pre-encoded requests and understands just enough of the answer: status, body
(Content-Length or chunked, decoded by httptools) and, for streams, server-sent events.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

import httptools

_CONTENT = b'"delta":{"content":"'  # a token chunk; the role chunk's delta starts with "role"
_STAMP = b'"system_fingerprint":"'  # the mock's send time, in ns (see mock_upstream)
_DONE = b"data: [DONE]"


@dataclass
class Result:
    """One request's outcome, with perf_counter() timestamps in seconds."""

    stream: bool
    status: int = 0
    sent: float = 0.0  # request bytes handed to the socket
    first_byte: float = 0.0  # first body bytes read
    done: float = 0.0  # last byte read
    error: str | None = None
    body: bytearray = field(default_factory=bytearray)
    content_at: list[float] = field(default_factory=list)  # streams: read time per token chunk
    content_stamp_ns: list[int] = field(default_factory=list)  # streams: mock send time
    saw_done: bool = False

    @property
    def latency(self) -> float:
        return self.done - self.sent


class _Exchange:
    """Feeds one response's body into its Result; resolves `future` when it is complete."""

    def __init__(self, result: Result, future: asyncio.Future[Result]) -> None:
        self.result = result
        self.future = future
        self._events = b""

    def body(self, data: bytes) -> None:
        now = time.perf_counter()
        result = self.result
        if not result.first_byte:
            result.first_byte = now
        if not result.stream:
            result.body += data
            return
        self._events += data
        *events, self._events = self._events.split(b"\n\n")
        for event in events:
            if _CONTENT in event:
                result.content_at.append(now)
                result.content_stamp_ns.append(_stamp(event))
            elif event == _DONE:
                result.saw_done = True

    def finish(self, error: str | None = None) -> None:
        self.result.done = time.perf_counter()
        self.result.error = self.result.error or error
        if not self.future.done():
            self.future.set_result(self.result)


def _stamp(event: bytes) -> int:
    start = event.find(_STAMP)
    if start < 0:
        return 0
    start += len(_STAMP)
    end = event.find(b'"', start)
    digits = event[start:end]
    return int(digits) if digits.isdigit() else 0


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries at most one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.reusable = True

    # --- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"bad response: {exc}")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(f"connection lost: {exc}" if exc else "connection closed")

    # --- httptools callbacks ----------------------------------------------------------
    def on_headers_complete(self) -> None:
        if self.exchange is not None:
            self.exchange.result.status = self.parser.get_status_code()
        self.reusable = self.reusable and self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.body(body)

    def on_message_complete(self) -> None:
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.finish()

    # --- client side ------------------------------------------------------------------
    def send(self, payload: bytes, exchange: _Exchange) -> None:
        assert self.transport is not None
        self.exchange = exchange
        exchange.result.sent = time.perf_counter()
        self.transport.write(payload)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, reason: str) -> None:
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.finish(reason)


class RawClient:
    """A pool of keep-alive connections to one loopback server."""

    def __init__(self, host: str, port: int, max_connections: int = 1024) -> None:
        self.host = host
        self.port = port
        self.opened = 0
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    def post(self, path: str, body: bytes) -> bytes:
        """Pre-encode a JSON POST, so sending it costs one write."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nAccept: */*\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def get(self, path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()

    async def request(self, payload: bytes, *, stream: bool, timeout_s: float) -> Result:
        """Send `payload` on an idle (or new) connection; never raises for HTTP failures."""
        result = Result(stream=stream)
        async with self._slots:
            try:
                connection = await self._acquire()
            except OSError as exc:
                result.error = f"connect: {exc}"
                return result
            future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
            connection.send(payload, _Exchange(result, future))
            try:
                async with asyncio.timeout(timeout_s):
                    await future
            except TimeoutError:
                result.error = "timeout"
                connection.close()
            except asyncio.CancelledError:
                connection.close()
                raise
            if connection.reusable and result.error is None:
                self._idle.append(connection)
            else:
                connection.close()
        return result

    async def _acquire(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable:
                return connection
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Connection, self.host, self.port)
        self.opened += 1
        return protocol

    def close_idle(self) -> None:
        """Drop idle connections (e.g. before a phase, so none has hit a keep-alive timeout)."""
        while self._idle:
            self._idle.pop().close()

"""Bounded admission: a fixed number of requests in flight, a short queue, then refusal.

An unbounded queue turns overload into timeouts for everyone; a bounded one answers the
excess at once with 429 (queue full) or 503 (waited too long), both with Retry-After, so
clients and load balancers back off. Draining on shutdown refuses new work the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.errors import Overloaded, QueueTimeout, ShuttingDown


class Admission:
    def __init__(self, max_in_flight: int, max_queue: int, queue_timeout_s: float) -> None:
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self.in_flight = 0
        self.queued = 0
        self.draining = False
        self._slots = asyncio.Semaphore(max_in_flight)
        self._idle = asyncio.Event()
        self._idle.set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one in-flight slot for the duration of the block (a stream included)."""
        if self.draining:
            raise ShuttingDown("The gateway is shutting down; retry on another replica.")
        if self._slots.locked():
            if self.queued >= self.max_queue:
                raise Overloaded("The gateway is at capacity; retry shortly.")
            self.queued += 1
            try:
                async with asyncio.timeout(self.queue_timeout_s):
                    await self._slots.acquire()
            except TimeoutError:
                raise QueueTimeout("Waited too long for capacity; retry shortly.") from None
            finally:
                self.queued -= 1
        else:
            await self._slots.acquire()
        self.in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            self._slots.release()
            if self.in_flight == 0:
                self._idle.set()

    async def drain(self, timeout_s: float) -> bool:
        """Refuse new work and wait for what is in flight; False if the grace ran out."""
        self.draining = True
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

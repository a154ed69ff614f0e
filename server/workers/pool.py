"""Which workers exist, which are healthy, what they serve, and which one takes a request.

A worker is any vLLM OpenAI server. The pool learns what each serves from its `/v1/models`
(probed periodically together with `/health`), so external GPU workers need no
configuration beyond their URL. Selection is least-loaded among healthy workers serving the
model; the gateway counts its own in-flight requests per worker, which is exact for a single
gateway and a good-enough signal with several.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from server.errors import ModelNotFound, NoHealthyWorker
from server.settings import HealthSettings

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """Mutable view of one vLLM server, owned by the pool's event loop."""

    url: str
    api_key: str | None = None
    name: str = ""
    healthy: bool = False
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_flight: int = 0
    failures: int = 0

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.name = self.name or self.url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


class WorkerPool:
    """Owns the HTTP session to the workers (aiohttp: a fraction of httpx's CPU per request,
    which is most of the gateway's own overhead) and the periodic health probes."""

    def __init__(
        self, workers: Iterable[Worker], health: HealthSettings, connect_timeout_s: float
    ) -> None:
        self.workers: list[Worker] = list(workers)
        self.health = health
        self.connect_timeout_s = connect_timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._probe_task: asyncio.Task[None] | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the worker pool is not started")
        return self._session

    # --- membership -------------------------------------------------------------------
    def add(self, worker: Worker) -> None:
        self.workers.append(worker)

    # --- health -----------------------------------------------------------------------
    async def probe(self, worker: Worker) -> None:
        """One health check: `/health` must answer 200 and `/v1/models` must list models."""
        try:
            async with asyncio.timeout(self.health.probe_timeout_s):
                async with self.session.get(f"{worker.url}/health", headers=worker.headers) as r:
                    r.raise_for_status()
                async with self.session.get(
                    f"{worker.url}/v1/models", headers=worker.headers
                ) as listing:
                    listing.raise_for_status()
                    cards = (await listing.json()).get("data", [])
            worker.models = {card["id"]: card for card in cards if isinstance(card, dict)}
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, AttributeError) as exc:
            self.record_failure(worker, reason=type(exc).__name__)
            return
        if not worker.healthy:
            log.info("worker %s is healthy, serving %s", worker.name, sorted(worker.models))
        worker.healthy = True
        worker.failures = 0

    def record_failure(self, worker: Worker, *, reason: str, fatal: bool = False) -> None:
        """Count a failed probe or request; a refused connection is conclusive at once."""
        worker.failures += 1
        if worker.healthy and (fatal or worker.failures >= self.health.failures_before_unhealthy):
            log.warning("worker %s is unhealthy (%s)", worker.name, reason)
            worker.healthy = False

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(worker) for worker in self.workers))

    async def _probe_forever(self) -> None:
        while True:
            await self.probe_all()
            await asyncio.sleep(self.health.probe_interval_s)

    def start(self) -> None:
        """Open the session and start probing; call from the running event loop."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s),
            auto_decompress=True,
        )
        self._probe_task = asyncio.create_task(self._probe_forever(), name="worker-probes")

    async def stop(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        if self._session is not None:
            await self._session.close()

    # --- selection --------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return any(worker.healthy for worker in self.workers)

    def choose(self, model: str, exclude: frozenset[str] | set[str] = frozenset()) -> Worker:
        """The least-loaded healthy worker serving `model` and not already tried.

        404 when no worker has ever announced the model (while some worker is healthy,
        so the answer is trustworthy); 503 when the model exists but nobody can serve it now.
        """
        healthy = [w for w in self.workers if w.healthy]
        if not healthy:
            raise NoHealthyWorker("No healthy worker is available; try again shortly.")
        if not any(model in w.models for w in self.workers):
            raise ModelNotFound(model)
        serving = [w for w in healthy if model in w.models and w.url not in exclude]
        if not serving:
            raise NoHealthyWorker(f"No healthy worker is serving `{model}` right now.")
        return min(serving, key=lambda w: w.in_flight)

    def serves(self, model: str) -> bool:
        """Whether some healthy worker lists `model` (a base model or a loaded adapter)."""
        return any(worker.healthy and model in worker.models for worker in self.workers)

    @staticmethod
    def base_model_of(worker: Worker) -> str | None:
        """The base model `worker` serves (its card without a parent)."""
        return next((i for i, card in worker.models.items() if card.get("parent") is None), None)

    def base_model(self) -> str:
        """A base (non-adapter) model some healthy worker serves: what the gateway asks for
        its own purposes (the model intake engine) when no model is configured."""
        for card in self.model_cards():
            if card.get("parent") is None:
                return str(card["id"])
        raise NoHealthyWorker("No healthy worker is serving a base model right now.")

    def model_cards(self) -> list[dict[str, Any]]:
        """Models any healthy worker serves, each listed once, in vLLM's card shape."""
        cards: dict[str, dict[str, Any]] = {}
        for worker in self.workers:
            if worker.healthy:
                for model_id, card in worker.models.items():
                    cards.setdefault(model_id, card)
        return list(cards.values())

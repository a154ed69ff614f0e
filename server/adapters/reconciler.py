"""Make every worker hold the registry's adapter versions, and nothing it no longer needs.

Every `interval_s` the gateway reads the registry (the source of truth: any gateway replica
or the `clinserve adapters` CLI may have changed it) and compares it with what each healthy
worker lists in `/v1/models`:
- a staged, canary or active version a worker lacks is loaded (`/v1/load_lora_adapter`
  under `NAME@VERSION`); that covers a worker that joined or restarted;
- a version of a registered name that is retired (or gone) is unloaded once it has been
  retired for `unload_grace_s` (other gateways may still be sending to it) and this
  gateway has no request in flight on it.
Workers are brought in line side by side, and the router is also refreshed from the registry
on its own loop: a promotion takes effect within `interval_s` even while a pass waits on a
slow load or unload (the adapter_swap benchmark once saw a promotion wait 16 s behind one).
Adapters the registry does not manage (e.g. `--lora-modules` on a worker) are left alone.
A load that fails is logged and retried after `retry_after_s`, not on every pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from server.adapters.location import OutsideRoot, resolve_location
from server.adapters.registry import AdapterRegistry, AdapterVersion
from server.adapters.routing import AdapterRouter
from server.db.models import utc_now
from server.workers.pool import Worker, WorkerPool

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self,
        registry: AdapterRegistry,
        pool: WorkerPool,
        router: AdapterRouter,
        root: Path,
        *,
        interval_s: float = 2.0,
        unload_grace_s: float = 30.0,
        retry_after_s: float = 30.0,
        load_timeout_s: float = 120.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.registry = registry
        self.pool = pool
        self.router = router
        self.root = root
        self.interval_s = interval_s
        self.unload_grace = timedelta(seconds=unload_grace_s)
        self.retry_after_s = retry_after_s
        self.load_timeout_s = load_timeout_s
        self._clock = clock
        self._failed: dict[tuple[str, str], float] = {}  # (worker url, served name) -> when
        self._tasks: list[asyncio.Task[None]] = []

    async def refresh(self) -> list[AdapterVersion]:
        """Read the registry and route by it. Cheap, and run on its own cadence too, so a
        promotion takes effect within `interval_s` even while a pass waits on a slow load."""
        versions = await asyncio.to_thread(self.registry.list_versions)
        self.router.update(versions)
        return versions

    async def reconcile(self) -> None:
        """One pass: refresh the router, then bring every healthy worker in line, the
        workers side by side (one slow worker does not hold up the others)."""
        versions = await self.refresh()
        wanted = self._wanted(versions)
        managed = {version.name for version in versions}
        retired_at = {v.served_name: v.state_changed_at for v in versions if v.state == "retired"}
        workers = [w for w in self.pool.workers if w.healthy]
        await asyncio.gather(
            *(self._align(worker, wanted, managed, retired_at) for worker in workers)
        )

    async def _align(
        self,
        worker: Worker,
        wanted: dict[str, Path],
        managed: set[str],
        retired_at: dict[str, datetime],
    ) -> None:
        for served_name, path in wanted.items():
            if served_name not in worker.models:
                await self._load(worker, served_name, path)
        for served_name in [m for m in worker.models if self._unloadable(m, wanted, managed)]:
            since = retired_at.get(served_name)
            if since is not None and self._clock() - since < self.unload_grace:
                continue
            if self.router.in_flight(served_name) == 0:
                await self._unload(worker, served_name)

    def _wanted(self, versions: list[AdapterVersion]) -> dict[str, Path]:
        wanted = {}
        for version in versions:
            if version.state == "retired":
                continue
            try:
                wanted[version.served_name] = resolve_location(self.root, version.location)
            except OutsideRoot as exc:  # an edited row: never hand such a path to a worker
                log.error("adapter %s not loaded: %s", version.served_name, exc)
        return wanted

    @staticmethod
    def _unloadable(model_id: str, wanted: dict[str, Path], managed: set[str]) -> bool:
        name, at, version = model_id.rpartition("@")
        return bool(at) and version.isdigit() and name in managed and model_id not in wanted

    async def _load(self, worker: Worker, served_name: str, path: Path) -> None:
        failed_at = self._failed.get((worker.url, served_name))
        if failed_at is not None and time.monotonic() - failed_at < self.retry_after_s:
            return
        body = {"lora_name": served_name, "lora_path": str(path)}
        status, text = await self._post(worker, "/v1/load_lora_adapter", body)
        if status == 200 or (status == 400 and "already been loaded" in text):
            self._failed.pop((worker.url, served_name), None)
            worker.models[served_name] = {
                "id": served_name, "object": "model", "owned_by": "vllm",
                "root": str(path), "parent": self.pool.base_model_of(worker),
            }  # fmt: skip
            log.info("loaded adapter %s on worker %s", served_name, worker.name)
            return
        self._failed[(worker.url, served_name)] = time.monotonic()
        log.warning(
            "worker %s could not load adapter %s (HTTP %s): %s",
            worker.name, served_name, status, text[:300],
        )  # fmt: skip

    async def _unload(self, worker: Worker, served_name: str) -> None:
        status, text = await self._post(
            worker, "/v1/unload_lora_adapter", {"lora_name": served_name}
        )
        if status in (200, 404):
            worker.models.pop(served_name, None)
            log.info("unloaded adapter %s from worker %s", served_name, worker.name)
        else:
            log.warning(
                "worker %s could not unload adapter %s (HTTP %s): %s",
                worker.name, served_name, status, text[:300],
            )  # fmt: skip

    async def _post(self, worker: Worker, path: str, body: dict[str, str]) -> tuple[int, str]:
        try:
            async with asyncio.timeout(self.load_timeout_s):
                async with self.pool.session.post(
                    worker.url + path, json=body, headers=worker.headers
                ) as response:
                    return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 0, type(exc).__name__

    async def _every_interval(self, step: Callable[[], Awaitable[object]], what: str) -> None:
        while True:
            try:
                await step()
            except Exception as exc:  # a database hiccup must not end reconciliation
                log.warning("adapter %s failed (%s); retrying", what, type(exc).__name__)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._every_interval(self.reconcile, "reconciliation"),
                                name="adapter-reconciler"),
            asyncio.create_task(self._every_interval(self.refresh, "registry refresh"),
                                name="adapter-router-refresh"),
        ]  # fmt: skip

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

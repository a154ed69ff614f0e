"""The reconciler keeps routing by the registry while a worker call hangs: a promotion must
not wait behind a slow adapter load (benchmarks/adapter_swap once saw it wait 16 s)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from server.adapters.reconciler import Reconciler
from server.adapters.registry import AdapterRegistry
from server.adapters.routing import AdapterRouter
from server.settings import HealthSettings
from server.workers.pool import Worker, WorkerPool
from tests.adapter_fixtures import lora_dir, tiny_base
from tests.db_fixtures import database_url, engine, migrated, sessions
from tests.test_adapters_registry import put

__all__ = ["database_url", "engine", "lora_dir", "migrated", "sessions", "tiny_base"]


class StuckWorkerReconciler(Reconciler):
    """A worker whose `/v1/load_lora_adapter` never answers (inside the load timeout)."""

    loads = 0

    async def _load(self, worker: Worker, served_name: str, path: Path) -> None:
        del worker, served_name, path  # the call never reaches a worker
        self.loads += 1
        await asyncio.Event().wait()


def test_a_promotion_is_routed_while_a_load_hangs(
    sessions: sessionmaker[Session], lora_dir: Path, tmp_path: Path
) -> None:
    registry = AdapterRegistry(sessions)
    root = tmp_path / "adapters"
    put(registry, lora_dir, root)
    registry.promote("med", 1)
    put(registry, lora_dir, root)
    router = AdapterRouter(lambda _served: True)
    worker = Worker("http://127.0.0.1:9", healthy=True)
    pool = WorkerPool([worker], HealthSettings(), connect_timeout_s=1.0)
    reconciler = StuckWorkerReconciler(registry, pool, router, root, interval_s=0.05)

    async def scenario() -> str | None:
        reconciler.start()
        try:
            await asyncio.sleep(0.3)  # the first pass is now stuck loading med@1
            assert reconciler.loads == 1
            registry.promote("med", 2)
            await asyncio.sleep(0.3)
            alias = router.aliases["med"]
            return alias.active.served_name if alias.active else None
        finally:
            await reconciler.stop()

    assert asyncio.run(scenario()) == "med@2"

"""The app factory: build every long-lived object once, hang it on `app.state`, no globals.

Tests build apps against fake workers on real ports; `clinserve serve` builds one with
the configured workers and, when none is configured, the managed local vLLM worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from server.audit.requests import RequestAuditor
from server.cds.hooks import CdsHooks
from server.db import migrate
from server.gateway import build_gateway
from server.middleware import RequestObservation
from server.openapi import install_openapi
from server.routes import (
    adapters,
    admin,
    cds_hooks,
    clinical,
    embeddings,
    errors,
    feedback,
    health,
    openai,
)
from server.routes.deps import authorize
from server.settings import Settings
from server.workers.local import LocalWorker
from server.workers.pool import Worker

log = logging.getLogger(__name__)

AUDIT_CLOSE_TIMEOUT_S = 30.0
"""How long shutdown waits for queued audit rows to reach the database."""


def create_app(
    settings: Settings,
    *,
    local_worker: LocalWorker | None = None,
) -> FastAPI:
    """An app serving the configured worker URLs, plus `local_worker` if given."""
    workers = [Worker(url, settings.worker_api_key) for url in settings.worker_urls]
    gateway = build_gateway(settings, workers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(migrate.upgrade, gateway.engine)
        if settings.audit:
            gateway.audit.start()
        if not settings.auth.enabled:
            log.warning("authentication is OFF: every caller has every scope")
        gateway.pipeline.intake.warm_up()
        gateway.guidelines.start()
        if local_worker is not None:
            gateway.pool.add(local_worker.worker)
            await local_worker.start()
        gateway.pool.start()
        gateway.reconciler.start()
        try:
            yield
        finally:
            await gateway.guidelines.stop()
            await gateway.reconciler.stop()
            await gateway.pool.stop()
            if local_worker is not None:
                await local_worker.stop()
            await gateway.quota.limiter.close()
            if settings.audit:
                await asyncio.to_thread(gateway.audit.close, AUDIT_CLOSE_TIMEOUT_S)
            gateway.engine.dispose()

    app = FastAPI(
        title="clinserve",
        summary="OpenAI-compatible clinical inference gateway",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        dependencies=[Depends(authorize)],
    )
    app.state.gateway = gateway
    errors.install(app)
    app.include_router(openai.router)
    app.include_router(clinical.router)
    app.include_router(embeddings.router)
    app.include_router(feedback.router)
    app.include_router(admin.router)
    app.include_router(adapters.router)
    app.include_router(health.router)
    if settings.cds.enabled:
        app.state.cds = CdsHooks(settings.cds, settings.retrieval, settings.fhir)
        app.include_router(cds_hooks.router)
    auditor = RequestAuditor(gateway.audit) if settings.audit else None
    install_openapi(app)
    app.add_middleware(RequestObservation, metrics=gateway.metrics, on_finish=auditor)
    return app

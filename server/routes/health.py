"""Liveness, readiness and metrics: what load balancers, Kubernetes and Prometheus poll."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from server.routes.deps import GatewayDep

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """Alive: the process answers. Says nothing about workers (that is `/ready`)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(gateway: GatewayDep) -> JSONResponse:
    """Ready: at least one healthy worker, the guideline index's start-up load finished
    (loaded or not: retrieval is optional), and not draining for shutdown."""
    workers: list[dict[str, Any]] = [
        {"name": w.name, "healthy": w.healthy, "models": sorted(w.models), "in_flight": w.in_flight}
        for w in gateway.pool.workers
    ]
    if gateway.admission.draining:
        status, code = "draining", 503
    elif not gateway.guidelines.settled:
        status, code = gateway.guidelines.status, 503
    elif gateway.pool.ready:
        status, code = "ready", 200
    else:
        status, code = "no healthy worker", 503
    guidelines = gateway.guidelines.status
    body = {"status": status, "workers": workers, "guidelines": guidelines}
    return JSONResponse(body, status_code=code)


@router.get("/metrics")
async def metrics(gateway: GatewayDep) -> Response:
    body = gateway.metrics.exposition(
        gateway.pool, gateway.admission.in_flight, gateway.admission.queued
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST)

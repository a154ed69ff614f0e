"""HL7 CDS Hooks 2.0: `GET /cds-services` (discovery) and `POST /cds-services/{service_id}`.

Thin on purpose: `server.cds.hooks.CdsHooks` does the work. The route reads the body with
the gateway's size limit, spends the caller's rate limit like any other request, and leaves
a PHI-free account of the call in the request's facts for the audit row (the hook, its
instance id, resource counts, the cited guideline chunks and the rules that fired).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from server.cds.hooks import CdsHooks
from server.pipeline.facts import RequestFacts
from server.routes.deps import GatewayDep
from server.routes.openai import read_json_body

router = APIRouter()


async def _cds(request: Request) -> CdsHooks:
    cds: CdsHooks = request.app.state.cds
    return cds


CdsDep = Annotated[CdsHooks, Depends(_cds)]


@router.get("/cds-services")
async def discovery(cds: CdsDep) -> dict[str, Any]:
    return cds.discovery()


@router.post("/cds-services/{service_id}")
async def call_service(
    service_id: str, request: Request, gateway: GatewayDep, cds: CdsDep
) -> dict[str, Any]:
    service = cds.service(service_id)
    facts: RequestFacts = request.state.facts
    facts.model = f"cds:{service.hook}"
    body = await read_json_body(request, gateway.settings.limits.max_body_bytes)
    call = cds.parse(service, body)
    facts.set_prompt(call.describe())
    async with gateway.quota.spend(gateway.caller(request.state.principal), 0, facts):
        outcome = await cds.run(call, gateway.guidelines.retriever)
    facts.set_prompt(outcome.description)
    facts.citations = list(outcome.cards.citations)
    facts.red_flags = list(outcome.cards.red_flags)
    return outcome.response
